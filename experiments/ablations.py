r"""A sweep of training variants, each scored on unseen pieces: ``results/ablations.md``.

    python -m experiments.ablations --data_dir=HELDOUT_DATASET --runs_dir=runs/ablations \
        --num_epochs=16 --seeds=0,1
    python -m experiments.ablations ... --variants=paper,keep05,loss_onset   # a subset
    python -m experiments.ablations ... --variant_seeds=keep05=0,1 --variant_seeds=loss_onset=0,1

Every ``experiments/configs/ablations/<variant>.flags`` (or ``--variants_dir``) is trained with
``experiments.train`` for ``--num_epochs`` epochs per seed in ``RUNS_DIR/<variant>/seed_<k>``,
then its exported model is scored note by note on the test split of ``--eval_data_dir``
(default ``--data_dir``; build it with ``data_prep.build --test_fraction``) with
``stylenet_jax.evaluation``. Resumable: an interrupted training resumes from its checkpoint,
finished runs and their scores are reused (``score.json``), so re-running the command continues
where it stopped. Writes ``--out`` (one row per variant, mean +/- sd over seeds), a PNG of
the validation curves, and the finished runs' records beside it (``results/ablations.json``,
``experiments.ablation_records``): on a machine without the work directories, a run whose
flags, seed, epochs, data and test set are unchanged is taken from its record, not retrained.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from typing import Sequence

from absl import app, flags

from experiments import ablation_builds, ablation_records
from stylenet_jax import checkpoints, dataset, evaluation, metrics, performances
from stylenet_jax.atomic_write import write_text_atomically
from stylenet_jax.flag_parsing import parse_flags
from stylenet_jax.metrics_writer import METRICS_FILE, read_epoch_curves

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS_DIR = os.path.join(ROOT, "experiments", "configs", "ablations")
FLAGS = flags.FLAGS


def _define_flags() -> None:
    flags.DEFINE_string("data_dir", None, "Training dataset (data_prep.build with "
                        "--test_fraction, so that a test split is held out).")
    flags.DEFINE_string("eval_data_dir", None, "Dataset whose test split scores every variant "
                        "(default: --data_dir).")
    flags.DEFINE_string("midi_root", None, "Where the datasets' MIDI files are now (default: "
                        "recorded at build time).")
    flags.DEFINE_string("runs_dir", "runs/ablations", "Work directories, one per variant and "
                        "seed (keep it git-ignored).")
    flags.DEFINE_string("variants_dir", VARIANTS_DIR, "Folder of <variant>.flags files.")
    flags.DEFINE_list("variants", [], "Variants to run (default: every flagfile there).")
    flags.DEFINE_integer("num_epochs", 16, "Epochs per run: the same budget for every variant.")
    flags.DEFINE_list("seeds", ["0"], "Training seeds; mean +/- sd over them.")
    flags.DEFINE_multi_string("variant_seeds", [], "VARIANT=S1,S2,...: that variant's seeds "
                              "instead of --seeds (e.g. a second seed for the variants whose "
                              "difference from the reference is within a seed's luck; give "
                              "the reference the same seeds, the comparison is seed for "
                              "seed). Repeatable.")
    flags.DEFINE_multi_string("train_flag", [], "Extra flags for every training run, e.g. "
                              "--train_flag=--unroll=4 (speed only) or --train_flag=--noprogress.")
    flags.DEFINE_bool("classifier", True, "Score the identify-the-human classifier too.")
    flags.DEFINE_integer("resamples", 500, "Bootstrap resamples for each run's intervals.")
    flags.DEFINE_multi_string("variant_data", [], "VARIANT=DATA_DIR: that variant trains on "
                              "its own build (one whose flagfile says '# build: OPTION=VALUE' "
                              "needs one built so); every variant is scored on the same test "
                              "split.")
    flags.DEFINE_multi_string("variant_priors", [], "VARIANT=PRIORS_DIR: a hybrid variant "
                              "(its flagfile says '# priors: tree') trains with "
                              "--tree_prior_dir=PRIORS_DIR, made by experiments.tree_prior for "
                              "the build it trains on; it is scored with --features_model.")
    flags.DEFINE_string("features_model", None, "The tree a hybrid variant reads when it is "
                        "scored (default: the shipped stylenet_jax/assets/feature_baseline.pkl, "
                        "fitted on the training split of the README's quarter build: use "
                        "another for a test split that is not that build's).")
    flags.DEFINE_string("out", "results/ablations.md", "Markdown report to write.")
    flags.DEFINE_string("reference", "loss_onset", "The variant every other is compared with, "
                        "paired on the same test notes (its row first; empty: no comparison).")


def variant_files(directory: str, names: Sequence[str]) -> dict[str, str]:
    """{variant: flagfile path}, sorted by name; ``names`` selects (all when empty)."""
    found = {os.path.splitext(os.path.basename(p))[0]: p
             for p in sorted(glob.glob(os.path.join(directory, "*.flags")))}
    unknown = [n for n in names if n not in found]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; {directory} has: {', '.join(found)}")
    return {n: found[n] for n in (names or found)}


def variant_description(path: str) -> str:
    """The flagfile's leading comment lines, joined."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            lines.append(line.lstrip("# ").strip())
    return " ".join(lines)


