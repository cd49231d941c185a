"""stylenet_jax.encoding: the grid, the (T,176)/(T,88) arrays, and the exact round trip."""

import io
import multiprocessing

import mido
import numpy as np
import pytest

from midi_factory import midi_file, notes_track, tempo, time_signature, track
from stylenet_jax import encoding, midi

TPB = 480
S = TPB // 4  # ticks per sixteenth


def perform(tmp_path, *tracks, tpb=TPB, name="x.mid"):
    path = str(tmp_path / name)
    midi_file(*tracks, ticks_per_beat=tpb).save(path)
    perf = midi.load_performance(path)
    notes = perf.notes.select(encoding.in_piano_range(perf.notes))
    return perf, notes, encoding.encode(notes, perf.ticks_per_beat)


def cell(enc, step, pitch):
    k = pitch - encoding.LOWEST_KEY
    return enc.inputs[step, 2 * k: 2 * k + 2].tolist(), int(enc.velocities[step, k])


def round_trip(perf, notes):
    """Velocities written back from the encoded target, read again from the saved file."""
    enc = encoding.encode(notes, perf.ticks_per_beat)
    velocities = encoding.decode_velocities(enc.target, notes, perf.ticks_per_beat)
    buffer = io.BytesIO()
    midi.with_velocities(perf.midi, notes, velocities).save(file=buffer)
    buffer.seek(0)
    again = mido.MidiFile(file=buffer)
    return np.array([again.tracks[t][i].velocity
                     for t, i in zip(notes.track.tolist(), notes.index.tolist())], dtype=int)


def test_sustained_note_cells(tmp_path):
    _, _, enc = perform(tmp_path, notes_track([(0, 4 * S, 60, 100)]))
    assert enc.inputs.shape == (4, 176) and enc.inputs.dtype == np.uint8
    assert enc.velocities.shape == (4, 88) and enc.velocities.dtype == np.uint8
    assert [cell(enc, t, 60) for t in range(4)] == [([1, 1], 100)] + [([0, 1], 100)] * 3
    assert enc.inputs.sum() == 5  # nothing else set
    np.testing.assert_allclose(enc.target[:, 60 - 21], 100 / 127)
    assert enc.target.dtype == np.float32


def test_chord_sets_each_key(tmp_path):
    _, notes, enc = perform(tmp_path, notes_track([(0, 2 * S, 60, 90), (0, 2 * S, 64, 80),
                                                   (0, S, 67, 70)]))
    assert cell(enc, 0, 60) == ([1, 1], 90) and cell(enc, 0, 64) == ([1, 1], 80)
    assert cell(enc, 0, 67) == ([1, 1], 70) and cell(enc, 1, 67) == ([0, 0], 0)
    assert enc.onsets.sum() == 3 and enc.active.sum() == 5


def test_quantisation_rounds_to_nearest_sixteenth_and_lasts_one_step(tmp_path):
    # 130 ticks -> step 1 (1.08), 170 -> 1 (1.42), 190 -> 2 (1.58); a 10-tick note lasts 1 step
    _, notes, enc = perform(tmp_path, notes_track([(130, 140, 60, 50), (170, 3 * S, 62, 51),
                                                   (190, 200, 64, 52)]))
    onset, end = encoding.quantize(notes, TPB)
    assert onset.tolist() == [1, 1, 2] and end.tolist() == [2, 3, 3]
    assert cell(enc, 1, 60) == ([1, 1], 50) and cell(enc, 2, 60) == ([0, 0], 0)


def test_grid_follows_ticks_per_beat_not_tempo_or_meter(tmp_path):
    conductor = track([tempo(60), time_signature(3, 4), tempo(180, 3 * 96),
                       time_signature(7, 8, 6 * 96)])
    notes = notes_track([(96, 192, 60, 40), (6 * 96, 8 * 96, 62, 41)])
    perf, _, enc = perform(tmp_path, conductor, notes, tpb=96)
    # 96 ticks a beat -> 24 ticks a step, whatever the tempo or time signature
    assert cell(enc, 4, 60) == ([1, 1], 40) and cell(enc, 24, 62) == ([1, 1], 41)
    assert enc.inputs.shape[0] == 32 and perf.time_signatures == ((3, 4), (7, 8))


