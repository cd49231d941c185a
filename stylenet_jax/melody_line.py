"""The melody line around each note: its contour, peaks and runs (pure numpy, no JAX).

``melody_line(notes, ticks_per_beat, seconds)`` gives float32 (n, len(MELODY_LINE_NAMES))
columns, rows in the order the notes are given. They extend ``note_features`` (the tree
baseline's columns), which place a note in its chord and its register but say little of the
tune: where the line is heading, whether this note is its peak, how far the climax is
(``experiments.feature_baseline --melody_line``).

The notes are grouped by onset step (the 1/16 grid of ``encoding.quantize``); a group's
melody note is its highest pitch (the "skyline"), its bass its lowest, and a melodic step is
the change of melody pitch from one group to the next. Every note gets its group's values.
For each span h in ``MELODY_SPANS`` (the 2h + 1 groups centred on the note's, fewer at the
piece's edges):

* ``melody_minus_local_h``: the group's melody pitch minus the span's mean melody pitch;
* ``melody_place_h``: where it lies between the span's lowest and highest melody pitch (0 ..
  1; 0.5 where they are equal);
* ``melody_peak_offset_h``: groups from this one to the span's highest melody note (the
  first if tied; negative: it came before);
* ``bass_minus_local_h``: the group's bass pitch minus the span's mean bass pitch;
* ``melody_motion_h``: the span's mean size of melodic step (semitones).

And ``melody_rise_before_4`` / ``melody_rise_after_4``: the melody pitch minus that of 4 groups
back / of 4 groups ahead minus it (the nearest group at the piece's edges); ``melody_run_before``
/ ``melody_run_after``: how many melodic steps in a row, up to / from this group, go the same
way, positive rising and negative falling (0 after / before a repeated pitch);
``melody_is_peak``: 1 where the melody note is higher than the previous group's and not lower
than the next group's.
"""

from __future__ import annotations

import numpy as np

from stylenet_jax import encoding, midi
from stylenet_jax.note_features import onset_groups

MELODY_SPANS = (4, 16)  # onset groups either side of the note's
RISE_GROUPS = 4
_PER_SPAN = ("melody_minus_local", "melody_place", "melody_peak_offset", "bass_minus_local",
             "melody_motion")
MELODY_LINE_NAMES: tuple[str, ...] = (
    *(f"{name}_{span}" for span in MELODY_SPANS for name in _PER_SPAN),
    f"melody_rise_before_{RISE_GROUPS}", f"melody_rise_after_{RISE_GROUPS}",
    "melody_run_before", "melody_run_after", "melody_is_peak",
)


def _centred_windows(values: np.ndarray, half: int) -> np.ndarray:
    """float64 (G, 2 * half + 1): each value's centred window, NaN beyond the edges."""
    padded = np.pad(values.astype(np.float64), half, constant_values=np.nan)
    return np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)


def _signed_runs(steps: np.ndarray) -> np.ndarray:
    """int64 (G,): for each step, how many steps in a row up to and including it share its
    sign, signed like it (0 for a 0 step). ``steps``: any numeric (G,)."""
    sign = np.sign(steps).astype(np.int64)
    index = np.arange(len(sign))
    starts = np.ones(len(sign), bool)
    starts[1:] = sign[1:] != sign[:-1]
    run_start = np.maximum.accumulate(np.where(starts, index, 0))
    return sign * (index - run_start + 1)


def melody_line(notes: midi.Notes, ticks_per_beat: int,
                seconds: np.ndarray | None = None) -> np.ndarray:
    """float32 (n, len(MELODY_LINE_NAMES)) for n notes of MIDI pitch 21..108 (any order);
    ``seconds`` is accepted for the signature ``phrase_context`` shares, and not read."""
    del seconds  # the line is the score's: pitches and onset steps only
    n = len(notes)
    if n == 0:
        return np.zeros((0, len(MELODY_LINE_NAMES)), np.float32)
    if not encoding.in_piano_range(notes).all():
        raise ValueError("melody_line() takes notes of MIDI pitch 21..108 only")
    onset, _ = encoding.quantize(notes, ticks_per_beat)
    order = np.lexsort((np.arange(n), notes.pitch, onset))  # by onset, then pitch
    onset, pitch = onset[order], notes.pitch[order].astype(np.float64)
    first, group = onset_groups(onset)
    melody = pitch[np.append(first[1:], n) - 1]  # each group's highest (sorted by pitch)
    bass = pitch[first]
    count = len(first)
    step = np.diff(melody, prepend=melody[0])  # the step into each group (0 into the first)

    columns = []
    for half in MELODY_SPANS:
        window = _centred_windows(melody, half)
        low, high = np.nanmin(window, axis=1), np.nanmax(window, axis=1)
        peak = np.argmax(np.nan_to_num(window, nan=-np.inf), axis=1) - half
        columns += [
            melody - np.nanmean(window, axis=1),
            np.where(high > low, (melody - low) / np.maximum(high - low, 1), 0.5),
            peak,
            bass - np.nanmean(_centred_windows(bass, half), axis=1),
            np.nanmean(_centred_windows(np.abs(step), half), axis=1),
        ]
    index = np.arange(count)
    back = melody[np.maximum(index - RISE_GROUPS, 0)]
    ahead = melody[np.minimum(index + RISE_GROUPS, count - 1)]
    step_out = np.append(step[1:], 0.0)  # the step out of each group (0 out of the last)
    run_after = _signed_runs(step_out[::-1])[::-1]
    previous = melody[np.maximum(index - 1, 0)]
    following = melody[np.minimum(index + 1, count - 1)]
    columns += [melody - back, ahead - melody, _signed_runs(step), run_after,
                (melody > previous) & (melody >= following)]

    table = np.stack([np.asarray(c, np.float64) for c in columns], axis=1)[group]
    rows = np.empty_like(table)
    rows[order] = table  # back to the given order
    return rows.astype(np.float32)
