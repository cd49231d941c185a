"""experiments.ablations: a sweep of two tiny variants, scored, reported and resumed."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from data_prep import build, synthetic
from experiments import ablations, ablations_report
from stylenet_jax import dataset, metrics, tree_prior

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_every_shipped_variant_flagfile_parses_and_says_what_it_changes():
    """One process per flagfile (absl flags are global): about 25 s, hence slow."""
    variants = ablations.variant_files(ablations.VARIANTS_DIR, [])
    assert {"paper", "keep05", "unidirectional", "no_interpretation", "one_layer",
            "window100", "window400", "loss_active", "loss_onset"} <= set(variants)
    for name, path in variants.items():
        assert ablations.variant_description(path), name
        done = subprocess.run([sys.executable, "-m", "experiments.train", f"--flagfile={path}",
                               "--workdir=/nonexistent", "--print_config"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (name, done.stderr[-500:])
    with pytest.raises(ValueError, match="unknown variant"):
        ablations.variant_files(ablations.VARIANTS_DIR, ["nope"])


def test_mean_sd():
    assert ablations_report.mean_sd([1.0], "{:.1f}") == "1.0"
    assert ablations_report.mean_sd([1.0, 3.0], "{:.1f}") == "2.0 ± 1.4"
    assert ablations_report.mean_sd([float("nan")], "{:.1f}") == "-"


def test_a_variants_own_seeds_replace_the_sweeps_and_bad_lists_are_one_line():
    seeds = ablations.seeds_of_each(["ref", "keep05", "paper"], ["0"],
                                    ["keep05=0,1", "ref=1, 0"])
    assert seeds == {"ref": [1, 0], "keep05": [0, 1], "paper": [0]}
    for bad, said in ((["keep05=0,x"], "not a comma-separated list"),
                      (["keep05=0,0"], "none repeated"), (["keep05="], "VARIANT=SEEDS"),
                      (["other=1"], "not among the variants run")):
        with pytest.raises(ValueError, match=said):
            ablations.seeds_of_each(["keep05"], ["0"], bad)
    with pytest.raises(ValueError, match="--seeds"):
        ablations.seeds_of_each(["keep05"], [], [])


def _run(seed, pieces, predicted_by_piece, human):
    comparisons = [metrics.PieceComparison(piece, human, predicted_by_piece[piece])
                   for piece in pieces]
    names, sums = metrics.piece_sums(comparisons)
    return {"seed": seed, "scores": {"jazz": metrics.score(comparisons, resamples=20),
                                     "all": metrics.score(comparisons, resamples=20)},
            "sums": {"jazz": {"ids": [f"id-{p}" for p in pieces], "pieces": names,
                              "sums": sums.tolist()}},
            "epochs": 1, "wall_seconds": 1.0, "workdir": "nowhere"}


def test_paired_table_compares_each_variant_with_the_reference_seed_for_seed():
    rng = np.random.default_rng(0)
    pieces = [f"p{i}" for i in range(12)]
    human = rng.integers(30, 100, 50)
    noisy = {p: np.clip(human + rng.normal(0, 12, 50).round(), 1, 127) for p in pieces}
    close = {p: np.clip(human + rng.normal(0, 3, 50).round(), 1, 127) for p in pieces}
    rows = {"ref": {"runs": [_run(0, pieces, noisy, human)]},
            "better": {"runs": [_run(0, pieces, close, human)]},
            "same": {"runs": [_run(0, pieces, noisy, human)]},
            "other_seed": {"runs": [_run(1, pieces, close, human)]}}
    lines = ablations_report.paired_table(rows, "ref", resamples=200)
    by_name = {line.split(" | ")[0].strip("| `"): line for line in lines[2:]}
    assert set(by_name) == {"better", "same", "other_seed"}  # no row for the reference
    cells = by_name["better"].split(" | ")
    assert cells[1].startswith("**-") and cells[2].startswith("**+")  # MAE down, r up: bold
    assert "**" not in by_name["same"] and "+0.0 [+0.0, +0.0]" in by_name["same"]
    assert by_name["other_seed"].count(" - ") >= 4  # no common seed: nothing to pair


@pytest.mark.slow
def test_a_tiny_sweep_runs_reports_and_resumes(tmp_path):
    """Nine training processes (one variant a hybrid reading tree priors) and their
    scorings: minutes on 2 cores, hence slow (CI runs it)."""
    midi_dir, data_dir = str(tmp_path / "midi"), str(tmp_path / "data")
    synthetic.write_synthetic_corpus(midi_dir, styles=("classical", "jazz"), songs_per_style=6,
                                     steps=300, seed=0)
    build.build_dataset(midi_dir, data_dir, validation_fraction=0.2, test_fraction=0.3,
                        workers=1, log=lambda *_: None)
    variants = tmp_path / "variants"
    variants.mkdir()
    tiny = os.path.join(ROOT, "experiments", "configs", "tiny.flags")
    (variants / "base.flags").write_text(f"# The tiny setup.\n--flagfile={tiny}\n")
    (variants / "onset.flags").write_text(f"# Onset loss.\n--flagfile={tiny}\n--loss=onset\n")
    (variants / "hybrid.flags").write_text(f"# Reads the tree.\n# priors: tree\n"
                                           f"--flagfile={tiny}\n--loss=onset\n")
    priors = str(tmp_path / "priors")
    made = subprocess.run([sys.executable, "-m", "experiments.tree_prior",
                           f"--data_dir={data_dir}", f"--out_dir={priors}", "--folds=2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stderr[-2000:]
    # The priors' validation onset MSE: printed, kept in the index, and the library's own.
    kept = json.loads((tmp_path / "priors" / tree_prior.INDEX).read_text())
    scores = kept["validation_onset_mse"]
    songs = dataset.load_songs(data_dir, "validation")
    assert scores == pytest.approx(tree_prior.onset_mse(
        songs, {s.id: tree_prior.load_prior(priors, s.id, len(s.velocities)) for s in songs}))
    assert set(scores) == {"classical", "jazz", "all"} and 0 < scores["all"] < 1
    assert f"all {scores['all']:.5f}" in made.stdout
    out = tmp_path / "ablations.md"

    def sweep(epochs):
        return subprocess.run(
            [sys.executable, "-m", "experiments.ablations", f"--data_dir={data_dir}",
             f"--runs_dir={tmp_path / 'runs'}", f"--variants_dir={variants}",
             f"--num_epochs={epochs}", "--seeds=0", f"--out={out}", "--resamples=20",
             "--train_flag=--noprogress", "--train_flag=--snapshot_every_epochs=0",
             "--noclassifier", "--reference=onset", f"--variant_priors=hybrid={priors}"],
            cwd=ROOT, capture_output=True, text=True, timeout=900)

    first = sweep(1)
    assert first.returncode == 0, first.stderr[-2000:]
    text = out.read_text()
    assert "| `base` |" in text and "| `onset` |" in text and "Onset loss." in text
    assert "| `hybrid` |" in text and "--tree_prior_dir" in first.stdout
    assert text.index("| `onset` |") < text.index("| `base` |")  # the reference first
    assert "## Against `onset`" in text and text.count("| `base` |") == 2
    assert (tmp_path / "ablations" / "curves.png").is_file()
    score = tmp_path / "runs" / "onset" / "seed_0" / "score.json"
    stamp = score.stat().st_mtime_ns
    again = sweep(1)  # nothing left to do: no training, cached scores
    assert again.returncode == 0 and "training " not in again.stdout
    assert score.stat().st_mtime_ns == stamp
    longer = sweep(2)  # resumes each run from its checkpoint for one more epoch
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert longer.stdout.count("training ") == 3
    assert "resumed" in longer.stderr and score.stat().st_mtime_ns != stamp
    report = out.read_text()
    shutil.rmtree(tmp_path / "runs")  # a new machine: only the committed results are there
    elsewhere = sweep(2)
    assert elsewhere.returncode == 0, elsewhere.stderr[-2000:]
    assert "training " not in elsewhere.stdout and elsewhere.stdout.count("reusing") == 3
    assert out.read_text().split("\n")[4:] == report.split("\n")[4:]  # the same tables
    assert sweep(1).stdout.count("training ") == 3  # another budget: no record matches
