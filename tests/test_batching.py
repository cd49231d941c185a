"""Tests of stylenet_jax.batching: windows, padding, fixed shapes, masks, epoch order."""

import collections

import numpy as np
import pytest

from stylenet_jax import batching
from stylenet_jax.dataset import Song

STYLES = ("classical", "jazz")


def make_song(i: int, style: str, length: int) -> Song:
    """A song whose every cell encodes (song i, step t) so windows can be traced back."""
    rng = np.random.default_rng(i)
    inputs = rng.integers(0, 2, (length, 176), dtype=np.uint8)
    velocities = rng.integers(0, 128, (length, 88), dtype=np.uint8)
    velocities[:, 0] = i  # song tag
    velocities[:, 1] = np.arange(length) % 128  # step tag
    return Song(f"{style}-{i}", style, inputs, velocities)


def corpus(lengths_by_style: dict[str, list[int]]) -> list[Song]:
    songs, i = [], 0
    for style, lengths in lengths_by_style.items():
        for n in lengths:
            songs.append(make_song(i, style, n))
            i += 1
    return songs


def test_pad_and_window_exact():
    x = np.arange(7 * 3).reshape(7, 3)
    assert batching.num_windows(7, 3) == 3 and batching.num_windows(6, 3) == 2
    p = batching.pad_to_multiple(x, 3)
    assert p.shape == (9, 3) and p.dtype == x.dtype
    np.testing.assert_array_equal(p[:7], x)
    assert not p[7:].any()
    w = batching.window_array(x, 3)
    assert w.shape == (3, 3, 3)
    np.testing.assert_array_equal(w.reshape(9, 3)[:7], x)
    np.testing.assert_array_equal(batching.window_lengths(7, 3), [3, 3, 1])
    np.testing.assert_array_equal(batching.window_lengths(6, 3), [3, 3])
    assert batching.window_lengths(7, 3).dtype == np.int32


def test_window_song_targets_and_dtypes():
    song = make_song(3, "jazz", 450)
    w = batching.window_song(song, 1, window=200)
    assert w.inputs.shape == (3, 200, 176) and w.inputs.dtype == np.uint8
    assert w.targets.shape == (3, 200, 88) and w.targets.dtype == np.float32
    np.testing.assert_array_equal(w.lengths, [200, 200, 50])
    np.testing.assert_allclose(w.targets.reshape(600, 88)[:450], song.velocities / 127.0,
                               rtol=1e-6)
    assert not w.targets[2, 50:].any() and not w.inputs[2, 50:].any()
    assert w.style == 1


def test_unknown_style_rejected():
    with pytest.raises(ValueError, match="pop"):
        batching.window_songs([make_song(0, "pop", 10)], STYLES)


def _trace(batches):
    """(song tag, first step tag) of every real window, plus the batches."""
    seen, out = [], []
    for b in batches:
        out.append(b)
        for n in range(b.lengths.shape[0]):
            if b.lengths[n]:
                seen.append((round(b.targets[n, 0, 0] * 127), round(b.targets[n, 0, 1] * 127)))
    return seen, out


@pytest.mark.parametrize("layout", batching.LAYOUTS)
def test_every_window_once_fixed_shapes_masks(layout):
    songs = corpus({"classical": [450, 200, 30, 1000, 610], "jazz": [199, 401, 800]})
    windows = batching.window_songs(songs, STYLES, window=100)
    seen, batches = _trace(batching.epoch_batches(
        windows, layout=layout, songs_per_batch=2, windows_per_batch=8,
        rng=batching.epoch_rng(0, 0)))
    expected = [(i, (k * 100) % 128) for i, s in enumerate(songs)
                for k in range(batching.num_windows(len(s.inputs), 100))]
    assert collections.Counter(seen) == collections.Counter(expected)
    n = 2 if layout == "carry" else 8
    assert batching.batch_shape(layout, 100, 2, 8) == (n, 100)
    for b in batches:
        assert b.inputs.shape == (n, 100, 176) and b.inputs.dtype == np.uint8
        assert b.targets.shape == (n, 100, 88) and b.targets.dtype == np.float32
        assert b.lengths.dtype == np.int32 and b.styles.dtype == np.int32
        assert b.reset.dtype == bool and b.reset.shape == (n,)
        if layout == "mixed":  # each real row keeps its own song's style
            for row in np.flatnonzero(b.lengths):
                song = round(b.targets[row, 0, 0] * 127)
                assert b.styles[row] == STYLES.index(songs[song].style)
        else:
            assert len(set(b.styles.tolist())) == 1
        mask = b.mask
        assert mask.shape == (n, 100)
        # Padding (steps past lengths, empty rows) is all zeros.
        assert not b.inputs[~mask].any() and not b.targets[~mask].any()
        if layout != "carry":
            assert b.reset.all()
    total = batching.count_batches(windows, layout, 2, 8, rng=batching.epoch_rng(0, 0))
    assert total == len(batches)


def test_lengths_sum_to_song_lengths():
    songs = corpus({"classical": [450, 77], "jazz": [1, 399]})
    windows = batching.window_songs(songs, STYLES, window=200)
    batches = list(batching.epoch_batches(windows, windows_per_batch=4))
    assert sum(int(b.lengths.sum()) for b in batches) == 450 + 77 + 1 + 399