def test_restruck_key_and_shared_onset_cell_keep_the_loudest(tmp_path):
    events = [(0, mido.Message("note_on", note=60, velocity=50)),
              (S, mido.Message("note_on", note=60, velocity=90)),      # re-strike, step 1
              (S + 30, mido.Message("note_on", note=60, velocity=70)),  # same cell, step 1
              (3 * S, mido.Message("note_off", note=60))]
    perf, notes, enc = perform(tmp_path, track(events))
    assert [cell(enc, t, 60) for t in range(3)] == [([1, 1], 50), ([1, 1], 90), ([0, 1], 70)]
    assert round_trip(perf, notes).tolist() == [50, 90, 90]  # shared cell: both get the loudest


def test_onset_wins_over_a_note_still_held_on_another_track(tmp_path):
    a = notes_track([(0, 4 * S, 60, 30)], channel=0)
    b = notes_track([(2 * S, 3 * S, 60, 20)], channel=1)
    perf, notes, enc = perform(tmp_path, a, b)
    assert [cell(enc, t, 60) for t in range(4)] == [([1, 1], 30), ([0, 1], 30), ([1, 1], 20),
                                                    ([0, 1], 30)]
    assert round_trip(perf, notes).tolist() == [30, 20]


def test_out_of_range_pitches_are_left_out_and_kept_in_the_file(tmp_path):
    perf, notes, enc = perform(tmp_path, notes_track([(0, S, 20, 10), (0, S, 21, 11),
                                                      (0, S, 108, 12), (0, S, 109, 13)]))
    assert len(perf.notes) == 4 and notes.pitch.tolist() == [21, 108]
    assert cell(enc, 0, 21) == ([1, 1], 11) and cell(enc, 0, 108) == ([1, 1], 12)
    with pytest.raises(ValueError, match="21..108"):
        encoding.encode(perf.notes, TPB)
    out = midi.with_velocities(perf.midi, notes, np.array([100, 101]))
    velocities = {m.note: m.velocity for m in out.tracks[0] if m.type == "note_on"}
    assert velocities == {20: 10, 21: 100, 108: 101, 109: 13}


def test_empty_notes_encode_to_zero_steps():
    dtypes = (np.int16, np.int64, np.int64, np.uint8, np.uint8, np.int32, np.int32)
    perf_notes = midi.Notes(*(np.zeros(0, dt) for dt in dtypes))
    enc = encoding.encode(perf_notes, TPB)
    assert enc.inputs.shape == (0, 176) and enc.velocities.shape == (0, 88)


def test_decode_clips_to_valid_velocities_and_checks_shape(tmp_path):
    _, notes, enc = perform(tmp_path, notes_track([(0, S, 60, 64), (S, 2 * S, 61, 64)]))
    target = np.zeros_like(enc.target)
    target[0, 60 - 21], target[1, 61 - 21] = -0.5, 3.0
    assert encoding.decode_velocities(target, notes, TPB).tolist() == [1, 127]
    with pytest.raises(ValueError, match="steps"):
        encoding.decode_velocities(target[:1], notes, TPB)
    with pytest.raises(ValueError, match="88"):
        encoding.decode_velocities(target[:, :80], notes, TPB)


def test_round_trip_is_exact_on_generated_files(tmp_path):
    rng = np.random.default_rng(0)
    tracks = []
    for channel in range(3):
        starts = np.sort(rng.integers(0, 200 * S, 300))
        tracks.append(notes_track([(int(s), int(s + rng.integers(1, 8 * S)),
                                    int(rng.integers(21, 109)), int(rng.integers(1, 128)))
                                   for s in starts], channel=channel))
    perf, notes, _ = perform(tmp_path, *tracks)
    onset, _ = encoding.quantize(notes, TPB)
    cells = onset * 88 + notes.pitch
    alone = np.unique(cells, return_counts=True)[1][np.unique(cells, return_inverse=True)[1]] == 1
    got = round_trip(perf, notes)
    np.testing.assert_array_equal(got[alone], notes.velocity[alone])
    assert alone.mean() > 0.8


