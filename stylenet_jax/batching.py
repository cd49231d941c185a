"""Songs -> fixed-shape training batches of windows (pure numpy, no JAX).

A song of T steps is zero-padded to ``K = ceil(T / W)`` windows of ``W`` steps (the paper's
200-step truncated BPTT). Windows are grouped into batches of ONE style (but in the
``"mixed"`` layout) and of a FIXED shape,
so a jitted step compiles once; missing rows are empty windows (``lengths == 0``).

The layouts (``LAYOUTS``):

* ``"independent"`` (default, the paper): every window is its own sequence (``reset`` all
  True). The windows of ``songs_per_batch`` songs of one style are emitted, song by song, in
  batches of ``windows_per_batch`` rows; the group's last batch is padded with empty windows.
* ``"packed"``: like ``"independent"``, but a style's windows fill batches across song-group
  boundaries, so only each style's last batch of the epoch has empty rows (with the paper's
  groups of 4 songs, about a third of the rows were empty on the real corpus). A batch then
  mixes the windows of neighbouring groups: not the paper's 4-song mini-batches.
* ``"mixed"``: like ``"independent"``, but the songs of ALL styles are shuffled together
  and cut into groups, so a batch holds several styles (the paper's question "alternating
  style batches vs mixed"); each row keeps its own style, and the trainer runs every head
  and takes each row's own (``train_steps``). Evaluation stays one style per batch.
* ``"carry"``: rows are the ``songs_per_batch`` songs of a group; the group's k-th batch holds
  window k of each song (``reset`` True on k == 0), rows whose song is over are empty. The
  trainer carries the recurrent state from one batch of a style to the next batch of the same
  style (keep one carry per style: batches of different styles alternate).

Epoch order: each style's songs are shuffled and cut into groups of ``songs_per_batch``; each
style's groups give a stream of batches, and the streams are interleaved round-robin, one batch
per style in turn, while any style has batches left (the paper's alternating mini-batches).
The order of epoch ``e`` depends only on ``(seed, e)`` (see ``epoch_rng``), so a run resumed at
an epoch boundary replays exactly the batches an uninterrupted run would have seen. Checkpoints
are taken at epoch ends only; no position within an epoch is recorded.
"""

from __future__ import annotations

import math
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from stylenet_jax.config import SONGS_PER_BATCH, WINDOW, WINDOWS_PER_BATCH
from stylenet_jax.dataset import Song
from stylenet_jax import encoding
from stylenet_jax.encoding import INPUT_SIZE, NUM_KEYS
from stylenet_jax.tempo import DEFAULT_SECONDS_PER_BEAT

LAYOUTS = ("independent", "carry", "packed", "mixed")
PER_PIECE_STREAM = 1  # per_piece's draw: a generator apart from the epoch order's
OUTPUT_SIZE = 88


class Batch(NamedTuple):
    """One fixed-shape training batch; all rows share one style (but in the mixed layout).

    inputs: uint8 (N, W, 176); targets: float32 (N, W, 88) in [0, 1];
    lengths: int32 (N,) real steps per row, 0 for an empty padding row;
    styles: int32 (N,) head index per row; reset: bool (N,) True where the row starts a new
    sequence (always True in the independent layout); seconds_per_beat: float32 (N,) each
    row's song's mean tempo (``tempo``; MIDI's default 0.5 on empty rows), or None (every row
    at the default: batches made by hand); priors: float32 (N, W, 88) the tree baseline's
    velocity / 127 on every active cell (``tree_prior``; 0 on empty rows), or None (the songs
    carry none).
    """

    inputs: np.ndarray
    targets: np.ndarray
    lengths: np.ndarray
    styles: np.ndarray
    reset: np.ndarray
    seconds_per_beat: np.ndarray | None = None
    priors: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray:
        """bool (N, W): True on real steps."""
        return step_mask(self.lengths, self.inputs.shape[1])


class Windows(NamedTuple):
    """One song cut into K windows: inputs uint8 (K, W, 176), targets float32 (K, W, 88),
    lengths int32 (K,) (W except maybe the last), style int (head index), id str,
    seconds_per_beat float (the song's mean tempo), priors float32 (K, W, 88) or None (the
    song's ``prior`` / 127), piece str (the piece it performs; its id where unknown)."""

    inputs: np.ndarray
    targets: np.ndarray
    lengths: np.ndarray
    style: int
    id: str
    seconds_per_beat: float = DEFAULT_SECONDS_PER_BEAT
    priors: np.ndarray | None = None
    piece: str = ""


def step_mask(lengths: np.ndarray, window: int) -> np.ndarray:
    """bool (N, window): ``mask[n, t] = t < lengths[n]``."""
    return np.arange(window)[None, :] < np.asarray(lengths)[:, None]


