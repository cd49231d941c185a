"""Phrase-scale context of each note, relative to its piece (pure numpy, no JAX).

``phrase_context(notes, ticks_per_beat, seconds)`` gives float32 (n, len(PHRASE_CONTEXT_NAMES))
columns, rows in the order the notes are given: what the music around a note does over 2 to 32
beats, measured against the whole piece. They extend ``note_features`` (the tree baseline's
columns, which see up to 256 steps but mostly in absolute terms) for the question the error
breakdown raises: whether the 16-note phrase levels a pianist plays can be read from the notes
(``experiments.feature_baseline --phrase_context``).

Steps are onset steps of the 1/16 grid (``encoding.quantize``). For each centred span s in
``CONTEXT_SPANS`` (the steps [t - s/2, t + s/2) around the note's onset t):

* ``rel_density_s``: onsets in the span per step, over the piece's onsets per step;
* ``rel_pitch_s``: the span's mean pitch minus the piece's;
* ``rel_top_s`` / ``rel_low_s``: the span's highest / lowest pitch minus the piece's 90th /
  10th percentile pitch; ``range_s``: highest minus lowest;
* ``density_change_s``: onsets per step in (t, t + s] minus those in [t - s, t), over the
  piece's onsets per step (the texture thickening or thinning: a crescendo's usual companion);
* ``pitch_change_s``: the mean pitch of (t, t + s] minus that of [t - s, t) (0 where either
  is empty).

And ``rel_tempo_64`` / ``rel_tempo_256``: seconds per step between the first and last onset
within the centred span, over the piece's (1 where the span has one onset step);
``rel_chord``: notes at the note's onset step over the piece's mean notes per onset step.
"""

from __future__ import annotations

import numpy as np

from stylenet_jax import encoding, midi

CONTEXT_SPANS = (32, 64, 128, 256, 512)  # steps, centred on the note's onset
TEMPO_SPANS = (64, 256)
_PER_SPAN = ("rel_density", "rel_pitch", "rel_top", "rel_low", "range", "density_change",
             "pitch_change")
PHRASE_CONTEXT_NAMES: tuple[str, ...] = (
    *(f"{name}_{span}" for span in CONTEXT_SPANS for name in _PER_SPAN),
    *(f"rel_tempo_{span}" for span in TEMPO_SPANS),
    "rel_chord",
)


def _prefix_sums(per_step: np.ndarray) -> np.ndarray:
    """float64 (L + 1,): 0 and the running sums of ``per_step`` (L,), for ``_window_sums``."""
    return np.concatenate([[0.0], np.cumsum(per_step, dtype=np.float64)])


def _window_sums(prefix: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Sums over [low, high) per query of the per-step values whose ``_prefix_sums`` are
    ``prefix``, bounds clipped to 0..L."""
    low = np.clip(low, 0, len(prefix) - 1)
    high = np.clip(high, 0, len(prefix) - 1)
    return prefix[high] - prefix[low]


def _sparse_table(per_step: np.ndarray, take: np.ufunc) -> list[np.ndarray]:
    """For ``_window_extreme``: level k holds ``take`` (np.maximum or np.minimum) of
    ``per_step`` (L,) over each window of 2**k steps; O(L log L)."""
    levels = [per_step]
    while 2 ** len(levels) <= len(per_step):
        half = 2 ** (len(levels) - 1)
        previous = levels[-1]
        levels.append(take(previous[:-half], previous[half:]))
    return levels


def _window_extreme(levels: list[np.ndarray], low: np.ndarray, high: np.ndarray,
                    take: np.ufunc) -> np.ndarray:
    """``take`` over [low, high) per query from the ``_sparse_table`` ``levels`` made with the
    same ``take``, bounds clipped to 0..L, each window non-empty after clipping."""
    low = np.clip(low, 0, len(levels[0]))
    high = np.clip(high, 0, len(levels[0]))
    level = np.floor(np.log2(high - low)).astype(np.int64)
    out = np.empty(len(low), levels[0].dtype)
    for k in np.unique(level):
        at = level == k
        out[at] = take(levels[k][low[at]], levels[k][high[at] - 2 ** k])
    return out


def phrase_context(notes: midi.Notes, ticks_per_beat: int,
                   seconds: np.ndarray | None = None) -> np.ndarray:
    """float32 (n, len(PHRASE_CONTEXT_NAMES)) for ``notes`` (pitch 21..108; n may be 0).

    seconds: float (n,) onset seconds of the notes; without them every tempo column is 1.
    """
    if not len(notes):
        return np.zeros((0, len(PHRASE_CONTEXT_NAMES)), np.float32)
    onset, _ = encoding.quantize(notes, ticks_per_beat)
    onset = onset - onset.min()
    pitch = np.asarray(notes.pitch, np.float64)
    steps = int(onset.max()) + 1
    count = np.bincount(onset, minlength=steps).astype(np.float64)
    counts = _prefix_sums(count)
    pitch_sums = _prefix_sums(np.bincount(onset, pitch, minlength=steps))
    top = np.full(steps, -1.0)
    np.maximum.at(top, onset, pitch)
    low = np.full(steps, 1000.0)
    np.minimum.at(low, onset, pitch)
    tops, lows = _sparse_table(top, np.maximum), _sparse_table(low, np.minimum)
    piece_density = len(pitch) / steps
    piece_pitch = pitch.mean()
    piece_top, piece_low = np.percentile(pitch, 90), np.percentile(pitch, 10)
    columns = []
    for span in CONTEXT_SPANS:
        start, stop = onset - span // 2, onset + span // 2
        inside = _window_sums(counts, start, stop)
        highest = _window_extreme(tops, start, stop, np.maximum)
        lowest = _window_extreme(lows, start, stop, np.minimum)
        before = _window_sums(counts, onset - span, onset)
        after = _window_sums(counts, onset + 1, onset + 1 + span)
        pitch_before = _window_sums(pitch_sums, onset - span, onset) / np.maximum(before, 1)
        pitch_after = (_window_sums(pitch_sums, onset + 1, onset + 1 + span)
                       / np.maximum(after, 1))
        columns += [
            inside / span / piece_density,
            _window_sums(pitch_sums, start, stop) / np.maximum(inside, 1) - piece_pitch,
            highest - piece_top, lowest - piece_low, highest - lowest,
            (after - before) / span / piece_density,
            np.where((after > 0) & (before > 0), pitch_after - pitch_before, 0.0),
        ]
    columns += _relative_tempo(onset, seconds)
    columns.append(count[onset] / (len(pitch) / np.count_nonzero(count)))
    return np.stack(columns, axis=1).astype(np.float32)


def _relative_tempo(onset: np.ndarray, seconds: np.ndarray | None) -> list[np.ndarray]:
    """One column per TEMPO_SPANS: local seconds per step over the piece's (see the module)."""
    if seconds is None:
        return [np.ones(len(onset)) for _ in TEMPO_SPANS]
    order = np.argsort(onset, kind="stable")
    steps, times = onset[order], np.asarray(seconds, np.float64)[order]
    piece = (times[-1] - times[0]) / max(int(steps[-1] - steps[0]), 1)
    out = []
    for span in TEMPO_SPANS:
        first = np.searchsorted(steps, onset - span // 2)
        last = np.maximum(np.searchsorted(steps, onset + span // 2, side="right") - 1, first)
        took = steps[last] - steps[first]
        out.append(np.where(took > 0, (times[last] - times[first]) / np.maximum(took, 1)
                            / max(piece, 1e-6), 1.0))
    return out