def _completed_epochs(workdir: str) -> int:
    path = os.path.join(workdir, METRICS_FILE)
    return max(read_epoch_curves(path), default=0) if os.path.isfile(path) else 0


def _finished(workdir: str) -> bool:
    return (os.path.isfile(os.path.join(workdir, checkpoints.INFERENCE_FILE))
            and _completed_epochs(workdir) >= FLAGS.num_epochs)


def validation_curve(workdir: str) -> tuple[list[int], list[float]]:
    """(epochs, validation losses) from the run's metrics.jsonl."""
    evaluated = {e: c["val_loss"] for e, c in
                 read_epoch_curves(os.path.join(workdir, METRICS_FILE)).items()
                 if "val_loss" in c}
    return list(evaluated), list(evaluated.values())


def train_run(flagfile: str, workdir: str, seed: int, data_dir: str,
              extra_flags: Sequence[str] = ()) -> float:
    """Trains (or resumes) one run to --num_epochs; returns this call's wall seconds and adds
    them to ``workdir/wall_seconds.json`` (the run's total over every resumption).
    ``extra_flags``: this variant's own (a hybrid's ``--tree_prior_dir``)."""
    if _finished(workdir):
        return 0.0
    os.makedirs(workdir, exist_ok=True)
    command = [sys.executable, "-m", "experiments.train", f"--flagfile={flagfile}",
               f"--data_dir={data_dir}", f"--workdir={workdir}",
               f"--num_epochs={FLAGS.num_epochs}", f"--seed={seed}", *FLAGS.train_flag,
               *extra_flags]
    print(f"training {workdir}: {' '.join(command[2:])}", flush=True)
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT)
    seconds = time.perf_counter() - began
    wall_path = os.path.join(workdir, "wall_seconds.json")
    total = _read_json(wall_path, {"seconds": 0.0})["seconds"] + seconds
    _write_json(wall_path, {"seconds": total})
    if done.returncode:
        raise RuntimeError(f"{workdir}: training exited with status {done.returncode}")
    return seconds


def _read_json(path: str, default):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def _write_json(path: str, data) -> None:
    write_text_atomically(path, json.dumps(data, indent=1))


SCORE_FORMAT = 2  # 2: with each performance's note sums, for paired comparisons


