"""The hybrid network's tree prior: out-of-fold grids, their files, how batches carry them, and
what the model does with them (stylenet_jax.tree_prior, ModelConfig.tree_prior)."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from dataset_factory import write_dataset
from stylenet_jax import batching, dataset, encoding, training, tree_prior
from stylenet_jax.config import Config, ModelConfig
from stylenet_jax.model import predict
from stylenet_jax.notes import Notes
from stylenet_jax.performances import Performed
from stylenet_jax.train_steps import init_params

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TPB = 4  # ticks per beat: one tick per 1/16 step


def performance(song_id: str, style: str, piece: str, seed: int = 0) -> Performed:
    """Twelve notes on distinct keys, one every other 1/16 step, two steps long."""
    rng = np.random.default_rng(seed)
    n = 12
    start = np.arange(n, dtype=np.int64) * 2
    notes = Notes(pitch=(40 + np.arange(n) * 3).astype(np.int16), start=start, end=start + 2,
                  velocity=rng.integers(20, 110, n).astype(np.uint8),
                  channel=np.zeros(n, np.uint8), track=np.zeros(n, np.int32),
                  index=np.arange(n, dtype=np.int32))
    return Performed(song_id, style, piece, f"{song_id}.mid", notes, TPB,
                     start.astype(np.float64) * 0.125)


def onset_velocities(grid: np.ndarray, p: Performed) -> np.ndarray:
    onset, _ = encoding.quantize(p.notes, p.ticks_per_beat)
    return grid[onset, p.notes.pitch - encoding.LOWEST_KEY]


def test_prior_grid_puts_each_velocity_on_its_notes_cells_of_the_dataset_grid():
    p = performance("a", "jazz", "x")
    given = np.arange(10, 10 + len(p.notes))
    grid = tree_prior.prior_grid(p, given)
    enc = encoding.encode(p.notes, p.ticks_per_beat)
    assert grid.dtype == np.uint8 and grid.shape == enc.velocities.shape
    np.testing.assert_array_equal(grid > 0, enc.velocities > 0)  # the same active cells
    np.testing.assert_array_equal(onset_velocities(grid, p), given)


def test_piece_folds_keep_a_pieces_performances_together_and_share_out_each_style():
    songs = [performance(f"c{i}", "classical", f"piece{i % 5}") for i in range(20)]
    songs += [performance(f"j{i}", "jazz", f"tune{i}") for i in range(9)]
    fold = tree_prior.piece_folds(songs, 3, seed=0)
    for piece in {s.piece for s in songs}:
        assert len({f for s, f in zip(songs, fold) if s.piece == piece}) == 1
    jazz = np.bincount(fold[[s.style == "jazz" for s in songs]], minlength=3)
    np.testing.assert_array_equal(jazz, [3, 3, 3])
    classical = np.bincount(fold[[s.style == "classical" for s in songs]], minlength=3)
    assert sorted(classical) == [4, 8, 8]  # five pieces of four performances each
    np.testing.assert_array_equal(fold, tree_prior.piece_folds(songs, 3, seed=0))


class RecordingTree:
    """Plays 100 for any performance it was fitted on, else 30 + its number."""

    def __init__(self, fitted, number):
        self.fitted, self.number = {id(p.notes) for p in fitted}, number

    def predict(self, notes, ticks_per_beat, style, seconds):
        return np.full(len(notes), 100 if id(notes) in self.fitted else 30 + self.number)


def test_out_of_fold_priors_never_come_from_trees_that_saw_the_piece():
    train = [performance(f"t{i}", "jazz", f"tune{i % 4}", seed=i) for i in range(8)]
    others = [performance("v0", "jazz", "other", seed=99)]
    fits = []

    def fit(songs):
        fits.append(RecordingTree(songs, len(fits)))
        return fits[-1]

    priors = tree_prior.out_of_fold_priors(train, others, folds=2, seed=1, fit=fit,
                                           log=lambda line: None)
    assert len(fits) == 2 and sorted(priors) == sorted(p.id for p in train + others)
    fold = tree_prior.piece_folds(train, 2, seed=1)
    for p, k in zip(train, fold):
        np.testing.assert_array_equal(onset_velocities(priors[p.id], p), 30 + k)
    np.testing.assert_array_equal(onset_velocities(priors["v0"], others[0]), 30)  # 30.5
    with pytest.raises(tree_prior.TreePriorError, match="cannot fill 5 folds"):
        tree_prior.out_of_fold_priors(train, others, folds=5, fit=fit, log=lambda line: None)


def test_the_default_fit_gives_the_trees_the_extra_columns_asked_for(monkeypatch):
    from stylenet_jax.feature_baseline import FeatureBaseline

    train = [performance(f"t{i}", "jazz", f"tune{i % 4}", seed=i) for i in range(4)]
    asked = []

    def fit(songs, seed, log, extras, **settings):
        asked.append((seed, extras, settings))
        return RecordingTree(songs, 0)

    monkeypatch.setattr(FeatureBaseline, "fit", staticmethod(fit))
    tree_prior.out_of_fold_priors(train, [], folds=2, seed=3, extras=("melody_line",),
                                  log=lambda line: None)
    assert asked == [(3, ("melody_line",), {})] * 2
    asked.clear()
    tree_prior.out_of_fold_priors(train, [], folds=2, seed=3, settings={"max_iter": 7},
                                  log=lambda line: None)
    assert asked == [(3, (), {"max_iter": 7})] * 2


def test_priors_round_trip_through_their_folder_and_refuse_what_does_not_fit(tmp_path):
    grids = {"jazz/a b": np.arange(12 * 88, dtype=np.uint8).reshape(12, 88) % 128,
             "pop_1": np.zeros((3, 88), np.uint8)}
    folder = str(tmp_path / "priors")
    with pytest.raises(tree_prior.TreePriorError, match="no priors.json"):
        tree_prior.read_index(folder)
    tree_prior.save_priors(folder, grids, {"folds": 3})
    index = tree_prior.read_index(folder)
    assert index["folds"] == 3 and sorted(index["songs"]) == sorted(grids)
    for song_id, grid in grids.items():
        np.testing.assert_array_equal(
            tree_prior.load_prior(folder, song_id, grid.shape[0]), grid)
    with pytest.raises(tree_prior.TreePriorError, match="no tree prior for song 'x'"):
        tree_prior.load_prior(folder, "x", 3)
    with pytest.raises(tree_prior.TreePriorError, match="another build"):
        tree_prior.load_prior(folder, "pop_1", 4)
    with open(os.path.join(folder, tree_prior.INDEX), "w") as f:
        f.write('{"format": "something else"}')
    with pytest.raises(tree_prior.TreePriorError, match="not a stylenet-tree-priors"):
        tree_prior.read_index(folder)


def test_onset_mse_pools_the_priors_squared_error_over_onset_cells_by_style():
    def song(song_id, style, onsets, held, velocity):
        """Onset cells ``onsets`` and held-only cells ``held`` ((step, key) pairs), every
        sounding cell played at ``velocity``."""
        inputs, velocities = np.zeros((4, 176), np.uint8), np.zeros((4, 88), np.uint8)
        for step, key in onsets:
            inputs[step, 2 * key] = inputs[step, 2 * key + 1] = 1
        for step, key in held:
            inputs[step, 2 * key + 1] = 1
        for step, key in [*onsets, *held]:
            velocities[step, key] = velocity
        return dataset.Song(song_id, style, inputs, velocities)

    songs = [song("a", "classical", [(0, 10), (2, 20)], [(1, 10)], 127),
             song("b", "classical", [(0, 5)], [], 127),
             song("c", "jazz", [(3, 40)], [], 64),
             song("d", "jazz", [(1, 1)], [], 100)]  # no prior: left out
    priors = {"a": np.zeros((4, 88), np.uint8), "b": np.full((4, 88), 127, np.uint8),
              "c": np.full((4, 88), 0, np.uint8)}
    scores = tree_prior.onset_mse(songs, priors)
    # classical: a's two onsets 1.0 off each (its held cell, also off, does not count), b's
    # one exact: 2 / 3 pooled over cells, not the mean of the songs' (0.5).
    assert scores["classical"] == pytest.approx(2 / 3)
    assert scores["jazz"] == pytest.approx((64 / 127) ** 2)
    assert scores["all"] == pytest.approx((2 + (64 / 127) ** 2) / 4)
    assert list(scores) == ["classical", "jazz", "all"]
    assert tree_prior.onset_mse(songs, {}) == {}


def test_note_priors_read_each_notes_velocity_back_from_its_onset_cell(tmp_path):
    perf = performance("jazz/a", "jazz", "a", seed=4)
    tree_velocities = np.arange(30, 30 + 5 * len(perf.notes), 5)
    folder = str(tmp_path / "priors")
    tree_prior.save_priors(folder, {perf.id: tree_prior.prior_grid(perf, tree_velocities)}, {})
    got = tree_prior.note_priors(folder, perf)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, tree_velocities)
    with pytest.raises(tree_prior.TreePriorError, match="no tree prior for song 'pop/b'"):
        tree_prior.note_priors(folder, performance("pop/b", "pop", "b"))


# ----------------------------------------------------------------------------- batches


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_dataset(str(tmp_path_factory.mktemp("data")), n_train=5)


def songs_with_priors(data_dir, split="train"):
    """Songs whose prior is their own velocities, so a batch's priors must equal its targets."""
    return [s._replace(prior=s.velocities) for s in dataset.load_songs(data_dir, split)]


