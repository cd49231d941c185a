"""The pianist's pedals: read under each note by stylenet_jax.midi, and as tree columns
(stylenet_jax.pedal_columns, the ``pedals`` column set of the feature baseline)."""

import mido
import numpy as np
import pytest

from midi_factory import midi_file, notes_track, track
from stylenet_jax import midi, performances
from stylenet_jax.feature_baseline import FeatureBaseline, FeatureBaselineError
from stylenet_jax.notes import Notes
from stylenet_jax.pedal_columns import PEDAL_COLUMN_NAMES, pedal_columns


def pedal(tick, control, value, channel=0):
    return (tick, mido.Message("control_change", control=control, value=value, channel=channel))


def test_each_note_records_the_pedals_on_its_channel_at_its_onset_from_any_track():
    # The pedals live on another track than the notes, as in many format 1 files.
    pedals = track([pedal(100, 64, 127), pedal(300, 64, 0), pedal(200, 67, 90),
                    pedal(50, 64, 100, channel=1)])
    melody = notes_track([(0, 90, 60, 70), (100, 190, 62, 70), (250, 290, 64, 70),
                          (400, 480, 65, 70)])
    other = notes_track([(0, 40, 40, 50), (250, 290, 41, 50)], channel=2)
    notes, _, _ = midi.extract_notes(midi_file(pedals, melody, other))
    got = {(int(c), int(s)): tuple(int(v) for v in p)
           for c, s, p in zip(notes.channel, notes.start, notes.pedals)}
    assert got[(0, 0)] == (0, 0)        # before any pedal
    assert got[(0, 100)] == (127, 0)    # a pedal moved at the onset's own tick counts
    assert got[(0, 250)] == (127, 90)
    assert got[(0, 400)] == (0, 90)     # sustain lifted at 300, soft still down
    assert got[(2, 0)] == (0, 0) and got[(2, 250)] == (0, 0)  # channel 1's pedal is not its
    assert notes.pedals.dtype == np.uint8 and notes.pedals.shape == (len(notes), 2)


def test_a_file_without_pedals_reads_zeros_and_selection_keeps_them():
    notes, _, _ = midi.extract_notes(midi_file(notes_track([(0, 60, 60, 70), (60, 120, 62, 80)])))
    np.testing.assert_array_equal(notes.pedals, np.zeros((2, 2), np.uint8))
    moved = midi_file(notes_track([(0, 60, 60, 70), (60, 120, 62, 80)],
                                  extra=[pedal(30, 67, 127)]))
    kept = midi.extract_notes(moved)[0].select(np.array([False, True]))
    assert kept.pedals.tolist() == [[0, 127]] and kept.pitch.tolist() == [62]


def hand_notes(n, pedals=None):
    ticks = np.arange(n, dtype=np.int64) * 120
    return Notes(np.full(n, 60, np.int16), ticks, ticks + 120, np.full(n, 64, np.uint8),
                 np.zeros(n, np.uint8), np.zeros(n, np.int32), np.arange(n, dtype=np.int32),
                 pedals)


def test_pedal_columns_give_each_value_and_the_performance_s_use_of_the_soft_pedal():
    values = np.array([[0, 0], [127, 0], [127, 100], [20, 63]], np.uint8)
    columns = pedal_columns(hand_notes(4, values), 480)
    assert columns.shape == (4, len(PEDAL_COLUMN_NAMES)) and columns.dtype == np.float32
    np.testing.assert_array_equal(columns[:, 0], [0, 127, 127, 20])
    np.testing.assert_array_equal(columns[:, 1], [0, 0, 100, 63])
    np.testing.assert_array_equal(columns[:, 2], 1.0)   # down (>= 64) under one note
    np.testing.assert_allclose(columns[:, 3], 0.25)
    unknown = pedal_columns(hand_notes(3).select(np.array([True, False, True])), 480)
    np.testing.assert_array_equal(unknown, np.zeros((2, len(PEDAL_COLUMN_NAMES)), np.float32))
    assert pedal_columns(hand_notes(0, np.zeros((0, 2), np.uint8)), 480).shape == (0, 4)


def soft_pedal_songs(count, n=64):
    """``count`` (performance, bool (n,) soft) pairs of one score: notes under the soft pedal
    at 40, the rest at 90. Where the pedal goes down differs from one performance to the
    next, so only the pedal columns can tell which notes are soft."""
    rng = np.random.default_rng(0)

    def performance(k):
        soft = rng.random(n) < 0.4
        pedals = np.stack([np.zeros(n), np.where(soft, 127, 0)], 1).astype(np.uint8)
        notes = hand_notes(n, pedals)
        notes = Notes(**{**notes.__dict__, "velocity": np.where(soft, 40, 90).astype(np.uint8),
                         "pitch": (60 + np.arange(n) % 12).astype(np.int16)})
        return performances.Performed(f"pop/p{k}", "pop", "p", f"p{k}.mid", notes, 480,
                                      notes.start / 960.0), soft

    return [performance(k) for k in range(count)]


