"""Pictures of an evaluation, the ones a musician would look at (matplotlib ``Figure``, Agg).

* ``plot_over_time``: a passage of a few pieces, each note's velocity against time, the
  pianist's beside each system's, with a moving average that shows the dynamic shape;
* ``plot_scatter``: the system's velocity against the pianist's, note by note, per style;
* ``plot_distributions``: how often each velocity is played, pianist and systems, per style;
* ``plot_realism``: each system's note error against how often the classifier catches it;
* ``plot_grouped_bars``: a horizontal bar per label and series, with error bars (what each
  feature group is worth: ``experiments.tree_features``, ``experiments.classifier_features``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from stylenet_jax.performances import Performed

HUMAN_COLOUR = "black"
# one per system, in order; twelve before they repeat (black is the pianist, grey is chance)
COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown",
           "tab:pink", "tab:olive", "tab:cyan", "navy", "darkgoldenrod", "teal")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI

    return Figure(figsize=(width, height), dpi=110)


def moving_average(seconds: np.ndarray, values: np.ndarray, span: float = 2.0) -> np.ndarray:
    """Mean of ``values`` over notes within +-span/2 seconds of each note; float64 (n,)."""
    seconds = np.asarray(seconds, np.float64)
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(values, np.float64))])
    lo = np.searchsorted(seconds, seconds - span / 2, side="left")
    hi = np.searchsorted(seconds, seconds + span / 2, side="right")
    return (cum[hi] - cum[lo]) / np.maximum(hi - lo, 1)


def plot_over_time(path: str, performed: Sequence[Performed],
                   velocities: Mapping[str, Sequence[np.ndarray]], indices: Sequence[int],
                   seconds: float = 30.0) -> str:
    """One panel per chosen performance (``indices`` into ``performed``): the first
    ``seconds`` of it; dots: each note's velocity; lines: 2-second moving averages."""
    fig = _figure(11, 2.6 * len(indices))
    axes = fig.subplots(len(indices), 1, squeeze=False)[:, 0]
    for ax, i in zip(axes, indices):
        p = performed[i]
        keep = p.seconds <= p.seconds[0] + seconds
        t = p.seconds[keep]
        series = [("pianist", p.notes.velocity[keep], HUMAN_COLOUR)] + [
            (name, np.asarray(v[i])[keep], COLOURS[k % len(COLOURS)])
            for k, (name, v) in enumerate(velocities.items())]
        for name, v, colour in series:
            ax.scatter(t, v, s=4, color=colour, alpha=0.35, linewidths=0)
            ax.plot(t, moving_average(t, v), color=colour, lw=1.6, label=name)
        ax.set_ylim(0, 128)
        ax.set_ylabel("velocity")
        ax.set_title(f"{p.style}: {p.id}", fontsize=9, loc="left")
    axes[0].legend(loc="upper right", fontsize=8, ncol=len(velocities) + 1)
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_scatter(path: str, human: Mapping[str, np.ndarray],
                 predicted: Mapping[str, np.ndarray], system: str) -> str:
    """Per style (keys of ``human``; int arrays of pooled notes): a 2-D histogram of the
    system's velocity against the pianist's, with the diagonal of a perfect performance."""
    styles = list(human)
    fig = _figure(4.2 * len(styles), 4.0)
    axes = fig.subplots(1, len(styles), squeeze=False)[0]
    bins = np.arange(0, 129, 4)
    for ax, style in zip(axes, styles):
        ax.hist2d(human[style], predicted[style], bins=[bins, bins], cmap="magma_r", cmin=1)
        ax.plot([0, 127], [0, 127], color="tab:blue", lw=1, ls="--")
        ax.set_xlabel("pianist's velocity")
        ax.set_ylabel(f"{system}'s velocity")
        ax.set_title(f"{style} ({len(human[style]):,} notes)", fontsize=10)
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_distributions(path: str, human: Mapping[str, np.ndarray],
                       systems: Mapping[str, Mapping[str, np.ndarray]]) -> str:
    """Per style: histograms (as outlines) of the pianist's velocities and each system's
    (``systems[name][style]``, int arrays of pooled notes)."""
    styles = list(human)
    fig = _figure(4.2 * len(styles), 3.4)
    axes = fig.subplots(1, len(styles), squeeze=False)[0]
    bins = np.arange(0.5, 128.5, 2)
    for ax, style in zip(axes, styles):
        density, _, _ = ax.hist(human[style], bins=bins, density=True, color="lightgrey",
                                label="pianist")
        for k, (name, by_style) in enumerate(systems.items()):
            ax.hist(by_style[style], bins=bins, density=True, histtype="step", lw=1.4,
                    color=COLOURS[k % len(COLOURS)], label=name)
        ax.set_ylim(0, 2.5 * float(np.max(density)))  # a constant's spike would flatten the rest
        ax.set_title(style, fontsize=10)
        ax.set_xlabel("velocity")
    axes[0].set_ylabel("share of notes")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def label_offsets(xy: Sequence[tuple[float, float]], near_x: float = 0.04,
                  near_y: float = 0.03) -> list[tuple[int, int]]:
    """Where each point's label goes, in offset points from it: above right, or below right
    when the point lies near one labelled before it above right (within ``near_x`` of the x
    span and ``near_y`` in y), so two close points' labels do not print over each other."""
    xs = [x for x, _ in xy]
    span = (max(xs) - min(xs) if xs else 0.0) or 1.0
    above: list[tuple[float, float]] = []
    offsets = []
    for x, y in xy:
        if any(abs(x - u) < near_x * span and abs(y - v) < near_y for u, v in above):
            offsets.append((5, -11))
        else:
            offsets.append((5, 4))
            above.append((x, y))
    return offsets


