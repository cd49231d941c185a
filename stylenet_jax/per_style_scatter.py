"""One learned scatter per style (``stylize --humanize_scatter per_style``).

The shipped learned scatter is one network for every style, trained against one classifier
that judges the three styles together. The same recipe trained on one style alone, against a
judge of that style, is caught less often by judges of that style (README, "A scatter per
style"). A per-style scatter file is a JSON file that names one learned scatter (.npz,
``stylenet_jax.learned_scatter``) per style, each path relative to the JSON file's folder:

    {"format": "stylenet-scatter-per-style", "version": 1,
     "styles": {"classical": "scatter_classical.npz", "jazz": "scatter_jazz.npz", ...}}

A performance of one style draws from that style's network exactly as its .npz alone would
(the same velocities from the same generator). A blend of styles draws from each of its
styles' networks, one after the other in the blend's order, and adds their displacements
weighted by the blend.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from stylenet_jax import dynamics, learned_scatter
from stylenet_jax.humanize import PER_STYLE_FORMAT, HumanizeError, require_styles
from stylenet_jax.learned_scatter import LearnedScatter

if TYPE_CHECKING:
    from stylenet_jax.notes import Notes

FORMAT = PER_STYLE_FORMAT
VERSION = 1


@dataclasses.dataclass(frozen=True)
class PerStyleScatter:
    """``scatters``: {style: the learned scatter drawn for it}; ``about``: {style: what its
    network was trained on}; ``chosen``: ((a style's network set to that style, weight), ...)
    for the blend ``for_blend`` was given (None until then)."""

    scatters: Mapping[str, LearnedScatter]
    about: Mapping[str, Any]
    chosen: tuple[tuple[LearnedScatter, float], ...] | None = None

    @property
    def styles(self) -> tuple[str, ...]:
        return tuple(self.scatters)

    def for_blend(self, blend: Mapping[str, float]) -> "PerStyleScatter":
        """This scatter for a blend of styles ({style: weight}); HumanizeError for a style it
        has no network for."""
        require_styles(blend, self.styles, "the per-style scatter")
        return dataclasses.replace(self, chosen=tuple(
            (self.scatters[s].for_blend({s: 1.0}), float(w)) for s, w in blend.items() if w))

    def humanize(self, velocities: np.ndarray, notes: "Notes", ticks_per_beat: int,
                 seconds: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
        """int64 (n,): ``velocities`` (integer (n,), one per note of ``notes``, onsets at
        ``seconds``) plus ``amount`` times the blend's weighted displacements, rounded (halves
        up) and clipped to 1..127. Amount 0 returns them unchanged and draws nothing."""
        velocities = np.asarray(velocities, np.int64)
        if amount == 0 or not velocities.size:
            return velocities.copy()
        if self.chosen is None:
            raise ValueError("choose the style first: PerStyleScatter.for_blend")
        moved = sum(weight * network.displacement(velocities, notes, ticks_per_beat, seconds,
                                                  rng) for network, weight in self.chosen)
        return np.clip(dynamics.round_half_up(velocities + amount * moved), 1, 127)


def from_file(path: str, data: Mapping) -> PerStyleScatter:
    """The per-style scatter that ``data`` (the JSON object read from ``path``) names.
    HumanizeError (one line) for a wrong version, a missing or unreadable network, or a network
    that does not know the style it is named for."""
    styles = data.get("styles")
    if data.get("version") != VERSION or not isinstance(styles, dict) or not styles \
            or not all(isinstance(v, str) for v in styles.values()):
        raise HumanizeError(f"{path}: not a {FORMAT} file of version {VERSION} (a \"styles\" "
                            "object of style: .npz path)")
    folder = os.path.dirname(os.path.abspath(path))
    scatters, about = {}, {}
    for style, relative in styles.items():
        network = os.path.join(folder, relative)
        if not os.path.exists(network):
            raise HumanizeError(f"{path}: its {style} scatter {network}: no such file")
        scatter = learned_scatter.load(network)
        if style not in scatter.styles:
            raise HumanizeError(f"{path}: its {style} scatter {network} knows only "
                                f"{', '.join(scatter.styles)}")
        scatters[style], about[style] = scatter, dict(scatter.about)
    return PerStyleScatter(scatters, about)
