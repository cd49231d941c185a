"""The velocities a style's instrument plays, and a system's velocities played on them.

The corpus's jazz and pop pianists played a digital piano, whose velocity curve never sends
some values (53, 62, 66, 70, 73, 77, ...) and sends others (25, 27, 29, 32, 36, 40, ...) about
twice as often as their neighbours. A system that adds a smooth scatter uses every value, so
its excerpts hold more distinct velocities than the pianist's: the trees judge's first tell in
pop and jazz (``experiments.judges``). A *palette* is a style's count of each velocity 1..127
over its training performances. ``play`` moves each velocity by a quantile map from the
palette smoothed over neighbouring velocities (``SMOOTHING_SD``) to the palette itself: a
value the instrument never sends is never written, one it sends twice as often as its
neighbours takes twice their share, and velocities move by a step or two where the palette is
lumpy and rarely where it is smooth (classical's moves a tenth of its notes by one).
``experiments.fit_palette``
fits the shipped one (``DEFAULT_PATH``); ``stylize --humanize --palette`` plays its draw on
it.

Pure numpy; a draw depends only on the explicit ``numpy.random.Generator`` it is given.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Iterable, Mapping

import numpy as np

from stylenet_jax.atomic_write import write_text_atomically

FORMAT = "stylenet-velocity-palette"
VERSION = 1
DEFAULT_PATH = os.path.join(os.path.dirname(__file__), "assets", "velocity_palette.json")
SMOOTHING_SD = 2.0  # velocities: the Gaussian over which the palette's lumps are evened out
VELOCITIES = 128  # counts are indexed by velocity 0..127; 0 (a note-off) is never counted


class PaletteError(ValueError):
    """A missing or malformed palette file, or a style it has no palette for (one line)."""


def _smoothing_matrix() -> np.ndarray:
    """float64 (128, 128): row k weighs velocities 1..127 by a Gaussian of ``SMOOTHING_SD``
    around k, each row summing to 1 (row 0 all 0), so a flat palette stays flat."""
    k = np.arange(1, VELOCITIES)
    weights = np.exp(-0.5 * ((k[:, None] - k[None, :]) / SMOOTHING_SD) ** 2)
    matrix = np.zeros((VELOCITIES, VELOCITIES))
    matrix[1:, 1:] = weights / weights.sum(axis=1, keepdims=True)
    return matrix


@dataclasses.dataclass(frozen=True)
class Palette:
    """Counts float64 (128,) of each velocity (index 0 always 0) of one style, or a blend's
    weighted mix of styles' shares."""

    counts: np.ndarray

    def __post_init__(self) -> None:
        counts = np.asarray(self.counts, np.float64)
        if counts.shape != (VELOCITIES,) or not np.all(np.isfinite(counts)) \
                or np.any(counts < 0) or counts[0] != 0 or counts.sum() <= 0:
            raise PaletteError(f"a palette is {VELOCITIES} non-negative counts, the first 0 "
                               "and at least one other above 0")
        object.__setattr__(self, "counts", counts)

    def quantile_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``play``'s map as float64 tables: ``below`` (129,), the smoothed palette's mass under
        each velocity k - 1/2 (k = 0..128); ``smoothed`` (128,), its mass at each velocity; and
        ``cumulative`` (128,), the palette's own mass at or under each velocity. A velocity k
        at uniform u is written as the first velocity whose ``cumulative`` reaches
        ``below[k] + u * smoothed[k]``."""
        shares = self.counts / self.counts.sum()
        smoothed = _smoothing_matrix() @ shares  # each velocity: its neighbours' mean share
        smoothed /= smoothed.sum()
        return np.concatenate([[0.0], np.cumsum(smoothed)]), smoothed, np.cumsum(shares)

    def play(self, velocities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """int64 (n,) in 1..127: ``velocities`` (integer (n,), 1..127) played on this palette.
        Each velocity k becomes a point drawn uniformly in (k - 1/2, k + 1/2), whose place in
        the smoothed palette's distribution is read off the palette's own (a quantile map,
        ``quantile_tables``). Draws n uniforms from ``rng``."""
        velocities = np.clip(np.asarray(velocities, np.int64), 1, VELOCITIES - 1)
        below, smoothed, cumulative = self.quantile_tables()
        within = rng.uniform(0.0, 1.0, velocities.shape)
        quantile = below[velocities] + within * smoothed[velocities]
        played = np.searchsorted(cumulative, np.clip(quantile, 1e-12, 1.0 - 1e-12))
        return np.clip(played, 1, VELOCITIES - 1).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class Palettes:
    """{style: Palette} and ``about`` (what they were counted on)."""

    styles: Mapping[str, Palette]
    about: Mapping

    def for_blend(self, blend: Mapping[str, float]) -> Palette:
        """The palette of a blend of styles ({style: weight}): each style's shares, weighted.
        PaletteError for a style with no palette."""
        check_styles(self.styles, [s for s, w in blend.items() if w])
        mixed = sum(w * self.styles[s].counts / self.styles[s].counts.sum()
                    for s, w in blend.items() if w)
        return Palette(mixed)


def check_styles(palettes: Mapping[str, Palette], styles: Iterable[str]) -> None:
    """PaletteError (one line) naming each of ``styles`` that ``palettes`` has no palette for."""
    missing = sorted(s for s in styles if s not in palettes)
    if missing:
        raise PaletteError(f"no velocity palette for {', '.join(missing)} (it has "
                           f"{', '.join(sorted(palettes))})")


def count(styles_and_velocities: Iterable[tuple[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """{style: int64 (128,) count of each velocity 1..127} over (style, velocities integer
    (n,)) pairs, e.g. one per performance; velocities outside 1..127 are not counted."""
    counts: dict[str, np.ndarray] = {}
    for style, velocities in styles_and_velocities:
        v = np.asarray(velocities, np.int64)
        v = v[(v >= 1) & (v < VELOCITIES)]
        counts[style] = counts.get(style, np.zeros(VELOCITIES, np.int64)) \
            + np.bincount(v, minlength=VELOCITIES)
    return counts


def save(path: str, counts: Mapping[str, np.ndarray], made_by: str, about: Mapping) -> None:
    """Writes the per-style counts as JSON (atomically), with the command that made them
    and ``about``."""
    head = json.dumps({"format": FORMAT, "version": VERSION, "made_by": made_by,
                       "about": dict(about)}, indent=1)
    styles = ",\n".join(f"  {json.dumps(s)}: {json.dumps([int(c) for c in v])}"
                         for s, v in counts.items())  # a style a line
    write_text_atomically(path, head[:-2] + ',\n "styles": {\n' + styles + "\n }\n}\n")


def load(path: str | None = None) -> Palettes:
    """The palettes ``save`` wrote at ``path`` (default ``DEFAULT_PATH``); PaletteError (one
    line) for a missing or malformed file."""
    path = path or DEFAULT_PATH
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PaletteError(f"{path}: not a readable velocity palette ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT \
            or data.get("version") != VERSION or not isinstance(data.get("styles"), dict) \
            or not data["styles"]:
        raise PaletteError(f"{path}: not a {FORMAT} file of version {VERSION}")
    try:
        styles = {s: Palette(np.asarray(v, np.float64)) for s, v in data["styles"].items()}
    except (PaletteError, TypeError, ValueError) as e:
        raise PaletteError(f"{path}: a style's palette is malformed ({e})") from None
    return Palettes(styles, data.get("about", {}))
