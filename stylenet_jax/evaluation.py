"""Perform human performances with a system and compare with the pianist, note by note.

Each performance's velocities are first flattened (every note at ``flat_velocity``), so no
system can see the pianist's dynamics; the system performs the flattened notes, and its
velocities are compared with the pianist's (``metrics.PieceComparison``), together with the
paper's (T, 88) matrix MSE.

Systems (``System``): a StyleNet model (a style head or a blend), and the baselines:
``constant`` (the style's mean training velocity), ``random`` (uniform 1..127, the paper's),
``per_pitch`` (the style's mean training velocity of each key) and ``features`` (gradient-
boosted trees on note features, ``feature_baseline``). Their training statistics come from a
dataset's training split (``NoteStatistics``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable, Mapping, NamedTuple, Protocol, Sequence, runtime_checkable

import numpy as np

from stylenet_jax import dataset, encoding, metrics, performances, tempo
from stylenet_jax.atomic_write import write_text_atomically
from stylenet_jax.performances import Performed

BASELINES = ("constant", "random", "per_pitch", "features")


class Performance(NamedTuple):
    """A system's performance of one piece: velocities int64 (n,) 1..127 for the piece's
    notes; matrix float32 (T, 88) velocity / 127 for the paper's MSE, or None to use the
    velocities painted on the notes' cells (0 elsewhere)."""

    velocities: np.ndarray
    matrix: np.ndarray | None = None


class System(Protocol):
    """Anything that performs a flattened ``Performed`` in its style."""

    name: str

    def perform(self, performed: Performed) -> Performance: ...


@runtime_checkable
class DerivedSystem(Protocol):
    """A system made from the performances of systems scored before it in the same evaluation
    (``derived_systems``: a mix, a widened system); ``evaluate`` hands it those performances
    of each piece, and the piece as the systems were given it, instead of asking it to
    perform."""

    name: str

    def combine(self, done: Mapping[str, Performance], performed: Performed
                ) -> Performance: ...


# ----------------------------------------------------------------------------- statistics


@dataclasses.dataclass(frozen=True)
class NoteStatistics:
    """Per style: mean onset velocity (MIDI units) and mean of each of the 88 keys (the
    style mean where a key never sounds), from a dataset's training split."""

    mean: Mapping[str, float]
    per_key: Mapping[str, Sequence[float]]

    @classmethod
    def from_dataset(cls, data_dir: str, split: str = "train") -> "NoteStatistics":
        """Onset cells of the split's songs (the arrays ``data_prep.build`` wrote)."""
        total: dict[str, np.ndarray] = {}
        count: dict[str, np.ndarray] = {}
        for song in dataset.load_songs(data_dir, split):
            onset = encoding.onset_channels(song.inputs).astype(bool)
            v = np.where(onset, song.velocities, 0).astype(np.float64)
            total[song.style] = total.get(song.style, 0) + v.sum(0)
            count[song.style] = count.get(song.style, 0) + onset.sum(0)
        if not total:
            raise dataset.DatasetError(f"{data_dir}: no songs in split {split!r}")
        mean = {s: float(total[s].sum() / max(count[s].sum(), 1)) for s in total}
        per_key = {s: np.where(count[s] > 0, total[s] / np.maximum(count[s], 1),
                               mean[s]).tolist() for s in total}
        return cls(mean, per_key)

    def save(self, path: str) -> None:
        write_text_atomically(path, json.dumps({"mean": dict(self.mean),
                                                "per_key": dict(self.per_key)}))

    @classmethod
    def load(cls, path: str) -> "NoteStatistics":
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return cls(data["mean"], data["per_key"])


def _style_value(table: Mapping[str, object], style: str, what: str):
    if style not in table:
        raise KeyError(f"{what} has no style {style!r} (it has {', '.join(table)})")
    return table[style]


# ----------------------------------------------------------------------------- systems