@pytest.mark.parametrize("layout", batching.LAYOUTS)
def test_priors_travel_with_their_windows_in_every_layout(data_dir, layout):
    windows = batching.window_songs(songs_with_priors(data_dir), ["classical", "jazz"], 16)
    batches = list(batching.epoch_batches(windows, layout=layout, songs_per_batch=2,
                                          windows_per_batch=8,
                                          rng=np.random.default_rng(0)))
    assert batches
    for b in batches:
        assert b.priors.shape == b.targets.shape and b.priors.dtype == np.float32
        np.testing.assert_array_equal(b.priors, b.targets)
    moved = batching.transposed(iter(batches), 5, np.random.default_rng(1))
    for b in moved:
        np.testing.assert_array_equal(b.priors, b.targets)
    plain = batching.window_songs(dataset.load_songs(data_dir, "train"), ["classical", "jazz"],
                                  16)
    assert all(b.priors is None for b in batching.epoch_batches(plain, layout=layout))
    with pytest.raises(ValueError, match="some songs carry tree priors"):
        list(batching.epoch_batches(windows[:1] + plain[1:], layout=layout))


# ----------------------------------------------------------------------------- the model


def hybrid_config(**kw) -> ModelConfig:
    return ModelConfig(**{**dict(num_styles=2, hidden_size=8, num_layers=1, note_readout=4,
                                 tree_prior=True), **kw})


