"""A musician's controls over a performance's velocities, and the outliers worth a look.

Pure numpy, deterministic (no randomness at all). Every function takes velocities as integer
arrays of shape (n,), one per note in file order, values 1..127, and returns int64 (n,)
values 1..127. "new" is what the model (or a baseline) wrote; "own" is what the input file
had for the same notes. Halves round up (``floor(x + 0.5)``), so results never depend on
numpy's round-half-to-even.

``Controls.apply`` runs the four controls in one fixed order:

1. ``contrast`` C >= 0: ``round(m + C * (new - m))``, m the mean of ``new``, clipped to 1..127
   (1, the default, is ``new`` untouched; 1.5 spreads every note 50% further from the
   performance's mean level; 0 plays every note at that level). A model trained to the least
   squared error plays its uncertain notes near the mean, so its dynamics are narrower than a
   pianist's (by about its correlation with the pianist, r); C > 1 trades some of its note
   accuracy for the pianist's range (measured in the README, "Wider dynamics").
2. ``strength`` S in [0, 1]: ``round((1 - S) * own + S * new)`` (1, the default, is ``new``
   untouched; 0 is ``own``), so the file's own accents survive in proportion.
3. ``keep_level``: shift every velocity by one whole number, the file's own mean minus the
   performance's mean (rounded), then clip to 1..127: the overall loudness follows the input
   and the shape (every interval between notes) is kept, except where the clip bites.
4. ``velocity_range`` (LO, HI): map the performance's own min..max linearly onto LO..HI
   (the quietest note becomes LO, the loudest HI); a flat performance goes to the middle,
   ``(LO + HI + 1) // 2``.

With every control at its default, ``apply`` returns ``new`` itself (the very same array).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

LOUD = 110  # a note at this velocity or above is reported (the pop head's fortissimo spikes)
SPIKE_STDS = 3.0  # ... and so is one this many standard deviations above the file's mean
SPIKE_MIN_JUMP = 20.0  # ... when it is also this many velocity steps above the mean
MAX_CONTRAST = 4.0  # far past musical use: 1.4-1.5 already gives a pianist's spread


class ControlError(ValueError):
    """A bad control value; the message is one line naming the flag."""


def round_half_up(values: np.ndarray) -> np.ndarray:
    """float (n,) -> int64 (n,): nearest whole number, halves up."""
    return np.floor(np.asarray(values, np.float64) + 0.5).astype(np.int64)


def blend_with_own(new: np.ndarray, own: np.ndarray, strength: float) -> np.ndarray:
    """int64 (n,): ``round((1 - strength) * own + strength * new)``, clipped to 1..127.

    new, own: integer (n,) velocities; strength: a float in [0, 1] (0 gives ``own``, 1 gives
    ``new``, exactly)."""
    mixed = (1.0 - strength) * np.asarray(own, np.float64) + strength * np.asarray(new, np.float64)
    return np.clip(round_half_up(mixed), 1, 127)


def widen(velocities: np.ndarray, contrast: float) -> np.ndarray:
    """int64 (n,): ``round(m + contrast * (velocities - m))`` clipped to 1..127, m the mean of
    ``velocities`` (integer (n,)). The mean stays where it was (to rounding, unless the clip
    bites) and every distance from it is multiplied by ``contrast`` (>= 0). Empty stays empty."""
    v = np.asarray(velocities, np.float64)
    if not v.size:
        return v.astype(np.int64)
    mean = v.mean()
    return np.clip(round_half_up(mean + float(contrast) * (v - mean)), 1, 127)


def keep_level(new: np.ndarray, own: np.ndarray) -> np.ndarray:
    """int64 (n,): ``new`` shifted by ``round(mean(own) - mean(new))``, clipped to 1..127.

    Before the clip the mean is the file's own to within half a velocity step, and every
    interval between two notes is as in ``new``. Empty arrays stay empty."""
    new = np.asarray(new, np.int64)
    if not new.size:
        return new.copy()
    shift = int(round_half_up(np.float64(np.mean(own, dtype=np.float64))
                              - np.mean(new, dtype=np.float64)))
    return np.clip(new + shift, 1, 127)


def map_range(velocities: np.ndarray, low: int, high: int) -> np.ndarray:
    """int64 (n,): ``velocities``' own min..max mapped linearly onto ``low``..``high``
    (min -> low, max -> high exactly, rounded in between); all equal -> ``(low + high + 1)
    // 2``. Needs 1 <= low <= high <= 127."""
    v = np.asarray(velocities, np.float64)
    if not v.size:
        return v.astype(np.int64)
    smallest, largest = v.min(), v.max()
    if smallest == largest:
        return np.full(v.shape, (low + high + 1) // 2, np.int64)
    return round_half_up(low + (v - smallest) * (high - low) / (largest - smallest))


def number_in(value: object, flag: str, high: float, meaning: str,
              error: type[ValueError] = ControlError) -> float:
    """``value`` as a float in 0..``high``; raises ``error`` (one line: "FLAG must be a number
    in 0..HIGH (MEANING), got VALUE") otherwise."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if not (math.isfinite(number) and 0.0 <= number <= high):
        raise error(f"{flag} must be a number in 0..{high:g} ({meaning}), got {value!r}")
    return number


def check_contrast(value: object) -> float:
    """``value`` as a float in 0..MAX_CONTRAST; raises ControlError (one line) otherwise."""
    return number_in(value, "--contrast", MAX_CONTRAST,
                     "1: as the model plays, 1.5: 50% wider dynamics")


def parse_velocity_range(text: str | None) -> tuple[int, int] | None:
    """"LO,HI" -> (LO, HI) with 1 <= LO <= HI <= 127; None or "" -> None (no mapping).
    Raises ControlError (one line) for anything else."""
    if text is None or not text.strip():
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(p.isdigit() and p.isascii() for p in parts):
        raise ControlError(f"--velocity_range must be LO,HI: two whole numbers in 1..127, "
                           f"such as 40,100; got {text!r}")
    low, high = int(parts[0]), int(parts[1])
    for value in (low, high):
        if not 1 <= value <= 127:
            raise ControlError(f"--velocity_range: {value} is outside 1..127")
    if low > high:
        raise ControlError(f"--velocity_range: LO {low} is above HI {high}")
    return low, high


@dataclasses.dataclass(frozen=True)
class Controls:
    """The four controls (see the module's docstring for what each does, and their order).
    Made with bad values it raises ControlError (one line naming the flag)."""

    strength: float = 1.0
    keep_level: bool = False
    velocity_range: tuple[int, int] | None = None
    contrast: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "contrast", check_contrast(self.contrast))
        try:
            strength = float(self.strength)
        except (TypeError, ValueError):
            raise ControlError(f"--strength must be a number in 0..1, got {self.strength!r}") \
                from None
        if not (math.isfinite(strength) and 0.0 <= strength <= 1.0):
            raise ControlError(f"--strength must be a number in 0..1, got {self.strength!r}")
        object.__setattr__(self, "strength", strength)
        object.__setattr__(self, "keep_level", bool(self.keep_level))
        if self.velocity_range is not None:
            try:
                text = ",".join(str(v) for v in self.velocity_range)
            except TypeError:
                text = str(self.velocity_range)
            object.__setattr__(self, "velocity_range", parse_velocity_range(text))

    @classmethod
    def from_flags(cls, strength: float, keep_level: bool, velocity_range: str | None,
                   contrast: float = 1.0) -> "Controls":
        """From the command line's values (``velocity_range`` as text "LO,HI" or None)."""
        return cls(strength, bool(keep_level), parse_velocity_range(velocity_range), contrast)

    @property
    def is_default(self) -> bool:
        """True when ``apply`` changes nothing."""
        return (self.contrast == 1.0 and self.strength == 1.0 and not self.keep_level
                and self.velocity_range is None)

    def _changes(self) -> list[tuple[str, str]]:
        """(label, file-name part) of each control away from its default, in applying order."""
        changes = [(f"contrast {self.contrast:g}", f"contrast{round(self.contrast * 100):d}")
                   ] if self.contrast != 1.0 else []
        changes += [(f"strength {self.strength:g}", f"strength{round(self.strength * 100):d}")
                    ] if self.strength != 1.0 else []
        changes += [("level kept", "keeplevel")] if self.keep_level else []
        if self.velocity_range:
            low, high = self.velocity_range
            changes.append((f"range {low}-{high}", f"range{low}to{high}"))
        return changes

    def label(self) -> str:
        """"" for the defaults, else e.g. ", contrast 1.5, strength 0.5, level kept, range
        40-100"."""
        return "".join(f", {label}" for label, _ in self._changes())

    def file_suffix(self) -> str:
        """"" for the defaults, else what sets the output name apart, e.g.
        "-contrast150-strength50-keeplevel-range40to100"."""
        return "".join(f"-{part}" for _, part in self._changes())

    def apply(self, new: np.ndarray, own: np.ndarray) -> np.ndarray:
        """int64 (n,) velocities 1..127: contrast, strength, keep_level, velocity_range, on
        ``new`` (integer (n,)) with the file's ``own`` (integer (n,)). Returns ``new`` itself
        when every control is at its default."""
        if self.is_default:
            return new
        out = np.asarray(new, np.int64)
        if self.contrast != 1.0:
            out = widen(out, self.contrast)
        if self.strength != 1.0:
            out = blend_with_own(out, own, self.strength)
        if self.keep_level:
            out = keep_level(out, own)
        if self.velocity_range is not None:
            out = map_range(out, *self.velocity_range)
        return out


def spikes(velocities: np.ndarray) -> np.ndarray:
    """bool (n,): the notes worth a listen, at LOUD (110) or above, or more than SPIKE_STDS (3)
    standard deviations and SPIKE_MIN_JUMP (20) steps above the mean of ``velocities``
    (integer (n,))."""
    v = np.asarray(velocities, np.float64)
    if not v.size:
        return np.zeros(0, bool)
    mean, std = v.mean(), v.std()
    return (v >= LOUD) | ((v > mean + SPIKE_STDS * std) & (v >= mean + SPIKE_MIN_JUMP))


def spike_note(velocities: np.ndarray) -> str:
    """"" when there are no ``spikes``, else e.g. "3 notes at 104-121 (spikes?)"."""
    v = np.asarray(velocities)[spikes(velocities)]
    if not v.size:
        return ""
    where = f"{v.min()}" if v.min() == v.max() else f"{v.min()}-{v.max()}"
    return f"{v.size} note{'s' if v.size != 1 else ''} at {where} (spikes?)"
