"""stylenet_jax.feature_baseline and its command: learning, saving, loading, bad files."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from data_prep.build import build_dataset
from data_prep.synthetic import write_synthetic_corpus
from side_by_side import run_side_by_side
from stylenet_jax import performances
from stylenet_jax.feature_baseline import (TREE_LOSSES, FeatureBaseline, FeatureBaselineError,
                                           evaluate, feature_rows, stopping_songs)
from stylenet_jax.notes import Notes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STYLES = ("jazz", "pop")  # jazz: loud off-beat eighths, soft downbeats; pop: loud top voice
FAST = {"max_iter": 60, "max_leaf_nodes": 15, "min_samples_leaf": 10}


def corpus(folder, seed):
    write_synthetic_corpus(str(folder), styles=STYLES, songs_per_style=8, steps=256, seed=seed)
    return performances.from_folder(str(folder))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    train = corpus(tmp_path_factory.mktemp("train"), seed=0)
    lines = []
    return FeatureBaseline.fit(train, seed=0, log=lines.append, **FAST), lines


@pytest.fixture(scope="module")
def unseen(tmp_path_factory):
    return corpus(tmp_path_factory.mktemp("unseen"), seed=1)


@pytest.mark.slow
def test_learns_each_styles_velocity_rule(trained, unseen):
    baseline, lines = trained
    assert baseline.styles == list(STYLES) and len(lines) == 2 and "training notes" in lines[0]
    results = {r["style"]: r for r in evaluate(baseline, unseen)}
    assert sorted(results) == list(STYLES)
    for style in STYLES:
        human = np.concatenate([p.notes.velocity for p in unseen if p.style == style])
        constant = np.abs(human - human.mean()).mean()  # the best constant's MAE, roughly
        assert results[style]["mae"] < 0.4 * constant, (style, results[style], constant)
        assert results[style]["r"] > 0.9
        assert results[style]["notes"] == len(human)


@pytest.mark.slow
def test_predictions_are_rounded_velocities_and_styles_differ(trained, unseen):
    baseline, _ = trained
    song = unseen[0]
    jazz = baseline.predict(song.notes, song.ticks_per_beat, "jazz", song.seconds)
    pop = baseline.predict(song.notes, song.ticks_per_beat, "pop", song.seconds)
    assert jazz.dtype == np.int64 and jazz.shape == (len(song.notes),)
    assert jazz.min() >= 1 and jazz.max() <= 127 and (jazz != pop).mean() > 0.5
    with pytest.raises(FeatureBaselineError, match="unknown style 'rock'"):
        baseline.predict(song.notes, song.ticks_per_beat, "rock")


@pytest.mark.slow
def test_save_load_round_trip_gives_identical_predictions(trained, unseen, tmp_path):
    baseline, _ = trained
    path = str(tmp_path / "model.pkl")
    baseline.save(path)
    assert os.listdir(tmp_path) == ["model.pkl"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    loaded = FeatureBaseline.load(path)
    assert loaded.styles == baseline.styles
    for song in unseen[:4]:
        for style in STYLES:
            np.testing.assert_array_equal(
                loaded.predict(song.notes, song.ticks_per_beat, style, song.seconds),
                baseline.predict(song.notes, song.ticks_per_beat, style, song.seconds))


@pytest.mark.slow
def test_bad_files_raise_one_line_errors(trained, tmp_path):
    baseline, _ = trained
    good = str(tmp_path / "good.pkl")
    baseline.save(good)
    data = open(good, "rb").read()
    (tmp_path / "garbage.pkl").write_bytes(b"not a pickle at all")
    (tmp_path / "truncated.pkl").write_bytes(data[:len(data) // 2])
    (tmp_path / "other.pkl").write_bytes(pickle.dumps({"something": "else"}))
    cases = {"missing.pkl": "no such feature baseline file", "garbage.pkl": "corrupt",
             "truncated.pkl": "corrupt", "other.pkl": "not a feature baseline file"}
    for name, expected in cases.items():
        with pytest.raises(FeatureBaselineError, match=expected) as raised:
            FeatureBaseline.load(str(tmp_path / name))
        assert "\n" not in str(raised.value)
    # Files whose header names another scikit-learn or feature set (models unchanged).
    with open(good, "rb") as f:
        header, models = pickle.load(f), pickle.load(f)
    for name, change, expected in (
            ("old_sklearn.pkl", {"sklearn": "0.0.1"}, r"made with scikit-learn 0\.0\.1, this is"),
            ("other_features.pkl", {"feature_names": ["pitch"]}, "another feature set")):
        with open(tmp_path / name, "wb") as f:
            pickle.dump({**header, **change}, f)
            pickle.dump(models, f)
        with pytest.raises(FeatureBaselineError, match=expected):
            FeatureBaseline.load(str(tmp_path / name))


def test_absolute_error_fits_the_median_and_squared_the_mean():
    """Twelve performances of one score, nine played at 40 throughout and three at 100: every
    note has the same features in all twelve, so the best guess is 40 for the absolute error
    (the median) and the mean, 55 (50.9 or 56.4 once one song is held out for early stopping),
    for the squared."""
    n = 48
    ticks = np.arange(n, dtype=np.int64) * 120  # 1/16 notes at 480 ticks a beat
    pitch = (60 + np.arange(n) % 7).astype(np.int16)

    def performance(k, velocity):
        notes = Notes(pitch, ticks, ticks + 120, np.full(n, velocity, np.uint8),
                      np.zeros(n, np.uint8), np.zeros(n, np.int32), np.arange(n, dtype=np.int32))
        return performances.Performed(f"pop/p{k}", "pop", "p", f"p{k}.mid", notes, 480,
                                      ticks / 960.0)

    songs = [performance(k, 100 if k % 4 == 0 else 40) for k in range(12)]
    fitted = {error: FeatureBaseline.fit(songs, seed=0, log=lambda _: None, loss=loss,
                                         max_iter=30, min_samples_leaf=5)
              for error, loss in TREE_LOSSES.items()}
    score = songs[1]
    median = fitted["absolute"].predict(score.notes, 480, "pop", score.seconds)
    mean = fitted["squared"].predict(score.notes, 480, "pop", score.seconds)
    assert np.abs(median - 40).max() <= 1, median
    assert np.all((mean >= 49) & (mean <= 58)), mean


def cli(*args):
    return subprocess.run([sys.executable, "-m", "experiments.feature_baseline", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_command_fits_saves_and_reports_validation_scores(tmp_path):
    write_synthetic_corpus(str(tmp_path / "midi"), styles=STYLES, songs_per_style=6, steps=128)
    build_dataset(str(tmp_path / "midi"), str(tmp_path / "data"), workers=1, log=lambda *_: None)
    out = str(tmp_path / "model.pkl")
    done = cli(f"--data_dir={tmp_path / 'data'}", f"--out={out}", "--max_iter=20")
    assert done.returncode == 0, done.stderr
    assert FeatureBaseline.load(out).styles == list(STYLES)
    table = [line for line in done.stdout.splitlines() if line.startswith(("| jazz", "| pop"))]
    assert len(table) == 2 and "Pearson r" in done.stdout and "wall time" in done.stdout
    assert "--data_dir" in cli("--help").stdout
    done = cli(f"--data_dir={tmp_path / 'data'}", f"--out={out}", "--max_iter=5",
               "--error=absolute", "--melody_line", "--min_samples_leaf=7")
    assert done.returncode == 0, done.stderr
    refitted = FeatureBaseline.load(out)
    assert refitted.models["pop"].loss == "absolute_error" and refitted.extras == ("melody_line",)
    assert refitted.models["pop"].min_samples_leaf == 7

    cases = [([f"--data_dir={tmp_path / 'none'}", f"--out={out}"], "none"),
             ([f"--out={out}"], "--data_dir is required"),
             ([f"--data_dir={tmp_path / 'data'}", f"--midi_dir={tmp_path}", f"--out={out}"],
              "not found"),
             ([f"--data_dir={tmp_path / 'data'}", "--max_iter=0"], "--max_iter"),
             ([f"--data_dir={tmp_path / 'data'}", "--min_samples_leaf=0"], "--min_samples_leaf"),
             ([f"--data_dir={tmp_path / 'data'}", "--error=cubic"], "--error"),
             ([f"--data_dir={tmp_path / 'data'}", "--hide_pedals=0.5"], "--hide_pedals"),
             ([f"--data_dir={tmp_path / 'data'}", "--pedals", "--hide_pedals=2"],
              "--hide_pedals"),
             ([f"--data_dir={tmp_path / 'data'}", "--rounds=jazz"], "--rounds 'jazz'"),
             ([f"--data_dir={tmp_path / 'data'}", "--rounds=jazz:5", "--rounds=jazz:6"],
              "each style once"),
             ([f"--data_dir={tmp_path / 'data'}", f"--out={out}", "--rounds=classical:200"],
              "--rounds names classical")]
    for (args, expected), bad in zip(cases, run_side_by_side(cli, [a for a, _ in cases])):
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and len(lines) == 1 and expected in lines[0], bad.stderr


@pytest.mark.parametrize("extras", [("phrase_context",), ("melody_line",),
                                    ("melody_line", "phrase_context"), ("pedals", "melody_line")])
def test_extra_columns_are_appended_in_order_and_survive_a_round_trip(tmp_path, extras):
    from experiments import evaluate as evaluate_app
    from stylenet_jax.feature_baseline import EXTRA_COLUMNS, feature_names

    write_synthetic_corpus(str(tmp_path / "midi"), styles=STYLES, songs_per_style=3, steps=128)
    train = performances.from_folder(str(tmp_path / "midi"))
    tiny = {"max_iter": 5, "max_leaf_nodes": 7, "min_samples_leaf": 10}
    plain = FeatureBaseline.fit(train, seed=0, log=lambda _: None, **tiny)
    wide = FeatureBaseline.fit(train, seed=0, log=lambda _: None, extras=extras, **tiny)
    in_order = tuple(name for name in EXTRA_COLUMNS if name in extras)
    assert plain.extras == () and wide.extras == in_order
    assert plain.models["jazz"].n_features_in_ == len(feature_names())
    added = [column for name in in_order for column in EXTRA_COLUMNS[name][0]]
    assert feature_names(extras) == feature_names() + tuple(added)
    assert wide.models["jazz"].n_features_in_ == len(feature_names()) + len(added)
    song = train[0]
    rows = feature_rows(song.notes, song.ticks_per_beat, song.seconds, extras)
    np.testing.assert_array_equal(
        rows[:, len(feature_names()):],
        np.hstack([EXTRA_COLUMNS[name][1](song.notes, song.ticks_per_beat, song.seconds)
                   for name in in_order]))
    path = str(tmp_path / "wide.pkl")
    wide.save(path)
    with open(path, "rb") as f:
        assert tuple(pickle.load(f)["feature_names"]) == feature_names(extras)
    loaded = FeatureBaseline.load(path)
    assert loaded.extras == in_order
    np.testing.assert_array_equal(
        loaded.predict(song.notes, song.ticks_per_beat, "jazz", song.seconds),
        wide.predict(song.notes, song.ticks_per_beat, "jazz", song.seconds))
    # experiments.evaluate scores a saved tree given as --model NAME=PATH.pkl, named NAME.
    systems, described = evaluate_app.build_systems([f"wide={path}"], [])
    assert [s.name for s in systems] == ["wide"] and systems[0].model.extras == in_order
    assert all(name.replace("_", " ") in described["wide"] for name in extras)
    np.testing.assert_array_equal(systems[0].perform(song).velocities,
                                  wide.predict(song.notes, song.ticks_per_beat, "jazz",
                                               song.seconds))
    with pytest.raises(FeatureBaselineError, match="unknown extra columns tempo_map"):
        FeatureBaseline.fit(train, seed=0, log=lambda _: None, extras=("tempo_map",), **tiny)
    with pytest.raises(FeatureBaselineError, match="no such feature baseline file"):
        evaluate_app.build_systems([f"gone={tmp_path / 'gone.pkl'}"], [])


def _songs_of_pieces(counts):
    """Performances (no notes) of pieces p0, p1, ... with ``counts`` performances each."""
    return [performances.Performed(f"classical/p{k}_{j}", "classical", f"p{k}", "x.mid", None,
                                   480, None) for k, n in enumerate(counts) for j in range(n)]


def test_stopping_songs_hold_out_whole_pieces_only_when_asked():
    songs = _songs_of_pieces([6, 5, 5, 4, 4, 3, 2, 1])  # 30 songs of 8 pieces
    pieces = np.array([p.piece for p in songs])
    for seed in range(4):
        by_song = stopping_songs(songs, seed)
        assert by_song.sum() == 3  # a tenth of the songs, as the shipped tree was fitted
        by_piece = stopping_songs(songs, seed, by_piece=True)
        assert by_piece.sum() >= 3
        for piece in set(pieces.tolist()):  # a piece is held out whole or not at all
            assert len(set(by_piece[pieces == piece].tolist())) == 1
        assert not set(pieces[by_piece]) & set(pieces[~by_piece])
    # drawn by song, held-out songs are other performances of pieces the trees train on
    assert any(set(pieces[stopping_songs(songs, s)]) & set(pieces[~stopping_songs(songs, s)])
               for s in range(4))
    assert len({tuple(stopping_songs(songs, s, by_piece=True)) for s in range(4)}) > 1
    assert not stopping_songs(_songs_of_pieces([9]), 0, by_piece=True).any()  # never every piece
    assert not stopping_songs(_songs_of_pieces([1, 1, 1, 1]), 0, by_piece=True).any()  # too few


def test_a_fit_stopping_on_pieces_holds_them_out_and_says_so(tmp_path):
    songs = corpus(tmp_path, seed=2)
    # the synthetic corpus has one performance a piece: give jazz's pairs of songs one piece
    songs = [p._replace(piece=f"pair{k // 2}") if p.style == "jazz" else p
             for k, p in enumerate(songs)]
    lines = []
    fitted = FeatureBaseline.fit(songs, seed=0, log=lines.append, stop_on_pieces=True, **FAST)
    jazz = next(line for line in lines if line.startswith("jazz:"))
    assert "6 songs, " in jazz and "2 songs (whole pieces: 1) for early stopping" in jazz, jazz
    assert fitted.models["jazz"].early_stopping and fitted.styles == list(STYLES)


def test_rounds_cap_one_styles_trees_and_leave_the_others_as_they_were(tmp_path):
    songs = corpus(tmp_path, seed=2)
    plain = FeatureBaseline.fit(songs, seed=0, log=lambda _: None, **FAST)
    capped = FeatureBaseline.fit(songs, seed=0, log=lambda _: None, rounds={"jazz": 4}, **FAST)
    assert capped.models["jazz"].n_iter_ == 4 < plain.models["jazz"].n_iter_
    assert capped.models["pop"].n_iter_ == plain.models["pop"].n_iter_
    song = songs[0]
    for style, same in (("pop", True), ("jazz", False)):
        a, b = (m.predict(song.notes, song.ticks_per_beat, style, song.seconds)
                for m in (plain, capped))
        assert np.array_equal(a, b) == same, style
    with pytest.raises(FeatureBaselineError, match="--rounds names classical"):
        FeatureBaseline.fit(songs, seed=0, log=lambda _: None, rounds={"classical": 9}, **FAST)