def as_velocities(values: np.ndarray) -> np.ndarray:
    """float (n,) -> int64 (n,): rounded to the nearest velocity and clipped to 1..127."""
    return np.clip(np.rint(values), 1, 127).astype(np.int64)


@dataclasses.dataclass
class ConstantSystem:
    """Every note at the style's mean training velocity."""

    stats: NoteStatistics
    name: str = "constant"

    def perform(self, performed: Performed) -> Performance:
        mean = _style_value(self.stats.mean, performed.style, "the note statistics")
        return Performance(as_velocities(np.full(len(performed.notes), mean)))


@dataclasses.dataclass
class PerPitchSystem:
    """Every note at its key's mean training velocity in the style."""

    stats: NoteStatistics
    name: str = "per_pitch"

    def perform(self, performed: Performed) -> Performance:
        table = np.asarray(_style_value(self.stats.per_key, performed.style,
                                        "the note statistics"))
        return Performance(as_velocities(table[performed.notes.pitch - encoding.LOWEST_KEY]))


@dataclasses.dataclass
class RandomSystem:
    """Uniform 1..127 (the paper's baseline), seeded per performance (its id)."""

    seed: int = 0
    name: str = "random"

    def perform(self, performed: Performed) -> Performance:
        rng = np.random.default_rng([self.seed, *performed.id.encode()])
        return Performance(rng.integers(1, 128, len(performed.notes)).astype(np.int64))


@dataclasses.dataclass
class FeaturesSystem:
    """The gradient-boosted-tree baseline (``feature_baseline.FeatureBaseline``)."""

    model: object
    name: str = "features"

    def perform(self, performed: Performed) -> Performance:
        return Performance(np.asarray(self.model.predict(
            performed.notes, performed.ticks_per_beat, performed.style, performed.seconds),
            np.int64))


@dataclasses.dataclass
class ModelSystem:
    """A StyleNet model (``performer.Stylizer``): each piece's own style head, or one fixed
    ``blend`` ({style: weight}) for every piece."""

    stylizer: object
    name: str = "model"
    blend: Mapping[str, float] | None = None

    def perform(self, performed: Performed, priors: dict | None = None) -> Performance:
        """``priors``: this performance's ``tree_priors`` when already made (by a model of
        the same blend and tree); default: made here if the model is a hybrid."""
        blend = self.blend or {performed.style: 1.0}
        enc = encoding.encode(performed.notes, performed.ticks_per_beat)
        seconds_per_beat = tempo.piece_seconds_per_beat(
            performed.notes, performed.ticks_per_beat, performed.seconds)
        if priors is None:
            priors = self.tree_priors(performed)
        matrix = self.stylizer.predict(enc.inputs, blend, seconds_per_beat, priors)
        return Performance(encoding.decode_velocities(matrix, performed.notes,
                                                      performed.ticks_per_beat), matrix)

    def tree_priors(self, performed: Performed) -> dict | None:
        """What a hybrid model reads beside the notes of ``performed``: {style: uint8 (T, 88)}
        the tree's velocities in each style it plays (``Stylizer.tree_priors``); None for a
        model without the tree."""
        onset, end = encoding.quantize(performed.notes, performed.ticks_per_beat)
        return self.stylizer.tree_priors(performed.notes, performed.ticks_per_beat,
                                         performed.seconds,
                                         self.blend or {performed.style: 1.0}, onset, end)


def styles_of(system: System) -> list[str] | None:
    """The styles a system can perform (None: any)."""
    if isinstance(system, ModelSystem):
        return None if system.blend else list(system.stylizer.styles)
    if isinstance(system, (ConstantSystem, PerPitchSystem)):
        return list(system.stats.mean)
    if isinstance(system, FeaturesSystem):
        return list(system.model.styles)
    if isinstance(system, DerivedSystem):  # a derived_systems.PerStyleSystem names its styles
        return getattr(system, "styles", None)
    return None


