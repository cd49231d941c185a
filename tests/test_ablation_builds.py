"""A variant that trains on its own build: the header line, the flag, and the fairness checks."""

import os
import subprocess
import sys

import numpy as np
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
    with pytest.raises(ValueError, match="^--variant_data=q: expected VARIANT=DIR"):
        ablation_builds.parse_variant_data(["q"], ["q"])
    with pytest.raises(ValueError, match="^--variant_priors=h: expected"):
        ablation_builds.parse_variant_data(["h"], ["h"], "--variant_priors")


def test_the_priors_line_marks_a_hybrid_variant_in_the_header_only(tmp_path):
    hybrid = tmp_path / "h.flags"
    hybrid.write_text("# A hybrid.\n# priors: tree\n--loss=onset\n")
    assert ablation_builds.needs_priors(str(hybrid))
    late = tmp_path / "l.flags"
    late.write_text("# Not one.\n--loss=onset\n# priors: tree\n")
    assert not ablation_builds.needs_priors(str(late))


def test_priors_must_cover_every_song_the_variant_trains_or_validates_on(tmp_path):
    from stylenet_jax import tree_prior

    grid = np.zeros((4, 88), np.uint8)
    tree_prior.save_priors(str(tmp_path / "p"), {"a": grid, "c": grid}, {"folds": 3})
    manifest = {"songs": [{"id": "a", "split": "train"}, {"id": "b", "split": "test"},
                          {"id": "c", "split": "validation"}]}
    fingerprint = ablation_builds.check_priors("h", str(tmp_path / "p"), manifest)
    assert len(fingerprint) == 64  # the test song needs none
    tree_prior.save_priors(str(tmp_path / "q"), {"a": grid}, {"folds": 3})
    with pytest.raises(ValueError, match="no prior for 1 of its build's songs \\(e.g. c\\)"):
        ablation_builds.check_priors("h", str(tmp_path / "q"), manifest)
    with pytest.raises(ValueError, match="^h: .*no priors.json"):
        ablation_builds.check_priors("h", str(tmp_path / "none"), manifest)
    assert ablation_builds.check_priors("h", str(tmp_path / "q"), {"songs": [
        {"id": "a", "split": "train"}]}) != fingerprint  # other priors, another run key


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

    def sweep(*extra, variant="quarter"):
        return subprocess.run(
            [sys.executable, "-m", "experiments.ablations", f"--data_dir={data_dir}",
             f"--runs_dir={tmp_path / 'runs'}", f"--variants_dir={variants}", "--reference=",
             f"--out={tmp_path / 'a.md'}", f"--variants={variant}", *extra],
            cwd=ROOT, capture_output=True, text=True, timeout=120)

    (variants / "hybrid.flags").write_text("# A hybrid.\n# priors: tree\n--loss=onset\n")
    missing = sweep()
    assert missing.returncode == 2 and "--variant_data=quarter=DIR" in missing.stderr
    no_priors = sweep(variant="hybrid")
    assert no_priors.returncode == 2 and "--variant_priors=hybrid=DIR" in no_priors.stderr
    bad_priors = sweep(f"--variant_priors=hybrid={tmp_path / 'none'}", variant="hybrid")
    assert bad_priors.returncode == 2 and "hybrid: " in bad_priors.stderr
    assert "no priors.json" in bad_priors.stderr
    wrong = sweep(f"--variant_data=quarter={data_dir}")  # a 4/4 build
    assert wrong.returncode == 2 and "needs a build with time_signatures=quarter" in wrong.stderr
    assert "Traceback" not in missing.stderr + wrong.stderr + no_priors.stderr + bad_priors.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "a.md").exists()


def test_a_scoring_trees_fingerprint_is_its_bytes_and_a_missing_one_is_one_line(tmp_path):
    import hashlib

    tree = tmp_path / "tree.pkl"
    tree.write_bytes(b"x" * (3 << 20))
    assert ablation_builds.file_sha256(str(tree)) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()
    with pytest.raises(ValueError, match="none.pkl: No such file"):
        ablation_builds.file_sha256(str(tmp_path / "none.pkl"))
