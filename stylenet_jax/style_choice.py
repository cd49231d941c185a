"""What a user asks ``stylize`` to play, checked: a style or blend of styles, the blend's part of
the output file's name, or one of the paper's baselines.

Every error is a ``StylizeError``: one line naming the problem, which the command line prints
as it is. Pure Python and numpy (no JAX), so argument errors stay instant.
"""

from __future__ import annotations

import decimal
import math
from typing import Mapping, Sequence

import numpy as np

BASELINES = ("random", "constant", "features")


class StylizeError(ValueError):
    """Bad input or arguments; the message is one line naming the problem."""


def parse_blend(spec: str, styles: Sequence[str]) -> dict[str, float]:
    """"jazz" -> {"jazz": 1.0}; "classical=0.7,jazz=0.3" -> weights (must sum to 1)."""
    weights: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in styles:
            raise StylizeError(f"unknown style {name!r}; this model has: {', '.join(styles)}")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise StylizeError(f"--style: weight {weight!r} of {name} is not a number") from None
        if not math.isfinite(value):
            raise StylizeError(f"--style: weight {weight!r} of {name} is not a finite number")
        weights[name] = weights.get(name, 0.0) + value
    if not weights:
        raise StylizeError(f"--style is empty; choose from: {', '.join(styles)}")
    if any(w < 0 for w in weights.values()):
        raise StylizeError("--style: weights must not be negative")
    total = sum(weights.values())
    if abs(total - 1.0) > 1e-6:
        raise StylizeError(f"--style: weights must sum to 1 (they sum to {total:g})")
    return weights


def blend_name(blend: Mapping[str, float], styles: Sequence[str]) -> str:
    """The default output name's part for a blend: "jazz" for one style at weight 1, else
    each style and its weight in percent, in the model's style order, whatever order the user
    typed them in: {"jazz": 0.3, "classical": 0.7} -> "classical70-jazz30". The percent is
    the weight's exact decimal (no rounding), so two different blends never share a name."""
    if len(blend) == 1 and next(iter(blend.values())) == 1.0:
        return next(iter(blend))
    return "-".join(f"{name}{_percent(blend[name])}"
                    for name in sorted(blend, key=list(styles).index))


def _percent(weight: float) -> str:
    """0.7 -> "70", 1/3 -> "33.33333333333333": 100 times the shortest decimal of ``weight``."""
    text = format(decimal.Decimal(repr(float(weight))) * 100, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def baseline_velocities(kind: str, notes: int, *, seed: int = 0, velocity: int = 64) -> np.ndarray:
    """The paper's baselines, int64 (notes,): ``random`` uniform 1..127 (seeded) or one
    ``constant`` velocity."""
    if kind == "random":
        return np.random.default_rng(seed).integers(1, 128, notes).astype(np.int64)
    if kind == "constant":
        if not 1 <= velocity <= 127:
            raise StylizeError("--velocity must be in 1..127")
        return np.full(notes, velocity, np.int64)
    raise StylizeError(f"--baseline must be one of {', '.join(BASELINES)}")
