"""stylenet_jax.feature_importance and experiments.tree_features: the tree's skill by group."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from data_prep.build import build_dataset
from data_prep.synthetic import write_synthetic_corpus
from side_by_side import run_side_by_side
from stylenet_jax import performances
from stylenet_jax.feature_baseline import FeatureBaseline, feature_names
from stylenet_jax.feature_importance import (SCOPES, _shuffled_order, group_columns,
                                             group_importance)
from stylenet_jax.note_features import FEATURE_GROUPS, FEATURE_NAMES
from stylenet_jax.notes import Notes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PITCH = FEATURE_NAMES.index("pitch")


@pytest.mark.parametrize("extras", [(), ("phrase_context",), ("melody_line",),
                                    ("phrase_context", "melody_line")])
def test_groups_partition_the_columns_in_order(extras):
    groups = group_columns(extras)
    every = np.concatenate(list(groups.values()))
    np.testing.assert_array_equal(every, np.arange(len(feature_names(extras))))
    labels = {"phrase_context": "phrase context", "melody_line": "melody line"}
    assert list(groups) == list(FEATURE_GROUPS) + [labels[name] for name in extras]
    names = feature_names(extras)
    assert [names[i] for i in groups["tempo"]] == list(FEATURE_GROUPS["tempo"])
    if "melody_line" in extras:
        assert names[groups["melody line"][0]] == "melody_minus_local_4"


class PlaysThePitch:
    """A stand-in regressor: each note's velocity is its pitch column, nothing else read."""

    def predict(self, rows):
        return rows[:, PITCH].astype(np.float64)


def performance(k, pitch):
    n = len(pitch)
    ticks = np.arange(n, dtype=np.int64) * 120
    notes = Notes(np.asarray(pitch, np.int16), ticks, ticks + 120, np.asarray(pitch, np.uint8),
                  np.zeros(n, np.uint8), np.zeros(n, np.int32), np.arange(n, dtype=np.int32))
    return performances.Performed(f"pop/s{k}", "pop", f"s{k}", f"s{k}.mid", notes, 480,
                                  ticks / 960.0)


def test_only_the_group_the_model_reads_costs_anything():
    rng = np.random.default_rng(0)
    songs = [performance(k, rng.integers(30, 100, 64)) for k in range(3)]
    songs.append(performance(9, []))  # an empty performance is left out, not an error
    found = group_importance(FeatureBaseline({"pop": PlaysThePitch()}), songs, repeats=4,
                             seed=1)
    [pop] = found
    assert pop["style"] == "pop" and pop["songs"] == 3 and pop["notes"] == 192
    assert pop["mae"] == 0 and pop["r"] == pytest.approx(1.0)
    by_group = {g["group"]: g for g in pop["groups"]}
    assert list(by_group) == list(FEATURE_GROUPS)
    assert by_group["pitch"]["columns"] == 2
    assert by_group["pitch"]["mae_increase"] > 10 and by_group["pitch"]["r_drop"] > 0.5
    assert by_group["pitch"]["mae_increase_sd"] > 0  # four different shuffles
    for group, g in by_group.items():
        if group != "pitch":
            assert (g["mae_increase"], g["r_drop"], g["mae_increase_sd"]) == (0, 0, 0), group
    again = group_importance(FeatureBaseline({"pop": PlaysThePitch()}), songs, repeats=4,
                             seed=1)
    assert again == found  # seeded
    assert group_importance(FeatureBaseline({"jazz": PlaysThePitch()}), songs) == []
    with pytest.raises(ValueError, match="repeats"):
        group_importance(FeatureBaseline({"pop": PlaysThePitch()}), songs, repeats=0)


class PlaysThePiecesMeanPitch:
    """A stand-in regressor reading one piece-wide column only."""

    def predict(self, rows):
        return rows[:, FEATURE_NAMES.index("piece_mean_pitch")].astype(np.float64)


def test_within_each_performance_a_piece_wide_column_says_nothing():
    songs = [performance(k, np.full(40, 40 + 15 * k) + np.arange(40) % 3) for k in range(3)]
    tree = FeatureBaseline({"pop": PlaysThePiecesMeanPitch()})
    across, within = (
        {g["group"]: g for g in group_importance(tree, songs, scope=scope)[0]["groups"]}
        for scope in SCOPES)
    assert across["piece"]["mae_increase"] > 5 and across["piece"]["r_drop"] > 0.5
    assert within["piece"]["mae_increase"] == 0 and within["piece"]["r_drop"] == 0
    assert all(g["mae_increase"] == 0 for name, g in within.items())
    with pytest.raises(ValueError, match="scope"):
        group_importance(tree, songs, scope="piece")


def test_shuffled_order_keeps_each_row_in_its_performance():
    rng = np.random.default_rng(3)
    order = _shuffled_order([5, 0, 7, 4], True, rng)
    np.testing.assert_array_equal(np.sort(order), np.arange(16))
    block = np.repeat([0, 2, 3], [5, 7, 4])
    np.testing.assert_array_equal(block[order], block)
    assert (order != np.arange(16)).any()
    mixed = _shuffled_order([5, 0, 7, 4], False, np.random.default_rng(3))
    np.testing.assert_array_equal(np.sort(mixed), np.arange(16))
    assert (block[mixed] != block).any()


def cli(*args):
    return subprocess.run([sys.executable, "-m", "experiments.tree_features", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_command_reports_every_group_for_every_style(tmp_path):
    styles = ("jazz", "pop")
    write_synthetic_corpus(str(tmp_path / "midi"), styles=styles, songs_per_style=6, steps=128)
    build_dataset(str(tmp_path / "midi"), str(tmp_path / "data"), workers=1,
                  log=lambda *_: None)
    train = performances.from_dataset(str(tmp_path / "data"), "train")
    tree = str(tmp_path / "tree.pkl")
    FeatureBaseline.fit(train, log=lambda _: None, max_iter=20, max_leaf_nodes=7,
                        min_samples_leaf=10).save(tree)
    out = tmp_path / "report" / "tree_features.md"
    done = cli(f"--data_dir={tmp_path / 'data'}", f"--features_model={tree}", "--repeats=2",
               "--shuffle_within=performance", f"--out={out}")
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    for group, names in FEATURE_GROUPS.items():
        assert f"| {group} ({len(names)}) |" in text
    assert "jazz MAE rise" in text and "pop r fall" in text and "2 shuffles" in text
    assert "each performance's own notes" in text
    results = json.loads((tmp_path / "report" / "tree_features.json").read_text())
    assert [r["style"] for r in results] == list(styles)
    assert (tmp_path / "report" / "tree_features.png").stat().st_size > 0
    assert "--repeats" in cli("--help").stdout

    cases = [([], "--data_dir is required"),
             ([f"--data_dir={tmp_path / 'data'}", "--repeats=0"], "--repeats"),
             ([f"--data_dir={tmp_path / 'none'}", f"--features_model={tree}"], "none"),
             ([f"--data_dir={tmp_path / 'data'}", f"--features_model={tmp_path / 'x.pkl'}"],
              "no such feature baseline file")]
    for (args, expected), bad in zip(cases, run_side_by_side(
            cli, [a + [f"--out={tmp_path / 'bad.md'}"] for a, _ in cases])):
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and len(lines) == 1 and expected in lines[0], bad.stderr
    assert not (tmp_path / "bad.md").exists()
