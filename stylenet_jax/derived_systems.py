"""Systems made from the performances of other systems in the same evaluation.

``MixSystem`` (``experiments.evaluate --mix``): per note, a weighted mean of other systems'
velocities. ``ContrastSystem`` (``--contrast``): another system's velocities widened as
``stylize --contrast`` widens them. ``LevelShapeSystem`` (``--level_shape``): one system's
overall level (or its level in each run of K notes) with another's dynamics within it.
``HumanizeSystem`` (``--humanize``): another system's velocities with a pianist's scatter
added, as ``stylize --humanize`` adds it. ``PaletteSystem`` (``--palette``): another
system's velocities played on its style's velocity palette. ``PerStyleSystem``
(``--per_style``): each performance as the system named for its style plays it. All are
``evaluation.DerivedSystem``s: ``evaluation.evaluate`` scores them after their parts and
hands them the parts' performances of each piece (and the piece, flattened), so no piece is
performed twice.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from stylenet_jax.evaluation import Performance, as_velocities
from stylenet_jax.performances import Performed


@dataclasses.dataclass(frozen=True)
class MixSystem:
    """Per note, a weighted mean of other systems' velocities (rounded, clipped to 1..127): a
    StyleNet and the tree baseline, say. ``parts``: ((system name, weight), ...), weights > 0
    summing to 1 (``parse_mix``); the parts are scored in the same evaluation, and ``evaluate``
    hands their performances of each piece to ``combine`` instead of performing it again."""

    parts: tuple[tuple[str, float], ...]
    name: str

    def combine(self, done: Mapping[str, Performance], performed: Performed) -> Performance:
        total = sum(weight * np.asarray(done[part].velocities, np.float64)
                    for part, weight in self.parts)
        return Performance(as_velocities(total))


def _new_name_and_list(spec: str, flag: str, expected: str, known: Sequence[str]
                       ) -> tuple[str, str]:
    """``NAME=LIST`` -> (NAME, LIST), NAME none of ``known`` and LIST not blank. Raises
    ValueError (one line naming ``flag`` and what was ``expected`` after ``NAME=``)."""
    name, sep, body = spec.partition("=")
    name = name.strip()
    if not sep or not name or not body.strip():
        raise ValueError(f"{flag} {spec!r}: expected NAME={expected}")
    if name in known:
        raise ValueError(f"{flag} {spec!r}: {name!r} is already the name of a system")
    return name, body


def parse_mix(spec: str, known: Sequence[str]) -> MixSystem:
    """``NAME=SYSTEM:WEIGHT,SYSTEM:WEIGHT,...`` -> MixSystem; the systems must be in ``known``
    (scored before it), the weights positive; they are scaled to sum to 1. Raises ValueError
    (one line) for anything else."""
    name, body = _new_name_and_list(spec, "--mix", "SYSTEM:WEIGHT,SYSTEM:WEIGHT", known)
    parts: dict[str, float] = {}
    for item in body.split(","):
        part, sep, weight = item.strip().rpartition(":")
        try:
            value = float(weight)
        except ValueError:
            value = float("nan")
        if not sep or part not in known or not value > 0 or not np.isfinite(value):
            raise ValueError(f"--mix {spec!r}: {item.strip()!r} is not SYSTEM:WEIGHT with a "
                             f"weight > 0 and a system of {', '.join(known)}")
        if part in parts:
            raise ValueError(f"--mix {spec!r}: {part!r} is named twice")
        parts[part] = value
    if len(parts) < 2:
        raise ValueError(f"--mix {spec!r}: a mix needs two or more systems")
    total = sum(parts.values())
    return MixSystem(tuple((part, weight / total) for part, weight in parts.items()), name)


def _name_system_value(spec: str, flag: str, value_name: str, known: Sequence[str]
                       ) -> tuple[str, str, str]:
    """``NAME=SYSTEM:VALUE`` -> (NAME, SYSTEM, VALUE as text), SYSTEM one of ``known`` and NAME
    none of them. Raises ValueError (one line naming ``flag``) otherwise."""
    name, sep, body = spec.partition("=")
    name = name.strip()
    part, colon, value = body.strip().rpartition(":")
    if not sep or not name or not colon or part not in known:
        raise ValueError(f"{flag} {spec!r}: expected NAME=SYSTEM:{value_name} with a system of "
                         f"{', '.join(known)}")
    if name in known:
        raise ValueError(f"{flag} {spec!r}: {name!r} is already the name of a system")
    return name, part, value


@dataclasses.dataclass(frozen=True)
class ContrastSystem:
    """Another system's velocities with every note's distance from that performance's mean
    multiplied by ``contrast`` (``dynamics.widen``: what ``stylize --contrast`` writes). Like a
    ``MixSystem`` it is scored after ``part`` and reuses its performance of each piece."""

    part: str
    contrast: float
    name: str

    def combine(self, done: Mapping[str, Performance], performed: Performed) -> Performance:
        from stylenet_jax import dynamics

        return Performance(dynamics.widen(done[self.part].velocities, self.contrast))


def parse_contrast(spec: str, known: Sequence[str]) -> ContrastSystem:
    """``NAME=SYSTEM:C`` -> ContrastSystem; SYSTEM must be in ``known`` (scored before it) and
    C in 0..dynamics.MAX_CONTRAST. Raises ValueError (one line) for anything else."""
    from stylenet_jax import dynamics

    name, part, value = _name_system_value(spec, "--contrast", "C", known)
    try:
        contrast = dynamics.check_contrast(value)
    except dynamics.ControlError as e:
        raise ValueError(f"{spec!r}: {e}") from None
    return ContrastSystem(part, contrast, name)


@dataclasses.dataclass(frozen=True)
class LevelShapeSystem:
    """Each note's velocity from ``shape`` moved so that the performance's mean is ``level``'s:
    ``shape_v - mean(shape_v) + mean(level_v)`` (rounded, clipped to 1..127). It tells how much
    of a system's note error is its overall level (``error_breakdown``): the tree's level with a
    network's shape, say. With ``run_notes`` K the same is done in every run of K consecutive
    notes (``error_breakdown.phrase_runs``) instead of the whole performance: ``level``'s
    phrase levels, ``shape``'s dynamics within each phrase. Scored after both parts, reusing
    their performances."""

    level: str
    shape: str
    name: str
    run_notes: int | None = None

    def combine(self, done: Mapping[str, Performance], performed: Performed) -> Performance:
        from stylenet_jax import error_breakdown

        shape = np.asarray(done[self.shape].velocities, np.float64)
        level = np.asarray(done[self.level].velocities, np.float64)
        if self.run_notes is None:
            return Performance(as_velocities(shape - shape.mean() + level.mean()))
        runs = error_breakdown.phrase_runs(performed, self.run_notes)
        moved = (shape - error_breakdown.run_means(shape, runs)[runs]
                 + error_breakdown.run_means(level, runs)[runs])
        return Performance(as_velocities(moved))


def parse_level_shape(spec: str, known: Sequence[str]) -> LevelShapeSystem:
    """``NAME=LEVEL_SYSTEM:SHAPE_SYSTEM[:K]`` -> LevelShapeSystem (K: ``run_notes``, a whole
    number >= 1); both systems must be in ``known`` (scored before it) and differ. Raises
    ValueError (one line) for anything else."""
    name, sep, body = spec.partition("=")
    name = name.strip()
    fields = [field.strip() for field in body.split(":")]
    level, shape = (fields + ["", ""])[:2]
    run_notes = None
    if len(fields) == 3 and fields[2].isdigit() and int(fields[2]) >= 1:
        run_notes = int(fields[2])
    if (not sep or not name or len(fields) not in (2, 3) or level not in known
            or shape not in known or (len(fields) == 3 and run_notes is None)):
        raise ValueError(f"--level_shape {spec!r}: expected NAME=LEVEL_SYSTEM:SHAPE_SYSTEM[:K] "
                         f"with systems of {', '.join(known)} and K a whole number of notes "
                         ">= 1")
    if name in known:
        raise ValueError(f"--level_shape {spec!r}: {name!r} is already the name of a system")
    if level == shape:
        raise ValueError(f"--level_shape {spec!r}: the level and the shape are one system")
    return LevelShapeSystem(level, shape, name, run_notes)


@dataclasses.dataclass(frozen=True)
class HumanizeSystem:
    """Another system's velocities plus ``amount`` times a draw of the piece's style's scatter
    (``humanize.humanize``: what ``stylize --humanize`` adds), the draw seeded by ``seed`` and
    the performance's id, so a report is reproducible. Scored after ``part``."""

    part: str
    amount: float
    scatters: Any  # humanize.load's answer: {style: Scatter} or a LearnedScatter
    name: str
    seed: int = 0

    def combine(self, done: Mapping[str, Performance], performed: Performed) -> Performance:
        from stylenet_jax import humanize

        scatter = humanize.for_blend(self.scatters, {performed.style: 1.0})
        rng = np.random.default_rng([self.seed, *performed.id.encode()])
        return Performance(humanize.draw(scatter, done[self.part].velocities, performed.notes,
                                         performed.ticks_per_beat, performed.seconds,
                                         self.amount, rng))


