"""Engineered per-note features for a tree model of velocity (pure numpy, no JAX).

``note_features(notes, ticks_per_beat, seconds)`` gives one float32 row per note, rows in the
order the notes are given, columns named by ``FEATURE_NAMES``. Everything is computed from the
quantised score (``encoding.quantize``: onset and end steps on the 1/16 grid) plus, where given,
each onset's time in seconds; never from velocities. Internally the notes are sorted by
(onset step, pitch) -- "note order" below -- and the rows are put back in the given order.
Missing neighbours (the first note has no previous onset) use a sentinel of -1 for step and
second distances and 0 for pitch intervals, so every value is finite.

Column groups:
- pitch: MIDI pitch and pitch class.
- metre: onset step mod 4 (position in the beat), mod 8, mod 12 (a 3/4 bar) and mod 16
  (a 4/4 bar).
- duration: length in steps; legato ratio = length / steps to the next onset (-1 at the end).
- tempo (seconds): seconds since the previous onset and to the next one; seconds per beat
  around the note (onsets within 16 steps either side) and over the whole piece. Without
  ``seconds`` the MIDI default tempo is assumed (120 beats per minute).
- chord (notes sharing the onset step): size, rank from the bottom and from the top (0 = the
  lowest / highest), lowest and highest flags, the chord's pitch span, and the note's distance
  above the chord's lowest and below its highest pitch.
- voices (keys sounding at the onset step, held notes included): how many, how many above and
  below the note; top voice (nothing sounds above: the melody proxy) and bottom voice flags.
- neighbours: steps since the previous onset and to the next one; pitch interval from the
  previous onset's top note and to the next onset's top note; steps since this pitch was last
  struck.
- density: notes per step with onsets in [t - s, t) ("before"), (t, t + s] ("after") and
  [t - s/2, t + s/2) ("centred") for spans s of 4, 16, 64 and 256 steps.
- rolling: mean and standard deviation of pitch, duration (steps) and chord size over the
  window of k notes ending at the note ("prev", the note and the k - 1 before it) and starting
  at it ("next"), k = 15, 50, 200; shorter at the piece's edges.
- relative pitch: pitch minus the mean pitch of the 31 notes centred on it; that window's
  lowest and highest pitch and the note's place between them (0 lowest .. 1 highest, 0.5 if
  they are equal); pitch minus the piece's mean pitch.
- position: fraction of the piece (onset / last onset, 0..1), notes from the start and to the
  end, steps from the first onset and to the last.
- piece: mean pitch, notes per step, length in steps.
"""

from __future__ import annotations

import numpy as np

from stylenet_jax import encoding, midi
from stylenet_jax.tempo import DEFAULT_SECONDS_PER_BEAT, mean_seconds_per_beat

DENSITY_SPANS = (4, 16, 64, 256)
ROLLING_WINDOWS = (15, 50, 200)
ROLLED = ("pitch", "duration", "chord_size")
LOCAL_PITCH_WINDOW = 31  # notes, centred
TEMPO_SPAN = 16  # steps either side for the local tempo
MISSING = -1.0

# The columns in their groups (the docstring's), in column order.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "pitch": ("pitch", "pitch_class"),
    "metre": ("onset_mod_4", "onset_mod_8", "onset_mod_12", "onset_mod_16"),
    "duration": ("duration_steps", "legato_ratio"),
    "tempo": ("seconds_since_prev_onset", "seconds_to_next_onset", "local_seconds_per_beat",
              "piece_seconds_per_beat"),
    "chord": ("chord_size", "chord_rank_from_bottom", "chord_rank_from_top", "is_chord_lowest",
              "is_chord_highest", "chord_span", "above_chord_lowest", "below_chord_highest"),
    "voices": ("sounding_keys", "sounding_above", "sounding_below", "is_top_voice",
               "is_bottom_voice"),
    "neighbours": ("steps_since_prev_onset", "steps_to_next_onset", "interval_from_prev_top",
                   "interval_to_next_top", "steps_since_same_pitch"),
    "density": tuple(f"density_{where}_{span}" for span in DENSITY_SPANS
                     for where in ("before", "after", "centred")),
    "rolling": tuple(f"{direction}{k}_{stat}_{name}" for k in ROLLING_WINDOWS
                     for direction in ("prev", "next") for name in ROLLED
                     for stat in ("mean", "std")),
    "relative pitch": ("pitch_minus_local_mean", "local_pitch_min", "local_pitch_max",
                       "local_pitch_place", "pitch_minus_piece_mean"),
    "position": ("piece_fraction", "notes_from_start", "notes_to_end", "steps_from_start",
                 "steps_to_end"),
    "piece": ("piece_mean_pitch", "piece_notes_per_step", "piece_steps"),
}
FEATURE_NAMES: tuple[str, ...] = tuple(name for group in FEATURE_GROUPS.values()
                                       for name in group)


