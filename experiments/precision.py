r"""How much do bfloat16 matmuls change a trained model's velocities?

    python -m experiments.precision --data_dir=DATASET
    python -m experiments.precision --data_dir=DATASET --model=RUN/inference.npz --out=FILE.md
    python -m experiments.precision --data_dir=DATASET --tree_prior_dir=PRIORS  # a hybrid

Runs a model's validation split (a dataset built by ``python -m data_prep.build``) twice, with
``matmul_dtype="float32"`` and ``"bfloat16"`` (every matmul's inputs rounded to bf16, fp32
accumulation; see ``stylenet_jax.lstm.matmul``), each song's windows through its own style
head, deterministic. Reports per style, on sounding cells only: the MSE of both against the
human velocities, and how far the bf16 velocities move from the fp32 ones in MIDI units
(mean and max |difference|, and the share that would round to another MIDI velocity).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Sequence

from absl import app, flags

from stylenet_jax.flag_parsing import parse_flags
from stylenet_jax.performer import DEFAULT_MODEL

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _define_flags() -> None:
    flags.DEFINE_string("data_dir", None, "A dataset built by `python -m data_prep.build`; its "
                        "validation split is used.")
    flags.DEFINE_string("model", DEFAULT_MODEL, "An inference export (.npz) from "
                        "`experiments.train`, an ensemble export (one table per member) or a "
                        "run directory (default: the shipped model).")
    flags.DEFINE_integer("rows", 32, "Windows per compiled call.")
    flags.DEFINE_string("out", "", "Also write the markdown table to this file.")
    flags.DEFINE_string("tree_prior_dir", None, "For a hybrid model (trained with "
                        "--tree_prior_dir): the priors of --data_dir's songs.")


def compare(params, config, styles: Sequence[str], songs, rows: int = 32) -> list[dict]:
    """Per style: {style, songs, cells, mse_fp32, mse_bf16, mean_abs, max_abs, moved}.

    ``songs``: ``batching.Windows`` list; velocities are compared on cells whose target is > 0
    (sounding), in MIDI units (x127). ``moved``: share of those cells whose rounded velocity
    differs between the two precisions.
    """
    import numpy as np

    from stylenet_jax import batching, model

    configs = {dtype: model.head_config(dataclasses.replace(config, matmul_dtype=dtype), 1)
               for dtype in ("float32", "bfloat16")}
    out = []
    for s, style in enumerate(styles):
        mine = [w for w in songs if w.style == s]
        if not mine:
            continue
        head_params = model.select_heads(params, np.array([s], np.int32))
        sums = {"cells": 0, "se32": 0.0, "se16": 0.0, "abs": 0.0, "max": 0.0, "moved": 0}
        for batch in batching.epoch_batches(mine, songs_per_batch=len(mine),
                                            windows_per_batch=rows):
            pred = {d: np.asarray(model.predict(head_params, batch.inputs, batch.lengths,
                                                config=c, priors=batch.priors)[0])
                    for d, c in configs.items()}
            active = batch.targets > 0
            human = batch.targets[active] * 127.0
            v32, v16 = pred["float32"][active] * 127.0, pred["bfloat16"][active] * 127.0
            sums["cells"] += int(active.sum())
            sums["se32"] += float(((v32 - human) / 127.0) @ ((v32 - human) / 127.0))
            sums["se16"] += float(((v16 - human) / 127.0) @ ((v16 - human) / 127.0))
            diff = np.abs(v16 - v32)
            sums["abs"] += float(diff.sum())
            sums["max"] = max(sums["max"], float(diff.max(initial=0.0)))
            sums["moved"] += int((np.rint(v16) != np.rint(v32)).sum())
        n = max(sums["cells"], 1)
        out.append({"style": style, "songs": len(mine), "cells": sums["cells"],
                    "mse_fp32": sums["se32"] / n, "mse_bf16": sums["se16"] / n,
                    "mean_abs": sums["abs"] / n, "max_abs": sums["max"],
                    "moved": sums["moved"] / n})
    return out


def render(rows: Sequence[dict], model: str, data_dir: str, member: str = "") -> str:
    lines = [f"Model `{os.path.relpath(model, ROOT)}`{member}, validation split of `{data_dir}`; "
             "sounding cells only; velocities in MIDI units.", "",
             "| style | songs | cells | MSE fp32 | MSE bf16 | mean abs diff | max abs diff | "
             "cells whose rounded velocity moves |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['style']} | {r['songs']} | {r['cells']:,} | {r['mse_fp32']:.5f} | "
                     f"{r['mse_bf16']:.5f} | {r['mean_abs']:.3f} | {r['max_abs']:.2f} | "
                     f"{100 * r['moved']:.1f}% |")
    return "\n".join(lines) + "\n"


def report(models: Sequence[tuple], model: str, songs, data_dir: str, rows: int = 32) -> str:
    """``render`` of ``compare`` for each ``(params, config, styles)`` of ``models`` (one, or
    an ensemble's members, each labelled "member k of n"), joined by a blank line."""
    tables = []
    for k, (params, config, styles) in enumerate(models, 1):
        member = f" (member {k} of {len(models)})" if len(models) > 1 else ""
        tables.append(render(compare(params, config, styles, songs, rows), model, data_dir,
                             member))
    return "\n".join(tables)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from stylenet_jax import batching, checkpoints, dataset, tree_prior

    try:
        models = checkpoints.load_models_at(flags.FLAGS.model)
        styles = models[0][2]
        songs = dataset.load_songs(flags.FLAGS.data_dir, "validation", styles)
        if any(config.tree_prior for _, config, _ in models):
            if not flags.FLAGS.tree_prior_dir:
                raise dataset.DatasetError(
                    f"{flags.FLAGS.model} is a hybrid that reads the tree's velocities: give "
                    f"--tree_prior_dir (python -m experiments.tree_prior for this dataset)")
            songs = tree_prior.attach_priors(songs, flags.FLAGS.tree_prior_dir)
    except (checkpoints.CheckpointError, dataset.DatasetError) as e:
        sys.exit(f"error: {e}")
    windows = batching.window_songs(songs, styles)
    print(f"comparing fp32 and bf16 matmuls on {len(windows)} validation songs ...",
          file=sys.stderr)
    text = report(models, flags.FLAGS.model, windows, flags.FLAGS.data_dir, flags.FLAGS.rows)
    print(text)
    if flags.FLAGS.out:
        with open(flags.FLAGS.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    _define_flags()
    flags.mark_flag_as_required("data_dir")
    app.run(main, flags_parser=parse_flags)