TINY_TREES = {"max_iter": 40, "max_leaf_nodes": 7, "min_samples_leaf": 5}


def test_trees_with_the_pedal_columns_hear_a_soft_pedal_that_plain_trees_cannot():
    songs = soft_pedal_songs(12)
    train = [p for p, _ in songs[:10]]
    plain = FeatureBaseline.fit(train, seed=0, log=lambda _: None, **TINY_TREES)
    heard = FeatureBaseline.fit(train, seed=0, log=lambda _: None, extras=("pedals",),
                                **TINY_TREES)
    for p, soft in songs[10:]:
        with_pedals = heard.predict(p.notes, 480, "pop", p.seconds)
        without = plain.predict(p.notes, 480, "pop", p.seconds)
        assert np.abs(with_pedals - p.notes.velocity).mean() < 5
        assert np.abs(without - p.notes.velocity).mean() > 15
        assert with_pedals[soft].max() < with_pedals[~soft].min()


def test_trees_that_saw_half_the_performances_without_pedals_play_both_kinds_of_file():
    songs = soft_pedal_songs(24)
    train = [p for p, _ in songs[:20]]
    lines = []
    both = FeatureBaseline.fit(train, seed=0, log=lines.append, extras=("pedals",),
                               hide_pedals=0.5, **TINY_TREES)
    never = FeatureBaseline.fit(train, seed=0, log=lambda _: None, extras=("pedals",),
                                hide_pedals=1.0, **TINY_TREES)
    always = FeatureBaseline.fit(train, seed=0, log=lambda _: None, extras=("pedals",),
                                 **TINY_TREES)
    assert "pedals hidden in 10 of them" in lines[0]
    mean = np.concatenate([p.notes.velocity for p in train]).mean()  # 40 * 0.4 + 90 * 0.6
    for p, soft in songs[20:]:
        score = performances.without_pedals(p).notes  # the same notes, pedals unknown
        heard = both.predict(p.notes, 480, "pop", p.seconds)
        assert heard[soft].max() < heard[~soft].min()  # it still hears the pedal...
        # ...and without one it plays near the mean, as the pedal-blind trees do, where
        # trees that always saw a pedal take "no pedal" for "not soft" and play loud.
        assert np.abs(both.predict(score, 480, "pop", p.seconds) - mean).mean() < 4
        assert np.abs(always.predict(score, 480, "pop", p.seconds) - 90).mean() < 4
        # Trees that never saw a pedal do not read one.
        np.testing.assert_array_equal(never.predict(p.notes, 480, "pop", p.seconds),
                                      never.predict(score, 480, "pop", p.seconds))
    for share, extras in ((1.5, ("pedals",)), (0.5, ())):
        with pytest.raises(FeatureBaselineError, match="pedals"):
            FeatureBaseline.fit(train, log=lambda _: None, extras=extras, hide_pedals=share,
                                **TINY_TREES)


class SoftPedalListener:
    """A system that plays 30 under the soft pedal and 90 elsewhere, as it was told."""

    name = "listener"

    def perform(self, performed):
        from stylenet_jax.evaluation import Performance
        soft = pedal_columns(performed.notes, performed.ticks_per_beat)[:, 1] >= 64
        return Performance(np.where(soft, 30, 90).astype(np.int64))


def test_the_evaluation_tells_the_pedals_unless_asked_to_hide_them(tmp_path):
    from stylenet_jax import evaluation

    path = str(tmp_path / "soft.mid")
    midi_file(notes_track([(0, 60, 60, 30), (60, 120, 62, 90)],
                          extra=[pedal(0, 67, 127), pedal(50, 67, 0)])).save(path)
    human = performances.load_performed(path, "pop", "p")
    assert performances.without_pedals(human).notes.pedals is None
    assert human.notes.pedals is not None  # the original is left as it was
    told = evaluation.evaluate([human], [SoftPedalListener()])
    hidden = evaluation.evaluate([human], [SoftPedalListener()], pedals=False)
    assert told.velocities["listener"][0].tolist() == [30, 90]
    assert hidden.velocities["listener"][0].tolist() == [90, 90]


def test_the_shipped_tree_reads_the_columns_its_recorded_recipe_names():
    """experiments.feature_baseline's SHIPPED_RECIPE (its --out help, README's command) against
    the columns and borrowing the shipped pickle's header holds."""
    from experiments.feature_baseline import SHIPPED_RECIPE
    from stylenet_jax.feature_baseline import DEFAULT_PATH, EXTRA_COLUMNS, ordered_extras
    from stylenet_jax.tree_borrowing import parse_borrow

    recipe = SHIPPED_RECIPE.split()
    shipped = FeatureBaseline.load(DEFAULT_PATH)
    assert shipped.extras == ordered_extras([f[2:] for f in recipe if f[2:] in EXTRA_COLUMNS])
    assert "pedals" in shipped.extras and "--hide_pedals=0.5" in recipe
    assert shipped.borrow == parse_borrow([f.split("=", 1)[1] for f in recipe
                                           if f.startswith("--borrow=")])