def test_an_untrained_hybrid_plays_the_tree():
    config = hybrid_config()
    params = init_params(config, jax.random.key(0))
    assert params["heads"]["tree_gain"].tolist() == [1.0, 1.0]
    rng = np.random.default_rng(0)
    inputs = (rng.random((2, 30, 176)) < 0.1).astype(np.uint8)
    active = encoding.held_channels(inputs) > 0
    priors = np.stack([np.where(active, rng.integers(1, 128, active.shape), 0),
                       np.where(active, 64, 0)]).astype(np.float32) / 127
    vel = np.asarray(predict(params, inputs, np.array([30, 30], np.int32), config=config,
                             priors=priors))
    np.testing.assert_allclose(vel[:, active], priors[:, active],
                               atol=0.5 / 127)  # velocity clipped to 0.5..126.5 first
    with pytest.raises(ValueError, match="needs priors"):
        predict(params, inputs, np.array([30, 30], np.int32), config=config)


def test_without_tree_prior_the_priors_change_nothing():
    config = hybrid_config(tree_prior=False)
    params = init_params(config, jax.random.key(0))
    assert "tree_gain" not in params["heads"]
    inputs = (np.random.default_rng(0).random((1, 20, 176)) < 0.1).astype(np.uint8)
    lengths = np.array([20], np.int32)
    np.testing.assert_array_equal(
        predict(params, inputs, lengths, config=config),
        predict(params, inputs, lengths, config=config,
                priors=np.full((2, 1, 20, 88), 0.9, np.float32)))


def test_a_hybrid_run_trains_on_its_priors_and_refuses_songs_without_one(data_dir, tmp_path):
    grids = {s.id: s.velocities for s in dataset.load_songs(data_dir)}
    folder = str(tmp_path / "priors")
    tree_prior.save_priors(folder, grids, {})
    config = Config().replace(data_dir=data_dir, tree_prior_dir=folder, hidden_size=8,
                              num_layers=1, window=16, songs_per_batch=2, windows_per_batch=8,
                              num_epochs=1, snapshot_every_epochs=1, progress=False)
    result = training.train_and_evaluate(config, str(tmp_path / "run"))
    assert result.model_config.tree_prior and "tree_gain" in result.state.params["heads"]
    assert os.path.isfile(tmp_path / "run" / "snapshots" / "epoch_0001.png")
    del grids["jazz_0"]
    tree_prior.save_priors(str(tmp_path / "fewer"), grids, {})
    with pytest.raises(dataset.DatasetError, match="no tree prior for song 'jazz_0'"):
        training.train_and_evaluate(config.replace(tree_prior_dir=str(tmp_path / "fewer")),
                                    str(tmp_path / "run2"))


def test_command_needs_its_folders_and_trees_it_can_fit():
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "experiments.tree_prior", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    done = cli("--out_dir=x")
    assert done.returncode == 2 and done.stderr.strip() == (
        "error: --data_dir and --out_dir are required")
    done = cli("--data_dir=x", "--out_dir=y", "--min_samples_leaf=0")
    assert done.returncode == 2 and done.stderr.strip().startswith("error: need --max_iter")
    assert "--max_leaf_nodes" in cli("--help").stdout  # the trees' settings are listed


