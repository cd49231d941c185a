"""Piano notes <-> the paper's arrays, on a 1/16-note grid (pure numpy).

Grid: one step is a sixteenth note, ``ticks_per_beat / 4`` ticks, in any time signature
(a beat is the MIDI quarter note). A note's onset step is ``round(start / step)`` and its end
step ``round(end / step)``, at least one step after the onset; it is active on steps
``[onset, end)``. Rounding is half-up (``floor(x + 0.5)``).

Arrays for the 88 keys MIDI 21..108 (key k = pitch - 21):
- input (T, 176) uint8: per key the pair [played now, held]: onset [1, 1], sustained [0, 1],
  off [0, 0]; column 2k is key k's "played now", 2k + 1 its "held".
- velocities (T, 88) uint8: the MIDI velocity on every active cell, 0 elsewhere. The training
  target is velocities / 127 (float32). T = the last active step + 1.

Shared cells (the paper's arrays hold one value per (step, key)):
- an onset cell holds the LOUDEST velocity of the notes that start there (trills, tremolos and
  fast repeats can put two onsets of a key in one sixteenth);
- a sustained cell holds the loudest velocity of the notes covering it;
- an onset wins over a note of the same key still sounding from another track or channel.
Writing back, every note takes the value of its onset cell, so a note alone in its onset cell
gets its velocity back exactly (v is stored as v/127, restored as round(127 x)), and notes that
share an onset cell all get the loudest of them.

Pitches outside 21..108 are left out of the arrays (``in_piano_range`` selects the rest).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from stylenet_jax.notes import Notes

LOWEST_KEY = 21  # A0
NUM_KEYS = 88  # ... C8 = 108
INPUT_SIZE = 2 * NUM_KEYS
STEPS_PER_BEAT = 4  # sixteenth notes
MAX_STEPS = 2 ** 17  # the longest song read (stylize, data_prep.build): 4.5 hours at 120 bpm


def too_long(steps: int, what: str = "steps") -> str | None:
    """Why a song of ``steps`` grid steps is refused (one line), or None if it is not: it is
    more than MAX_STEPS sixteenths (32,768 beats, 4.5 hours at 120 beats per minute), which
    bounds the memory and time a single file may cost."""
    if steps <= MAX_STEPS:
        return None
    return (f"too long: {steps:,} {what} of a sixteenth (the limit is {MAX_STEPS:,}, "
            f"{MAX_STEPS // STEPS_PER_BEAT:,} beats: 4.5 hours at 120 beats per minute)")


class Encoding(NamedTuple):
    """The arrays of one performance. inputs uint8 (T, 176); velocities uint8 (T, 88)."""

    inputs: np.ndarray
    velocities: np.ndarray

    @property
    def onsets(self) -> np.ndarray:
        """bool (T, 88): a note starts in this cell."""
        return onset_channels(self.inputs).astype(bool)

    @property
    def active(self) -> np.ndarray:
        """bool (T, 88): a note sounds in this cell (onset or sustain)."""
        return held_channels(self.inputs).astype(bool)

    @property
    def target(self) -> np.ndarray:
        """float32 (T, 88): velocity / 127 on active cells, 0 elsewhere."""
        return velocities_to_target(self.velocities)


def onset_channels(inputs):
    """The "played now" channel of every key: (..., 176) -> (..., 88), same array type and
    dtype (numpy or JAX; a strided view, nothing is computed)."""
    return inputs[..., 0::2]


def held_channels(inputs):
    """The "held" channel (onset or sustain) of every key: (..., 176) -> (..., 88), same
    array type and dtype."""
    return inputs[..., 1::2]


def velocities_to_target(velocities: np.ndarray) -> np.ndarray:
    """uint8 MIDI velocities (..., 88) -> float32 targets in [0, 1]."""
    return velocities.astype(np.float32) / np.float32(127.0)


def key_span(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest key (0..87) held anywhere in each row of inputs (N, W, 176);
    int64 (N,) each, (88, -1) for a row where nothing sounds."""
    held = held_channels(inputs).any(axis=1)  # (N, 88)
    keys = np.arange(NUM_KEYS)
    return (np.where(held, keys, NUM_KEYS).min(axis=1).astype(np.int64),
            np.where(held, keys, -1).max(axis=1).astype(np.int64))


