"""stylenet_jax.second_pianist (two performances of a piece matched note by note) and the
experiments.second_pianist report."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from midi_factory import midi_file, notes_track
from performer_factory import ROOT
from experiments import second_pianist_figure
from stylenet_jax import performances, second_pianist

TPB = 480
STEP = TPB // 4  # a 1/16 note


def _write(path, notes):
    """(step, pitch, velocity) notes, each a 1/16 long, a few ticks off the grid."""
    midi_file(notes_track([(s * STEP + 7, s * STEP + STEP - 10, p, v) for s, p, v in notes]),
              ticks_per_beat=TPB).save(path)


def _pair(tmp_path):
    """Two performances of one piece: A with a key struck twice on step 2 and a note B lacks,
    B with a note A lacks; three notes shared."""
    os.makedirs(tmp_path / "classical")
    _write(str(tmp_path / "classical" / "a.mid"),
           [(0, 60, 50), (0, 64, 52), (2, 67, 70), (2, 67, 71), (4, 72, 40), (6, 48, 30)])
    _write(str(tmp_path / "classical" / "b.mid"),
           [(0, 60, 80), (0, 64, 82), (2, 67, 90), (4, 72, 60), (5, 74, 20)])
    (tmp_path / "manifest.csv").write_text(
        "file,piece\nclassical/a.mid,minuet\nclassical/b.mid,minuet\n")
    return performances.from_folder(str(tmp_path))


def test_shared_notes_are_the_keys_both_strike_once_on_one_step(tmp_path):
    a, b = _pair(tmp_path)
    assert a.piece == b.piece == "minuet"
    ia, ib = second_pianist.shared_notes(a, b)
    assert a.notes.pitch[ia].tolist() == b.notes.pitch[ib].tolist() == [60, 64, 72]
    assert a.notes.velocity[ia].tolist() == [50, 52, 40]
    assert b.notes.velocity[ib].tolist() == [80, 82, 60]
    back_b, back_a = second_pianist.shared_notes(b, a)
    assert sorted(back_a.tolist()) == sorted(ia.tolist())


def test_comparisons_score_every_ordered_pair_on_the_shared_notes(tmp_path):
    a, b = _pair(tmp_path)
    flat = [np.full(len(p.notes), 64) for p in (a, b)]
    pairs = second_pianist.shared_pairs([a, b], {"flat": flat})
    assert [p.pianist.notes.pitch.tolist() for p in pairs] == [[60, 64, 72]] * 2
    assert pairs[0].pianist.seconds.shape == (3,) and pairs[0].played == len(a.notes)
    compared, counts = second_pianist.comparisons(pairs)
    assert counts == {"pieces": 1, "pairs": 2, "shared_notes": 6,
                      "shared_share": 6 / (len(a.notes) + len(b.notes))}
    other = compared[second_pianist.ANOTHER_PIANIST]["classical"]
    assert [c.human.tolist() for c in other] == [[50, 52, 40], [80, 82, 60]]
    assert [c.predicted.tolist() for c in other] == [[80, 82, 60], [50, 52, 40]]
    assert [c.predicted.tolist() for c in compared["flat"]["classical"]] == [[64] * 3] * 2
    assert second_pianist.shared_pairs([a], {"flat": flat[:1]}) == []  # one performance
    c = a._replace(piece="another piece")
    assert second_pianist.with_others([a, c, b]) == [a, b]


def test_a_tolerance_matches_a_key_struck_a_step_or_more_apart_once(tmp_path):
    os.makedirs(tmp_path / "classical")
    _write(str(tmp_path / "classical" / "a.mid"),
           [(0, 60, 50), (3, 70, 51), (5, 70, 52), (8, 50, 53), (10, 52, 54)])
    _write(str(tmp_path / "classical" / "b.mid"),
           [(0, 60, 80), (4, 70, 81), (9, 50, 82), (10, 52, 83), (11, 52, 84)])
    (tmp_path / "manifest.csv").write_text(
        "file,piece\nclassical/a.mid,etude\nclassical/b.mid,etude\n")
    a, b = performances.from_folder(str(tmp_path))
    exact = second_pianist.shared_notes(a, b)
    assert [x.tolist() for x in exact] == [[0, 4], [0, 3]]
    near = second_pianist.shared_notes(a, b, tolerance=1)
    # A's step-3 key takes B's step 4, so A's step-5 key finds it taken; the step-10 key is
    # matched on its own step, never to B's step 11
    assert [x.tolist() for x in near] == [[0, 1, 3, 4], [0, 1, 2, 3]]
    assert [x.tolist() for x in second_pianist.shared_notes(a, b, tolerance=2)] == \
        [x.tolist() for x in near]
    pairs = second_pianist.shared_pairs([a, b], {}, tolerance=1)
    assert pairs[0].versions[second_pianist.ANOTHER_PIANIST].tolist() == [80, 81, 82, 83]
    assert pairs[1].pianist.notes.velocity.tolist() == [80, 81, 82, 83]
    with pytest.raises(ValueError, match="tolerance"):
        second_pianist.shared_notes(a, b, tolerance=-1)


def _phrased_pair(tmp_path):
    """Two performances of 48 single notes: B plays A's three 16-note phrase levels 10
    louder, each phrase's texture reversed."""
    os.makedirs(tmp_path / "classical")
    a = [(16 * run + i, 60 + i, level + t) for run, level in enumerate(PHRASE_LEVELS)
         for i, t in enumerate(TEXTURE)]
    _write(str(tmp_path / "classical" / "a.mid"), a)
    _write(str(tmp_path / "classical" / "b.mid"),
           [(step, pitch, v + 10 - 2 * TEXTURE[step % 16]) for step, pitch, v in a])
    (tmp_path / "manifest.csv").write_text(
        "file,piece\nclassical/a.mid,etude\nclassical/b.mid,etude\n")
    return performances.from_folder(str(tmp_path))