def plot_realism(path: str, points: Mapping[str, tuple[float, float, float, float]]) -> str:
    """One labelled point per system, ``points[name] = (MAE, accuracy, lo, hi)``: its MAE
    over all notes (x, velocity units) against how often the identify-the-human classifier
    picks the pianist over it (y, with the 95% interval ``lo``..``hi`` as a bar). Lower left
    is better on both; 0.5 is a system the classifier cannot tell from the pianist."""
    fig = _figure(6.4, 4.4)
    ax = fig.subplots()
    offsets = label_offsets([(mae, accuracy) for mae, accuracy, _, _ in points.values()])
    for k, (name, (mae, accuracy, lo, hi)) in enumerate(points.items()):
        colour = COLOURS[k % len(COLOURS)]
        ax.errorbar([mae], [accuracy], yerr=[[accuracy - lo], [hi - accuracy]], fmt="o",
                    color=colour, capsize=3)
        ax.annotate(name, (mae, accuracy), xytext=offsets[k], textcoords="offset points",
                    fontsize=8, color=colour)
    ax.axhline(0.5, color="grey", lw=1, ls="--")
    ax.text(ax.get_xlim()[0], 0.5, " chance: cannot tell", va="bottom", fontsize=8,
            color="grey")
    ax.set_ylim(min(0.45, ax.get_ylim()[0]), max(1.0, ax.get_ylim()[1]))
    ax.set_xlabel("MAE against the pianist, all notes (velocity units)")
    ax.set_ylabel("classifier picks the pianist (share)")
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_grouped_bars(path: str, labels: Sequence[str],
                      series: Mapping[str, tuple[Sequence[float], np.ndarray]], *,
                      xlabel: str, reference: float = 0.0, reference_style: str = "-",
                      xlim: tuple[float, float] | None = None, width: float = 7.0,
                      row_height: float = 0.35, fontsize: int = 8) -> str:
    """One group of horizontal bars per label (top to bottom in order), one bar per series
    in it (``series[name] = (values, errors)``: values float (L,), errors float (L,) for
    symmetric bars or (2, L) for below and above), a vertical line at ``reference`` (drawn
    ``reference_style``), each label's group ``row_height`` inches tall for one series
    (growing with the square root of their number). Writes ``path``; raises ValueError
    when a series has not one value per label."""
    for name, (values, errors) in series.items():
        if len(values) != len(labels) or np.shape(errors)[-1] != len(labels):
            raise ValueError(f"series {name!r}: {len(values)} values and "
                             f"{np.shape(errors)[-1]} errors for {len(labels)} labels")
    count = max(len(series), 1)
    fig = _figure(width, row_height * len(labels) * count ** 0.5 + 1.2)
    ax = fig.subplots()
    height = 0.8 / count
    for k, (name, (values, errors)) in enumerate(series.items()):
        ax.barh(np.arange(len(labels)) + k * height, values, height, xerr=errors, label=name,
                color=f"C{k}", capsize=2)
    ax.axvline(reference, color="k", lw=0.8, ls=reference_style)
    ax.set_yticks(np.arange(len(labels)) + 0.4 - height / 2, labels, fontsize=fontsize)
    ax.invert_yaxis()
    if xlim is not None:
        ax.set_xlim(*xlim)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=fontsize, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return path
