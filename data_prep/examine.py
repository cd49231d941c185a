"""One MIDI file examined for a dataset: the facts the filters need, and its arrays.

``examine`` reads a file (``midi.load_performance``), keeps its notes of piano pitch, and
returns its facts (notes, distinct velocities, meters, grid steps); it writes the encoded arrays
(``encoding.encode``: inputs uint8 (T, 176), velocities uint8 (T, 88)) as a compressed
``.npz`` when asked. One bad file never stops a build: any failure comes back as
``{"error": one line}``. ``file_sha256`` is the content hash a re-run compares to reuse facts.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from stylenet_jax import encoding, midi, smf, tempo
from stylenet_jax.atomic_write import write_atomically

ENCODING_VERSION = 2  # bump when encoding or reading rules change: files are examined again


def file_sha256(path: str) -> str | None:
    """The file's SHA-256, or None if it is not a regular file (a FIFO would block) or cannot
    be read: ``examine`` then says why."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _save_arrays(path: str, enc: encoding.Encoding) -> None:
    """Writes inputs/velocities to ``path`` atomically (compressed .npz); nothing is left
    behind if that fails."""
    write_atomically(path, lambda f: np.savez_compressed(f, inputs=enc.inputs,
                                                        velocities=enc.velocities))


def examine(path: str, arrays_path: str | None = None) -> dict:
    """Facts about one MIDI file; writes its arrays to ``arrays_path`` when given, non-empty
    and not too long (``encoding.MAX_STEPS``).

    Returns {"error": str} for a file that cannot be read (or fails in any other way: one file
    never stops a build), else {"notes", "out_of_range", "n_velocities", "time_signatures",
    "steps", "ticks_per_beat", "seconds_per_beat"} (+ "arrays" if written); seconds per beat
    is the piano notes' mean tempo (``tempo.piece_seconds_per_beat``).
    """
    try:
        return _examine(path, arrays_path)
    except smf.MidiError as e:
        return {"error": smf.one_line(e)}
    except Exception as e:  # noqa: BLE001 - MemoryError, a bug: report the file, go on
        return {"error": f"{smf.shown(path)}: failed ({type(e).__name__}: {smf.one_line(e)})"}


def _examine(path: str, arrays_path: str | None) -> dict:
    """``examine`` without its catch-all: MidiError and any failure propagate."""
    perf = midi.load_performance(path)
    in_range = encoding.in_piano_range(perf.notes)
    notes = perf.notes.select(in_range)
    facts = {
        "notes": len(notes), "out_of_range": int((~in_range).sum()),
        "n_velocities": int(len(np.unique(notes.velocity))),
        "time_signatures": [list(s) for s in perf.time_signatures],
        "steps": encoding.grid_steps(notes, perf.ticks_per_beat),
        "ticks_per_beat": perf.ticks_per_beat,
        "seconds_per_beat": tempo.piece_seconds_per_beat(
            notes, perf.ticks_per_beat, midi.tick_seconds(perf.midi, notes.start)),
    }
    if arrays_path and len(notes) and not encoding.too_long(facts["steps"]):
        _save_arrays(arrays_path, encoding.encode(notes, perf.ticks_per_beat))
        facts["arrays"] = True
    return facts
