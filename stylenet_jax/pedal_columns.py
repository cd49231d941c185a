"""Tree columns from the pianist's pedals (pure numpy): off by default, read by the shipped tree.

``pedal_columns(notes, ticks_per_beat, seconds)`` gives float32 (n, len(PEDAL_COLUMN_NAMES))
rows in the notes' order, from ``Notes.pedals`` (the pedals under each onset, as the file
holds them; None reads as no pedal):
- sustain_pedal, soft_pedal: the sustain and soft (una corda) pedals' values, 0..127;
- soft_pedal_used: 1 when the performance puts the soft pedal down under any note, else 0,
  so that a tree can tell a file that never uses it from a passage played without it;
- soft_pedal_share: the share of the performance's notes played with the soft pedal down.

A pianist's pedals are part of the performance, like its timing: a sheet-music file rarely
holds the soft pedal. The shipped tree reads them, trained with them hidden from half its
performances (``FeatureBaseline.fit(hide_pedals=0.5)``) so that it plays a file without them
as a tree without these columns does.
"""

from __future__ import annotations

import numpy as np

from stylenet_jax.notes import PEDAL_CONTROLS, PEDAL_DOWN, Notes

PEDAL_COLUMN_NAMES = ("sustain_pedal", "soft_pedal", "soft_pedal_used", "soft_pedal_share")
_SUSTAIN, _SOFT = PEDAL_CONTROLS.index(64), PEDAL_CONTROLS.index(67)


def pedal_columns(notes: Notes, ticks_per_beat: int,
                  seconds: np.ndarray | None = None) -> np.ndarray:
    """float32 (n, 4) pedal columns of ``notes`` (see module docstring). ``ticks_per_beat``
    and ``seconds`` are not read: the signature is that of every optional column set."""
    del ticks_per_beat, seconds
    n = len(notes)
    values = (np.zeros((n, len(PEDAL_CONTROLS)), np.float32) if notes.pedals is None
              else np.asarray(notes.pedals, np.float32).reshape(n, len(PEDAL_CONTROLS)))
    soft_down = values[:, _SOFT] >= PEDAL_DOWN
    share = float(soft_down.mean()) if n else 0.0
    out = np.zeros((n, len(PEDAL_COLUMN_NAMES)), np.float32)
    out[:, 0] = values[:, _SUSTAIN]
    out[:, 1] = values[:, _SOFT]
    out[:, 2] = float(soft_down.any())
    out[:, 3] = share
    return out