def _corpus_file_round_trip(path):
    perf = midi.load_performance(path)
    notes = perf.notes.select(encoding.in_piano_range(perf.notes))
    onset, _ = encoding.quantize(notes, perf.ticks_per_beat)
    cells = onset * 88 + notes.pitch.astype(np.int64)
    _, index, counts = np.unique(cells, return_inverse=True, return_counts=True)
    loudest = np.zeros(len(counts), int)
    np.maximum.at(loudest, index, notes.velocity.astype(int))
    got = round_trip(perf, notes)
    alone = counts[index] == 1
    exact = bool((got[alone] == notes.velocity[alone]).all())
    rule = bool((got == loudest[index]).all())
    return path, len(notes), int(alone.sum()), exact, rule


@pytest.mark.slow  # in CI (--runslow); keeps the default suite near 10 min
def test_round_trip_is_exact_on_every_corpus_file(corpus_dir):
    """Every in-range note alone in its onset cell gets its velocity back; shared cells the
    loudest."""
    paths = sorted(str(p) for p in corpus_dir.glob("*/*.mid"))
    assert len(paths) == 935
    with multiprocessing.get_context("spawn").Pool() as pool:
        results = pool.map(_corpus_file_round_trip, paths, chunksize=8)
    failures = [r[0] for r in results if not (r[3] and r[4])]
    assert not failures, failures[:5]
    notes = sum(r[1] for r in results)
    assert notes > 2_000_000 and sum(r[2] for r in results) / notes > 0.98


def cell_by_cell_encoding(onset, end, key, velocity, steps):
    """``encode_steps``'s (velocities, held, onsets), note by note over every cell it covers
    (the old O(sum of lengths) way): an onset cell has the loudest note struck there, another
    cell the loudest note sounding there."""
    sounding = np.zeros((steps, encoding.NUM_KEYS), np.uint8)
    struck = np.zeros((steps, encoding.NUM_KEYS), np.uint8)
    for o, e, k, v in zip(onset, end, key, velocity):
        sounding[o:e, k] = np.maximum(sounding[o:e, k], v)
        struck[o, k] = max(struck[o, k], v)
    is_onset = np.zeros((steps, encoding.NUM_KEYS), bool)
    is_onset[onset, key] = True
    return np.where(is_onset, struck, sounding), sounding > 0, is_onset


def test_overlapping_notes_of_one_key_keep_the_loudest_cell_by_cell():
    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(0, 50))
        onset = rng.integers(0, 40, n)
        end = onset + rng.integers(1, 25, n)
        key = rng.integers(0, int(rng.integers(1, 88)) if trial % 2 else 3, n)
        velocity = rng.integers(1, 128, n).astype(np.uint8)
        steps = int(end.max()) if n else 0
        enc = encoding.encode_steps(onset, end, key + 21, velocity)
        velocities, held, onsets = cell_by_cell_encoding(onset, end, key, velocity, steps)
        np.testing.assert_array_equal(enc.velocities, velocities)
        np.testing.assert_array_equal(encoding.held_channels(enc.inputs), held)
        np.testing.assert_array_equal(encoding.onset_channels(enc.inputs), onsets)


def test_encoding_costs_the_grid_not_the_sum_of_note_lengths():
    """1,320 notes held to step 120,000 (88 keys on 15 channels, say): the old way made
    158 million cells of index arrays (several GB); now it is one pass over the grid."""
    n, steps = 1320, 120_000
    onset = np.arange(n) * 50
    enc = encoding.encode_steps(onset, np.full(n, steps), np.arange(n) % 88 + 21,
                                np.arange(n) % 127 + 1)
    assert enc.inputs.shape == (steps, 176)
    assert enc.velocities[-1].max() == 127 and encoding.held_channels(enc.inputs)[-1].all()


def test_too_long_names_the_limit():
    assert encoding.too_long(encoding.MAX_STEPS) is None
    reason = encoding.too_long(encoding.MAX_STEPS + 1)
    assert reason.startswith("too long: 131,073 steps") and "4.5 hours" in reason