def score_run(workdir: str, performed: list[performances.Performed]) -> tuple[dict, dict]:
    """The run's scores on the test performances and its per-performance note sums (cached in
    ``workdir/score.json``, keyed by the epochs trained and the test set). Scores: per style
    and "all", plus classifier accuracy; sums: ``{style: {"ids", "pieces", "sums"}}``, the
    rows of ``metrics.paired_difference`` in ``performed``'s order."""
    key = {"format": SCORE_FORMAT, "epochs": _completed_epochs(workdir),
           "test": sorted(p.id for p in performed), "classifier": FLAGS.classifier}
    cached = _read_json(os.path.join(workdir, "score.json"), {})
    if cached.get("key") == key:
        return cached["scores"], cached["sums"]
    from stylenet_jax.performer import Stylizer

    system = evaluation.ModelSystem(Stylizer(os.path.join(workdir, checkpoints.INFERENCE_FILE),
                                             tree=FLAGS.features_model))
    result = evaluation.evaluate(performed, [system])
    scores = evaluation.scores(result, resamples=FLAGS.resamples)["model"]
    if FLAGS.classifier:
        scores["all"]["classifier_accuracy"] = evaluation.identify_the_human(
            performed, result)["model"]["accuracy"]
    sums = {}
    for style, comparisons in result.comparisons["model"].items():
        pieces, rows = metrics.piece_sums(comparisons)
        sums[style] = {"ids": [p.id for p in performed if p.style == style],
                       "pieces": pieces, "sums": rows.tolist()}
    _write_json(os.path.join(workdir, "score.json"),
                {"key": key, "scores": scores, "sums": sums})
    return scores, sums


