"""Give every piano note of a MIDI file a velocity: a StyleNet style head, a blend, or a baseline.

The library behind ``python -m stylenet_jax.stylize`` (the command line lives there).

``Stylizer`` loads a model (or an ensemble of models, whose velocities it averages) and
predicts (T, 88) velocities for encoded inputs (T, 176) uint8.
Long pieces are predicted in overlapping 200-step windows (the length the model was trained
on), one window every 100 steps, and overlapping predictions are cross-faded with triangular
weights, so there are no borders to hear and memory stays bounded whatever the length.
Windows in which no note sounds are not run, and silences longer than two windows are cut out
of the grid before predicting (which changes no velocity; see ``performed_grid``), so what a
file costs follows its notes, not the silence between them. The network runs through
``model.select_heads`` and ``model.predict``; a blend is the weighted sum of its heads'
velocities. ``perform_file`` writes a file with new piano velocities (only those change),
after the musician's controls (``dynamics.Controls``: contrast, strength, keep_level,
velocity_range), and on request a picture of before and after (``roll_plot``).

Importing this module does not import JAX (``Stylizer`` does, when it is made), so the command
line's ``--help`` and argument errors stay instant.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from stylenet_jax import dynamics, encoding, midi, midi_files, note_selection, smf, tempo
from stylenet_jax.ensemble_plays import member_plays, member_weights
from stylenet_jax.style_choice import StylizeError, baseline_velocities
from stylenet_jax.tempo import DEFAULT_SECONDS_PER_BEAT

DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets",
                             "stylenet.npz")
WINDOW = 200  # steps per window: the training windows' length
HOP = WINDOW // 2
ROWS = 16  # windows per compiled call: fixed, so every file reuses one compilation


class Result(NamedTuple):
    """What happened to one file (printed per file)."""

    notes: int  # how many notes were performed
    changed: int
    velocities: np.ndarray  # int64 (notes,), the performed notes' new velocities
    seconds: float
    warnings: tuple[str, ...] = ()  # repairs made reading the file (midi.Performance.warnings)
    performed: np.ndarray | None = None  # bool: which of the file's piano-range notes (MIDI
    # 21..108 outside channel 10, file order) were performed (``note_selection.choose``)
    left: str = ""  # what was left as it was ("12 non-piano notes left as they were: ...")


def window_weights() -> np.ndarray:
    """float32 (WINDOW,): triangular cross-fade weights, largest mid-window, never 0."""
    i = np.arange(WINDOW, dtype=np.float32) + 0.5
    return np.minimum(i, WINDOW - i) / HOP


@functools.cache
def _blend_heads() -> Callable:
    """Jitted ``(weights (K,) float32, velocities (K, N, T, 88)) -> (N, T, 88)`` weighted sum
    (made on first use, so that importing this module does not import JAX)."""
    import jax

    return jax.jit(lambda weights, velocities: jax.numpy.tensordot(weights, velocities, axes=1))


class Stylizer:
    """A loaded model, ready to predict velocities for any number of files (one compile).

    Attributes: ``path`` (what was loaded), ``members`` (one ``(params, config)`` per model:
    several for an ensemble export, whose velocities are averaged), ``params`` and
    ``config`` (``config.ModelConfig``) of the first, ``styles`` (head names, in head order),
    ``plays`` (per member, the styles it plays: ``ensemble_plays``).
    """

    def __init__(self, path: str | None = None, tree: Any = None):
        """Loads an inference or ensemble export (``checkpoints.export_inference``,
        ``export_ensemble``; default: the shipped model) or, for a folder, a training run's
        best (else newest) checkpoint. A hybrid model (``tree_prior``) also loads the tree
        baseline at ``tree`` (a path, default: the shipped one; or an already loaded
        ``FeatureBaseline``, shared as it is) into ``self.tree`` (else None);
        ``self.tree_problem`` is one line when the export records another tree
        (``tree_pairing``), else None. Raises StylizeError (one line naming the file) for
        anything that is not a usable model."""
        # imported here so that `--help` and argument errors stay instant
        from stylenet_jax import checkpoints
        from stylenet_jax.model import param_problem

        self.path = path or DEFAULT_MODEL
        try:
            models = checkpoints.load_models_at(self.path)
        except checkpoints.CheckpointError as e:
            raise StylizeError(smf.one_line(e)) from None
        for k, (params, config, _) in enumerate(models):
            where = self.path if len(models) == 1 else f"{self.path} (member {k + 1})"
            problem = param_problem(params, config)
            if problem:
                raise StylizeError(f"{where}: {problem}")
            if (config.input_size, config.output_size) != (encoding.INPUT_SIZE,
                                                           encoding.NUM_KEYS):
                raise StylizeError(f"{where}: a model of {config.input_size} inputs and "
                                   f"{config.output_size} outputs; stylize needs "
                                   f"{encoding.INPUT_SIZE} and {encoding.NUM_KEYS}")
        self.members = [(params, config) for params, config, _ in models]
        self.params, self.config = self.members[0]
        self.styles = list(models[0][2])
        try:  # each member's styles (ensemble_plays); every style unless the export chose
            self.plays = member_plays(self.path, len(models), self.styles)
        except ValueError as e:
            raise StylizeError(smf.one_line(e)) from None
        self.tree = None
        self.tree_problem: str | None = None  # set when the tree is not the model's own
        if any(config.tree_prior for _, config in self.members):
            self.tree = load_tree(tree, self.styles)
            self.tree_problem = _tree_problem(self.path, self.tree, tree)
        # (member, heads) -> that member's params of those heads, on device
        self._selected: dict[tuple[int, tuple[int, ...]], Any] = {}

    def tree_priors(self, notes: midi.Notes, ticks_per_beat: int, seconds: np.ndarray,
                    blend: Mapping[str, float], onset: np.ndarray, end: np.ndarray
                    ) -> dict[str, np.ndarray] | None:
        """What ``predict`` needs beside the notes for a hybrid model: {style: uint8 (T, 88)}
        the tree's velocities of ``notes`` (onsets at ``seconds``, float (n,)) in every style
        of ``blend``, on the grid of their ``onset`` and ``end`` steps (int (n,)); None for a
        model without ``tree_prior``."""
        if self.tree is None:
            return None
        from stylenet_jax.tree_prior import tree_grids

        return tree_grids(self.tree, notes, ticks_per_beat, seconds, list(blend), onset, end)

    def predict_windows(self, windows: np.ndarray, blend: Mapping[str, float],
                        seconds_per_beat: float = DEFAULT_SECONDS_PER_BEAT,
                        priors: np.ndarray | None = None) -> np.ndarray:
        """Velocities float32 (ROWS, WINDOW, 88) in [0, 1] of the blend of heads ``blend``
        ({style: weight}) for windows uint8 (ROWS, WINDOW, 176), each read whole (no
        padding) and from a zero state: one compiled call per member, running only the heads
        of the blend's styles that it plays (``self.plays``), the members' blends averaged (a
        style that only some members play is their mean).
        ``seconds_per_beat``: the piece's mean tempo (``tempo``), heard by a member with
        ``tempo_input`` only. ``priors``: float32 (B, ROWS, WINDOW, 88), the
        tree's velocity / 127 of each of the blend's B styles (in head order), read by a
        member with ``tree_prior`` only."""
        from stylenet_jax import model

        names = sorted(blend, key=self.styles.index)
        lengths = np.full((windows.shape[0],), windows.shape[1], np.int32)
        tempos = np.full(lengths.shape, seconds_per_beat, np.float32)
        total = None
        for k, ((params, config), weighted) in enumerate(
                zip(self.members, member_weights(self.plays, dict(blend)))):
            if not weighted:
                continue  # this member plays none of the blend's styles
            own = [b for b, n in enumerate(names) if n in weighted]  # only the heads it plays
            heads = tuple(self.styles.index(names[b]) for b in own)
            weights = np.array([weighted[names[b]] for b in own], np.float32)
            if (k, heads) not in self._selected:
                self._selected[k, heads] = model.select_heads(params, np.array(heads, np.int32))
            own_priors = None
            if config.tree_prior:
                own_priors = priors if len(own) == len(names) else priors[np.array(own)]
            velocities = model.predict(self._selected[k, heads], windows, lengths,
                                       config=model.head_config(config, len(heads)),
                                       seconds_per_beat=tempos, priors=own_priors)
            blended = np.asarray(_blend_heads()(weights, velocities))
            total = blended if total is None else total + blended
        return total / len(self.members)

    def predict(self, inputs: np.ndarray, blend: Mapping[str, float],
                seconds_per_beat: float = DEFAULT_SECONDS_PER_BEAT,
                priors: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Velocities in [0, 1], float32 (T, 88), for encoded inputs uint8 (T, 176) of a piece
        whose mean tempo is ``seconds_per_beat`` (``tempo.piece_seconds_per_beat``).
        ``priors``: {style: uint8 (T, 88)} the tree's velocities of every style of ``blend``
        on the same grid (``tree_priors``), needed when ``self.tree`` is set.

        Windows of WINDOW steps start every HOP steps (from -HOP, silence before the music)
        and are run ROWS at a time (``predict_windows``); overlapping outputs are cross-faded.
        A window in which no note sounds is not run: steps that only such windows cover are 0
        (every sounding cell gets exactly what running every window would give it).
        """
        steps = inputs.shape[0]
        padded = np.zeros((steps + 2 * WINDOW, inputs.shape[1]), np.uint8)
        padded[HOP:HOP + steps] = inputs  # padded row r is step r - HOP
        padded_priors = None
        if self.tree is not None:
            names = sorted(blend, key=self.styles.index)
            if priors is None or any(priors.get(n) is None or priors[n].shape[0] != steps
                                     for n in names):
                raise StylizeError(f"{self.path}: a hybrid model needs the tree's velocities "
                                   f"of {', '.join(names)} for all {steps} steps")
            padded_priors = np.zeros((len(names), steps + 2 * WINDOW, encoding.NUM_KEYS),
                                     np.float32)
            for b, n in enumerate(names):
                padded_priors[b, HOP:HOP + steps] = encoding.velocities_to_target(priors[n])
        sounding = np.concatenate([[0], np.cumsum(padded.any(axis=1))])
        starts = np.arange(-HOP, steps, HOP)
        starts = starts[sounding[starts + HOP + WINDOW] > sounding[starts + HOP]]
        fade = window_weights()
        total = np.zeros((steps + 2 * WINDOW, encoding.NUM_KEYS), np.float32)
        norm = np.zeros((steps + 2 * WINDOW, 1), np.float32)
        for first in range(0, len(starts), ROWS):
            rows = starts[first:first + ROWS] + HOP
            batch = np.zeros((ROWS, WINDOW, inputs.shape[1]), np.uint8)
            batch_priors = (None if padded_priors is None else
                            np.zeros((len(padded_priors), ROWS, WINDOW, encoding.NUM_KEYS),
                                     np.float32))
            for r, start in enumerate(rows):
                batch[r] = padded[start:start + WINDOW]
                if batch_priors is not None:
                    batch_priors[:, r] = padded_priors[:, start:start + WINDOW]
            out = self.predict_windows(batch, blend, seconds_per_beat, batch_priors)
            for r, start in enumerate(rows):
                total[start:start + WINDOW] += out[r] * fade[:, None]
                norm[start:start + WINDOW] += fade[:, None]
        return (total[HOP:HOP + steps] / np.maximum(norm[HOP:HOP + steps], 1e-6)).astype(
            np.float32)