def check_styles(performed: Sequence[Performed], systems: Sequence[System]) -> None:
    """Raises ValueError (one line) if a performance's style is one a system cannot play."""
    wanted = sorted({p.style for p in performed})
    for system in systems:
        known = styles_of(system)
        missing = [s for s in wanted if known is not None and s not in known]
        if missing:
            raise ValueError(f"{system.name} has no style {', '.join(missing)} (it has "
                             f"{', '.join(known)}); choose the files' style or a --blend")


# ----------------------------------------------------------------------------- comparing


def flatten(performed: Performed, velocity: int = 64) -> Performed:
    """The same notes, every one at ``velocity``: what a system is given to perform."""
    if not 1 <= velocity <= 127:
        raise ValueError(f"flat velocity must be in 1..127, got {velocity}")
    notes = dataclasses.replace(performed.notes,
                                velocity=np.full(len(performed.notes), velocity, np.uint8))
    return performed._replace(notes=notes)


def compare(performed: Performed, performance: Performance) -> metrics.PieceComparison:
    """The system's performance beside the pianist's (``performed`` holds the human notes)."""
    notes, tpb = performed.notes, performed.ticks_per_beat
    velocities = np.asarray(performance.velocities)
    if velocities.shape != (len(notes),):
        raise ValueError(f"{performed.id}: a system gave {velocities.shape} velocities for "
                         f"{len(notes)} notes")
    human = encoding.encode(notes, tpb)
    target = human.target
    if performance.matrix is None:
        painted = dataclasses.replace(notes, velocity=velocities.astype(np.uint8))
        matrix = encoding.encode(painted, tpb).target
    else:
        matrix = np.asarray(performance.matrix, np.float32)
    if matrix.shape != target.shape:
        raise ValueError(f"{performed.id}: matrix {matrix.shape} but target {target.shape}")
    sq = np.square(matrix.astype(np.float64) - target)
    sounding = human.active
    return metrics.PieceComparison(performed.piece, notes.velocity.astype(np.int64),
                                   velocities.astype(np.int64), float(sq.sum()), int(sq.size),
                                   float(sq[sounding].sum()), int(sounding.sum()))


class Evaluation(NamedTuple):
    """comparisons[system][style]: one PieceComparison per performance (input order);
    velocities[system]: int64 (n,) per performance, for pictures."""

    comparisons: dict[str, dict[str, list[metrics.PieceComparison]]]
    velocities: dict[str, list[np.ndarray]]


def perform_piece(given: Performed, systems: Sequence[System]) -> dict[str, Performance]:
    """Every system's performance of one (flattened) piece, {name: Performance} in the
    systems' order: a ``DerivedSystem`` combines those of the systems listed before it."""
    done: dict[str, Performance] = {}
    for system in systems:
        done[system.name] = (system.combine(done, given) if isinstance(system, DerivedSystem)
                             else system.perform(given))
    return done


def evaluate(performed: Sequence[Performed], systems: Sequence[System], *,
             flat_velocity: int = 64, timing: str = "performed", pedals: bool = True,
             progress: Callable[[str], None] = lambda line: None) -> Evaluation:
    """Every system performs every (flattened) performance; returns the comparisons. A
    ``DerivedSystem`` (``derived_systems``: a mix, a widened system) combines the performances
    of systems listed before it.

    timing: what the systems are told of when each note is played: "performed", the
    pianist's own seconds, or "score", a steady tempo on the grid (``performances.as_score``:
    what a musician's sheet-music file gives). pedals: False hides the pianist's pedals from
    the systems (``performances.without_pedals``); only a tree fitted with them reads them.
    """
    comparisons: dict[str, dict[str, list]] = {s.name: {} for s in systems}
    velocities: dict[str, list] = {s.name: [] for s in systems}
    for i, human in enumerate(performed, 1):
        given = performances.with_timing(flatten(human, flat_velocity), timing)
        given = given if pedals else performances.without_pedals(given)
        for name, performance in perform_piece(given, systems).items():
            comparisons[name].setdefault(human.style, []).append(compare(human, performance))
            velocities[name].append(np.asarray(performance.velocities, np.int64))
        progress(f"[{i}/{len(performed)}] {human.id} ({len(human.notes)} notes)")
    return Evaluation(comparisons, velocities)


