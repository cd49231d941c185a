"""Piano notes as parallel numpy arrays: what ``midi`` reads from a file and ``encoding``
puts on the grid. No mido here, so the data side (encoding, datasets, batches) loads without
the MIDI library."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Notes:
    """Piano notes as parallel arrays of length n, sorted by (start, track, index).

    pitch int16; start, end int64 (absolute ticks, end >= start); velocity uint8 (1..127);
    channel uint8 (0..15); track, index int32 (the note-on is ``midi.tracks[track][index]``).
    """

    pitch: np.ndarray
    start: np.ndarray
    end: np.ndarray
    velocity: np.ndarray
    channel: np.ndarray
    track: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.pitch)

    def select(self, keep: np.ndarray) -> "Notes":
        """The notes where the boolean (n,) array ``keep`` is True, order kept."""
        return Notes(*(getattr(self, f.name)[keep] for f in dataclasses.fields(self)))