def parse_humanize(spec: str, known: Sequence[str], scatters: Any,
                   seed: int = 0) -> HumanizeSystem:
    """``NAME=SYSTEM:AMOUNT`` -> HumanizeSystem; SYSTEM must be in ``known`` (scored before
    it), AMOUNT in 0..humanize.MAX_AMOUNT; ``scatters``: ``humanize.load``'s answer.
    Raises ValueError (one line) for anything else."""
    from stylenet_jax import humanize

    name, part, value = _name_system_value(spec, "--humanize", "AMOUNT", known)
    try:
        amount = humanize.check_amount(value)
    except humanize.HumanizeError as e:
        raise ValueError(f"{spec!r}: {e}") from None
    return HumanizeSystem(part, amount, dict(scatters) if isinstance(scatters, Mapping)
                          else scatters, name, seed)


_PALETTE_STREAM = 256  # not a byte: a palette's draw never repeats a humanize draw's stream


@dataclasses.dataclass(frozen=True)
class PaletteSystem:
    """Another system's velocities played on the piece's style's velocity palette
    (``velocity_palette.Palette.play``: what ``stylize --humanize --palette`` does after its
    draw), the draw seeded by ``seed`` and the performance's id. Scored after ``part``."""

    part: str
    palettes: Any  # velocity_palette.Palettes
    name: str
    seed: int = 0

    def combine(self, done: Mapping[str, Performance], performed: Performed) -> Performance:
        palette = self.palettes.for_blend({performed.style: 1.0})
        rng = np.random.default_rng([self.seed, *performed.id.encode(), _PALETTE_STREAM])
        return Performance(palette.play(done[self.part].velocities, rng))


