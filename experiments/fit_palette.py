r"""Count the velocities each style's pianists play: the palette ``stylize --palette`` plays on.

    python -m experiments.fit_palette --data_dir=runs/data/heldout_quarter

Every performance of ``--split`` (default train, the pieces the shipped scatter trained on;
never the test split the reports score) is read, and each style's count of each velocity
1..127 is written to ``--out`` (JSON; the default is the shipped palette,
``stylenet_jax.velocity_palette``), with a picture of the palettes (``--picture``). Bad input:
one line on stderr, exit status 2, nothing written.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Mapping, Sequence

import numpy as np
from absl import app, flags

from experiments import evaluate
from stylenet_jax import velocity_palette
from stylenet_jax.flag_parsing import parse_flags

FLAGS = flags.FLAGS


def _define_flags() -> None:
    evaluate.define_performance_flags("counted")
    FLAGS.set_default("split", "train")  # what the scatters learn from; never the test split
    flags.DEFINE_string("out", velocity_palette.DEFAULT_PATH, "JSON file to write (default: "
                        "the shipped palette, stylenet_jax/assets/velocity_palette.json).")
    flags.DEFINE_string("picture", "results/velocity_palette.png", "PNG of the palettes "
                        "(empty: none).")
    flags.DEFINE_bool("progress", True, "Say how many performances were read.")


def summary(counts: np.ndarray) -> str:
    """One line on a palette (int (128,) counts): notes, values played, and the values in its
    middle 90% of notes that are played less than a fifth as often as their neighbours."""
    shares = counts / counts.sum()
    cumulative = np.cumsum(shares)
    lo, hi = int(np.searchsorted(cumulative, 0.05)), int(np.searchsorted(cumulative, 0.95))
    padded = np.pad(shares, 1)  # padded[v + 1] is velocity v's share
    neighbours = (padded[lo:hi + 1] + padded[lo + 2:hi + 3]) / 2
    rare = [v for v, share, around in zip(range(lo, hi + 1), shares[lo:hi + 1], neighbours)
            if share < 0.2 * around]
    return (f"{int(counts.sum())} notes, {int(np.count_nonzero(counts))} values played; "
            f"between {lo} and {hi} (90% of notes), "
            + (f"{len(rare)} all but never played: {', '.join(map(str, rare))}" if rare
               else "none all but never played"))


def plot(path: str, counts: Mapping[str, np.ndarray]) -> None:
    """A bar chart per style of its share of notes at each velocity; writes ``path``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 1.7 * len(counts) + 0.6), dpi=110)
    axes = fig.subplots(len(counts), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (style, c) in zip(axes, counts.items()):
        ax.bar(np.arange(len(c)), 100 * c / c.sum(), width=1.0, color="tab:blue")
        ax.set_ylabel(f"{style}\n% of notes", fontsize=8)
    axes[-1].set_xlabel("velocity")
    axes[-1].set_xlim(0, 128)
    axes[0].set_title("The velocities each style's pianists play", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


def main(argv: Sequence[str]) -> None:
    began = evaluate.start_app(argv)
    log = evaluate.progress_printer(FLAGS.progress)
    try:
        performed, data = evaluate.load_performances()  # the flags defined above
        if not performed:
            raise ValueError("no performances to count")
    except evaluate.BAD_INPUT as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    log(f"read {len(performed)} performances")
    counts = velocity_palette.count((p.style, p.notes.velocity) for p in performed)
    if FLAGS.picture:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.picture)), exist_ok=True)
        plot(FLAGS.picture, counts)
    about = {"data": data, "performances": {s: sum(p.style == s for p in performed)
                                            for s in counts}}
    command = "python -m experiments.fit_palette " + " ".join(sys.argv[1:])
    velocity_palette.save(FLAGS.out, counts, command, about)
    for style, c in counts.items():
        print(f"{style}: {summary(c)}")
    print(f"wrote {os.path.relpath(FLAGS.out)}"
          + (f" and {FLAGS.picture}" if FLAGS.picture else "")
          + f" in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=parse_flags)
