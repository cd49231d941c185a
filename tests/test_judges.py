"""stylenet_jax.judges and experiments.judges: each judge, on every piece or one half, finds
a system that differs from the pianist and not one that plays as he does; the report has a
row per system; bad input is one line and writes nothing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import judges as app
from midi_factory import midi_file, notes_track
from stylenet_jax import human_classifier, judges, statistics_judge
from tests.test_classifier_features import performed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pianists(count: int = 60) -> list:
    """``count`` one-excerpt performances of as many pieces (the trees split no fewer than
    40 rows: 20 training pairs, each in both orders)."""
    rng = np.random.default_rng(3)
    return [performed(f"p{k}", rng) for k in range(count)]


@pytest.mark.parametrize("name", judges.NAMES)
def test_each_judge_scores_every_piece_once_with_both_halves(name):
    pianist = pianists()
    flattened = [np.full(16, 64) for _ in pianist]  # no dynamics at all
    pairs = human_classifier.make_pairs(pianist, flattened)
    both = judges.score(pairs, name, seed=0, steps=60)
    one = judges.score(pairs, name, seed=0, steps=60, both_halves=False)
    assert both["pieces"] == 60 and one["pieces"] == 30
    assert both["pairs"] == len(pairs) == 2 * one["pairs"]
    assert both["accuracy"] >= 0.9 and one["accuracy"] >= 0.9
    assert both["ci95"][0] <= both["accuracy"] <= both["ci95"][1]
    assert len(both["halves"]) == 2 and np.isclose(np.mean(both["halves"]), both["accuracy"])
    same = human_classifier.make_pairs(pianist, [p.notes.velocity for p in pianist])
    assert judges.score(same, name, seed=0, steps=60)["accuracy"] == 0.5  # every pair a tie


def test_the_wider_judge_is_the_classifier_wider_and_trained_longer(monkeypatch):
    seen = []
    monkeypatch.setattr(human_classifier, "train_and_score",
                        lambda train, test, **kw: seen.append(kw) or {})
    judges.trainer("classifier", 50)([], [], seed=3)
    judges.trainer("wider", 50)([], [], seed=3)
    assert seen[0] == dict(steps=50, batch_size=judges.EXCERPT_BATCH, seed=3)
    assert seen[1] == dict(steps=50 * judges.WIDER_STEP_FACTOR, batch_size=judges.EXCERPT_BATCH,
                           seed=3, width=judges.WIDER_WIDTH)
    with pytest.raises(ValueError, match="unknown judge 'ears'"):
        judges.trainer("ears")


def test_the_report_and_picture_have_a_row_per_system(tmp_path):
    pianist = [p._replace(style="classical") if k % 2 else p  # four pieces of each style
               for k, p in enumerate(pianists(8))]
    played = {"flat": [np.full(16, 64) for _ in pianist],
              "same": [p.notes.velocity.astype(np.int64) for p in pianist]}
    results = app.judge_all(pianist, played, ["classifier", "trees"], excerpt_seconds=10.0,
                            seed=0, both_halves=True, steps=40)
    assert list(results) == ["flat", "same"] and list(results["flat"]) == ["classifier", "trees"]
    assert results["same"]["trees"]["accuracy"] == 0.5 and results["flat"]["trees"]["pieces"] == 8
    # Each style's share of the same scored pairs, by the same judge: together the whole.
    for judged in results["flat"].values():
        by_style = judged["by_style"]
        assert sorted(by_style) == ["classical", "jazz"]
        assert [by_style[s]["pieces"] for s in ("classical", "jazz")] == [4, 4]
        assert sum(r["pairs"] for r in by_style.values()) == judged["pairs"]
        assert sum(r["accuracy"] * r["pairs"] for r in by_style.values()) == pytest.approx(
            judged["accuracy"] * judged["pairs"])
    text = app.render(results, command="c", data="d", described={"flat": "f", "same": "s"},
                      seconds=1.0, picture="j.png", both_halves=True, excerpt_seconds=10.0)
    pooled, per_style = text.split("Style by style (classical / jazz)")
    per_style, tells = per_style.split("Tells: the 3 excerpt statistics")
    table = [line for line in pooled.splitlines() if line.startswith("| ")]
    assert len(table) == 3 and all(line.count("|") == 4 for line in table)  # header + 2 rows
    assert "| `same` | 0.500 [0.500, 0.500] | 0.500 [0.500, 0.500] |" in text
    assert "| `same` | 0.50 / 0.50 | 0.50 / 0.50 |" in per_style
    assert [line.split("`")[1] for line in per_style.splitlines()
            if line.startswith("| `")] == ["flat", "same"]
    assert "every piece, each half" in text and "8 pieces per system" in text
    # The trees say what gives a system away: a flat one has less spread than the pianist.
    flat_tells = results["flat"]["trees"]["tells"]
    assert list(flat_tells) == ["all", "classical", "jazz"] and "tells" not in results[
        "flat"]["classifier"]
    assert len(flat_tells["all"]) == len(statistics_judge.STATISTIC_NAMES)
    assert flat_tells["all"]["sd"] > 1 and flat_tells["all"]["p95 - p5"] > 1
    assert not any(results["same"]["trees"]["tells"]["all"].values())  # nothing differs
    rows = [line for line in tells.splitlines() if line.startswith("| `")]
    assert len(rows) == 2 and rows[0].count(";") == 3 * 2 and "| all | classical | jazz |" in tells
    picture = app.plot(str(tmp_path / "j.png"), results)
    assert os.path.getsize(picture) > 1000


def test_the_style_table_marks_each_style_above_the_target_and_a_style_not_scored():
    def judged(**by_style):
        return {"accuracy": 0.6, "lo": 0.5, "hi": 0.7, "pairs": 10, "pieces": 2,
                "by_style": {s: {"accuracy": a, "lo": a, "hi": a, "pairs": 5, "pieces": 1}
                             for s, a in by_style.items()}}

    lines = app._by_style_table({"a": {"trees": judged(jazz=0.64, pop=0.58)},
                                 "b": {"trees": judged(pop=0.601)}}, ["trees"])
    assert "Style by style (jazz / pop)" in lines[1]
    assert lines[-2:] == ["| `a` | **0.64** / 0.58 |", "| `b` | - / **0.60** |"]
    assert app._by_style_table({"a": {"trees": {"accuracy": 0.5}}}, ["trees"]) == []


def test_judges_are_checked_before_any_work():
    assert app.check_judges(["trees", " wider"]) == ["trees", "wider"]
    for bad in ([], ["trees", "trees"], ["ears"]):
        with pytest.raises(ValueError, match="choose distinct judges"):
            app.check_judges(bad)


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "j.md"
    for args, said in (([], "exactly one of --data_dir and --midi_dir"),  # the rest of the
                       # input checks are classifier_features' (experiments.excerpt_judging)
                       ([f"--midi_dir={tmp_path}", "--judges=ears"], "choose distinct judges")):
        done = subprocess.run([sys.executable, "-m", "experiments.judges", f"--out={out}",
                               *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and said in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_the_command_writes_a_row_per_system_and_its_json_and_picture(tmp_path):
    folder = tmp_path / "human"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for k in range(4):  # about 24 s each: quavers at 120 bpm, random keys and velocities
        notes = [(i * 240, i * 240 + 200, int(rng.integers(40, 80)), int(rng.integers(20, 110)))
                 for i in range(96)]
        midi_file(notes_track(notes), ticks_per_beat=480).save(str(folder / f"piece{k}.mid"))
    out = tmp_path / "report" / "j.md"
    done = subprocess.run([sys.executable, "-m", "experiments.judges", f"--midi_dir={folder}",
                           "--files_style=classical", "--baselines=constant",
                           "--humanize=scattered=model:1", "--per_style=chosen=classical:"
                           "constant", "--judges=trees", "--noprogress", f"--out={out}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    pooled, per_style = text.split("Style by style (classical)")
    per_style, tells = per_style.split("Tells:")
    rows = [line for line in pooled.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == ["model", "constant", "scattered", "chosen"]
    assert len([line for line in per_style.splitlines() if line.startswith("| `")]) == 4
    assert len([line for line in tells.splitlines() if line.startswith("| `")]) == 4
    results = json.loads((tmp_path / "report" / "j.json").read_text())
    assert list(results) == ["model", "constant", "scattered", "chosen"]
    # Every piece is classical, so the per-style system plays what the constant does, and the
    # same judge on the same pairs with the same seed scores it the same.
    assert results["chosen"]["trees"]["accuracy"] == results["constant"]["trees"]["accuracy"]
    assert results["chosen"]["trees"]["tells"] == results["constant"]["trees"]["tells"]
    assert all(list(row) == ["trees"] and row["trees"]["pieces"] == 4
               and list(row["trees"]["tells"]) == ["all", "classical"]
               for row in results.values())
    assert f"| {results['model']['trees']['accuracy']:.3f} [" in rows[0]
    assert "(j.png)" in text and (tmp_path / "report" / "j.png").stat().st_size > 1000
