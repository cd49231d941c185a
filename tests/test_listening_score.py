"""experiments.listening_score: the listeners' CSVs against the answer key."""

import math
import os
import subprocess
import sys

import pytest

from experiments import listening_score
from performer_factory import ROOT

KEY = """kit,pair,kind,system,human,style,piece,performance,file,start_s,seconds
k9,1,excerpt,model,A,jazz,p1,p1,/x/p1.mid,0.0,10.0
k9,2,excerpt,features,B,jazz,p1,p1,/x/p1.mid,0.0,10.0
k9,3,excerpt,model,B,classical,p2,p2,/x/p2.mid,3.0,10.0
k9,4,whole,model,A,classical,p2,p2,/x/p2.mid,0.0,60.0
"""
HEADER = "kit,listener,pair,answer,answered_at\n"


def _kit(tmp_path):
    (tmp_path / "kit").mkdir()
    (tmp_path / "kit" / "answer_key.csv").write_text(KEY)
    return str(tmp_path / "kit")


def _answers(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text(HEADER + "".join(f"{r}\n" for r in rows))
    return str(path)


def score(*args):
    return subprocess.run([sys.executable, "-m", "experiments.listening_score", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_binomial_and_wilson_against_known_values():
    assert listening_score.binomial_p(8, 10) == pytest.approx(0.109375)
    assert listening_score.binomial_p(5, 10) == pytest.approx(1.0)
    assert listening_score.binomial_p(0, 0) == 1.0
    low, high = listening_score.wilson(53, 100)
    assert (low, high) == pytest.approx((0.4328, 0.6251), abs=5e-4)
    assert listening_score.wilson(0, 0) == (0.0, 1.0)
    assert math.isclose(sum(listening_score.wilson(10, 10)), 1.0 + 0.7225, abs_tol=5e-4)


def test_counts_identified_missed_and_cannot_tell_per_system_and_listener(tmp_path):
    kit = _kit(tmp_path)
    ann = _answers(tmp_path, "ann.csv", [
        "k9,ann,1,A,2026-01-01T10:00:00Z",  # model, right
        "k9,ann,2,A,2026-01-01T10:01:00Z",  # features, wrong
        "k9,ann,3,cannot tell,2026-01-01T10:02:00Z",
        "k9,ann,4,A,2026-01-01T10:03:00Z"])  # whole piece, right
    bob = _answers(tmp_path, "bob.csv", [
        "k9,bob,1,B,2026-01-01T10:00:00Z",  # first said B (wrong)...
        "k9,bob,3,B,2026-01-01T10:00:00Z"])
    bob_again = _answers(tmp_path, "bob2.csv", ["k9,bob,1,A,2026-01-01T11:00:00Z"])  # ...then A
    key = listening_score.read_key(kit)[1]
    answers = listening_score.read_answers([ann, bob, bob_again], "k9", key)
    assert answers[("bob", 1)] == "A" and len(answers) == 6
    systems = listening_score.tally(answers, key, "system")
    assert systems["model"] == {"answers": 4, "identified": 3, "missed": 0, "cannot tell": 1}
    assert systems["features"] == {"answers": 1, "identified": 0, "missed": 1,
                                   "cannot tell": 0}
    assert systems["model (whole piece)"]["identified"] == 1
    done = score(f"--kit={kit}", ann, bob, bob_again, f"--out={tmp_path / 'r.md'}")
    assert done.returncode == 0, done.stderr
    assert "| model | 4 | 1.00 [0.44, 1.00] | 0.25 | 0.25 |" in done.stdout
    assert "| ann | 4 |" in done.stdout and "6 answers from 2 listener(s)" in done.stdout
    assert (tmp_path / "r.md").read_text() == done.stdout


def test_answers_to_another_kit_or_pair_or_bad_files_are_one_line_exit_2(tmp_path):
    kit = _kit(tmp_path)
    cases = [
        (_answers(tmp_path, "other.csv", ["k1,ann,1,A,t"]), "not this kit (k9)"),
        (_answers(tmp_path, "pair.csv", ["k9,ann,7,A,t"]), "no pair 7"),
        (_answers(tmp_path, "answer.csv", ["k9,ann,1,maybe,t"]), "'maybe' is not one of"),
        (str(tmp_path / "missing.csv"), "cannot read it"),
    ]
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n")
    cases.append((str(tmp_path / "cols.csv"), "not a listening-test answer file"))
    for path, expected in cases:
        done = score(f"--kit={kit}", path)
        assert done.returncode == 2 and expected in done.stderr, (path, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
    assert "answer key" in score(f"--kit={tmp_path}", cases[0][0]).stderr
    assert score(f"--kit={kit}").returncode == 2
    assert "--kit" in score("--help").stdout  # absl's help (it exits 1, as every absl app)
    assert not os.path.exists(tmp_path / "r.md")