def parse_seeds(text: str, flag: str) -> list[int]:
    """[seed, ...] from "0,1" (``flag`` names it in errors); raises ValueError (one line) for
    an empty list, a non-integer or a repeated seed."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"{flag}: '{text}' is not a comma-separated list of integer seeds"
                         ) from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"{flag}: '{text}' needs at least one seed, none repeated")
    return seeds


def seeds_of_each(variants: Sequence[str], seeds: Sequence[str],
                  variant_seeds: Sequence[str]) -> dict[str, list[int]]:
    """{variant: its training seeds}: its ``variant_seeds`` pair ("NAME=0,1", as
    --variant_seeds) where given, else ``seeds`` (--seeds' items). Raises ValueError (one
    line) for a malformed pair or list, or a variant not in the sweep."""
    default = parse_seeds(",".join(seeds), "--seeds")
    own = ablation_builds.parse_variant_data(variant_seeds, variants, "--variant_seeds",
                                             "SEEDS")
    return {name: (parse_seeds(own[name], f"--variant_seeds={name}") if name in own
                   else default) for name in variants}


def _scoring_tree() -> str:
    """The tree a hybrid variant is scored with: --features_model, else the shipped one."""
    from stylenet_jax import feature_baseline

    return FLAGS.features_model or feature_baseline.DEFAULT_PATH


def _skip_or_refuse(name: str, needs: str, flag: str) -> None:
    """A variant lacking what it needs: refused (ValueError) when --variants named it,
    else skipped with a line."""
    if name in FLAGS.variants:
        raise ValueError(f"{name} {needs}: pass it as {flag}={name}=DIR")
    print(f"{name}: skipped; it {needs} ({flag}={name}=DIR)", flush=True)


def _data_for_each(variants: dict[str, str], test_pieces: set[str]
                   ) -> tuple[dict[str, str], dict[str, str], dict[str, dict], dict[str, tuple]]:
    """({variant: the build it trains on}, the variants that can run, {build: its manifest},
    each manifest read once, {variant: (its own training flags, what they add to its run
    key)}; a hybrid's key holds its priors' fingerprint, not their folder). A variant whose
    flagfile asks for a build (``# build: ...``) without one in --variant_data, or for tree priors
    (``# priors: tree``) without them in --variant_priors, is refused when --variants named
    it and skipped with a line otherwise. Raises ValueError for a build without the options
    its variant needs or with test pieces in its training splits, or priors that miss one of
    its songs."""
    own = ablation_builds.parse_variant_data(FLAGS.variant_data, variants)
    priors = ablation_builds.parse_variant_data(FLAGS.variant_priors, variants,
                                                "--variant_priors")
    data_dirs, runnable, manifests, extra = {}, {}, {}, {}
    for name, flagfile in variants.items():
        required = ablation_builds.required_options(flagfile)
        if required and name not in own:
            wanted = " ".join(f"{k}={v}" for k, v in required.items())
            _skip_or_refuse(name, f"trains on a build with {wanted}", "--variant_data")
            continue
        hybrid = ablation_builds.needs_priors(flagfile)
        if hybrid and name not in priors:
            _skip_or_refuse(name, "reads the tree baseline's out-of-fold velocities",
                            "--variant_priors")
            continue
        directory = data_dirs[name] = own.get(name, FLAGS.data_dir)
        if directory not in manifests:
            manifests[directory] = dataset.read_manifest(directory)
        ablation_builds.check_build(name, directory, manifests[directory], required,
                                    test_pieces)
        extra[name] = ([], [])
        if hybrid:
            fingerprint = ablation_builds.check_priors(name, priors[name], manifests[directory])
            extra[name] = ([f"--tree_prior_dir={priors[name]}"],
                           [f"tree priors {fingerprint}",
                            f"scoring tree {ablation_builds.file_sha256(_scoring_tree())}"])
        runnable[name] = flagfile
    return data_dirs, runnable, manifests, extra


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from experiments import ablations_report

    try:
        variants = variant_files(FLAGS.variants_dir, FLAGS.variants)
        seeds = seeds_of_each(variants, FLAGS.seeds, FLAGS.variant_seeds)
        if not variants or FLAGS.num_epochs < 1:
            raise ValueError("need at least one variant and --num_epochs >= 1")
        if FLAGS.reference and FLAGS.reference not in variants:
            raise ValueError(f"--reference={FLAGS.reference} is not among the variants run "
                             f"({', '.join(variants)}); add it or pass --reference=")
        variants = {name: variants[name] for name in sorted(
            variants, key=lambda n: n != FLAGS.reference)}  # the reference first
        dataset.read_manifest(FLAGS.data_dir or "")
        flag_lines = {name: ablation_records.resolved_flags(path, ROOT)
                      for name, path in variants.items()}
        performed = performances.from_dataset(FLAGS.eval_data_dir or FLAGS.data_dir, "test",
                                              FLAGS.midi_root)
        data_dirs, variants, manifests, own_flags = _data_for_each(
            variants, {p.piece for p in performed})
        data = {name: ablation_records.data_fingerprint(manifests[directory])
                for name, directory in data_dirs.items()}
    except (ValueError, OSError, dataset.DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    records_file = ablation_records.records_path(FLAGS.out)
    records = ablation_records.read(records_file)
    rows = {}
    for name, flagfile in variants.items():
        runs = []
        for seed in seeds[name]:
            workdir = os.path.join(FLAGS.runs_dir, name, f"seed_{seed}")
            key = ablation_records.run_key(
                flag_lines[name], FLAGS.train_flag + own_flags[name][1], seed,
                FLAGS.num_epochs, data[name], [p.id for p in performed], FLAGS.classifier)
            record = ablation_records.matching(records, name, seed, key)
            if record is not None and not _finished(workdir):
                print(f"{name} seed {seed}: no finished run in {workdir}; reusing its record "
                      f"in {records_file}", flush=True)
                runs.append(record["run"])
                continue
            try:
                train_run(flagfile, workdir, seed, data_dirs[name], own_flags[name][0])
            except RuntimeError as e:
                print(f"error: {e}; skipping it (re-run to resume)", file=sys.stderr)
                continue
            scores, sums = score_run(workdir, performed)
            run = {"scores": scores, "sums": sums, "seed": seed,
                   "epochs": _completed_epochs(workdir), "curve": validation_curve(workdir),
                   "wall_seconds": _read_json(os.path.join(workdir, "wall_seconds.json"),
                                              {"seconds": float("nan")})["seconds"]}
            runs.append(run)
            records[f"{name}/seed_{seed}"] = {"key": key, "run": run}
        rows[name] = {"description": variant_description(flagfile), "runs": runs}
        ablation_records.write(records_file, records)
        ablations_report.write(FLAGS.out, rows, performed, command="python -m "
                               "experiments.ablations " + " ".join(sys.argv[1:]),
                               reference=FLAGS.reference or None, resamples=FLAGS.resamples)
    print(f"wrote {FLAGS.out} and {records_file}")


if __name__ == "__main__":
    _define_flags()
    flags.mark_flag_as_required("data_dir")
    app.run(main, flags_parser=parse_flags)