def performed_grid(notes: midi.Notes, ticks_per_beat: int) -> tuple[np.ndarray, np.ndarray]:
    """Onset and end steps (int64 (n,)) of ``notes`` on the grid the model reads: the 1/16 grid
    (``encoding.quantize``) with long silences cut out.

    The grid is cut in blocks of HOP steps, the stride of the prediction windows; a window
    covers two neighbouring blocks. Every block two or more blocks away from any block with an
    onset is removed. The windows that hold an onset see exactly what they would see on the
    whole grid (their blocks are all kept, and whole blocks keep the windows' alignment), and
    the other windows change no velocity (velocities are read at onsets only). So performing
    on this grid gives every note the velocity the whole grid would, at a cost that follows
    the notes: two notes ten hours apart make a grid of a few hundred steps.
    """
    onset, end = encoding.quantize(notes, ticks_per_beat)
    if not len(onset):
        return onset, end
    blocks = onset // HOP
    kept = np.unique(np.concatenate([blocks - 1, blocks, blocks + 1]))
    kept = kept[kept >= 0]

    def kept_steps_before(step: np.ndarray) -> np.ndarray:
        block = step // HOP
        index = np.searchsorted(kept, block)  # kept blocks before this step's block
        inside = kept[np.minimum(index, len(kept) - 1)] == block
        return index * HOP + np.where(inside, step - block * HOP, 0)

    return kept_steps_before(onset), kept_steps_before(end)