EXCERPT_TRAINING, WHOLE_PIECE_TRAINING = (400, 32), (200, 8)  # classifier (steps, batch)


def identify_the_human(performed: Sequence[Performed], evaluation: Evaluation, *,
                       length_seconds: float | None = 10.0, seed: int = 0,
                       both_halves: bool = False) -> dict[str, dict[str, float]]:
    """Per system: how often a classifier trained on half of the pieces (human vs system,
    same notes, ``length_seconds`` excerpts; ``human_classifier``) picks the human on the
    other half; ``both_halves``: on every piece, each half scored by the classifier trained
    on the other (``human_classifier.score_both_halves``: twice the test pieces, twice the
    training time). ``{system: {"accuracy", "accuracy_lo", "accuracy_hi", "pairs",
    "pieces", "by_style"}}``; ``by_style``: {style: the same five} over the test pairs of that
    style's pieces, scored by the same classifier (one for every style). 0.5 is chance (the
    paper's listeners: 0.53 on 10-second clips, 0.46 on whole pieces)."""
    from stylenet_jax import human_classifier

    style_of = {p.piece: p.style for p in performed}
    out = {}
    for name, velocities in evaluation.velocities.items():
        pairs = human_classifier.make_pairs(performed, velocities, length_seconds)
        steps, batch = EXCERPT_TRAINING if length_seconds else WHOLE_PIECE_TRAINING
        if both_halves:
            result = human_classifier.score_both_halves(pairs, seed=seed, steps=steps,
                                                        batch_size=batch)
        else:
            train, test = human_classifier.split_pieces(pairs, 0.5, seed)
            result = human_classifier.train_and_score(train, test, seed=seed, steps=steps,
                                                      batch_size=batch)
        out[name] = _identified(result)
        out[name]["by_style"] = {
            style: _identified(row) for style, row in human_classifier.accuracy_by_style(
                result["correct"], result["test_pieces"], style_of, seed).items()}
    return out


def _identified(result: Mapping) -> dict:
    """{"accuracy", "accuracy_lo", "accuracy_hi", "pairs", "pieces"} of a classifier's result
    (its "accuracy", "ci95", "pairs", "pieces")."""
    lo, hi = result["ci95"]
    return {"accuracy": float(result["accuracy"]), "accuracy_lo": float(lo),
            "accuracy_hi": float(hi), "pairs": int(result["pairs"]),
            "pieces": int(result["pieces"])}


def scores(evaluation: Evaluation, *, resamples: int = 2000,
           seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """``{system: {style or "all": {"notes": n, "mae": x, "pearson_r": x, ...}}}``."""
    return {name: metrics.score_by_style(by_style, resamples=resamples, seed=seed)
            for name, by_style in evaluation.comparisons.items()}


def paired_differences(evaluation: Evaluation, reference: str, *, resamples: int = 2000,
                       seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """Each other system minus ``reference`` on the same notes: ``{system: {style or "all":
    metrics.paired_difference}}`` (95% paired bootstrap over pieces)."""
    base = evaluation.comparisons[reference]
    out = {}
    for name, by_style in evaluation.comparisons.items():
        if name == reference:
            continue
        rows = {}
        for style in [s for s in by_style if s in base] + ["all"]:
            mine = by_style[style] if style != "all" else [
                c for s in by_style if s in base for c in by_style[s]]
            theirs = base[style] if style != "all" else [
                c for s in by_style if s in base for c in base[s]]
            if not mine:
                continue
            pieces, sums_b = metrics.piece_sums(mine)
            _, sums_a = metrics.piece_sums(theirs)
            rows[style] = metrics.paired_difference(pieces, sums_a, sums_b,
                                                    resamples=resamples, seed=seed)
        out[name] = rows
    return out

