"""experiments.ablations: a sweep of two tiny variants, scored, reported and resumed."""

import os
import subprocess
import sys

import pytest

from data_prep import build, synthetic
from experiments import ablations, ablations_report

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


@pytest.mark.slow
def test_a_tiny_sweep_runs_reports_and_resumes(tmp_path):
    """Six training processes and three scorings: minutes on 2 cores, hence slow (CI runs
    it)."""
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
    out = tmp_path / "ablations.md"

    def sweep(epochs):
        return subprocess.run(
            [sys.executable, "-m", "experiments.ablations", f"--data_dir={data_dir}",
             f"--runs_dir={tmp_path / 'runs'}", f"--variants_dir={variants}",
             f"--num_epochs={epochs}", "--seeds=0", f"--out={out}", "--resamples=20",
             "--train_flag=--noprogress", "--train_flag=--snapshot_every_epochs=0",
             "--noclassifier"], cwd=ROOT, capture_output=True, text=True, timeout=900)

    first = sweep(1)
    assert first.returncode == 0, first.stderr[-2000:]
    text = out.read_text()
    assert "| `base` |" in text and "| `onset` |" in text and "Onset loss." in text
    assert (tmp_path / "ablations" / "curves.png").is_file()
    score = tmp_path / "runs" / "onset" / "seed_0" / "score.json"
    stamp = score.stat().st_mtime_ns
    again = sweep(1)  # nothing left to do: no training, cached scores
    assert again.returncode == 0 and "training " not in again.stdout
    assert score.stat().st_mtime_ns == stamp
    longer = sweep(2)  # resumes each run from its checkpoint for one more epoch
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert longer.stdout.count("training ") == 2
    assert "resumed" in longer.stderr and score.stat().st_mtime_ns != stamp
