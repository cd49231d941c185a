"""A variant that trains on its own build: the header line, the flag, and the fairness checks."""

import os
import subprocess
import sys

import pytest

from data_prep import build, synthetic
from experiments import ablation_builds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_build_line_is_read_from_the_header_only(tmp_path):
    flagfile = tmp_path / "v.flags"
    flagfile.write_text("# Every meter.\n# build: time_signatures=quarter min_velocities=10\n"
                        "--loss=onset\n# build: ignored=after_the_header\n")
    assert ablation_builds.required_options(str(flagfile)) == {
        "time_signatures": "quarter", "min_velocities": "10"}
    plain = tmp_path / "p.flags"
    plain.write_text("# No data question.\n--loss=onset\n")
    assert ablation_builds.required_options(str(plain)) == {}
    bad = tmp_path / "b.flags"
    bad.write_text("# build: quarter\n")
    with pytest.raises(ValueError, match="OPTION=VALUE"):
        ablation_builds.required_options(str(bad))


def test_variant_data_pairs_name_variants_of_the_sweep():
    assert ablation_builds.parse_variant_data(["q=/d/q"], ["q", "r"]) == {"q": "/d/q"}
    with pytest.raises(ValueError, match="not among"):
        ablation_builds.parse_variant_data(["x=/d"], ["q"])
    with pytest.raises(ValueError, match="VARIANT=DATA_DIR"):
        ablation_builds.parse_variant_data(["q"], ["q"])


def test_a_build_without_the_options_or_holding_test_pieces_is_refused():
    manifest = {"options": {"time_signatures": "quarter"},
                "songs": [{"piece": "a", "split": "train"}, {"piece": "b", "split": "test"},
                          {"piece": "c", "split": "validation"}]}
    ablation_builds.check_build("q", "D", manifest, {"time_signatures": "quarter"}, {"b", "z"})
    with pytest.raises(ValueError, match="needs a build with time_signatures=4/4"):
        ablation_builds.check_build("q", "D", manifest, {"time_signatures": "4/4"}, {"b"})
    for test_piece in ("a", "c"):  # trained on, or chosen by for early stopping
        with pytest.raises(ValueError, match="1 of the test pieces"):
            ablation_builds.check_build("q", "D", manifest, {}, {test_piece})


def test_the_sweep_refuses_a_data_variant_without_its_build_before_training(tmp_path):
    midi_dir, data_dir = str(tmp_path / "midi"), str(tmp_path / "data")
    synthetic.write_synthetic_corpus(midi_dir, styles=("jazz",), songs_per_style=6, steps=64)
    build.build_dataset(midi_dir, data_dir, validation_fraction=0.2, test_fraction=0.3,
                        workers=1, log=lambda *_: None)
    variants = tmp_path / "variants"
    variants.mkdir()
    (variants / "quarter.flags").write_text("# Every meter.\n# build: time_signatures=quarter\n"
                                            "--loss=onset\n")

    def sweep(*extra):
        return subprocess.run(
            [sys.executable, "-m", "experiments.ablations", f"--data_dir={data_dir}",
             f"--runs_dir={tmp_path / 'runs'}", f"--variants_dir={variants}", "--reference=",
             f"--out={tmp_path / 'a.md'}", "--variants=quarter", *extra],
            cwd=ROOT, capture_output=True, text=True, timeout=120)

    missing = sweep()
    assert missing.returncode == 2 and "--variant_data=quarter=DIR" in missing.stderr
    wrong = sweep(f"--variant_data=quarter={data_dir}")  # a 4/4 build
    assert wrong.returncode == 2 and "needs a build with time_signatures=quarter" in wrong.stderr
    assert "Traceback" not in missing.stderr + wrong.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "a.md").exists()
