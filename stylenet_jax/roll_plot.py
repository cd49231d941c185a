"""The picture of one performed file (``stylize --plot``): a piano roll coloured by velocity
before and after, and each note's velocity over time with its moving average.

matplotlib's object API with the Agg canvas (no pyplot, no GUI), imported only when a
picture is asked for.
"""

from __future__ import annotations

import numpy as np

from stylenet_jax.atomic_write import write_atomically
from stylenet_jax.evaluation_plots import moving_average

COLOUR_MAP = "magma"  # dark = soft, bright = loud; readable in grey and by colour-blind eyes
BEFORE_COLOUR = "0.55"
AFTER_COLOUR = "tab:red"
AVERAGE_SECONDS = 2.0


def _roll(ax, start: np.ndarray, end: np.ndarray, pitch: np.ndarray, velocity: np.ndarray,
          cmap, norm) -> None:
    """One bar per note at its pitch from start to end (seconds), filled by its velocity."""
    from matplotlib.collections import PolyCollection

    length = np.maximum(end - start, 0.03)  # a very short note stays visible
    low, high = pitch - 0.42, pitch + 0.42
    boxes = np.stack([np.stack([start, low], -1), np.stack([start + length, low], -1),
                      np.stack([start + length, high], -1), np.stack([start, high], -1)], 1)
    ax.add_collection(PolyCollection(boxes, facecolors=cmap(norm(velocity)), edgecolors="none"))
    ax.set_facecolor("0.93")
    ax.set_ylim(pitch.min() - 2, pitch.max() + 2)
    ax.set_ylabel("MIDI pitch")


def plot_performance(path: str, start: np.ndarray, end: np.ndarray, pitch: np.ndarray,
                     before: np.ndarray, after: np.ndarray, title: str) -> str:
    """Writes a PNG to ``path`` (atomically) and returns ``path``.

    ``start``, ``end``: float (n,) seconds of each performed note, sorted by start; ``pitch``
    int (n,) MIDI 21..108; ``before``, ``after``: int (n,) velocities 1..127 as read and as
    written. Three panels share the time axis: the roll before, the roll after (one colour
    scale, 1..127), and velocity over time (dots per note, lines: 2-second moving averages).
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
    pitch = np.asarray(pitch, np.float64)
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    if not len(start):
        raise ValueError("no notes to plot")
    cmap, norm = colormaps[COLOUR_MAP], Normalize(1, 127)
    duration = max(float(end.max()), float(start.max()) + 0.5)
    figure = Figure(figsize=(min(8 + duration / 15, 24), 8.5), dpi=100,
                    layout="constrained")
    axes = figure.subplots(3, 1, sharex=True, height_ratios=(3, 3, 2))
    for ax, velocity, name in ((axes[0], before, "before"), (axes[1], after, "after")):
        _roll(ax, start, end, pitch, velocity, cmap, norm)
        ax.set_title(f"{name}: velocities {int(velocity.min())}-{int(velocity.max())}, "
                     f"mean {velocity.mean():.0f}, sd {velocity.std():.1f}", loc="left",
                     fontsize=10)
    figure.colorbar(ScalarMappable(norm, cmap), ax=axes[:2], label="velocity", shrink=0.9)
    ax = axes[2]
    for velocity, colour, name in ((before, BEFORE_COLOUR, "before"),
                                   (after, AFTER_COLOUR, "after")):
        ax.scatter(start, velocity, s=7, color=colour, alpha=0.5, linewidths=0)
        ax.plot(start, moving_average(start, velocity, AVERAGE_SECONDS), color=colour, lw=1.8,
                label=f"{name} ({AVERAGE_SECONDS:g} s average)")
    ax.set_ylim(0, 128)
    ax.set_ylabel("velocity")
    ax.set_xlabel("seconds")
    ax.set_xlim(0, duration)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    figure.suptitle(title, fontsize=11)
    return write_atomically(path, lambda f: figure.savefig(f, format="png"))