def test_styles_alternate_while_both_have_batches():
    songs = corpus({"classical": [400] * 8, "jazz": [400] * 3})
    windows = batching.window_songs(songs, STYLES, window=200)
    batches = list(batching.epoch_batches(windows, songs_per_batch=2, windows_per_batch=4,
                                          rng=batching.epoch_rng(1, 3)))
    order = [int(b.styles[0]) for b in batches]
    # classical: 4 groups x 4 windows = 4 batches, jazz: 2 groups (4 + 2 windows) = 2 batches.
    assert order == [0, 1, 0, 1, 0, 0]


def test_order_deterministic_by_seed_and_epoch():
    songs = corpus({"classical": [300] * 9, "jazz": [250] * 7})
    windows = batching.window_songs(songs, STYLES, window=100)

    def order(seed, epoch):
        seen, _ = _trace(batching.epoch_batches(windows, songs_per_batch=4, windows_per_batch=6,
                                                rng=batching.epoch_rng(seed, epoch)))
        return seen

    assert order(5, 2) == order(5, 2)
    assert order(5, 2) != order(5, 3)
    assert order(5, 2) != order(6, 2)


def test_per_piece_keeps_at_most_n_performances_of_a_piece_drawn_afresh_each_epoch():
    songs = corpus({"classical": [100] * 7, "jazz": [100] * 3})
    pieces = ["a", "a", "a", "a", "b", "b", "c", "a", "x", "y"]  # jazz's "a" is another piece
    songs = [s._replace(piece=p) for s, p in zip(songs, pieces)]
    windows = batching.window_songs(songs, STYLES, window=100)
    assert [w.piece for w in windows] == pieces
    assert batching.window_songs([songs[0]._replace(piece=None)], STYLES)[0].piece == "classical-0"

    def kept(limit, seed, epoch):
        return [w.id for w in batching.per_piece(windows, limit, seed, epoch)]

    every = [w.id for w in windows]
    assert kept(0, 0, 0) == every  # off: the paper's epochs
    one = kept(1, 0, 0)
    assert len(one) == 6 and one == [i for i in every if i in one]  # a, b, c, a, x, y; order kept
    assert sum(i in one for i in every[:4]) == 1 and sum(i in one for i in every[4:6]) == 1
    assert all(i in one for i in every[6:])  # pieces played once, and jazz's own "a"
    assert kept(1, 0, 0) == one
    drawn = {tuple(kept(1, 0, epoch)) for epoch in range(40)}
    assert len(drawn) > 3 and {i for d in drawn for i in d} == set(every)  # every one, in turn
    assert len(kept(2, 0, 0)) == 8 and kept(4, 3, 1) == every


def test_no_rng_keeps_manifest_order():
    songs = corpus({"classical": [100, 100], "jazz": [100]})
    windows = batching.window_songs(songs, STYLES, window=100)
    seen, _ = _trace(batching.epoch_batches(windows, windows_per_batch=1))
    assert [s for s, _ in seen] == [0, 2, 1]


def test_carry_layout_order():
    songs = corpus({"classical": [250, 100, 430]})
    windows = batching.window_songs(songs, STYLES, window=100)
    batches = list(batching.epoch_batches(windows, layout="carry", songs_per_batch=4))
    assert len(batches) == 5  # longest song has 5 windows
    for k, b in enumerate(batches):
        assert b.reset.tolist() == [k == 0] * 4
        expected = [min(100, max(0, n - 100 * k)) for n in (250, 100, 430)] + [0]
        assert b.lengths.tolist() == expected
        for r in range(3):
            if b.lengths[r]:
                assert round(b.targets[r, 0, 0] * 127) == r  # row r is song r
                assert round(b.targets[r, 0, 1] * 127) == (100 * k) % 128  # window k


def test_packed_layout_fills_every_batch_but_each_styles_last():
    songs = corpus({"classical": [450, 200, 30, 1000, 610, 330], "jazz": [199, 401, 800]})
    windows = batching.window_songs(songs, STYLES, window=100)
    kw = dict(songs_per_batch=2, windows_per_batch=8)
    rng = lambda: batching.epoch_rng(3, 1)  # noqa: E731
    ind_seen, independent = _trace(batching.epoch_batches(windows, rng=rng(), **kw))
    seen, packed = _trace(batching.epoch_batches(windows, layout="packed", rng=rng(), **kw))
    # Each style's windows in the same order (the same shuffled songs), in fewer batches.
    for style in STYLES:
        tags = {i for i, song in enumerate(songs) if song.style == style}
        assert [w for w in seen if w[0] in tags] == [w for w in ind_seen if w[0] in tags]
    by_style = collections.defaultdict(list)
    for b in packed:
        by_style[int(b.styles[0])].append(int((b.lengths > 0).sum()))
    for style, fills in by_style.items():
        total = sum(len(w.lengths) for w in windows if w.style == style)
        assert fills[:-1] == [8] * (len(fills) - 1) and sum(fills) == total
    assert len(packed) == sum(-(-sum(f) // 8) for f in by_style.values())
    assert len(packed) < len(independent)
    assert [int(b.styles[0]) for b in packed[:4]] == [0, 1, 0, 1]  # styles still alternate
    assert batching.count_batches(windows, "packed", 2, 8, rng=rng()) == len(packed)


def test_bad_layout():
    with pytest.raises(ValueError, match="layout"):
        list(batching.epoch_batches([], layout="nope"))
