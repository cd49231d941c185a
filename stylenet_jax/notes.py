"""Piano notes as parallel numpy arrays: what ``midi`` reads from a file and ``encoding``
puts on the grid. No mido here, so the data side (encoding, datasets, batches) loads without
the MIDI library."""

from __future__ import annotations

import dataclasses

import numpy as np

# The pedals whose values each note records, as MIDI control numbers: the sustain (damper)
# pedal and the soft pedal (una corda). A value of 64 or more is down.
PEDAL_CONTROLS = (64, 67)
PEDAL_DOWN = 64


@dataclasses.dataclass(frozen=True)
class Notes:
    """Piano notes as parallel arrays of length n, sorted by (start, track, index).

    pitch int16; start, end int64 (absolute ticks, end >= start); velocity uint8 (1..127);
    channel uint8 (0..15); track, index int32 (the note-on is ``midi.tracks[track][index]``);
    pedals uint8 (n, len(PEDAL_CONTROLS)): each pedal's value (0..127) on the note's channel
    at its onset (``midi`` fills it; 0 where the file never moves that pedal), or None where
    nothing says (notes built by hand; readers take None as no pedal).
    """

    pitch: np.ndarray
    start: np.ndarray
    end: np.ndarray
    velocity: np.ndarray
    channel: np.ndarray
    track: np.ndarray
    index: np.ndarray
    pedals: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.pitch)

    def select(self, keep: np.ndarray) -> "Notes":
        """The notes where the boolean (n,) array ``keep`` is True, order kept; or, for an
        integer array, the notes at those positions in that order."""
        return Notes(*(None if v is None else v[keep]
                       for v in (getattr(self, f.name) for f in dataclasses.fields(self))))