PHRASE_LEVELS, TEXTURE = [40, 80, 60], [5, -5] * 8


def test_level_and_shape_score_another_pianist_on_the_shared_notes(tmp_path):
    played = _phrased_pair(tmp_path)
    pairs = second_pianist.shared_pairs(played, {"flat": [np.full(48, 64)] * 2})
    shape = second_pianist.level_and_shape(pairs)
    other = shape[second_pianist.ANOTHER_PIANIST]["classical"]
    assert other["level_bias"] == pytest.approx(0)  # +10 one way, -10 the other
    assert other["level_mae"] == pytest.approx(10)
    assert np.isnan(other["level_r"])  # two pairs: too few levels to correlate
    assert other["phrase_r"] == pytest.approx(1)  # the same phrase levels
    assert other["in_phrase_mae"] == pytest.approx(10) == other["centred_mae"]
    flat = shape["flat"]["classical"]
    assert np.isnan(flat["phrase_r"]) and flat["centred_mae"] == pytest.approx(
        np.mean(np.abs(np.repeat([-20, 20, 0], 16) + TEXTURE * 3)))
    assert second_pianist.level_and_shape([]) == {}
    # the flat system at B's phrase levels: 64 moved by B's three run deviations, -20, +20, 0
    moved = second_pianist.at_other_phrases(pairs, "flat", "phrased")
    assert moved[0].versions["phrased"].tolist() == [44] * 16 + [84] * 16 + [64] * 16
    assert moved[0].versions["flat"] is pairs[0].versions["flat"]  # the others kept
    assert "phrased" not in pairs[0].versions  # the input left alone
    oracle = second_pianist.level_and_shape(moved)["phrased"]["classical"]
    assert oracle["phrase_r"] == pytest.approx(1) and oracle["in_phrase_mae"] == pytest.approx(5)


def test_at_other_phrases_keeps_the_systems_shape_and_level(tmp_path):
    """Within each phrase the oracle moves every note by one amount: the system's shape and
    overall level stay, and the phrases' levels are another pianist's."""
    played = _phrased_pair(tmp_path)
    rng = np.random.default_rng(0)
    system = [rng.integers(30, 100, 48) for _ in played]
    moved = second_pianist.at_other_phrases(
        second_pianist.shared_pairs(played, {"system": system}), "system", "x")
    for pair in moved:
        oracle, system = (pair.versions[n].reshape(3, 16) for n in ("x", "system"))
        assert np.ptp(oracle - system, axis=1).max() <= 1  # one amount a phrase, rounded
        assert oracle.mean() == pytest.approx(system.mean(), abs=0.5)
        levels = oracle.mean(axis=1) - oracle.mean()
        assert levels == pytest.approx([-20, 20, 0], abs=0.5)  # the other pianist's
        assert pair.versions["x"].dtype == np.int64


