"""The human-vs-system classifier: excerpts, features, piece-grouped splits, and that the
pairwise classifier finds a real difference, finds none where there is none, and is seeded.

Every training scenario has 20 train pairs of 16 notes, so the train step compiles once."""

from typing import NamedTuple

import numpy as np
import pytest

from stylenet_jax import midi
from stylenet_jax import human_classifier as hc

TICKS_PER_BEAT = 480
NOTES_PER_EXCERPT = 16
TRAIN_PAIRS = 20


def make_notes(pitch, start, end=None, velocity=None) -> midi.Notes:
    """Notes in the given order (start ticks ascending) on track 0."""
    pitch = np.asarray(pitch, np.int16)
    start = np.asarray(start, np.int64)
    n = len(pitch)
    end = start + TICKS_PER_BEAT if end is None else np.asarray(end, np.int64)
    velocity = np.full(n, 64) if velocity is None else np.asarray(velocity)
    return midi.Notes(pitch=pitch, start=start, end=end, velocity=velocity.astype(np.uint8),
                      channel=np.zeros(n, np.uint8), track=np.zeros(n, np.int32),
                      index=np.arange(n, dtype=np.int32))


def random_excerpt(rng: np.random.Generator, n: int = NOTES_PER_EXCERPT):
    """n notes, eighths and sixteenths at 120 bpm (1 beat = 0.5 s), every third onset a
    two-note chord; returns (notes, onset seconds)."""
    gaps = rng.choice([TICKS_PER_BEAT // 4, TICKS_PER_BEAT // 2], n)
    gaps[::3] = 0
    start = np.cumsum(gaps) - gaps[0]
    return make_notes(rng.integers(40, 90, n), start), start / TICKS_PER_BEAT * 0.5


def scenario(human_fn, system_fn, count: int, seed: int, first_piece: int = 0) -> list[hc.Pair]:
    """``count`` pairs, one per piece, velocities from human_fn(rng, n) / system_fn(rng, h)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for k in range(count):
        notes, seconds = random_excerpt(rng)
        human = human_fn(rng, len(notes))
        pairs.append(hc.Pair(notes, seconds, TICKS_PER_BEAT, human, system_fn(rng, human),
                             f"piece{first_piece + k}"))
    return pairs


def varied(rng, n):
    return rng.integers(30, 100, n)


def constant_64(rng, human):
    return np.full(len(human), 64)


def same_process(rng, human):
    return varied(rng, len(human))


def test_excerpts_are_consecutive_windows_of_enough_notes():
    dense_a = np.arange(0, 10, 0.5)  # 20 notes in [0, 10)
    sparse = np.array([12.0, 13.0])  # 2 notes in [10, 20): skipped
    dense_b = np.arange(20, 25, 0.5)  # 10 notes in [20, 30)
    seconds = np.concatenate([dense_b, sparse, dense_a])  # not in onset order
    windows = hc.excerpts(seconds, 10.0)
    assert [len(w) for w in windows] == [20, 10]
    np.testing.assert_array_equal(seconds[windows[0]], dense_a)
    np.testing.assert_array_equal(seconds[windows[1]], dense_b)
    overlapping = hc.excerpts(seconds, 10.0, hop_seconds=5.0)  # starts 0, 5, ..., 20
    assert [len(w) for w in overlapping] == [20, 12, 10, 10]  # [10, 20) is skipped
    whole = hc.excerpts(seconds, None)
    assert len(whole) == 1 and np.all(np.diff(seconds[whole[0]]) >= 0) and len(whole[0]) == 32
    assert hc.excerpts(seconds[:5], None) == []  # fewer than 8 notes


def test_note_features_of_a_chord_and_a_melody():
    # a C major chord at beat 0 (velocities 40, 60, 80), then single notes a sixteenth apart
    notes = make_notes([64, 60, 67, 72, 74], [0, 0, 10, 120, 240],
                       end=[480, 480, 480, 240, 1200])
    seconds = np.array([0.0, 0.0, 0.01, 0.125, 0.25])
    velocity = np.array([60, 40, 80, 100, 20])
    f = dict(zip(hc.FEATURE_NAMES, hc.note_features(notes, TICKS_PER_BEAT, seconds, velocity).T))
    np.testing.assert_allclose(f["velocity"] * 127, velocity, rtol=1e-6)
    np.testing.assert_allclose(f["velocity_minus_excerpt_mean"] * 127, velocity - 60, atol=1e-4)
    np.testing.assert_allclose(f["velocity_minus_previous"] * 127, [0, -20, 40, 20, -80],
                               atol=1e-4)
    np.testing.assert_allclose(f["in_chord"], [1, 1, 1, 0, 0])
    np.testing.assert_allclose(f["chord_rank"], [0.5, 0.0, 1.0, 0, 0])  # by pitch in the chord
    np.testing.assert_allclose(f["velocity_minus_chord_mean"] * 127, [0, -20, 20, 0, 0],
                               atol=1e-4)
    np.testing.assert_allclose(f["inter_onset_seconds"], [0, 0, 0.01, 0.115, 0.125], atol=1e-6)
    np.testing.assert_allclose(f["log_duration_steps"], np.log1p([4, 4, 4, 1, 8]) / 4, rtol=1e-6)
    np.testing.assert_allclose(f["pitch"] * 127, [64, 60, 67, 72, 74], rtol=1e-6)


def test_pair_arrays_pad_and_truncate_with_a_mask():
    pairs = scenario(varied, constant_64, 2, seed=0)
    short = pairs[0]._replace(notes=pairs[0].notes.select(np.arange(10)),
                              seconds=pairs[0].seconds[:10], human=pairs[0].human[:10],
                              system=pairs[0].system[:10])
    human, system, mask = hc.pair_arrays([short, pairs[1]], max_notes=12)
    assert human.shape == system.shape == (2, 12, hc.NUM_FEATURES) and mask.shape == (2, 12)
    assert mask.sum(axis=1).tolist() == [10, 12]
    assert not human[0, 10:].any() and not system[0, 10:].any()
    np.testing.assert_allclose(system[1, :, 0], 64 / 127)


class FakePerformed(NamedTuple):
    """The fields of ``performances.Performed`` that make_pairs reads."""

    id: str
    piece: str
    notes: midi.Notes
    ticks_per_beat: int
    seconds: np.ndarray


def test_make_pairs_cuts_both_versions_alike():
    rng = np.random.default_rng(1)
    performed, systems = [], []
    for k, n in enumerate([40, 25]):  # one note per 0.5 s: 20 notes per 10-second window
        notes = make_notes(rng.integers(40, 90, n), np.arange(n) * TICKS_PER_BEAT,
                           velocity=rng.integers(1, 128, n))
        performed.append(FakePerformed(f"song{k}", f"piece{k}", notes, TICKS_PER_BEAT,
                                       np.arange(n) * 0.5))
        systems.append(np.arange(n) % 127 + 1)
    pairs = hc.make_pairs(performed, systems)
    assert [(p.piece, len(p.notes)) for p in pairs] == [("piece0", 20), ("piece0", 20),
                                                        ("piece1", 20)]  # 5-note tail skipped
    np.testing.assert_array_equal(pairs[1].human, performed[0].notes.velocity[20:40])
    np.testing.assert_array_equal(pairs[1].system, systems[0][20:40])
    np.testing.assert_array_equal(pairs[1].seconds, performed[0].seconds[20:40])
    whole = hc.make_pairs(performed, systems, length_seconds=None)
    assert [len(p.notes) for p in whole] == [40, 25]
    with pytest.raises(ValueError, match="system velocities"):
        hc.make_pairs(performed, [systems[0], systems[0]])


def test_split_pieces_never_shares_a_piece():
    pairs = [p for k in range(3) for p in scenario(varied, constant_64, 10, seed=k)]  # 3 each
    train, test = hc.split_pieces(pairs, 0.3, seed=0)
    train_pieces, test_pieces = {p.piece for p in train}, {p.piece for p in test}
    assert not train_pieces & test_pieces
    assert len(test_pieces) == 3 and len(train_pieces) == 7
    assert len(train) + len(test) == len(pairs) and len(test) == 9
    again = hc.split_pieces(pairs, 0.3, seed=0)[1]
    assert {p.piece for p in again} == test_pieces
    assert {p.piece for p in hc.split_pieces(pairs, 0.3, seed=1)[1]} != test_pieces


def test_separable_velocities_are_identified_and_the_seed_decides():
    train = scenario(varied, constant_64, TRAIN_PAIRS, seed=0)
    test = scenario(varied, constant_64, 100, seed=1, first_piece=TRAIN_PAIRS)
    result = hc.train_and_score(train, test, steps=150, seed=0)
    assert result["accuracy"] >= 0.95
    assert (result["pairs"], result["pieces"], result["train_pieces"]) == (100, 100, 20)
    low, high = result["ci95"]
    assert low <= result["accuracy"] <= high and high - low < 0.1
    again = hc.train_and_score(train, test, steps=150, seed=0)
    np.testing.assert_array_equal(again["margins"], result["margins"])
    assert again["final_loss"] == result["final_loss"]
    other = hc.train_and_score(train, test, steps=150, seed=1)
    assert not np.allclose(other["margins"], result["margins"])


def test_both_halves_scores_every_piece_once_with_the_classifier_that_did_not_see_it():
    pairs = scenario(varied, constant_64, 60, seed=6)
    result = hc.score_both_halves(pairs, seed=0, steps=150)
    assert (result["pairs"], result["pieces"]) == (60, 60)  # every piece scored
    first, second = hc.split_pieces(pairs, 0.5, 0)
    halves = [hc.train_and_score(first, second, steps=150, seed=0)["accuracy"],
              hc.train_and_score(second, first, steps=150, seed=0)["accuracy"]]
    assert result["halves"] == halves
    assert result["accuracy"] == pytest.approx(
        (halves[0] * len(second) + halves[1] * len(first)) / len(pairs))
    assert result["accuracy"] >= 0.95
    low, high = result["ci95"]
    assert low <= result["accuracy"] <= high
    ties = hc.score_both_halves(scenario(varied, lambda rng, human: human, 10, seed=7),
                                seed=0, steps=20)
    assert ties["accuracy"] == 0.5 and ties["halves"] == [0.5, 0.5]


def test_a_feature_ablation_hides_the_columns_it_leaves_out():
    train = scenario(varied, constant_64, TRAIN_PAIRS, seed=0)
    test = scenario(varied, constant_64, 100, seed=1, first_piece=TRAIN_PAIRS)
    context = [n for n in hc.FEATURE_NAMES if not n.startswith("velocity")]
    blind = hc.train_and_score(train, test, steps=20, seed=0, features=context)
    assert blind["accuracy"] == 0.5 and np.all(blind["margins"] == 0.0)  # velocity unseen
    steps = hc.train_and_score(train, test, steps=150, seed=0,
                               features=["velocity_minus_previous"])
    assert steps["accuracy"] >= 0.95  # a constant system never moves from note to note
    human, system, _ = hc.pair_arrays(test[:2], 64, ["velocity", "pitch"])
    kept = [hc.FEATURE_NAMES.index("velocity"), hc.FEATURE_NAMES.index("pitch")]
    assert human[..., kept].any() and system[..., kept].any()
    assert not np.delete(human, kept, axis=-1).any()
    assert not np.delete(system, kept, axis=-1).any()
    for bad, said in ((["loudness"], "unknown classifier feature"), ([], "no features kept")):
        with pytest.raises(ValueError, match=said):
            hc.feature_mask(bad)


def test_identical_versions_always_tie():
    train = scenario(varied, lambda rng, human: human, TRAIN_PAIRS, seed=2)
    test = scenario(varied, lambda rng, human: human, 50, seed=3, first_piece=TRAIN_PAIRS)
    result = hc.train_and_score(train, test, steps=20, seed=0)
    assert result["accuracy"] == 0.5
    assert np.all(result["margins"] == 0.0)


def test_one_random_process_for_both_is_chance():
    train = scenario(varied, same_process, TRAIN_PAIRS, seed=4)
    test = scenario(varied, same_process, 400, seed=5, first_piece=TRAIN_PAIRS)
    result = hc.train_and_score(train, test, steps=150, seed=0)
    assert 0.35 <= result["accuracy"] <= 0.65
    assert np.mean(np.abs(result["margins"]) < hc.TIE_TOLERANCE) < 0.05  # a guess, not ties