def parse_palette(spec: str, known: Sequence[str], palettes: Any,
                  seed: int = 0) -> PaletteSystem:
    """``NAME=SYSTEM`` -> PaletteSystem; SYSTEM must be in ``known`` (scored before it);
    ``palettes``: ``velocity_palette.load``'s answer. Raises ValueError (one line) for
    anything else."""
    name, body = _new_name_and_list(spec, "--palette", "SYSTEM", known)
    if body.strip() not in known:
        raise ValueError(f"--palette {spec!r}: expected NAME=SYSTEM with a system of "
                         f"{', '.join(known)}")
    return PaletteSystem(body.strip(), palettes, name, seed)


@dataclasses.dataclass(frozen=True)
class PerStyleSystem:
    """Each performance as the system named for its style plays it: ``choices`` ((style,
    system name), ...). It scores settings chosen per style as one system, the way a musician
    uses ``stylize`` (one style a file): ``--contrast`` 1.4 for classical and 1.5 for jazz,
    say. Scored after every part, reusing their performances; it plays only the styles it
    names (``styles``, which ``evaluation.check_styles`` reads)."""

    choices: tuple[tuple[str, str], ...]
    name: str

    @property
    def styles(self) -> list[str]:
        return [style for style, _ in self.choices]

    def combine(self, done: Mapping[str, Performance], performed: Performed) -> Performance:
        return done[dict(self.choices)[performed.style]]


def parse_per_style(spec: str, known: Sequence[str]) -> PerStyleSystem:
    """``NAME=STYLE:SYSTEM,STYLE:SYSTEM,...`` -> PerStyleSystem; every SYSTEM must be in
    ``known`` (scored before it), each STYLE named once. Raises ValueError (one line) for
    anything else."""
    name, body = _new_name_and_list(spec, "--per_style", "STYLE:SYSTEM,STYLE:SYSTEM", known)
    choices: dict[str, str] = {}
    for item in body.split(","):
        style, colon, system = (text.strip() for text in item.partition(":"))
        if not colon or not style or system not in known:
            raise ValueError(f"--per_style {spec!r}: {item.strip()!r} is not STYLE:SYSTEM with "
                             f"a system of {', '.join(known)}")
        if style in choices:
            raise ValueError(f"--per_style {spec!r}: style {style!r} is named twice")
        choices[style] = system
    return PerStyleSystem(tuple(choices.items()), name)