def load_tree(path: Any, styles: Sequence[str] = ()) -> Any:
    """The tree baseline (``feature_baseline.FeatureBaseline``) at ``path`` (default: the
    shipped one; a ``FeatureBaseline`` is taken as it is), which must know every one of
    ``styles``. Raises StylizeError (one line) for a bad model or a missing style."""
    from stylenet_jax import feature_baseline

    if isinstance(path, feature_baseline.FeatureBaseline):
        model, path = path, "the given tree baseline"
    else:
        path = path or feature_baseline.DEFAULT_PATH
        try:
            model = feature_baseline.FeatureBaseline.load(path)
        except feature_baseline.FeatureBaselineError as e:
            raise StylizeError(smf.one_line(e)) from None
    missing = sorted(set(styles) - set(model.styles))
    if missing:
        raise StylizeError(f"{path}: the tree baseline has no {', '.join(missing)}, which the "
                           f"hybrid model's heads read")
    return model


def _tree_problem(model_path: str, tree: Any, given: Any) -> str | None:
    """``tree_pairing.pairing_problem`` of the model at ``model_path`` played with ``tree``,
    loaded from ``given`` (a path, None for the shipped tree, or the tree itself)."""
    from stylenet_jax import feature_baseline, tree_pairing

    try:
        record = tree_pairing.recorded_tree(model_path)
    except tree_pairing.PairingError as e:
        raise StylizeError(smf.one_line(e)) from None
    name = (f"the shipped {os.path.relpath(feature_baseline.DEFAULT_PATH)}" if given is None
            else given if isinstance(given, str) else "")
    return tree_pairing.pairing_problem(record, tree, name)


