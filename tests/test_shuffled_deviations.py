"""stylenet_jax.shuffled_deviations and experiments.evaluate --shuffled_deviations: the oracle
that adds the pianist's own deviations, shuffled, to a system's velocities."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from midi_factory import midi_file, notes_track
from stylenet_jax import error_breakdown, evaluation, performances, shuffled_deviations

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def performed(tmp_path):
    """Three performances (two classical, one jazz) of 48 notes, in phrases of 12 notes played
    soft (30..59) and loud (80..109) in turn."""
    for style, seed in (("classical", 1), ("classical", 2), ("jazz", 3)):
        rng = np.random.default_rng(seed)
        notes = [(i * 240, i * 240 + 200, int(rng.integers(40, 90)),
                  30 + 50 * (i // 12 % 2) + int(rng.integers(0, 30))) for i in range(48)]
        os.makedirs(tmp_path / style, exist_ok=True)
        midi_file(notes_track(notes)).save(str(tmp_path / style / f"piece{seed}.mid"))
    return performances.from_folder(str(tmp_path))


def test_the_deviations_are_the_pianists_permuted_and_clipped():
    human = np.array([10, 20, 30, 40, 50, 60, 70, 80])
    played = np.array([15, 15, 35, 35, 55, 55, 75, 75])
    mine = shuffled_deviations.shuffled(human, played, np.random.default_rng(0))
    assert mine.dtype == np.int64 and mine.shape == human.shape
    assert sorted(mine - played) == sorted(human - played)
    assert not np.array_equal(mine, human)  # the deviations land on other notes
    again = shuffled_deviations.shuffled(human, played, np.random.default_rng(0))
    np.testing.assert_array_equal(mine, again)
    human = np.arange(10, 110, 10)  # around a constant: the pianist's velocities reordered
    for runs in (np.arange(10) // 4, np.arange(10) % 3):  # in a row, or notes apart
        within = shuffled_deviations.shuffled(human, np.full(10, 60),
                                              np.random.default_rng(0), runs)
        for run in range(runs.max() + 1):
            assert sorted(within[runs == run]) == sorted(human[runs == run])
        assert not np.array_equal(within, human)
    loud = shuffled_deviations.shuffled(np.array([127, 1]), np.array([1, 127]),
                                        np.random.default_rng(0))
    assert loud.min() >= 1 and loud.max() <= 127


def test_around_a_constant_the_oracle_is_each_pianists_velocities_reordered(performed):
    flat = [np.full(len(p.notes), 64, np.int64) for p in performed]
    result = evaluation.Evaluation({"flat": {}}, {"flat": flat})
    oracle = shuffled_deviations.parse("dev=flat", ["flat"])
    added = shuffled_deviations.add(result, performed, [oracle], seed=0)
    assert list(result.velocities) == ["flat"]  # the input is left as it was
    assert [len(added.comparisons["dev"][s]) for s in ("classical", "jazz")] == [2, 1]
    for human, mine in zip(performed, added.velocities["dev"]):
        assert sorted(mine) == sorted(human.notes.velocity.astype(np.int64))
        assert not np.array_equal(mine, human.notes.velocity)
    first = added.comparisons["dev"]["classical"][0]
    np.testing.assert_array_equal(first.predicted, added.velocities["dev"][0])
    np.testing.assert_array_equal(first.human, performed[0].notes.velocity)
    runs = shuffled_deviations.parse("dev16=flat:16", ["flat"])
    within = shuffled_deviations.add(result, performed, [runs], seed=0)
    for human, mine in zip(performed, within.velocities["dev16"]):
        phrase = error_breakdown.phrase_runs(human, 16)  # the runs of every report's phrase r
        for run in range(phrase.max() + 1):
            assert sorted(mine[phrase == run]) == sorted(human.notes.velocity[phrase == run])
    same = shuffled_deviations.add(result, performed, [oracle], seed=0)
    other = shuffled_deviations.add(result, performed, [oracle], seed=1)
    for a, b, c in zip(added.velocities["dev"], same.velocities["dev"],
                       other.velocities["dev"]):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_a_block_is_read_and_described():
    whole = shuffled_deviations.parse("dev=flat", ["flat"])
    assert whole.block is None and "among the notes of each performance" in whole.description
    runs = shuffled_deviations.parse("dev16 = flat:16", ["flat"])
    assert (runs.name, runs.part, runs.block) == ("dev16", "flat", 16)
    assert "within each run of 16 consecutive notes" in runs.description


@pytest.mark.parametrize("spec, words", [("dev", "expected NAME=SYSTEM"),
                                         ("dev=tree", "expected NAME=SYSTEM"),
                                         ("dev=tree:8", "expected NAME=SYSTEM"),
                                         ("=flat", "expected NAME=SYSTEM"),
                                         ("flat=flat", "already the name"),
                                         ("dev=flat:1", "block K must be an integer of 2"),
                                         ("dev=flat:x", "block K must be an integer of 2")])
def test_a_bad_spec_is_one_line(spec, words):
    with pytest.raises(ValueError, match=words) as raised:
        shuffled_deviations.parse(spec, ["flat"])
    assert "\n" not in str(raised.value)


@pytest.mark.slow  # runs the evaluation command twice (15 s on 2 cores); CI runs it
def test_the_command_scores_the_oracle_beside_the_systems_and_refuses_a_bad_one(performed,
                                                                              tmp_path):
    out = tmp_path / "report.md"
    args = [sys.executable, "-m", "experiments.evaluate", f"--midi_dir={tmp_path}",
            "--baselines=constant", f"--out={out}", "--resamples=20",
            "--noprogress", "--noclassifier", "--plot_pieces=0"]
    bad = subprocess.run(args + ["--shuffled_deviations=dev=tree"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "--shuffled_deviations 'dev=tree'" in bad.stderr and not out.exists()
    run = subprocess.run(args + ["--shuffled_deviations=dev=constant",
                                 "--shuffled_deviations=dev8=constant:8"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "oracle, not a system: constant plus the pianist's own deviations" in out.read_text()
    assert "shuffled within each run of 8 consecutive notes" in out.read_text()
    scores = json.loads((tmp_path / "report.json").read_text())
    for style in ("classical", "jazz"):
        for oracle in ("dev", "dev8"):
            assert scores[oracle][style]["notes"] == scores["constant"][style]["notes"] > 0
            # around a constant, each performance's velocities reordered: the pianist's spread
            assert scores[oracle][style]["std_ratio"] == pytest.approx(1.0)
        # runs of 8 notes keep the phrases' levels; shuffling the whole piece loses them
        assert scores["dev8"][style]["pearson_r"] > 0.5 > scores["dev"][style]["pearson_r"]