def transpose(inputs: np.ndarray, targets: np.ndarray, semitones: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Each row's notes moved ``semitones[i]`` keys (positive: up), keys moved in from the
    edge empty; a note moved off the keyboard is lost (``key_span`` tells how far is safe).

    inputs uint8 (N, W, 176), targets float32 (N, W, 88), semitones int (N,); returns new
    arrays of the same shapes and dtypes (both channels of a key move together).
    """
    n, w = inputs.shape[:2]
    keys_in = inputs.reshape(n, w, NUM_KEYS, 2)  # (onset, held) per key: the layout above
    moved_in, moved_out = np.zeros_like(keys_in), np.zeros_like(targets)
    for shift in np.unique(semitones):
        rows = np.flatnonzero(semitones == shift)
        k = int(shift)
        src = slice(max(-k, 0), NUM_KEYS - max(k, 0))
        dst = slice(max(k, 0), NUM_KEYS - max(-k, 0))
        moved_in[rows, :, dst] = keys_in[rows, :, src]
        moved_out[rows, :, dst] = targets[rows, :, src]
    return moved_in.reshape(inputs.shape), moved_out


def in_piano_range(notes: Notes) -> np.ndarray:
    """bool (n,): the note's pitch is one of the 88 keys (MIDI 21..108)."""
    return (notes.pitch >= LOWEST_KEY) & (notes.pitch < LOWEST_KEY + NUM_KEYS)


def quantize(notes: Notes, ticks_per_beat: int) -> tuple[np.ndarray, np.ndarray]:
    """Onset and end steps, int64 (n,) each, with end >= onset + 1 (see module rules)."""
    step = ticks_per_beat / STEPS_PER_BEAT
    onset = np.floor(notes.start / step + 0.5).astype(np.int64)
    end = np.floor(notes.end / step + 0.5).astype(np.int64)
    return onset, np.maximum(end, onset + 1)


def encode(notes: Notes, ticks_per_beat: int) -> Encoding:
    """Encodes in-range piano notes (others must be removed first) as the paper's arrays."""
    if len(notes) and not in_piano_range(notes).all():
        raise ValueError("encode() takes notes of MIDI pitch 21..108 only; select them first")
    onset, end = quantize(notes, ticks_per_beat)
    return encode_steps(onset, end, notes.pitch, notes.velocity)


def grid_steps(notes: Notes, ticks_per_beat: int) -> int:
    """T, the number of steps ``encode`` would make for ``notes``, without making them."""
    return int(quantize(notes, ticks_per_beat)[1].max()) if len(notes) else 0


def encode_steps(onset: np.ndarray, end: np.ndarray, pitch: np.ndarray,
                 velocity: np.ndarray) -> Encoding:
    """``encode`` of notes given as grid steps: onset, end int (n,) with end > onset >= 0,
    pitch 21..108, velocity 0..127. Costs O(n log n + T * 88) however long the notes are."""
    onset, end = np.asarray(onset, np.int64), np.asarray(end, np.int64)
    steps = int(end.max()) if len(onset) else 0
    key = np.asarray(pitch).astype(np.int64) - LOWEST_KEY
    velocity = np.asarray(velocity).astype(np.uint8)
    sustained = _loudest_cover(onset, end, key, velocity, steps)
    struck = np.zeros((steps, NUM_KEYS), np.uint8)
    np.maximum.at(struck, (onset, key), velocity)

    is_onset = np.zeros((steps, NUM_KEYS), bool)
    is_onset[onset, key] = True
    inputs = np.zeros((steps, NUM_KEYS, 2), np.uint8)
    inputs[..., 0] = is_onset
    inputs[..., 1] = sustained > 0
    velocities = np.where(is_onset, struck, sustained)
    return Encoding(inputs.reshape(steps, INPUT_SIZE), velocities)


def _loudest_cover(onset, end, key, velocity, steps: int) -> np.ndarray:
    """uint8 (steps, 88): per cell the loudest velocity of the notes active there, 0 if none.

    Each note is painted as +v at its onset and -v at its end on a (steps + 1, 88) array whose
    running sum is the cell value; that is exact where a key's notes do not overlap. The keys
    whose notes overlap (the same key held on two tracks or channels) are first cut into
    disjoint pieces that carry the loudest velocity sounding (``_loudest_pieces``).
    """
    changes = np.zeros((steps + 1, NUM_KEYS), np.int16)
    if not len(onset):
        return changes[:steps].astype(np.uint8)
    order = np.lexsort((onset, key))
    onset, end, key, velocity = onset[order], end[order], key[order], velocity[order]
    span = steps + 1  # keys laid end to end on one axis: a running max per key
    reach = np.maximum.accumulate(end + key * span)
    overlaps = np.zeros(len(onset), bool)
    overlaps[1:] = onset[1:] + key[1:] * span < reach[:-1]
    tangled = np.isin(key, np.unique(key[overlaps]))
    if tangled.any():
        pieces = _loudest_pieces(onset[tangled], end[tangled], key[tangled], velocity[tangled])
        onset, end, key, velocity = (np.concatenate([a[~tangled], b]) for a, b in
                                     zip((onset, end, key, velocity), pieces))
    signed = velocity.astype(np.int16)
    np.add.at(changes, (onset, key), signed)
    np.add.at(changes, (end, key), -signed)
    return np.cumsum(changes[:steps], axis=0, dtype=np.int16).astype(np.uint8)


def _loudest_pieces(onset, end, key, velocity):
    """Notes sorted by (key, onset) -> disjoint (onset, end, key, velocity) pieces per key, each
    with the loudest velocity of the notes covering it (a sweep with a heap per key)."""
    import heapq

    pieces = []
    onset, end, key, velocity = (a.tolist() for a in (onset, end, key, velocity))
    i, n = 0, len(onset)
    while i < n:
        k, j = key[i], i
        while j < n and key[j] == k:
            j += 1
        cuts = sorted(set(onset[i:j]) | set(end[i:j]))
        heap: list[tuple[int, int]] = []  # (-velocity, end)
        m = i
        for a, b in zip(cuts, cuts[1:]):
            while m < j and onset[m] <= a:
                heapq.heappush(heap, (-velocity[m], end[m]))
                m += 1
            while heap and heap[0][1] <= a:
                heapq.heappop(heap)
            if heap:
                pieces.append((a, b, k, -heap[0][0]))
        i = j
    table = np.array(pieces, np.int64).reshape(-1, 4)
    return table[:, 0], table[:, 1], table[:, 2], table[:, 3].astype(np.uint8)


def decode_velocities(target: np.ndarray, notes: Notes, ticks_per_beat: int) -> np.ndarray:
    """Each note's velocity from a (T, 88) array in [0, 1]: ``round(127 v[onset, key])``.

    Returns int64 (n,) clipped to 1..127 (a note-on of velocity 0 would be a note-off).
    Raises ValueError if the array is shorter than the notes' last onset or not 88 wide.
    """
    target = np.asarray(target)
    onset, _ = quantize(notes, ticks_per_beat)
    if target.ndim != 2 or target.shape[1] != NUM_KEYS:
        raise ValueError(f"velocities must be (T, {NUM_KEYS}), got {target.shape}")
    if len(notes) and onset.max() >= target.shape[0]:
        raise ValueError(f"velocities cover {target.shape[0]} steps; notes need {onset.max() + 1}")
    return velocities_at(target, onset, notes.pitch)


def velocities_at(target: np.ndarray, onset: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """``round(127 v[onset, key])`` per note, clipped to 1..127, int64 (n,): the read-back of
    ``decode_velocities`` for notes given as onset steps and pitches."""
    values = target[onset, np.asarray(pitch).astype(np.int64) - LOWEST_KEY].astype(np.float64)
    return np.clip(np.rint(127.0 * values), 1, 127).astype(np.int64)
