"""stylenet_jax.evaluation, performances and experiments.evaluate: systems, comparisons and the
command's scores against a direct note-by-note comparison of stylized files."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from performance_factory import performance_file, performance_folder
from stylenet_jax import checkpoints, evaluation, metrics, midi, midi_files, performances
from stylenet_jax.model import ModelConfig, StyleNet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tick_seconds_follows_the_tempo_map(tmp_path):
    path = str(tmp_path / "t.mid")
    performance_file(path, 0)
    perf = midi.load_performance(path)
    seconds = midi.tick_seconds(perf.midi, np.array([0, 480, 16 * 480, 17 * 480]))
    np.testing.assert_allclose(seconds, [0, 0.6, 16 * 0.6, 16 * 0.6 + 60 / 140])


@pytest.fixture
def folder(tmp_path):
    performance_folder(tmp_path / "human")
    return tmp_path


def test_baselines_never_see_the_pianist(folder):
    found = performances.from_folder(str(folder / "human"))
    assert [p.style for p in found] == ["classical", "classical", "jazz"]
    stats = evaluation.NoteStatistics({"classical": 70.4, "jazz": 40.0},
                                      {"classical": list(range(1, 89)), "jazz": [50.0] * 88})

    class Echo:  # performs with the velocities it is given: the flattened ones
        name = "echo"

        def perform(self, p):
            return evaluation.Performance(p.notes.velocity.astype(np.int64))

    result = evaluation.evaluate(found, [Echo(), evaluation.ConstantSystem(stats),
                                         evaluation.PerPitchSystem(stats),
                                         evaluation.RandomSystem(0)], flat_velocity=64)
    for p, v in zip(found, result.velocities["echo"]):
        assert (v == 64).all() and not (p.notes.velocity == 64).all()
    assert (result.velocities["constant"][0] == 70).all()
    assert (result.velocities["constant"][2] == 40).all()
    first = found[0]
    np.testing.assert_array_equal(result.velocities["per_pitch"][0], first.notes.pitch - 20)
    again = evaluation.evaluate(found, [evaluation.RandomSystem(0)])
    np.testing.assert_array_equal(again.velocities["random"][1], result.velocities["random"][1])
    assert not np.array_equal(result.velocities["random"][0], result.velocities["random"][1])
    echo = result.comparisons["echo"]["classical"][0]
    assert metrics.note_metrics(echo.human, echo.predicted)["mae"] == pytest.approx(
        np.abs(first.notes.velocity.astype(float) - 64).mean())


def test_score_timing_puts_every_onset_on_the_grid_at_the_mean_tempo(folder):
    played = performances.from_folder(str(folder / "human"))[0]  # 100 bpm, then 140 from bar 4
    score = performances.as_score(played)
    steps = np.rint(played.notes.start / (played.ticks_per_beat / 4))
    per_step = np.diff(score.seconds)[np.diff(steps) > 0] / np.diff(steps)[np.diff(steps) > 0]
    np.testing.assert_allclose(per_step, per_step[0])  # one steady tempo
    span = played.seconds.max() - played.seconds.min()
    assert score.seconds.max() - score.seconds.min() == pytest.approx(span)  # its mean tempo
    played_per_step = np.diff(played.seconds)[np.diff(steps) > 0] / np.diff(steps)[
        np.diff(steps) > 0]
    assert played_per_step.max() > 1.3 * played_per_step.min()  # the performance was not steady
    assert score.notes is played.notes and performances.with_timing(played, "performed") is played
    with pytest.raises(ValueError, match="timing"):
        performances.with_timing(played, "swing")


def test_systems_are_given_the_timing_asked_for_and_compared_paired(folder):
    found = performances.from_folder(str(folder / "human"))
    given = []

    class Recorder:
        name = "recorder"

        def perform(self, p):
            given.append(p.seconds)
            return evaluation.Performance(np.clip(p.notes.pitch.astype(np.int64), 1, 127))

    stats = evaluation.NoteStatistics({"classical": 70.0, "jazz": 40.0},
                                      {"classical": [60.0] * 88, "jazz": [50.0] * 88})
    systems = [Recorder(), evaluation.ConstantSystem(stats)]
    performed_run = evaluation.evaluate(found, systems)
    np.testing.assert_array_equal(given[0], found[0].seconds)
    given.clear()
    score_run = evaluation.evaluate(found, systems, timing="score")
    np.testing.assert_allclose(given[0], performances.as_score(found[0]).seconds)
    paired = evaluation.paired_differences(score_run, "constant", resamples=50)
    scores = evaluation.scores(score_run, resamples=50)
    assert set(paired) == {"recorder"} and set(paired["recorder"]) == {"classical", "jazz", "all"}
    for style in ("classical", "all"):
        assert paired["recorder"][style]["mae"] == pytest.approx(
            scores["recorder"][style]["mae"] - scores["constant"][style]["mae"])
    assert performed_run.velocities["recorder"][1].tolist() == \
        score_run.velocities["recorder"][1].tolist()  # this system ignores the timing


def test_matrix_mse_of_a_painted_performance(folder):
    p = performances.from_folder(str(folder / "human"))[2]
    same = evaluation.compare(p, evaluation.Performance(p.notes.velocity.astype(np.int64)))
    assert same.se_matrix == 0 and same.se_sounding == 0 and same.cells_sounding > 0
    louder = np.minimum(p.notes.velocity.astype(np.int64) + 10, 127)
    c = evaluation.compare(p, evaluation.Performance(louder))
    assert c.se_sounding > 0 and c.se_matrix == pytest.approx(c.se_sounding)  # silence agrees
    assert c.cells_matrix > c.cells_sounding


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    config = ModelConfig(num_styles=2, hidden_size=16, num_layers=1)
    params = StyleNet(config).init(jax.random.key(3), jnp.zeros((1, 4, 176)),
                                   jnp.ones((1,), jnp.int32), train=False)["params"]
    params = jax.tree.map(lambda a: a * 4, params)
    path = str(tmp_path_factory.mktemp("model") / "model.npz")
    return checkpoints.export_inference(path, params, config, ["classical", "jazz"])


@pytest.mark.slow
def test_evaluate_matches_a_direct_comparison_of_stylized_files(folder, model_path, tmp_path):
    """The command's MAE and r equal those of the files stylize writes, read back note by note
    and compared with the pianist's files (each style performed by its own head)."""
    out = tmp_path / "report.md"
    run = subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", f"--midi_dir={folder / 'human'}",
         f"--model=m={model_path}", "--baselines=random", f"--out={out}", "--resamples=50",
         "--noprogress"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    scores = json.loads((tmp_path / "report.json").read_text())
    assert {"m", "random"} == set(scores) and scores["m"]["classical"]["notes"] > 0
    for style in ("classical", "jazz"):
        names = sorted(os.listdir(folder / "human" / style))
        flat_dir, performed_dir = tmp_path / f"flat_{style}", tmp_path / f"performed_{style}"
        os.makedirs(flat_dir)
        human = [midi.load_performance(str(folder / "human" / style / n)) for n in names]
        for name, perf in zip(names, human):
            midi_files.save_atomically(midi.with_velocities(
                perf.midi, perf.notes, np.full(len(perf.notes), 64)), str(flat_dir / name))
        done = subprocess.run(
            [sys.executable, "-m", "stylenet_jax.stylize", str(flat_dir), "-o",
             str(performed_dir), f"--style={style}", f"--checkpoint={model_path}",
             "--cache_dir="], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        h = np.concatenate([p.notes.velocity for p in human]).astype(float)
        m = np.concatenate([midi.load_performance(str(performed_dir / n)).notes.velocity
                            for n in names]).astype(float)
        assert scores["m"][style]["mae"] == pytest.approx(np.abs(h - m).mean(), rel=1e-9)
        assert scores["m"][style]["pearson_r"] == pytest.approx(np.corrcoef(h, m)[0, 1],
                                                                rel=1e-9)
    text = out.read_text()
    assert "## classical" in text and "| m |" in text and (tmp_path / "report").is_dir()
    assert any(name.endswith(".png") for name in os.listdir(tmp_path / "report"))


def _evaluate(folder, model_path, out, *args) -> subprocess.CompletedProcess:
    """``experiments.evaluate`` of ``folder``'s pieces by the tiny model ``m``, to ``out``."""
    return subprocess.run(
        [sys.executable, "-m", "experiments.evaluate", f"--midi_dir={folder / 'human'}",
         f"--model=m={model_path}", f"--out={out}", "--resamples=50", "--noprogress", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_score_timing_and_the_paired_comparison_reach_the_report(folder, model_path, tmp_path):
    out = tmp_path / "report.md"
    run = _evaluate(folder, model_path, out, "--baselines=features,constant", "--timing=score",
                    "--noclassifier")
    assert run.returncode == 0, run.stderr
    text = out.read_text()
    assert "as a score times them (`--timing=score`)" in text
    against = text[text.index("## Against `features`"):text.index("## classical")]
    assert "| m |" in against and "| constant |" in against and "| features |" not in against
    assert "nan" not in against and "inf" not in against  # a constant has no r: "-"
    level = text[text.index("## Level or shape"):text.index("## By musical role")]
    assert "| m |" in level and "| constant |" in level and "nan" not in level
    roles = text[text.index("## By musical role"):]
    assert "| top voice |" in roles and "**jazz**" in roles
    scores = json.loads((tmp_path / "report.json").read_text())
    assert scores["m"]["jazz"]["breakdown"]["roles"]["top voice"]["share"] > 0
    bad = subprocess.run([sys.executable, "-m", "experiments.evaluate",
                          f"--midi_dir={folder / 'human'}", "--timing=rubato"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "timing" in bad.stderr and "Traceback" not in bad.stderr


def test_a_style_no_system_knows_is_one_line_before_any_work(folder, model_path):
    found = performances.from_folder(str(folder / "human"), style="rock")
    from stylenet_jax import performer

    model = evaluation.ModelSystem(performer.Stylizer(model_path), "m")
    with pytest.raises(ValueError, match="m has no style rock"):
        evaluation.check_styles(found, [model])
    blended = evaluation.ModelSystem(model.stylizer, "b", {"jazz": 1.0})
    evaluation.check_styles(found, [blended, evaluation.RandomSystem()])  # any style


def test_evaluate_bad_input_is_one_line_exit_2(tmp_path):
    run = subprocess.run([sys.executable, "-m", "experiments.evaluate",
                          f"--midi_dir={tmp_path / 'none'}", f"--out={tmp_path / 'r.md'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'none'}: no such folder"]
    assert not (tmp_path / "r.md").exists()



def test_a_mix_of_model_and_tree_reaches_the_report_and_a_bad_one_writes_nothing(
        folder, model_path, tmp_path):
    out = tmp_path / "report.md"
    args = [sys.executable, "-m", "experiments.evaluate", f"--midi_dir={folder / 'human'}",
            f"--model=m={model_path}", "--baselines=features", f"--out={out}", "--resamples=50",
            "--noprogress", "--noclassifier", "--plot_pieces=0"]
    bad = subprocess.run(args + ["--mix=mt=m:1,tree:1"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "'tree:1'" in bad.stderr
    assert not out.exists()
    run = subprocess.run(args + ["--mix=mt=m:1,features:1", "--contrast=wide=mt:1.5",
                                 "--per_style=ps=classical:wide,jazz:m",
                                 "--palette=pal=wide"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "per note, 0.50 × m + 0.50 × features (rounded)" in out.read_text()
    assert "mt with every note's distance from the performance's mean × 1.5" in out.read_text()
    assert "each style as one system plays it: classical as `wide`, jazz as `m`" in (
        out.read_text())
    assert "wide played on its style's velocity palette (`stylenet_jax/assets/" in (
        out.read_text())
    scores = json.loads((tmp_path / "report.json").read_text())
    assert scores["ps"]["classical"]["mae"] == scores["wide"]["classical"]["mae"]
    assert scores["ps"]["jazz"]["mae"] == scores["m"]["jazz"]["mae"]
    assert scores["ps"]["classical"]["mae"] != scores["m"]["classical"]["mae"]
    for style in ("classical", "jazz"):
        assert scores["mt"][style]["notes"] == scores["m"][style]["notes"] > 0
        assert scores["mt"][style]["mae"] <= max(scores["m"][style]["mae"],
                                                 scores["features"][style]["mae"]) + 0.5
        assert scores["wide"][style]["notes"] == scores["mt"][style]["notes"]
        assert scores["wide"][style]["std_ratio"] > 1.2 * scores["mt"][style]["std_ratio"]
        assert scores["pal"][style]["notes"] == scores["wide"][style]["notes"]
        assert abs(scores["pal"][style]["mae"] - scores["wide"][style]["mae"]) < 1.5


@pytest.mark.slow  # 10-13 s: the default suite keeps a margin under 10 minutes
def test_the_classifier_on_both_halves_scores_every_piece_and_says_so(folder, model_path,
                                                                      tmp_path):
    found = performances.from_folder(str(folder / "human"))
    flat = [np.full(len(p.notes), 64, np.int64) for p in found]
    judged = evaluation.Evaluation({}, {"flat": flat})
    one_half = evaluation.identify_the_human(found, judged)["flat"]
    both = evaluation.identify_the_human(found, judged, both_halves=True)["flat"]
    assert one_half["pieces"] < both["pieces"] == 3  # every piece is a test piece once
    assert both["pairs"] > one_half["pairs"]
    assert both["accuracy_lo"] <= both["accuracy"] <= both["accuracy_hi"]
    # Each style's share of the same scored pairs: together they are the whole.
    by_style = both["by_style"]
    assert sorted(by_style) == ["classical", "jazz"]
    assert (by_style["classical"]["pieces"], by_style["jazz"]["pieces"]) == (2, 1)
    assert sum(r["pairs"] for r in by_style.values()) == both["pairs"]
    assert sum(r["accuracy"] * r["pairs"] for r in by_style.values()) == pytest.approx(
        both["accuracy"] * both["pairs"])
    assert sum(r["pairs"] for r in one_half["by_style"].values()) == one_half["pairs"]
    out = tmp_path / "report.md"
    run = _evaluate(folder, model_path, out, "--baselines=", "--classifier_both_halves",
                    "--plot_pieces=0")
    assert run.returncode == 0, run.stderr
    report = out.read_text()
    assert "on each half of the pieces in turn" in report
    assert "| system | human identified | classical | jazz | test pairs | test pieces |" in report
    written = json.loads((tmp_path / "report.json").read_text())["m"]
    assert written["all"]["classifier_pieces"] == 3
    assert (written["classical"]["classifier_pieces"], written["jazz"]["classifier_pieces"]) == (
        2, 1)
    assert written["classical"]["classifier_pairs"] + written["jazz"]["classifier_pairs"] == (
        written["all"]["classifier_pairs"])
    assert (tmp_path / "report" / "realism.png").stat().st_size > 0  # error against realism
    assert "](report/realism.png)" in report


def test_a_label_near_an_earlier_one_goes_below_its_point():
    from stylenet_jax.evaluation_plots import label_offsets

    above, below = (5, 4), (5, -11)
    # model and tree side by side at the top, two scatters apart, one just under the first
    points = [(10.16, 0.985), (10.25, 0.991), (11.6, 0.66), (13.1, 0.54), (11.62, 0.70)]
    assert label_offsets(points) == [above, below, above, above, above]
    assert label_offsets([(12.0, 0.6), (12.0, 0.6), (12.0, 0.6)]) == [above, below, below]
    assert label_offsets([]) == []


def test_no_classifier_no_picture_of_realism(folder, model_path, tmp_path):
    out = tmp_path / "report.md"
    run = _evaluate(folder, model_path, out, "--baselines=", "--noclassifier",
                    "--plot_pieces=0")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "report" / "distributions.png").exists()
    assert not (tmp_path / "report" / "realism.png").exists()
    assert "realism" not in out.read_text()


def test_the_identified_table_has_a_column_per_style_and_a_dash_where_a_system_has_none():
    from experiments.evaluation_report import identified_section

    def row(accuracy, pairs, pieces, **extra):
        return {"accuracy": accuracy, "accuracy_lo": accuracy - 0.1,
                "accuracy_hi": accuracy + 0.1, "pairs": pairs, "pieces": pieces, **extra}

    lines = identified_section({
        "a": row(0.6, 30, 3, by_style={"jazz": row(0.5, 10, 1), "classical": row(0.65, 20, 2)}),
        "b": row(0.9, 30, 3, by_style={"classical": row(0.9, 30, 3)})}, both_halves=True)
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == "| system | human identified | classical | jazz | test pairs | test pieces |"
    assert table[1] == "|---|---|---|---|---|---|"
    assert table[2] == ("| a | 0.600 [0.500, 0.700] | 0.650 [0.550, 0.750] | 0.500 [0.400, "
                        "0.600] | 30 | 3 |")
    assert table[3] == "| b | 0.900 [0.800, 1.000] | 0.900 [0.800, 1.000] | - | 30 | 3 |"
