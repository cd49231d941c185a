"""The second-pianist report's picture: one pair's phrase levels, the pianist's beside another
pianist's and the systems'.

Each curve is a version's level over every phrase (``second_pianist.phrase_levels``: the
phrase's mean velocity minus the version's mean over the pair's shared notes), so overall
loudness is set aside and only the rise and fall over the piece is drawn. The pair
drawn is the one with the most shared notes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from stylenet_jax import error_breakdown, second_pianist
from stylenet_jax.second_pianist import SharedPair, phrase_levels


def plot(path: str, pairs: Sequence[SharedPair], systems: Sequence[str]) -> str | None:
    """Draws the pair with the most shared notes to ``path`` (PNG): the pianist's phrase
    levels, another pianist's and each of ``systems`` that the pairs have, against the
    phrase's first onset in seconds; each legend entry gives the curve's r with the
    pianist's. Returns ``path``, or None (nothing written) without pairs."""
    if not pairs:
        return None
    from matplotlib.figure import Figure

    pair = max(pairs, key=lambda p: len(p.pianist.notes))
    runs = error_breakdown.phrase_runs(pair.pianist)
    onsets = np.asarray(pair.pianist.seconds, np.float64)
    first = np.full(runs.max() + 1, np.inf)
    np.minimum.at(first, runs, onsets)
    pianist = phrase_levels(pair, None)
    fig = Figure(figsize=(9, 3.6), dpi=110)
    ax = fig.subplots()
    ax.plot(first, pianist, color="k", lw=1.6, label="the pianist")
    names = [second_pianist.ANOTHER_PIANIST] + [s for s in systems if s in pair.versions]
    for k, name in enumerate(names):
        levels = phrase_levels(pair, name)
        r = error_breakdown.correlation(pianist, levels)
        ax.plot(first, levels, color=f"C{k}", lw=1.0,
                label=f"{name.replace('_', ' ')} (r {'-' if np.isnan(r) else f'{r:.2f}'})")
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.2 * (high - low))  # room for the legend above the curves
    ax.axhline(0, color="k", lw=0.5, ls=":")
    ax.set_xlabel("seconds (the phrase's first note)")
    ax.set_ylabel("phrase level (velocity units\nfrom the piece's mean)")
    ax.set_title(f"{pair.pianist.piece}: levels of {error_breakdown.PHRASE_NOTES}-note "
                 f"phrases of the {len(pair.pianist.notes):,} shared notes", fontsize=9)
    ax.legend(fontsize=7, loc="upper right", ncol=len(names) + 1)
    fig.tight_layout()
    fig.savefig(path)
    return path
