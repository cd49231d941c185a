"""Tests of stylenet_jax.training (and the train steps it runs): whole runs, resuming, NaN
stops, kills; tiny models on CPU. The checkpoint files themselves: test_checkpoints.py."""

import dataclasses
import glob
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from dataset_factory import write_dataset
from stylenet_jax import checkpoints, dataset, encoding, training
from stylenet_jax.config import Config, ModelConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_dataset(str(tmp_path_factory.mktemp("data")))


def tiny(data_dir: str, **kw) -> Config:
    base = dict(data_dir=data_dir, hidden_size=8, num_layers=1, window=16, songs_per_batch=2,
                windows_per_batch=8, num_epochs=2, snapshot_every_epochs=0, log_every_steps=4,
                progress=False, keep_checkpoints=5)
    return Config().replace(**{**base, **kw})


def test_collapse_warning_names_the_plateau_and_the_cure():
    assert training.collapse_warning({"val_mean_velocity": 60.0,
                                      "val_mean_velocity_target": 64.0}) is None
    warning = training.collapse_warning({"val_mean_velocity": 7.0,
                                         "val_mean_velocity_target": 56.0})
    assert "7.0" in warning and "56.0" in warning and "--loss=onset" in warning
    assert training.collapse_warning({"val_loss": 0.1}) is None


# ----------------------------------------------------------------------------- runs


def test_short_run_learns_compiles_once_and_leaves_files(data_dir, tmp_path):
    config = tiny(data_dir, num_epochs=4, hidden_size=16, snapshot_every_epochs=4,
                  learning_rate=1e-2)
    result = training.train_and_evaluate(config, str(tmp_path))
    assert result.train_compiles == 1
    assert result.epoch == 4
    train = [r for r in result.records if r["kind"] == "train"]
    evals = [r for r in result.records if r["kind"] == "eval"]
    assert len(evals) == 4
    assert train[-1]["train_loss"] < 0.7 * train[0]["train_loss"]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert {"train_loss/classical", "train_loss/jazz", "steps_per_second"} <= set(train[-1])
    assert all(0.0 < r["batch_fill"] <= 1.0 for r in train)
    lines = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")]
    assert lines == result.records
    assert os.path.isfile(tmp_path / "snapshots" / "epoch_0004.png")
    assert len(os.listdir(tmp_path / "checkpoints")) == 4
    assert not os.path.exists(tmp_path / "best")  # one manager keeps the best too
    ckpts = checkpoints.RunCheckpoints(str(tmp_path))
    try:
        best = min(evals, key=lambda r: r["val_loss"])
        assert ckpts.best_step() == best["step"]
        assert ckpts.best_meta()["val_loss"] == best["val_loss"]
    finally:
        ckpts.close()
    params, cfg, styles = checkpoints.restore_params(str(tmp_path))
    assert cfg == result.model_config and styles == ["classical", "jazz"]
    jax.tree.map(np.testing.assert_array_equal, params, jax.device_get(result.state.params))
    # Each evaluation's mean onset velocity: the validation songs' own, and the model's.
    songs = dataset.load_songs(data_dir, "validation")
    onset = [encoding.onset_channels(s.inputs) > 0 for s in songs]
    expected = np.concatenate([s.velocities[o] for s, o in zip(songs, onset)]).mean()
    assert evals[-1]["val_mean_velocity_target"] == pytest.approx(expected, rel=1e-5)
    assert 1 <= evals[-1]["val_mean_velocity"] <= 127


def test_resume_gives_identical_parameters(data_dir, tmp_path):
    whole = training.train_and_evaluate(tiny(data_dir, num_epochs=4), str(tmp_path / "a"))
    half = training.train_and_evaluate(tiny(data_dir, num_epochs=2), str(tmp_path / "b"))
    assert half.epoch == 2
    resumed = training.train_and_evaluate(tiny(data_dir, num_epochs=4), str(tmp_path / "b"))
    assert resumed.epoch == 4 and int(resumed.state.step) == int(whole.state.step)
    assert resumed.train_compiles == 1  # a restored state reuses the in-process program
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed.state.params),
                 jax.device_get(whole.state.params))
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(resumed.state.opt_state),
                 jax.device_get(whole.state.opt_state))
    # Finished runs resume to a no-op; a different model is refused.
    again = training.train_and_evaluate(tiny(data_dir, num_epochs=4), str(tmp_path / "b"))
    assert again.records == [] and again.epoch == 4
    with pytest.raises(checkpoints.CheckpointError, match="same flags"):
        training.train_and_evaluate(tiny(data_dir, num_epochs=5, hidden_size=12),
                                    str(tmp_path / "b"))