def _count_in(sorted_values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """How many of ``sorted_values`` lie in [low, high), elementwise over low/high (n,)."""
    return (np.searchsorted(sorted_values, high, side="left")
            - np.searchsorted(sorted_values, low, side="left"))


def onset_groups(onset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chords of notes in note order: for int (n,) onset steps sorted ascending (n > 0),
    int64 (G,) the index of each group's first note and int64 (n,) each note's group
    (0..G-1), a group being the notes that share an onset step."""
    starts = np.diff(onset, prepend=onset[0] - 1) != 0
    return np.flatnonzero(starts), np.cumsum(starts) - 1


def _window_stats(values: np.ndarray, low: np.ndarray, high: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of values[low[i]:high[i]] for each i (windows non-empty),
    from prefix sums: O(n) whatever the window length. float64 (n,) each."""
    centred = values.astype(np.float64) - values.mean()  # keeps the squares' sums accurate
    sums = np.concatenate([[0.0], np.cumsum(centred)])
    squares = np.concatenate([[0.0], np.cumsum(centred * centred)])
    count = (high - low).astype(np.float64)
    mean = (sums[high] - sums[low]) / count
    variance = np.maximum((squares[high] - squares[low]) / count - mean * mean, 0.0)
    return mean + values.mean(), np.sqrt(variance)


def _sounding_at_onsets(pitch: np.ndarray, onset: np.ndarray, end: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keys sounding at each note's onset step: total, above the note, below it. int64 (n,)."""
    key = pitch.astype(np.int64) - encoding.LOWEST_KEY
    # Notes of key k begun minus ended by step t, counted with sorted (key, step) codes: no
    # (steps, 88) grid, so a long silence costs nothing.
    span = int(end.max()) + 1
    begun = np.sort(key * span + onset)
    ended = np.sort(key * span + end)
    query = np.arange(encoding.NUM_KEYS)[None, :] * span + onset[:, None]  # (n, 88)
    sounding = (np.searchsorted(begun, query, side="right")
                - np.searchsorted(ended, query, side="right")) > 0  # keys held at the onset
    at_or_below = np.cumsum(sounding, axis=1)
    rows = np.arange(len(pitch))
    total = at_or_below[:, -1].astype(np.int64)
    below = at_or_below[rows, key] - sounding[rows, key]
    above = total - at_or_below[rows, key]
    return total, above, below


def note_features(notes: midi.Notes, ticks_per_beat: int,
                  seconds: np.ndarray | None = None) -> np.ndarray:
    """float32 (n, len(FEATURE_NAMES)): one row of features per note, in the given order.

    notes: n piano notes of MIDI pitch 21..108 (any order); seconds: float (n,) onset of each
    note from the file's start, or None for the default tempo (see the module docstring).
    """
    n = len(notes)
    if n == 0:
        return np.zeros((0, len(FEATURE_NAMES)), np.float32)
    if not encoding.in_piano_range(notes).all():
        raise ValueError("note_features() takes notes of MIDI pitch 21..108 only")
    onset_given, end_given = encoding.quantize(notes, ticks_per_beat)
    if seconds is None:
        seconds = notes.start / ticks_per_beat * DEFAULT_SECONDS_PER_BEAT
    seconds = np.asarray(seconds, np.float64)
    if seconds.shape != (n,):
        raise ValueError(f"seconds must have shape ({n},), got {seconds.shape}")

    order = np.lexsort((np.arange(n), notes.pitch, onset_given))  # by onset, then pitch
    onset, end = onset_given[order], end_given[order]
    pitch = notes.pitch[order].astype(np.int64)
    sec = seconds[order]
    duration = end - onset
    index = np.arange(n)
    columns: dict[str, np.ndarray] = {"pitch": pitch, "pitch_class": pitch % 12}
    for modulus in (4, 8, 12, 16):
        columns[f"onset_mod_{modulus}"] = onset % modulus

    # Chords: groups of notes sharing an onset step (consecutive in note order).
    first_of_group, group = onset_groups(onset)
    group_size = np.diff(np.append(first_of_group, n))
    group_onset = onset[first_of_group]
    group_low, group_high = pitch[first_of_group], pitch[first_of_group + group_size - 1]
    group_seconds = np.minimum.reduceat(sec, first_of_group)
    chord_size = group_size[group]
    rank_bottom = index - first_of_group[group]
    columns.update(
        chord_size=chord_size, chord_rank_from_bottom=rank_bottom,
        chord_rank_from_top=chord_size - 1 - rank_bottom, is_chord_lowest=rank_bottom == 0,
        is_chord_highest=rank_bottom == chord_size - 1,
        chord_span=(group_high - group_low)[group], above_chord_lowest=pitch - group_low[group],
        below_chord_highest=group_high[group] - pitch)

    # Neighbouring onsets (previous / next group), with sentinels at the ends.
    has_prev, has_next = group > 0, group < len(first_of_group) - 1
    prev_group, next_group = np.maximum(group - 1, 0), np.minimum(group + 1, len(group_size) - 1)
    steps_prev = np.where(has_prev, onset - group_onset[prev_group], MISSING)
    steps_next = np.where(has_next, group_onset[next_group] - onset, MISSING)
    columns.update(
        steps_since_prev_onset=steps_prev, steps_to_next_onset=steps_next,
        interval_from_prev_top=np.where(has_prev, pitch - group_high[prev_group], 0),
        interval_to_next_top=np.where(has_next, group_high[next_group] - pitch, 0),
        duration_steps=duration,
        legato_ratio=np.where(has_next, duration / np.maximum(steps_next, 1), MISSING),
        seconds_since_prev_onset=np.where(
            has_prev, group_seconds[group] - group_seconds[prev_group], MISSING),
        seconds_to_next_onset=np.where(
            has_next, group_seconds[next_group] - group_seconds[group], MISSING))
    by_pitch = np.lexsort((onset, pitch))
    same_pitch_gap = np.full(n, MISSING)
    repeated = np.flatnonzero(np.diff(pitch[by_pitch]) == 0) + 1
    same_pitch_gap[by_pitch[repeated]] = (onset[by_pitch[repeated]]
                                         - onset[by_pitch[repeated - 1]])
    columns["steps_since_same_pitch"] = same_pitch_gap

    # Tempo: seconds per beat between the first and last onsets within TEMPO_SPAN steps.
    piece_spb = mean_seconds_per_beat(onset, sec)
    first = np.searchsorted(group_onset, onset - TEMPO_SPAN, side="left")
    last = np.searchsorted(group_onset, onset + TEMPO_SPAN, side="right") - 1
    local_steps = group_onset[last] - group_onset[first]
    local_spb = 4.0 * (group_seconds[last] - group_seconds[first]) / np.maximum(local_steps, 1)
    columns["local_seconds_per_beat"] = np.where(local_steps > 0, local_spb, piece_spb)
    columns["piece_seconds_per_beat"] = np.full(n, piece_spb)

    total, above, below = _sounding_at_onsets(pitch, onset, end)
    columns.update(sounding_keys=total, sounding_above=above, sounding_below=below,
                   is_top_voice=above == 0, is_bottom_voice=below == 0)

    for span in DENSITY_SPANS:
        columns[f"density_before_{span}"] = _count_in(onset, onset - span, onset) / span
        columns[f"density_after_{span}"] = _count_in(onset, onset + 1, onset + span + 1) / span
        columns[f"density_centred_{span}"] = _count_in(
            onset, onset - span // 2, onset + span - span // 2) / span

    rolled = {"pitch": pitch, "duration": duration, "chord_size": chord_size}
    for k in ROLLING_WINDOWS:
        windows = {"prev": (np.maximum(index - k + 1, 0), index + 1),
                   "next": (index, np.minimum(index + k, n))}
        for direction, (low, high) in windows.items():
            for name, values in rolled.items():
                mean, std = _window_stats(values, low, high)
                columns[f"{direction}{k}_mean_{name}"] = mean
                columns[f"{direction}{k}_std_{name}"] = std

    half = LOCAL_PITCH_WINDOW // 2
    local_mean, _ = _window_stats(pitch, np.maximum(index - half, 0),
                                  np.minimum(index + half + 1, n))
    padded = np.pad(pitch, half, mode="edge")  # edge copies are in every edge window already
    local = np.lib.stride_tricks.sliding_window_view(padded, LOCAL_PITCH_WINDOW)
    local_min, local_max = local.min(axis=1), local.max(axis=1)
    columns.update(
        pitch_minus_local_mean=pitch - local_mean, local_pitch_min=local_min,
        local_pitch_max=local_max,
        local_pitch_place=np.where(local_max > local_min,
                                   (pitch - local_min) / np.maximum(local_max - local_min, 1), 0.5),
        pitch_minus_piece_mean=pitch - pitch.mean())

    piece_steps = int(end.max() - onset[0])
    columns.update(
        piece_fraction=(onset - onset[0]) / max(int(onset[-1] - onset[0]), 1),
        notes_from_start=index, notes_to_end=n - 1 - index, steps_from_start=onset - onset[0],
        steps_to_end=onset[-1] - onset, piece_mean_pitch=np.full(n, pitch.mean()),
        piece_notes_per_step=np.full(n, n / piece_steps), piece_steps=np.full(n, piece_steps))

    table = np.stack([np.asarray(columns[name], np.float64) for name in FEATURE_NAMES], axis=1)
    rows = np.empty_like(table)
    rows[order] = table  # back to the given order
    return rows.astype(np.float32)
