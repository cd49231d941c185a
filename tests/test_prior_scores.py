"""How close tree priors come to the pianists: tree_prior.onset_scores and
`experiments.tree_prior --score_only` (out of fold on the training songs, MSE on validation)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from dataset_factory import write_dataset
from stylenet_jax import dataset, encoding, tree_prior

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def song(song_id: str, style: str, onsets: dict, held: dict = ()) -> dataset.Song:
    """A song of 4 steps: onset cells {(step, key): velocity}, held-only cells likewise."""
    inputs, velocities = np.zeros((4, 176), np.uint8), np.zeros((4, 88), np.uint8)
    for (step, key), v in dict(onsets).items():
        inputs[step, 2 * key] = inputs[step, 2 * key + 1] = 1
        velocities[step, key] = v
    for (step, key), v in dict(held).items():
        inputs[step, 2 * key + 1] = 1
        velocities[step, key] = v
    return dataset.Song(song_id, style, inputs, velocities)


def grid(cells: dict) -> np.ndarray:
    out = np.zeros((4, 88), np.uint8)
    for (step, key), v in cells.items():
        out[step, key] = v
    return out


def test_onset_scores_give_mae_and_r_on_onset_cells_by_style_and_over_all():
    songs = [song("a", "classical", {(0, 10): 40, (1, 11): 60, (2, 12): 80}, {(3, 10): 1}),
             song("b", "jazz", {(0, 30): 100, (3, 31): 50}),
             song("c", "jazz", {(1, 5): 70})]  # no prior: left out
    priors = {"a": grid({(0, 10): 50, (1, 11): 60, (2, 12): 90, (3, 10): 127}),
              "b": grid({(0, 30): 90, (3, 31): 70})}
    scores = tree_prior.onset_scores(songs, priors)
    assert list(scores) == ["classical", "jazz", "all"]
    # classical: errors 10, 0, 10 on its onsets (the held cell's 126 does not count)
    assert scores["classical"]["mae"] == pytest.approx(20 / 3)
    assert scores["classical"]["r"] == pytest.approx(np.corrcoef([50, 60, 90], [40, 60, 80])[0, 1])
    assert scores["jazz"] == {"mae": pytest.approx(15.0), "r": pytest.approx(1.0), "cells": 2}
    assert scores["all"]["cells"] == 5 and scores["all"]["mae"] == pytest.approx(50 / 5)
    assert scores["all"]["r"] == pytest.approx(
        np.corrcoef([50, 60, 90, 90, 70], [40, 60, 80, 100, 50])[0, 1])
    assert tree_prior.onset_scores(songs, {}) == {}


def test_a_constant_side_has_no_r_but_still_an_mae():
    songs = [song("a", "pop", {(0, 1): 64, (1, 2): 80})]
    scores = tree_prior.onset_scores(songs, {"a": grid({(0, 1): 64, (1, 2): 64})})
    assert scores["pop"]["mae"] == pytest.approx(8.0) and np.isnan(scores["pop"]["r"])


def score_only(*args):
    return subprocess.run([sys.executable, "-m", "experiments.tree_prior", "--score_only",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_score_only_prints_the_saved_priors_scores_and_writes_nothing(tmp_path):
    data = write_dataset(str(tmp_path / "data"), n_train=2, n_val=1)
    songs = dataset.load_songs(data)
    # every training cell 10 too loud, the validation songs exact
    validation = {s.id for s in dataset.load_songs(data, "validation")}
    louder = {s.id: np.where(encoding.held_channels(s.inputs) > 0, s.velocities + 10, 0)
              for s in songs}
    priors = {s.id: s.velocities if s.id in validation else louder[s.id].astype(np.uint8)
              for s in songs}
    out = tmp_path / "priors"
    tree_prior.save_priors(str(out), priors, {"extras": ["melody_line"]})
    exact = tmp_path / "exact"
    tree_prior.save_priors(str(exact), {s.id: s.velocities for s in songs},
                           {"tree_settings": {"max_iter": 9}})
    before = sorted(os.listdir(out))
    done = score_only(f"--data_dir={data}", f"--out_dir={out}")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == (f"{out} (extras: melody_line; trees: default), {len(songs)} songs of "
                        f"{data}")
    assert lines[1].endswith("classical 0.00000, jazz 0.00000, all 0.00000")
    assert lines[2].startswith("out-of-fold MAE / r on the training songs' onset cells: "
                               "classical 10.00 / 1.000, jazz 10.00 / 1.000, all 10.00 /")
    assert sorted(os.listdir(out)) == before
    done = score_only(f"--data_dir={data}", f"--out_dir={out}", f"--against={exact}")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[3].startswith(f"{exact} (extras: none; trees: max_iter 9)")
    assert lines[4] == f"out of fold, {out} minus {exact} (95% intervals over training pieces):"
    assert [line.split(", r ")[0] for line in lines[5:]] == [
        f"  {style}: MAE +10.000 [+10.000, +10.000]" for style in ("classical", "jazz")]
    assert sorted(os.listdir(out)) == before
    done = subprocess.run([sys.executable, "-m", "experiments.tree_prior", f"--data_dir={data}",
                           f"--out_dir={out}", f"--against={exact}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == (
        "error: --against compares priors already made; add --score_only")


def test_paired_scores_resample_pieces_and_skip_songs_without_both_priors():
    songs = [song(f"s{i}", "jazz", {(0, 1): 60 + i, (2, 3): 90 - i})._replace(piece=piece)
             for i, piece in enumerate(["p", "p", "q", "r"])]  # two performances of p
    human = {s.id: grid({(0, 1): 60 + i, (2, 3): 90 - i}) for i, s in enumerate(songs)}
    worse = {k: np.where(g > 0, g + 4, 0).astype(np.uint8) for k, g in human.items()}
    del human["s3"]  # only songs with both priors count
    paired = tree_prior.paired_onset_scores(songs, worse, human, resamples=50)
    assert list(paired) == ["jazz"] and paired["jazz"]["pieces"] == 2
    jazz = paired["jazz"]
    assert jazz["mae"] == jazz["mae_lo"] == jazz["mae_hi"] == pytest.approx(-4.0)
    assert jazz["pearson_r"] == pytest.approx(0.0, abs=1e-12)


def test_score_only_refuses_priors_of_another_build_in_one_line(tmp_path):
    data = write_dataset(str(tmp_path / "data"), n_train=2, n_val=1)
    out = tmp_path / "priors"
    tree_prior.save_priors(str(out), {"other_song": np.zeros((4, 88), np.uint8)}, {})
    done = score_only(f"--data_dir={data}", f"--out_dir={out}")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (f"error: {out}: no priors for the songs of {data}; were "
                                   "they made for another build?")
    missing = score_only(f"--data_dir={data}", f"--out_dir={tmp_path / 'none'}")
    assert missing.returncode == 2 and "no priors.json" in missing.stderr