def test_resume_check_ignores_speed_only_fields_and_fills_new_ones():
    cfg = ModelConfig(num_styles=2, hidden_size=8, num_layers=1)
    old_meta = dataclasses.asdict(cfg)
    for added in ("recurrence", "matmul_dtype"):  # a checkpoint written before they existed
        del old_meta[added]
    meta = {"model_config": old_meta, "styles": ["a", "b"]}
    training.check_resumable(meta, cfg, ["a", "b"], "w")
    training.check_resumable(meta, dataclasses.replace(cfg, unroll=4, recurrence="autodiff"),
                              ["a", "b"], "w")
    for changed in (dict(matmul_dtype="bfloat16"), dict(hidden_size=9), dict(keep_prob=0.5)):
        with pytest.raises(checkpoints.CheckpointError, match="same flags"):
            training.check_resumable(meta, dataclasses.replace(cfg, **changed), ["a", "b"], "w")
    with pytest.raises(checkpoints.CheckpointError, match="same flags"):
        training.check_resumable(meta, cfg, ["a", "c"], "w")


def test_nan_stops_run_and_keeps_last_good_checkpoint(data_dir, tmp_path):
    config = tiny(data_dir, num_epochs=3)
    steps_per_epoch = training.train_and_evaluate(
        config.replace(num_epochs=1), str(tmp_path / "probe")).state.step
    assert steps_per_epoch > 5
    # In epoch 2, after its first log (every 4 steps): steps + 1..4 are logged, then the NaN.
    bad = config.replace(debug_nan_step=int(steps_per_epoch) + 4)
    with pytest.raises(training.NonFiniteLossError, match="non-finite"):
        training.train_and_evaluate(bad, str(tmp_path / "run"))
    ckpts = checkpoints.RunCheckpoints(str(tmp_path / "run"))
    try:
        assert ckpts.latest_step() == int(steps_per_epoch)  # end of epoch 1 only
    finally:
        ckpts.close()
    params, _, _ = checkpoints.restore_params(str(tmp_path / "run"))
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))
    records = [json.loads(x) for x in open(tmp_path / "run" / "metrics.jsonl")]
    assert all(np.isfinite(r.get("train_loss", 0.0)) for r in records)
    assert any(r["step"] > steps_per_epoch for r in records)  # epoch 2 logged before the NaN
    # Resuming without the poison replays epoch 2; its earlier records are not duplicated.
    training.train_and_evaluate(config.replace(num_epochs=2), str(tmp_path / "run"))
    records = [json.loads(x) for x in open(tmp_path / "run" / "metrics.jsonl")]
    steps = [r["step"] for r in records if r["kind"] == "train"]
    assert steps == sorted(set(steps))


def test_a_kill_right_after_the_last_save_exports_what_an_uninterrupted_run_does(
        data_dir, tmp_path, monkeypatch):
    config = tiny(data_dir, num_epochs=3)
    whole = training.train_and_evaluate(config, str(tmp_path / "whole"))
    want = checkpoints.export_run(str(tmp_path / "whole"), whole.state.params,
                                  whole.model_config, whole.styles)
    original = checkpoints.RunCheckpoints.save

    def save_then_die(self, step, state, meta, val_loss=None):
        original(self, step, state, meta, val_loss)
        if meta["epoch"] == 3:
            raise KeyboardInterrupt("killed after the epoch's checkpoint")

    monkeypatch.setattr(checkpoints.RunCheckpoints, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        training.train_and_evaluate(config, str(tmp_path / "killed"))
    monkeypatch.undo()
    again = training.train_and_evaluate(config, str(tmp_path / "killed"))  # the re-run
    assert again.records == [] and again.epoch == 3
    got = checkpoints.export_run(str(tmp_path / "killed"), again.state.params,
                                 again.model_config, again.styles)
    with np.load(want) as a, np.load(got) as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])


def test_a_fresh_run_drops_metric_lines_of_an_attempt_killed_before_its_first_checkpoint(
        data_dir, tmp_path):
    assert tmp_path.is_dir()
    (tmp_path / "metrics.jsonl").write_text('{"kind": "train", "step": 4, "epoch": 1}\n{"ki')
    result = training.train_and_evaluate(tiny(data_dir, num_epochs=1), str(tmp_path))
    lines = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")]
    assert lines == result.records


def test_carry_state_run(data_dir, tmp_path):
    result = training.train_and_evaluate(
        tiny(data_dir, carry_state=True, num_epochs=1, loss="active", clip="global"),
        str(tmp_path))
    assert result.train_compiles == 1
    assert np.isfinite(result.records[-1]["val_loss"])


# ----------------------------------------------------------------------------- real corpus


def test_loss_falls_on_real_corpus(corpus_dir, tmp_path):
    """Four real performances per style (../shared/data): the training loss falls."""
    for style in ("classical", "jazz"):
        paths = sorted(glob.glob(os.path.join(corpus_dir, style, "*.mid")))[:4]
        assert paths, f"no {style} MIDI files in {corpus_dir}"
        os.makedirs(tmp_path / "midi" / style)
        for p in paths:
            shutil.copy(p, tmp_path / "midi" / style)
    data = str(tmp_path / "data")
    # A subprocess: data_prep.build defines absl flags at import.
    subprocess.run([sys.executable, "-m", "data_prep.build", f"--midi_dir={tmp_path}/midi",
                    f"--out_dir={data}", "--validation_fraction=0.25", "--workers=1"],
                   cwd=REPO, check=True, capture_output=True)
    config = tiny(data, hidden_size=32, window=100, windows_per_batch=16, num_epochs=3,
                  learning_rate=3e-3, eval_every_epochs=0)
    result = training.train_and_evaluate(config, str(tmp_path / "run"))
    train = [r["train_loss"] for r in result.records if r["kind"] == "train"]
    assert train[-1] < train[0]