# ----------------------------------------------------------------------------- stylize


class ConstantTree:
    """A tree baseline stand-in that plays every note of every style at ``velocity``."""

    styles = ["classical", "jazz", "pop"]

    def __init__(self, velocity):
        self.velocity = velocity

    def predict(self, notes, ticks_per_beat, style, seconds):
        return np.full(len(notes), self.velocity, np.int64)


def test_stylize_hands_a_hybrid_the_trees_velocities_of_each_blended_style(tmp_path):
    from performer_factory import STYLES, rich_file
    from stylenet_jax import checkpoints, performer

    config = hybrid_config(num_styles=2, hidden_size=16)
    params = init_params(config, jax.random.key(3))
    model = checkpoints.export_inference(str(tmp_path / "hybrid.npz"), params, config, STYLES)
    source = rich_file(str(tmp_path / "in.mid"), bars=4)
    stylizer = performer.Stylizer(model)  # the shipped tree, which knows both styles
    assert sorted(stylizer.tree.styles) == ["classical", "jazz", "pop"]
    played = {}
    for velocity in (20, 120):
        stylizer.tree = ConstantTree(velocity)
        for blend in ({"jazz": 1.0}, {"classical": 0.5, "jazz": 0.5}):
            out = str(tmp_path / f"{velocity}_{len(blend)}.mid")
            played[velocity, len(blend)] = performer.perform_file(
                source, out, stylizer=stylizer, blend=blend).velocities
    for blend in (1, 2):  # the tree's velocities carry through to the file
        assert played[120, blend].mean() > played[20, blend].mean() + 30
    with pytest.raises(performer.StylizeError, match="hybrid model needs the tree"):
        stylizer.predict(np.zeros((8, 176), np.uint8), {"jazz": 1.0})
    with pytest.raises(performer.StylizeError, match="no such feature baseline"):
        performer.Stylizer(model, tree=str(tmp_path / "none.pkl"))


def test_precision_reads_a_hybrids_priors_and_asks_for_them(data_dir, tmp_path):
    from stylenet_jax import checkpoints

    config = hybrid_config(num_styles=2, hidden_size=8)
    model = checkpoints.export_inference(str(tmp_path / "hybrid.npz"),
                                         init_params(config, jax.random.key(5)), config,
                                         ["classical", "jazz"])
    folder = str(tmp_path / "priors")
    tree_prior.save_priors(folder, {s.id: s.velocities for s in dataset.load_songs(data_dir)},
                           {})

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "experiments.precision",
                               f"--data_dir={data_dir}", f"--model={model}", "--rows=4", *extra],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)

    refused = run()
    assert refused.returncode == 1 and "give --tree_prior_dir" in refused.stderr
    done = run(f"--tree_prior_dir={folder}")
    assert done.returncode == 0, done.stderr
    assert "| classical |" in done.stdout and "| jazz |" in done.stdout


def test_a_hybrid_whose_tree_lacks_one_of_its_styles_is_refused_in_one_line(tmp_path):
    from stylenet_jax import checkpoints, performer

    config = hybrid_config(num_styles=2, hidden_size=8)
    params = init_params(config, jax.random.key(0))
    model = checkpoints.export_inference(str(tmp_path / "hybrid.npz"), params, config,
                                         ["jazz", "swing"])
    with pytest.raises(performer.StylizeError) as raised:
        performer.Stylizer(model)  # the shipped tree knows classical, jazz and pop
    message = str(raised.value)
    assert "the tree baseline has no swing, which the hybrid model's heads read" in message
    assert "\n" not in message


def test_stylizers_share_an_already_loaded_tree_and_still_check_its_styles(tmp_path):
    from stylenet_jax import checkpoints, performer

    config = hybrid_config(num_styles=2, hidden_size=8)
    params = init_params(config, jax.random.key(0))
    known = checkpoints.export_inference(str(tmp_path / "known.npz"), params, config,
                                         ["classical", "jazz"])
    unknown = checkpoints.export_inference(str(tmp_path / "unknown.npz"), params, config,
                                           ["jazz", "swing"])
    tree = performer.load_tree(None)
    first, second = performer.Stylizer(known, tree=tree), performer.Stylizer(known, tree=tree)
    assert first.tree is tree and second.tree is tree  # one load, not one per model
    with pytest.raises(performer.StylizeError, match="the tree baseline has no swing"):
        performer.Stylizer(unknown, tree=tree)
