"""experiments.classifier_features: the classifier retrained with features hidden finds a
difference only through the features that carry it; bad input is one line."""

import os
import subprocess
import sys

import numpy as np

from experiments import classifier_features as cf
from side_by_side import run_side_by_side
from stylenet_jax import human_classifier, midi
from stylenet_jax.performances import Performed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def performed(piece: str, rng: np.random.Generator, notes: int = 16) -> Performed:
    """``notes`` notes 0.25 s apart (one 10-second excerpt), random keys and velocities,
    every third a two-note chord with the one before."""
    gaps = np.where(np.arange(notes) % 3 == 0, 0, 240)
    start = np.cumsum(gaps).astype(np.int64)
    n = notes
    velocity = rng.integers(30, 100, n).astype(np.uint8)
    midi_notes = midi.Notes(pitch=rng.integers(40, 90, n).astype(np.int16), start=start,
                            end=start + 240, velocity=velocity, channel=np.zeros(n, np.uint8),
                            track=np.zeros(n, np.int32), index=np.arange(n, dtype=np.int32))
    return Performed(piece, "jazz", piece, f"{piece}.mid", midi_notes, 480, start / 960.0)


def test_a_level_shift_is_seen_only_by_the_absolute_velocity():
    rng = np.random.default_rng(0)
    pianist = [performed(f"p{k}", rng) for k in range(40)]
    louder = [p.notes.velocity.astype(np.int64) + 12 for p in pianist]  # same shape, +12
    result = cf.ablate(pianist, louder, excerpt_seconds=10.0, seed=0, steps=80)
    assert list(result) == [*cf.RULES, *cf.CONDITIONS, *cf.JUDGES]
    for rule in cf.RULES:  # a shift changes no shape but the softest note's
        assert result[rule]["accuracy"] == (1.0 if rule == "lower softest note" else 0.5)
    assert result["every feature"]["accuracy"] >= 0.9
    assert result["velocity alone"]["accuracy"] >= 0.9
    for relative in ("velocity_minus_excerpt_mean", "velocity_minus_previous",
                     "velocity_minus_chord_mean"):  # a shift leaves every difference alike
        assert result[f"{relative} alone"]["accuracy"] == 0.5
        assert result[f"{relative} + context"]["accuracy"] == 0.5
    assert result["all but velocity"]["accuracy"] == 0.5
    for judge in cf.JUDGES:  # both see the level (the trees through the mean, percentiles)
        assert result[judge]["accuracy"] >= 0.9 and result[judge]["pieces"] == 20
    row = result["velocity + context"]
    assert row["features"] == ["velocity", *cf.CONTEXT] and row["pieces"] == 20
    assert row["lo"] <= row["accuracy"] <= row["hi"]


def test_a_rule_counts_the_pairs_whose_pianist_has_the_larger_statistic():
    rng = np.random.default_rng(1)
    pianist = [performed(f"p{k}", rng) for k in range(4)]
    pairs = human_classifier.make_pairs(pianist, [np.full(16, 64) for _ in pianist])
    pairs[0] = pairs[0]._replace(system=pairs[0].human * 2)  # twice the pianist's spread
    sd = cf.RULES["larger velocity sd"]
    assert cf.rule_accuracy(pairs, sd) == 0.75
    assert cf.rule_accuracy(pairs[:1], sd) == 0.0
    assert cf.rule_accuracy([pairs[1]._replace(system=pairs[1].human)], sd) == 0.5
    chord = cf.RULES["larger mean |velocity - its chord's mean|"]
    v = np.array([60.0, 70.0, 50.0, 50.0, 40.0, 40.0] + [64.0] * 10)  # notes 2-3 a chord
    deviation = chord(pairs[1], v)
    assert deviation > 0 and np.isclose(deviation, chord(pairs[1], v + 9))
    tail, smooth = (cf.RULES[r] for r in ("longer soft tail (more negative skew)",
                                          "larger lag-1 correlation (smoother note to note)"))
    assert tail(None, np.array([80.0, 80, 80, 20])) > 0 > tail(None, np.array([20.0, 20, 20, 80]))
    assert smooth(None, np.arange(16.0)) > 0.9 > smooth(None, np.tile([40.0, 90], 8))
    assert smooth(None, np.full(16, 64.0)) == 0.0 == tail(None, np.full(16, 64.0))


def test_the_report_has_a_row_per_condition_and_rule_and_escapes_pipes_in_cells():
    row = {"accuracy": 0.75, "lo": 0.7, "hi": 0.8, "pairs": 10, "pieces": 4}
    results = {name: {**{c: row for c in (*cf.CONDITIONS, *cf.JUDGES)},
                      **{r: {"accuracy": 0.6} for r in cf.RULES}}
               for name in ("model", "features")}
    text = cf.render(results, command="c", data="d", described={"model": "m", "features": "f"},
                     seconds=1.0, picture="p.png", excerpt_seconds=10.0)
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 3 + len(cf.CONDITIONS) + len(cf.RULES) + len(cf.JUDGES)  # 3 headers
    assert all(line.replace("\\|", "").count("|") == 4 for line in table)  # 3 cells each
    assert "0.750 [0.700, 0.800] | 0.750 [0.700, 0.800]" in text and "10 test excerpt pairs" in text


def test_the_conditions_cover_every_velocity_feature_each_way():
    assert set(cf.VELOCITY) | set(cf.CONTEXT) == set(human_classifier.FEATURE_NAMES)
    assert len(cf.VELOCITY) == 4 and len(cf.CONDITIONS) == 1 + 3 * len(cf.VELOCITY)
    for features in cf.CONDITIONS.values():
        human_classifier.feature_mask(features)  # every name is known


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "c.md"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "experiments.classifier_features",
                               f"--out={out}", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)

    cases = [([], "exactly one of --data_dir and --midi_dir"),
             ([f"--data_dir={tmp_path / 'none'}"], "error: "),
             ([f"--midi_dir={tmp_path}", "--excerpt_seconds=0"],
              "--excerpt_seconds must be positive")]
    for (args, said), done in zip(cases, run_side_by_side(run, [a for a, _ in cases])):
        assert done.returncode == 2 and said in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not os.listdir(tmp_path)
