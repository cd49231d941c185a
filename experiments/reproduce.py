r"""The paper's table: train the paper's setup (or take a run) and set our figures beside its.

    python -m experiments.reproduce --data_dir=PAPER_DATASET --workdir=runs/paper --num_epochs=160
    python -m experiments.reproduce --data_dir=PAPER_DATASET --workdir=runs/paper --notrain

Training runs ``experiments.train`` with ``experiments/configs/stylenet.flags`` (whole-matrix
MSE, dropout keep 0.8, clip 10 per tensor, Adam 1e-3, TBPTT 200, alternating batches of 4
songs); it resumes from ``--workdir``. Then the run's ``metrics.jsonl`` gives the train and
validation MSE per epoch, the model (``WORKDIR/inference.npz``) and the baselines are scored
note by note on the dataset's validation split (``stylenet_jax.evaluation``), and
``--out`` (results/paper_table.md) gets the table, a learning-curve PNG and the facts of the
run. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Sequence

import numpy as np
from absl import app, flags

from stylenet_jax import checkpoints, dataset, encoding, evaluation, performances
from stylenet_jax.atomic_write import write_text_atomically
from stylenet_jax.config import ScheduleConfig
from stylenet_jax.flag_parsing import parse_flags
from stylenet_jax.metrics_writer import METRICS_FILE, read_epoch_curves

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_FLAGS = os.path.join(ROOT, "experiments", "configs", "stylenet.flags")
# Malik & Ek 2017, after 160 epochs of their final setup (their Fig. 15 / text).
PAPER = {"train_loss": 7.0e-4, "val_loss": 1.1e-3, "epochs": 160,
         "listeners_10s": 0.53, "listeners_piece": 0.46}
FLAGS = flags.FLAGS


def _define_flags() -> None:
    flags.DEFINE_string("data_dir", None, "The paper-filtered dataset (data_prep.build with "
                        "its defaults: 4/4, >= 20 velocities, 95/5 split).")
    flags.DEFINE_string("workdir", None, "The run's folder (resumed if it exists).")
    flags.DEFINE_bool("train", True, "Train (or resume) to --num_epochs first; --notrain "
                      "reports on the run as it is.")
    flags.DEFINE_integer("num_epochs", ScheduleConfig().num_epochs,
                         "Epochs to train (the paper: 160).")
    flags.DEFINE_multi_string("train_flag", [], "Extra flags for experiments.train, e.g. "
                              "--train_flag=--unroll=4.")
    flags.DEFINE_string("midi_root", None, "Where the dataset's MIDI files are now (default: "
                        "recorded at build time).")
    flags.DEFINE_string("run_note", "", "Where and how the run was made (machine, wall time), "
                        "for runs trained elsewhere.")
    flags.DEFINE_integer("resamples", 2000, "Bootstrap resamples for the 95% intervals.")
    flags.DEFINE_string("out", "results/paper_table.md", "Markdown report to write.")


def silent_mse(data_dir: str, split: str) -> float:
    """Whole-matrix MSE of a model that predicts silence (0) everywhere: mean of target^2."""
    total = cells = 0.0
    for song in dataset.load_songs(data_dir, split):
        target = encoding.velocities_to_target(song.velocities).astype(np.float64)
        total += float(np.square(target).sum())
        cells += target.size
    return total / max(cells, 1.0)


def plot_curves(path: str, curves: dict[int, dict[str, float]], silent: float) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.6), dpi=110)
    ax = fig.subplots()
    epochs = list(curves)
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        xs = [e for e in epochs if key in curves[e]]
        ax.plot(xs, [curves[e][key] for e in xs], label=label)
    ax.axhline(silent, color="grey", ls="--", lw=1, label="predicting silence (validation)")
    ax.axhline(PAPER["val_loss"], color="tab:red", ls=":", lw=1, label="paper, validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE, whole (T, 88) matrix")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _train() -> None:
    command = [sys.executable, "-m", "experiments.train", f"--flagfile={PAPER_FLAGS}",
               f"--data_dir={FLAGS.data_dir}", f"--workdir={FLAGS.workdir}",
               f"--num_epochs={FLAGS.num_epochs}", *FLAGS.train_flag]
    print("training:", " ".join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT)
    if done.returncode:
        sys.exit(done.returncode)


def render(curves, best_epoch: int, silent: float, scores: dict, identified: dict, data: str,
           run_note: str, picture: str, command: str) -> str:
    last_epoch = max(e for e in curves if "val_loss" in curves[e])
    last = curves[last_epoch]
    best = curves[best_epoch]
    model = scores["model"]
    lines = [
        "# The paper's table, reproduced", "",
        f"Made by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
        "## Whole-matrix MSE (the paper's figure: (velocity / 127)^2 over every cell of the "
        "(T, 88) matrix)", "",
        "| | epochs | train MSE | validation MSE |", "|---|---|---|---|",
        f"| Malik & Ek 2017 | {PAPER['epochs']} | {PAPER['train_loss']:.1e} | "
        f"{PAPER['val_loss']:.1e} |",
        f"| ours, last evaluated epoch | {last_epoch} | "
        f"{last.get('train_loss', float('nan')):.2e} | "
        f"{last.get('val_loss', float('nan')):.2e} |",
        f"| ours, best validation epoch | {best_epoch} | "
        f"{best.get('train_loss', float('nan')):.2e} | {best['val_loss']:.2e} |",
        f"| predicting silence everywhere | - | - | {silent:.2e} |", "",
        f"![learning curves]({picture})", "",
        "## Note by note, validation split (MIDI velocity units; 95% intervals by bootstrap "
        "over pieces)", "",
        "| style | system | notes | MAE | Pearson r | spread ratio | mean velocity (pianist) |",
        "|---|---|---|---|---|---|---|"]
    for style in [s for s in model if s != "all"] + ["all"]:
        for name, by_style in scores.items():
            r = by_style.get(style)
            if r is None:
                continue
            lines.append(
                f"| {style} | {name} | {r['notes']:,} | {r['mae']:.2f} [{r['mae_lo']:.2f}, "
                f"{r['mae_hi']:.2f}] | {r['pearson_r']:.3f} | {r['std_ratio']:.2f} | "
                f"{r['mean_predicted']:.1f} ({r['mean_human']:.1f}) |")
    lines += ["", "## Identify the human", "",
              "The paper asked listeners to pick the human out of a pair; we train a small "
              "classifier (`stylenet_jax.human_classifier`) on half of the validation pieces and "
              "score it on the other half (chance: 0.5). It sees exact velocities: a far "
              "harsher judge than a listener.", "",
              "| system | 10-second excerpts | whole pieces |", "|---|---|---|",
              f"| the paper's listeners (StyleNet) | {PAPER['listeners_10s']:.2f} | "
              f"{PAPER['listeners_piece']:.2f} |"]
    for name in identified["10s"]:
        a, b = identified["10s"][name], identified["piece"][name]
        lines.append(f"| {name} | {a['accuracy']:.2f} [{a['accuracy_lo']:.2f}, "
                     f"{a['accuracy_hi']:.2f}] ({a['pairs']} pairs) | {b['accuracy']:.2f} "
                     f"({b['pairs']} pairs) |")
    lines += ["", "## The data and the run", "", data, ""]
    if run_note:
        lines += [run_note, ""]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        manifest = dataset.read_manifest(FLAGS.data_dir)
    except dataset.DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if FLAGS.train:
        _train()
    metrics_path = os.path.join(FLAGS.workdir, METRICS_FILE)
    model_path = os.path.join(FLAGS.workdir, checkpoints.INFERENCE_FILE)
    for path in (metrics_path, model_path):
        if not os.path.isfile(path):
            print(f"error: {path}: missing (train first, or give the run's --workdir)",
                  file=sys.stderr)
            sys.exit(2)
    curves = read_epoch_curves(metrics_path)
    evaluated = [e for e in curves if "val_loss" in curves[e]]
    best_epoch = min(evaluated, key=lambda e: curves[e]["val_loss"])
    silent = silent_mse(FLAGS.data_dir, "validation")
    from stylenet_jax.performer import Stylizer

    performed = performances.from_dataset(FLAGS.data_dir, "validation", FLAGS.midi_root)
    stats = evaluation.NoteStatistics.from_dataset(FLAGS.data_dir)
    systems = [evaluation.ModelSystem(Stylizer(model_path)),
               evaluation.ConstantSystem(stats), evaluation.RandomSystem(0)]
    result = evaluation.evaluate(performed, systems)
    scores = evaluation.scores(result, resamples=FLAGS.resamples)
    identified = {"10s": evaluation.identify_the_human(performed, result, length_seconds=10.0),
                  "piece": evaluation.identify_the_human(performed, result,
                                                         length_seconds=None)}
    out_dir = os.path.splitext(FLAGS.out)[0]
    os.makedirs(out_dir, exist_ok=True)
    picture = plot_curves(os.path.join(out_dir, "curves.png"), curves, silent)
    counts = {s: sum(1 for x in manifest["songs"] if x["style"] == s and x["split"] == split)
              for s in manifest["styles"] for split in ("train",)}
    data = (f"`{FLAGS.data_dir}`: {len(manifest['songs'])} performances ("
            + ", ".join(f"{s} {n} train" for s, n in counts.items())
            + f"), options {json.dumps(manifest.get('options', {}))}. The paper's Piano "
            "Dataset (classical + jazz, 4/4, >= 20 distinct velocities) cannot be downloaded; "
            "ours is ../shared/data with the paper's filters (ASAP classical performances, "
            "jazz and pop played to a metronome; see its README), and it has a third style.")
    text = render(curves, best_epoch, silent, scores, identified, data, FLAGS.run_note,
                  os.path.relpath(picture, os.path.dirname(os.path.abspath(FLAGS.out))),
                  "python -m experiments.reproduce " + " ".join(sys.argv[1:]))
    write_text_atomically(FLAGS.out, text + "\n")
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    _define_flags()
    flags.mark_flags_as_required(["data_dir", "workdir"])
    app.run(main, flags_parser=parse_flags)