def test_packed_run_fills_batches_and_excludes_carry(data_dir, tmp_path):
    with pytest.raises(ValueError, match="exclude each other"):
        tiny(data_dir, pack_windows=True, carry_state=True)
    plain = training.train_and_evaluate(tiny(data_dir, num_epochs=1, windows_per_batch=5),
                                        str(tmp_path / "a"))
    packed = training.train_and_evaluate(tiny(data_dir, num_epochs=1, windows_per_batch=5,
                                              pack_windows=True), str(tmp_path / "b"))

    def epoch_fill(result):  # real steps / steps computed, over the whole epoch
        real = sum(r["train_steps"] for r in result.records if r["kind"] == "train")
        return real / (int(result.state.step) * 5 * 16)

    assert int(packed.state.step) < int(plain.state.step)
    assert epoch_fill(packed) > epoch_fill(plain)
    assert packed.train_compiles == plain.train_compiles  # same shapes: no new compile


def test_transpose_moves_training_batches_only_and_replays_per_epoch(data_dir, tmp_path):
    styles = dataset.dataset_styles(data_dir)
    plain = training.Run.create(tiny(data_dir), styles)
    moved = training.Run.create(tiny(data_dir, transpose=3), styles)
    windows = training.batching.window_songs(dataset.load_songs(data_dir, "train"), styles,
                                             16)
    rng = lambda epoch: training.batching.epoch_rng(0, epoch)  # noqa: E731
    paper = list(training.batching.epoch_batches(windows, layout="independent",
                                                 songs_per_batch=2, windows_per_batch=8,
                                                 rng=rng(0)))
    off = list(plain.batches(windows, rng(0)))
    on, again = (list(moved.batches(windows, rng(0))) for _ in range(2))
    assert len(off) == len(on) == len(paper)
    for p, o, a, b in zip(paper, off, on, again):
        np.testing.assert_array_equal(o.inputs, p.inputs)  # off: the paper's batches exactly
        np.testing.assert_array_equal(a.inputs, b.inputs)  # on: the same every replay
        np.testing.assert_array_equal(a.lengths, p.lengths)
        assert a.inputs.sum() == p.inputs.sum()  # notes moved, none lost
    assert any(not np.array_equal(a.inputs, p.inputs) for a, p in zip(on, paper))
    validation = list(moved.batches(windows, None))  # evaluation: never moved
    np.testing.assert_array_equal(validation[0].inputs, list(plain.batches(windows, None))[0]
                                  .inputs)
    result = training.train_and_evaluate(
        tiny(data_dir, num_epochs=2, transpose=3, lr_schedule="cosine", warmup_steps=2),
        str(tmp_path / "t"))
    assert result.train_compiles == 1
    saved = checkpoints.RunCheckpoints(str(tmp_path / "t"), 5).meta()["config"]
    assert saved["optim"]["lr_decay_steps"] == int(result.state.step)  # 0: the whole run
    assert all(np.isfinite(r["train_loss"]) for r in result.records if r["kind"] == "train")


def test_performances_per_piece_trains_each_epoch_on_a_draw_of_each_pieces_performances(
        data_dir, tmp_path):
    shared = str(tmp_path / "data")  # the same songs, every training song of a style one piece
    shutil.copytree(data_dir, shared)
    manifest_path = os.path.join(shared, dataset.MANIFEST)
    with open(manifest_path) as f:
        manifest = json.load(f)
    for song in manifest["songs"]:
        song["piece"] = f"{song['style']}-piece" if song["split"] == "train" else song["id"]
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    train = dataset.load_songs(shared, "train")
    assert len(train) > len({s.style for s in train})  # several performances of each piece
    with pytest.raises(ValueError, match="performances_per_piece must be >= 0"):
        tiny(shared, performances_per_piece=-1)
    every = training.train_and_evaluate(tiny(shared, num_epochs=1), str(tmp_path / "a"))
    one = training.train_and_evaluate(tiny(shared, num_epochs=2, performances_per_piece=1),
                                      str(tmp_path / "b"))
    per_epoch = [max(r["step"] for r in one.records if r["kind"] == "train" and r["epoch"] == e)
                 for e in (1, 2)]
    assert 0 < per_epoch[0] and per_epoch[1] - per_epoch[0] > 0
    assert per_epoch[0] < int(every.state.step) and one.train_compiles == 1
    assert np.isfinite([r["val_loss"] for r in one.records if r["kind"] == "eval"]).all()