def test_the_picture_draws_the_phrase_levels_of_the_pair_with_most_shared_notes(tmp_path):
    played = _phrased_pair(tmp_path)
    pairs = second_pianist.shared_pairs(played, {"flat": [np.full(48, 64)] * 2})
    assert second_pianist.phrase_levels(pairs[0], None) == pytest.approx([-20, 20, 0])
    other = second_pianist.phrase_levels(pairs[0], second_pianist.ANOTHER_PIANIST)
    assert other == pytest.approx([-20, 20, 0])  # B's levels, 10 louder, set aside
    assert second_pianist.phrase_levels(pairs[0], "flat") == pytest.approx([0, 0, 0])
    path = second_pianist_figure.plot(str(tmp_path / "levels.png"), pairs, ["flat", "absent"])
    assert path == str(tmp_path / "levels.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert second_pianist_figure.plot(str(tmp_path / "none.png"), [], ["flat"]) is None
    assert not (tmp_path / "none.png").exists()


@pytest.mark.parametrize("spec, message", [
    ("phrased", "expected NAME=SYSTEM"), ("=model", "expected NAME=SYSTEM"),
    ("phrased=nobody", "expected NAME=SYSTEM"), ("features=model", "already"),
    (f"{second_pianist.ANOTHER_PIANIST}=model", "already")])
def test_a_bad_at_other_phrases_spec_is_refused_in_one_line(spec, message):
    with pytest.raises(ValueError, match=message) as refused:
        second_pianist.parse_at_other_phrases(spec, ["model", "features"])
    assert "\n" not in str(refused.value)
    assert second_pianist.parse_at_other_phrases(" p = model ", ["model"]) == ("p", "model")


@pytest.mark.slow
def test_the_report_scores_another_pianist_and_refuses_what_it_cannot_pair(tmp_path):
    _pair(tmp_path)
    out = tmp_path / "report.md"
    args = [sys.executable, "-m", "experiments.second_pianist", f"--midi_dir={tmp_path}",
            "--baselines=constant", "--resamples=50", "--noprogress"]
    run = subprocess.run(args + [f"--out={out}", "--at_other_phrases=constant_phrased=constant"],
                         cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "the classifier needs two pieces" in run.stderr  # one piece: no split to train on
    report = out.read_text()
    assert "| another_pianist | 26.67 [" in report and "| model |" in report
    assert "| constant |" in report and "2 ordered pairs" in report
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["counts"]["pairs"] == 2
    # the constant at B's levels: one phrase of 3 notes, so the constant itself
    assert saved["scores"]["constant_phrased"]["classical"]["mae"] == pytest.approx(
        saved["scores"]["constant"]["classical"]["mae"])
    assert "| constant_phrased |" in report and "oracle, not a system" in report
    assert "![Phrase levels of the pair" in report and "(report.png)" in report
    assert (tmp_path / "report.png").stat().st_size > 0
    # levels 47.3 and 74 on the shared notes; deviations (2.7, 4.7, -7.3) and (6, 8, -14)
    assert "| another_pianist | +0.0 / 26.7 / - / 4.4 / - / 4.4 |" in report
    assert saved["paired"]["constant"]["classical"]["mae"] == pytest.approx(
        saved["scores"]["constant"]["classical"]["mae"] - 80 / 3)
    bad = subprocess.run(args + [f"--out={tmp_path / 'bad.md'}", "--model=m=/nonexistent.npz"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert not (tmp_path / "bad.md").exists()
    negative = subprocess.run(args + [f"--out={tmp_path / 'bad.md'}", "--tolerance=-1"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert negative.returncode == 2 and "--tolerance" in negative.stderr
    twice = subprocess.run(args + [f"--out={tmp_path / 'bad.md'}", "--at_other_phrases=p=model",
                                   "--at_other_phrases=p=constant"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert twice.returncode == 2 and "each NAME once" in twice.stderr
    assert not (tmp_path / "bad.md").exists()
    (tmp_path / "manifest.csv").write_text("file,piece\n")  # each file its own piece
    lonely = subprocess.run(args + [f"--out={tmp_path / 'lonely.md'}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert lonely.returncode == 2 and "no piece has two performances" in lonely.stderr
    assert not (tmp_path / "lonely.md").exists()


def test_nopedals_hides_pianist_as_pedals_from_the_systems(tmp_path):
    import mido
    _pair(tmp_path)
    pressed = [(0, mido.Message("control_change", control=67, value=127)),  # soft pedal down
               (0, mido.Message("control_change", control=64, value=127))]  # sustain down
    midi_file(notes_track([(s * STEP + 7, s * STEP + STEP - 10, p, v) for s, p, v in
                           [(0, 60, 50), (0, 64, 52), (2, 67, 70), (4, 72, 40), (6, 48, 30)]],
                          extra=pressed), ticks_per_beat=TPB).save(str(tmp_path / "classical"
                                                                        / "a.mid"))
    args = [sys.executable, "-m", "experiments.second_pianist", f"--midi_dir={tmp_path}",
            "--baselines=features", "--resamples=20", "--noprogress", "--noclassifier",
            "--plot_systems="]
    scores = {}
    for told in ("--pedals", "--nopedals"):
        out = tmp_path / f"report{told}.md"
        run = subprocess.run(args + [told, f"--out={out}"], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert ("told of no pedal" in out.read_text()) == (told == "--nopedals")
        saved = json.loads(out.with_suffix(".json").read_text())
        scores[told] = saved["scores"]["features"]["classical"]["mae"]
    # the shipped tree reads A's pedals (B's file has none): only A's notes can move
    assert scores["--pedals"] != scores["--nopedals"], scores
