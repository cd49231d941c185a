"""A style's trees learning from other styles' notes (stylenet_jax.tree_borrowing and
FeatureBaseline.fit(borrow=...)), and the --borrow flag of the tree apps."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from stylenet_jax import feature_baseline, tree_borrowing
from stylenet_jax.feature_baseline import FeatureBaseline, FeatureBaselineError, feature_names
from stylenet_jax.notes import Notes
from stylenet_jax.performances import Performed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"max_iter": 60, "max_leaf_nodes": 4, "min_samples_leaf": 2, "learning_rate": 0.3}


def song(number: int, style: str, velocity: int) -> Performed:
    """Twelve notes on distinct keys, one every other 1/16 step, all at ``velocity``."""
    n = 12
    start = np.arange(n, dtype=np.int64) * 2
    notes = Notes(pitch=(40 + number + np.arange(n) * 3).astype(np.int16), start=start,
                  end=start + 2, velocity=np.full(n, velocity, np.uint8),
                  channel=np.zeros(n, np.uint8), track=np.zeros(n, np.int32),
                  index=np.arange(n, dtype=np.int32))
    return Performed(f"{style}/{number}", style, f"p{number}", f"{number}.mid", notes, 4,
                     start.astype(np.float64) * 0.125)


SONGS = [song(k, "jazz", 40) for k in range(6)] + [song(k, "pop", 100) for k in range(12)]


def test_specs_parse_into_sorted_lenders_and_bad_ones_are_one_line():
    assert tree_borrowing.parse_borrow(["jazz:pop", " pop : jazz+classical "]) == {
        "jazz": ("pop",), "pop": ("classical", "jazz")}
    assert tree_borrowing.parse_borrow([]) == {}
    for bad in (["jazz"], ["jazz:"], [":pop"], ["jazz:jazz"], ["jazz:pop", "jazz:classical"]):
        with pytest.raises(tree_borrowing.BorrowError, match="--borrow"):
            tree_borrowing.parse_borrow(bad)
    with pytest.raises(tree_borrowing.BorrowError, match="names classical"):
        tree_borrowing.check_borrow({"jazz": ("classical",)}, ["jazz", "pop"])


def test_lent_rows_are_marked_as_the_lenders_and_weigh_as_much_as_the_styles_own():
    rows = np.arange(6, dtype=np.float32).reshape(3, 2)
    marked = tree_borrowing.with_lender_columns(rows, "pop", ("classical", "pop"))
    np.testing.assert_array_equal(marked, [[0, 1, 0, 1], [2, 3, 0, 1], [4, 5, 0, 1]])
    own = tree_borrowing.with_lender_columns(rows, None, ("classical", "pop"))
    assert own.dtype == np.float32 and not own[:, 2:].any()
    weights = tree_borrowing.balanced_weights(4, 10)
    assert weights.shape == (14,) and weights[:4].sum() == pytest.approx(weights[4:].sum())
    rows_of = {id(p): feature_baseline.feature_rows(p.notes, 4, p.seconds) for p in SONGS}
    x, y, w = feature_baseline._training_rows(SONGS[:3], SONGS, ("pop",), lambda p: rows_of[id(p)])
    assert x.shape == (36 + 144, len(feature_names()) + 1) and y.shape == w.shape == (180,)
    assert not x[:36, -1].any() and x[36:, -1].all() and (y[:36] == 40).all()
    assert w[:36].sum() == pytest.approx(w[36:].sum())


def test_a_borrowing_style_still_plays_its_own_velocities_and_survives_a_round_trip(tmp_path):
    lines = []
    tree = FeatureBaseline.fit(SONGS, log=lines.append, borrow={"jazz": ("pop",)}, **TINY)
    assert tree.borrow == {"jazz": ("pop",)}
    assert any(line.startswith("jazz:") and "with pop's" in line for line in lines)
    jazz = song(9, "jazz", 64)
    played = tree.predict(jazz.notes, 4, "jazz", jazz.seconds)
    assert np.abs(played - 40).max() <= 2  # the lent notes (at 100) are told apart
    assert np.abs(tree.predict(jazz.notes, 4, "pop", jazz.seconds) - 100).max() <= 2
    path = str(tmp_path / "t.pkl")
    tree.save(path)
    loaded = FeatureBaseline.load(path)
    assert loaded.borrow == {"jazz": ("pop",)}
    np.testing.assert_array_equal(loaded.predict(jazz.notes, 4, "jazz", jazz.seconds), played)
    with pytest.raises(FeatureBaselineError, match="names classical"):
        FeatureBaseline.fit(SONGS, borrow={"jazz": ("classical",)}, **TINY)


def test_a_file_with_a_bad_borrow_is_refused_in_one_line(tmp_path):
    tree = FeatureBaseline.fit(SONGS, log=lambda line: None, **TINY)
    header = {"format": feature_baseline.FORMAT, "version": feature_baseline.VERSION,
              "sklearn": feature_baseline._sklearn_version(),
              "feature_names": list(feature_names()), "styles": tree.styles,
              "borrow": {"jazz": ["rock"]}}
    path = tmp_path / "bad.pkl"
    with open(path, "wb") as f:
        pickle.dump(header, f)
        pickle.dump(tree.models, f)
    with pytest.raises(FeatureBaselineError, match="bad borrow"):
        FeatureBaseline.load(str(path))


def test_the_tree_apps_refuse_a_bad_borrow_before_reading_anything():
    for module, out in (("experiments.feature_baseline", "--out=/nonexistent/t.pkl"),
                        ("experiments.tree_prior", "--out_dir=/nonexistent/priors")):
        done = subprocess.run([sys.executable, "-m", module, "--data_dir=/nonexistent", out,
                               "--borrow=jazz"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 2 and "expected STYLE:LENDER" in done.stderr, done.stderr