def num_windows(length: int, window: int = WINDOW) -> int:
    """Number of windows of a song of ``length`` steps: ceil(length / window)."""
    return -(-int(length) // window)


def pad_to_multiple(x: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Zero-pads axis 0 of ``x`` (T, ...) to (num_windows(T) * window, ...); same dtype."""
    pad = num_windows(x.shape[0], window) * window - x.shape[0]
    return np.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))


def window_array(x: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """(T, F) -> (K, window, F): the zero-padded song cut into consecutive windows."""
    padded = pad_to_multiple(x, window)
    return padded.reshape(-1, window, *x.shape[1:])


def window_lengths(length: int, window: int = WINDOW) -> np.ndarray:
    """int32 (K,): real steps in each window of a song of ``length`` steps."""
    k = num_windows(length, window)
    return np.clip(length - window * np.arange(k), 0, window).astype(np.int32)


def window_song(song: Song, style_index: int, window: int = WINDOW) -> Windows:
    """Cuts one ``Song`` into ``Windows`` (targets = velocities / 127)."""
    t = song.inputs.shape[0]
    if song.velocities.shape[0] != t:
        raise ValueError(f"{song.id}: inputs have {t} steps, velocities "
                         f"{song.velocities.shape[0]}")
    spb = DEFAULT_SECONDS_PER_BEAT if song.seconds_per_beat is None else song.seconds_per_beat
    priors = None
    if song.prior is not None:
        if song.prior.shape != song.velocities.shape:
            raise ValueError(f"{song.id}: prior of shape {song.prior.shape}, velocities "
                             f"{song.velocities.shape}")
        priors = window_array(encoding.velocities_to_target(song.prior), window)
    return Windows(window_array(np.asarray(song.inputs, np.uint8), window),
                   window_array(song.target, window),
                   window_lengths(t, window), int(style_index), song.id, float(spb), priors,
                   song.piece or song.id)


def window_songs(songs: Sequence[Song], styles: Sequence[str],
                 window: int = WINDOW) -> list[Windows]:
    """Cuts every song (dropping empty ones); ``styles`` gives each style name's head index."""
    index = {s: i for i, s in enumerate(styles)}
    unknown = sorted({s.style for s in songs} - set(index))
    if unknown:
        raise ValueError(f"songs of styles {unknown} not in {list(styles)}")
    return [window_song(s, index[s.style], window) for s in songs if s.inputs.shape[0] > 0]


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The generator that orders epoch ``epoch`` of a run seeded ``seed``."""
    return np.random.default_rng([int(seed), int(epoch)])


def per_piece(songs: Sequence[Windows], limit: int, seed: int, epoch: int) -> list[Windows]:
    """The songs epoch ``epoch`` of a run seeded ``seed`` trains on when it takes at most
    ``limit`` performances of each piece (of each style): for a piece with more, ``limit``
    of them drawn afresh each epoch (from a generator of its own, so the epoch's order from
    ``epoch_rng`` is untouched); the kept songs stay in their given order. ``limit`` 0:
    every song."""
    if limit <= 0:
        return list(songs)
    by_piece: dict[tuple[int, str], list[int]] = {}
    for i, s in enumerate(songs):
        by_piece.setdefault((s.style, s.piece or s.id), []).append(i)
    rng = np.random.default_rng([int(seed), int(epoch), PER_PIECE_STREAM])
    kept = set()
    for key in sorted(by_piece):
        members = by_piece[key]
        kept.update(members if len(members) <= limit
                    else rng.choice(members, limit, replace=False).tolist())
    return [s for i, s in enumerate(songs) if i in kept]


def song_groups(songs: Sequence[Windows], songs_per_batch: int = SONGS_PER_BATCH,
                rng: np.random.Generator | None = None) -> dict[int, list[list[int]]]:
    """Per style (sorted head index): its songs' indices, shuffled by ``rng`` (None: kept in
    order), cut into groups of ``songs_per_batch`` (the last group may be smaller)."""
    by_style: dict[int, list[int]] = {}
    for i, s in enumerate(songs):
        by_style.setdefault(s.style, []).append(i)
    groups = {}
    for style in sorted(by_style):
        idx = np.asarray(by_style[style])
        if rng is not None:
            idx = rng.permutation(idx)
        groups[style] = [idx[i:i + songs_per_batch].tolist()
                         for i in range(0, len(idx), songs_per_batch)]
    return groups


def mixed_groups(songs: Sequence[Windows], songs_per_batch: int = SONGS_PER_BATCH,
                 rng: np.random.Generator | None = None) -> list[list[int]]:
    """Every song's index, shuffled by ``rng`` whatever its style (None: kept in order), cut
    into groups of ``songs_per_batch`` (the last may be smaller)."""
    idx = np.arange(len(songs)) if rng is None else rng.permutation(len(songs))
    return [idx[i:i + songs_per_batch].tolist() for i in range(0, len(idx), songs_per_batch)]


def _empty(n: int, window: int, style: int, priors: bool = False) -> Batch:
    return Batch(np.zeros((n, window, INPUT_SIZE), np.uint8),
                 np.zeros((n, window, OUTPUT_SIZE), np.float32),
                 np.zeros((n,), np.int32), np.full((n,), style, np.int32),
                 np.ones((n,), bool), np.full((n,), DEFAULT_SECONDS_PER_BEAT, np.float32),
                 np.zeros((n, window, OUTPUT_SIZE), np.float32) if priors else None)


def _has_priors(songs: Sequence[Windows]) -> bool:
    """Whether the songs carry priors; all of them or none (ValueError otherwise)."""
    have = {s.priors is not None for s in songs}
    if len(have) > 1:
        raise ValueError("some songs carry tree priors and some do not")
    return have == {True}


def independent_batches(songs: Sequence[Windows], group: Sequence[int],
                        windows_per_batch: int = WINDOWS_PER_BATCH) -> Iterator[Batch]:
    """The windows of the songs ``group``, song by song, in batches of ``windows_per_batch``
    rows, each row with its song's style; the last batch is padded with empty windows (of
    the first song's style)."""
    parts = [songs[i] for i in group]
    with_priors = _has_priors(parts)
    inputs = np.concatenate([p.inputs for p in parts])
    targets = np.concatenate([p.targets for p in parts])
    lengths = np.concatenate([p.lengths for p in parts])
    styles = np.concatenate([np.full(len(p.lengths), p.style, np.int32) for p in parts])
    tempos = np.concatenate([np.full(len(p.lengths), p.seconds_per_beat, np.float32)
                             for p in parts])
    priors = np.concatenate([p.priors for p in parts]) if with_priors else None
    style, n, window = parts[0].style, windows_per_batch, inputs.shape[1]
    for start in range(0, len(lengths), n):
        b = _empty(n, window, style, with_priors)
        m = min(n, len(lengths) - start)
        b.inputs[:m] = inputs[start:start + m]
        b.targets[:m] = targets[start:start + m]
        if with_priors:
            b.priors[:m] = priors[start:start + m]
        b.lengths[:m] = lengths[start:start + m]
        b.styles[:m] = styles[start:start + m]  # one style, except in the mixed layout
        b.seconds_per_beat[:m] = tempos[start:start + m]
        yield b


def packed_batches(songs: Sequence[Windows], order: Sequence[int],
                   windows_per_batch: int = WINDOWS_PER_BATCH) -> Iterator[Batch]:
    """The windows of the songs ``order`` (one style), song after song, in FULL batches of
    ``windows_per_batch`` rows that run across song boundaries; only the last is padded."""
    style, window = songs[order[0]].style, songs[order[0]].inputs.shape[1]
    with_priors = _has_priors([songs[i] for i in order])
    batch, filled = _empty(windows_per_batch, window, style, with_priors), 0
    for i in order:
        song, k = songs[i], 0
        while k < len(song.lengths):
            take = min(windows_per_batch - filled, len(song.lengths) - k)
            batch.inputs[filled:filled + take] = song.inputs[k:k + take]
            batch.targets[filled:filled + take] = song.targets[k:k + take]
            if with_priors:
                batch.priors[filled:filled + take] = song.priors[k:k + take]
            batch.lengths[filled:filled + take] = song.lengths[k:k + take]
            batch.seconds_per_beat[filled:filled + take] = song.seconds_per_beat
            filled, k = filled + take, k + take
            if filled == windows_per_batch:
                yield batch
                batch, filled = _empty(windows_per_batch, window, style, with_priors), 0
    if filled:
        yield batch


def carry_batches(songs: Sequence[Windows], group: Sequence[int],
                  songs_per_batch: int = SONGS_PER_BATCH) -> Iterator[Batch]:
    """Batch k holds window k of each song of ``group`` (row r = song group[r]); rows past a
    song's end or past the group's size are empty; ``reset`` is True on k == 0 only."""
    parts = [songs[i] for i in group]
    style, window = parts[0].style, parts[0].inputs.shape[1]
    with_priors = _has_priors(parts)
    for k in range(max(len(p.lengths) for p in parts)):
        b = _empty(songs_per_batch, window, style, with_priors)
        b.reset[:] = k == 0
        for r, p in enumerate(parts):
            if k < len(p.lengths):
                b.inputs[r], b.targets[r], b.lengths[r] = p.inputs[k], p.targets[k], p.lengths[k]
                b.seconds_per_beat[r] = p.seconds_per_beat
                if with_priors:
                    b.priors[r] = p.priors[k]
        yield b


def group_batches(songs: Sequence[Windows], group: Sequence[int], layout: str = "independent",
                  songs_per_batch: int = SONGS_PER_BATCH,
                  windows_per_batch: int = WINDOWS_PER_BATCH) -> Iterator[Batch]:
    """The batches of one group of songs in the given layout."""
    if layout == "independent":
        return independent_batches(songs, group, windows_per_batch)
    if layout == "carry":
        return carry_batches(songs, group, songs_per_batch)
    raise ValueError(f"layout {layout!r} not in {LAYOUTS}")


def epoch_batches(songs: Sequence[Windows], *, layout: str = "independent",
                  songs_per_batch: int = SONGS_PER_BATCH,
                  windows_per_batch: int = WINDOWS_PER_BATCH,
                  rng: np.random.Generator | None = None) -> Iterator[Batch]:
    """One epoch: per style, shuffled groups of songs -> a stream of batches; the style streams
    interleaved round-robin, one batch each, while any has batches left. ``rng=None`` keeps
    manifest order (evaluation). Batches are built lazily; shapes never change:
    (windows_per_batch, W) in the independent and packed layouts, (songs_per_batch, W) in the
    carry one."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} not in {LAYOUTS}")
    if layout == "mixed":
        for g in mixed_groups(songs, songs_per_batch, rng):
            yield from independent_batches(songs, g, windows_per_batch)
        return
    groups = song_groups(songs, songs_per_batch, rng)
    if layout == "packed":  # the same shuffled songs, their groups run together
        streams = [packed_batches(songs, [i for g in gs for i in g], windows_per_batch)
                   for gs in groups.values()]
    else:
        streams = [(b for g in gs for b in group_batches(songs, g, layout, songs_per_batch,
                                                         windows_per_batch))
                   for gs in groups.values()]
    while streams:
        alive = []
        for stream in streams:
            batch = next(stream, None)
            if batch is not None:
                alive.append(stream)
                yield batch
        streams = alive


def transposed(batches: Iterator[Batch], max_semitones: int, rng: np.random.Generator
               ) -> Iterator[Batch]:
    """Pitch-transposition augmentation: each row of each batch moved by a random number of
    semitones, uniform over the shifts within +-``max_semitones`` that keep all of the row's
    notes on the keyboard (0 for an empty row). Shapes, masks and styles are unchanged.
    Rows of one carried song (the carry layout) would be moved apart, so use it with the
    independent or packed layout."""
    for batch in batches:
        low, high = encoding.key_span(batch.inputs)
        down = np.minimum(max_semitones, np.maximum(low, 0))
        up = np.minimum(max_semitones, np.maximum(NUM_KEYS - 1 - high, 0))
        semitones = np.where(high < 0, 0, rng.integers(-down, up + 1))
        inputs, targets = encoding.transpose(batch.inputs, batch.targets, semitones)
        priors = (None if batch.priors is None
                  else encoding.transpose(batch.inputs, batch.priors, semitones)[1])
        yield batch._replace(inputs=inputs, targets=targets, priors=priors)


def batch_shape(layout: str, window: int = WINDOW, songs_per_batch: int = SONGS_PER_BATCH,
                windows_per_batch: int = WINDOWS_PER_BATCH) -> tuple[int, int]:
    """(N, W) of every batch of ``layout``."""
    return (songs_per_batch if layout == "carry" else windows_per_batch, window)


def count_batches(songs: Sequence[Windows], layout: str = "independent",
                  songs_per_batch: int = SONGS_PER_BATCH,
                  windows_per_batch: int = WINDOWS_PER_BATCH,
                  rng: np.random.Generator | None = None) -> int:
    """Number of batches ``epoch_batches`` yields with the same arguments (no arrays built)."""
    if layout == "mixed":
        return sum(math.ceil(sum(len(songs[i].lengths) for i in g) / windows_per_batch)
                   for g in mixed_groups(songs, songs_per_batch, rng))
    total = 0
    for gs in song_groups(songs, songs_per_batch, rng).values():
        if layout == "packed":
            total += math.ceil(sum(len(songs[i].lengths) for g in gs for i in g)
                               / windows_per_batch)
            continue
        for g in gs:
            ks = [len(songs[i].lengths) for i in g]
            total += max(ks) if layout == "carry" else math.ceil(sum(ks) / windows_per_batch)
    return total