def load_features(path: str | None, style: str | None) -> tuple[Any, str]:
    """``(feature_baseline.FeatureBaseline, style)`` for ``baseline="features"``: the tree model
    at ``path`` (default: the shipped one) and one of its styles (no blends). Raises
    StylizeError (one line) for a bad model or style."""
    model = load_tree(path)
    style = (style or "").strip()
    if style not in model.styles:
        raise StylizeError(f"--baseline features needs --style: one of {', '.join(model.styles)} "
                           f"(no blends), got {style!r}")
    return model, style


def perform_file(source: str, target: str, *, stylizer: Stylizer | None = None,
                 blend: Mapping[str, float] | None = None, baseline: str | None = None,
                 seed: int = 0, velocity: int = 64, features: tuple[Any, str] | None = None,
                 scatter: tuple[Any, float] | None = None, palette: Any = None,
                 controls: dynamics.Controls | None = None, make_parents: bool = False,
                 tracks: Sequence[int] | None = None, channels: Sequence[int] | None = None,
                 plot: str | None = None, plot_title: str = "") -> Result:
    """Writes ``source`` with new piano velocities to ``target`` (atomically).

    Uses the stylizer's blend of style heads, or a ``baseline``; ``baseline="features"`` takes
    ``features``, a (feature_baseline.FeatureBaseline, style) pair (``load_features``).
    ``scatter``, a (scatter, amount) pair (``humanize.for_blend``'s answer: Gaussian or
    learned), then adds amount times a draw of that scatter (``humanize.draw``,
    ``numpy.random.default_rng(seed)``) and plays the draw on ``palette``
    (``velocity_palette.Palette.play``, the same generator; None: as drawn). The ``controls``
    (default: none) then act on those velocities and the file's own, in their fixed order
    (``dynamics.Controls.apply``). Raises StylizeError or smf.MidiError (one line
    naming the file) without writing anything. A file whose notes span more than
    ``encoding.MAX_STEPS`` steps, long silences left out (``performed_grid``), is refused,
    whatever the mode. ``make_parents`` creates the target's missing folders, only once there
    is something to write.

    Which notes are performed is ``note_selection.choose``: the piano-family programs of a file
    that names its programs (else every note), or exactly ``tracks`` (counted from 0) and/or
    ``channels`` (counted from 0 here; 1..16 on the command line). The model reads only the
    chosen notes (the others are not on its input grid) and only their velocities change; a
    file in which none is chosen is refused.

    ``plot``: also write a PNG there (``roll_plot.plot_performance``: the performed notes'
    piano roll before and after, and velocity over time), titled ``plot_title``, after the
    MIDI file.
    """
    began = time.perf_counter()
    perf = midi.load_performance(source)
    notes = perf.notes.select(encoding.in_piano_range(perf.notes))
    name = smf.shown(source)
    if not len(notes):
        raise StylizeError(f"{name}: no piano notes (MIDI 21..108 outside channel 10)")
    choice = note_selection.choose(perf.midi, notes, tracks, channels)
    if not choice.mask.any():
        raise StylizeError(f"{name}: {choice.note}")
    notes = notes.select(choice.mask)
    onset, end = performed_grid(notes, perf.ticks_per_beat)
    reason = encoding.too_long(int(end.max()), "steps (silences left out)")
    if reason:
        raise StylizeError(f"{name}: {reason}")
    seconds = midi.tick_seconds(perf.midi, notes.start)  # the tree, model and scatter read them
    if baseline == "features":
        model, style = features
        velocities = model.predict(notes, perf.ticks_per_beat, style, seconds)
    elif baseline:
        velocities = baseline_velocities(baseline, len(notes), seed=seed, velocity=velocity)
    else:
        inputs = encoding.encode_steps(onset, end, notes.pitch, notes.velocity).inputs
        tempo_now = tempo.piece_seconds_per_beat(notes, perf.ticks_per_beat, seconds)
        priors = stylizer.tree_priors(notes, perf.ticks_per_beat, seconds, blend, onset, end)
        predicted = stylizer.predict(inputs, blend, tempo_now, priors)
        velocities = encoding.velocities_at(predicted, onset, notes.pitch)
    if scatter is not None:
        from stylenet_jax import humanize  # scipy only when a scatter is asked for

        rng = np.random.default_rng(seed)
        velocities = humanize.draw(scatter[0], velocities, notes, perf.ticks_per_beat, seconds,
                                   scatter[1], rng)
        if palette is not None:
            velocities = palette.play(velocities, rng)
    if controls is not None:
        velocities = controls.apply(velocities, notes.velocity)
    midi_files.save_atomically(midi.with_velocities(perf.midi, notes, velocities), target,
                               make_parents=make_parents)
    if plot:
        from stylenet_jax import roll_plot  # matplotlib only when a picture is asked for

        seconds = midi.tick_seconds(perf.midi, np.concatenate([notes.start, notes.end]))
        roll_plot.plot_performance(plot, seconds[:len(notes)], seconds[len(notes):],
                                   notes.pitch, notes.velocity, velocities,
                                   plot_title or smf.shown(source))
    changed = int((velocities != notes.velocity).sum())
    return Result(len(notes), changed, velocities, time.perf_counter() - began, perf.warnings,
                  choice.mask, choice.note)


def describe(path: str, result: Result, label: str) -> str:
    """One line per file: notes changed (and any left as they were, ``note_selection``),
    velocity min/mean/max of the performed notes, any outliers worth a listen ("3 notes at
    104-121 (spikes?)", ``dynamics.spike_note``), style, seconds."""
    v = result.velocities
    spikes = dynamics.spike_note(v)
    left = f" ({result.left})" if result.left else ""
    return (f"{smf.shown(path)}: {result.changed}/{result.notes} notes changed{left}, velocity "
            f"min {v.min()} mean {v.mean():.1f} max {v.max()}{', ' + spikes if spikes else ''}, "
            f"{label}, {result.seconds:.2f} s")
