"""A piece's mean tempo (stylenet_jax.tempo) and ModelConfig.tempo_input: measured by the
builder, carried by the batches, heard by the model, and given by stylize and the evaluation."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data_prep import build, examine
from dataset_factory import write_dataset
from midi_factory import midi_file, notes_track, tempo, track
from stylenet_jax import batching, dataset, evaluation, model, performer, performances, training
from stylenet_jax import tempo as tempo_lib
from stylenet_jax.config import Config, ModelConfig
from stylenet_jax.tempo import DEFAULT_SECONDS_PER_BEAT

quiet = lambda *_: None  # noqa: E731


def piece(path: str, bpm: float, beats: int = 16, tpb: int = 480) -> str:
    """A short piano piece at ``bpm``: a note every beat, a chord every fourth beat."""
    notes = [(b * tpb, b * tpb + tpb // 2, 60 + b % 7, 40 + 5 * (b % 8)) for b in range(beats)]
    notes += [(b * tpb, b * tpb + tpb, 48, 50) for b in range(0, beats, 4)]
    midi_file(track([tempo(bpm)]), notes_track(notes), ticks_per_beat=tpb).save(path)
    return path


def test_mean_tempo_from_the_first_onset_step_to_the_last():
    assert tempo_lib.mean_seconds_per_beat(np.array([0, 4, 8]), np.array([0.0, 0.5, 1.0])) == 0.5
    # each step is timed by its earliest note; steps out of order are fine
    assert tempo_lib.mean_seconds_per_beat(np.array([8, 0, 0, 8]),
                                           np.array([2.1, 0.05, 0.0, 2.0])) == 1.0
    assert tempo_lib.mean_seconds_per_beat(np.array([3, 3]), np.array([1.0, 1.2])) == 0.5
    assert tempo_lib.mean_seconds_per_beat(np.array([], np.int64), np.array([])) == 0.5


def test_the_builder_measures_each_song_and_refreshes_an_older_build(tmp_path):
    root = tmp_path / "midi"
    os.makedirs(root / "jazz")
    piece(str(root / "jazz" / "slow.mid"), 60)
    piece(str(root / "jazz" / "fast.mid"), 150)
    assert examine.examine(str(root / "jazz" / "slow.mid"))["seconds_per_beat"] == 1.0
    out = str(tmp_path / "data")
    build.build_dataset(str(root), out, min_velocities=1, validation_fraction=0, log=quiet)
    tempos = {s.id: round(s.seconds_per_beat, 6) for s in dataset.load_songs(out)}
    assert sorted(tempos.values()) == [0.4, 1.0]
    assert [v for k, v in tempos.items() if "slow" in k] == [1.0]
    # a build made before songs had a tempo: its files are read again, the tempos added
    manifest = dataset.read_manifest(out)
    for entry in manifest["songs"]:
        del entry["seconds_per_beat"]
    for entry in manifest["files"].values():
        del entry["facts"]["seconds_per_beat"]
    with open(os.path.join(out, dataset.MANIFEST), "w") as f:
        json.dump(manifest, f)
    assert all(s.seconds_per_beat is None for s in dataset.load_songs(out))
    build.build_dataset(str(root), out, min_velocities=1, validation_fraction=0, log=quiet)
    assert sorted(round(s.seconds_per_beat, 6) for s in dataset.load_songs(out)) == [0.4, 1.0]


@pytest.mark.parametrize("layout", ["independent", "packed", "carry", "mixed"])
def test_every_row_carries_its_songs_tempo(tmp_path, layout):
    data = write_dataset(str(tmp_path / "d"), n_train=5, steps=(150, 420), tempos=True)
    songs = dataset.load_songs(data, "train")
    windows = batching.window_songs(songs, ["classical", "jazz"], 100)
    assert sorted({round(w.seconds_per_beat, 6) for w in windows}) == [0.3, 0.4, 0.5, 0.6, 0.7]
    # every real row holds one song's window: the (tempo, steps) of the rows, summed over
    # the epoch, are each song's tempo times its steps (steps are unique to each song here)
    seen: dict[int, float] = {}
    for b in batching.epoch_batches(windows, layout=layout, songs_per_batch=2,
                                    windows_per_batch=4, rng=np.random.default_rng(0)):
        real = b.lengths > 0
        assert b.seconds_per_beat.dtype == np.float32
        assert np.all(b.seconds_per_beat[~real] == DEFAULT_SECONDS_PER_BEAT)
        for spb, steps in zip(b.seconds_per_beat[real], b.lengths[real]):
            key = int(round(float(spb) * 10))
            seen[key] = seen.get(key, 0) + int(steps)
    expected: dict[int, float] = {}
    for w in windows:
        key = int(round(w.seconds_per_beat * 10))
        expected[key] = expected.get(key, 0) + int(w.lengths.sum())
    assert seen == expected


def _params(cfg, x, lengths):
    return model.StyleNet(cfg).init(jax.random.key(0), jnp.asarray(x), lengths,
                                    train=False)["params"]


@pytest.mark.slow  # 13 s on 2 cores; in CI (--runslow), outside the default suite
def test_off_the_tempo_is_ignored_and_on_it_is_one_more_input_channel():
    off = ModelConfig(num_styles=2, hidden_size=8, num_layers=1, keep_prob=1.0)
    on = dataclasses.replace(off, tempo_input=True)
    shapes_off, shapes_on = model.expected_param_shapes(off), model.expected_param_shapes(on)
    assert {k for k in shapes_off if shapes_off[k] != shapes_on[k]} == {"interpretation_lstm/w_ih"}
    assert shapes_on["interpretation_lstm/w_ih"][1] == 177
    x = (np.random.default_rng(0).random((2, 30, 176)) < 0.1).astype(np.uint8)
    lengths = np.array([30, 20], np.int32)
    slow, fast = np.array([1.0, 1.0], np.float32), np.array([0.3, 0.3], np.float32)
    p_off = _params(off, x, lengths)
    def off_at(seconds_per_beat=None):
        return model.predict(p_off, x, lengths, config=off, seconds_per_beat=seconds_per_beat)

    np.testing.assert_array_equal(off_at(slow), off_at(fast))
    np.testing.assert_array_equal(off_at(), off_at(fast))
    p_on = _params(on, x, lengths)
    a = model.predict(p_on, x, lengths, config=on, seconds_per_beat=slow)
    b = model.predict(p_on, x, lengths, config=on, seconds_per_beat=fast)
    assert float(jnp.abs(a - b).max()) > 1e-6
    default = model.predict(p_on, x, lengths, config=on)  # None: 120 bpm
    np.testing.assert_array_equal(
        default, model.predict(p_on, x, lengths, config=on,
                               seconds_per_beat=np.full(2, 0.5, np.float32)))
    assert float(jnp.abs(a[:, 1, 20:]).max()) == 0.0  # padding stays silent


def test_the_channel_is_log_tempo_clipped():
    got = np.asarray(model.tempo_channel(jnp.array([0.5, 0.25, 1.0, 100.0, 0.0, np.nan])))
    np.testing.assert_allclose(got, [0.0, -1.0, 1.0, 3.0, 0.0, 0.0])


@pytest.mark.slow  # trains a one-epoch run (15 s on 2 cores); CI runs it
def test_training_with_tempo_needs_a_build_that_has_tempos(tmp_path):
    config = Config().replace(hidden_size=8, num_layers=1, num_epochs=1, tempo_input=True,
                              progress=False, snapshot_every_epochs=0, window=50,
                              data_dir=write_dataset(str(tmp_path / "old")))
    with pytest.raises(dataset.DatasetError, match="tempo"):
        training.train_and_evaluate(config, str(tmp_path / "run"))
    with pytest.raises(dataset.DatasetError, match="tempo"):  # as validation is scored alone
        training.split_windows(config, ["classical", "jazz"], "validation")
    assert training.split_windows(config.replace(tempo_input=False), ["classical", "jazz"],
                                  "validation")  # a model deaf to tempo reads the old build
    config = config.replace(data_dir=write_dataset(str(tmp_path / "new"), tempos=True))
    result = training.train_and_evaluate(config, str(tmp_path / "run2"))
    assert result.model_config.tempo_input and result.epoch == 1


class _Spy:
    """A Stylizer stand-in that records the tempo it is given."""

    def __init__(self):
        self.styles, self.tempos = ["jazz"], []

    def tree_priors(self, *args):
        return None  # not a hybrid: it reads no tree velocities

    def predict(self, inputs, blend, seconds_per_beat=DEFAULT_SECONDS_PER_BEAT, priors=None):
        self.tempos.append(seconds_per_beat)
        return np.full((inputs.shape[0], 88), 0.5, np.float32)


def test_stylize_and_the_evaluation_give_the_files_own_tempo(tmp_path):
    path = piece(str(tmp_path / "p.mid"), 80)
    spy = _Spy()
    performer.perform_file(path, str(tmp_path / "out.mid"), stylizer=spy, blend={"jazz": 1.0})
    assert spy.tempos == [pytest.approx(0.75)]
    found = performances.load_performed(path, "jazz", "p")
    evaluation.ModelSystem(spy).perform(found)
    assert spy.tempos[-1] == pytest.approx(0.75)
    as_score = performances.with_timing(found, "score")
    evaluation.ModelSystem(spy).perform(as_score)
    assert spy.tempos[-1] == pytest.approx(0.75)  # a steady tempo: the same mean
