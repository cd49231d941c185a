"""A piece's mean tempo: what the network may be told of it (``ModelConfig.tempo_input``) and
what the tree baseline's tempo features start from. Pure numpy, no mido.

The paper's input is the 1/16 grid alone: a piece at 60 and one at 180 beats per minute look
the same to it. The tree baseline knows the tempo, and on the held-out classical pieces that
is most of its lead (retrained without its seconds-based features it fell from r 0.564 to
0.381). So the network may be given one number per piece, its mean tempo in seconds per
quarter-note beat from its first onset to its last (``mean_seconds_per_beat``), as an input
channel on every step (``model.tempo_channel``: ``clip(log2(seconds_per_beat / 0.5), -3,
3)``, 0 at 120 beats per minute). Datasets store each song's seconds per beat
(``data_prep.examine``); stylize and the evaluation measure it on the file being performed.
"""

from __future__ import annotations

import numpy as np

from stylenet_jax import encoding
from stylenet_jax.notes import Notes

DEFAULT_SECONDS_PER_BEAT = 0.5  # MIDI's default tempo, 500,000 us per beat (120 bpm)
TEMPO_LIMIT = 3.0  # the model's channel is clipped to +-3 octaves of tempo around 120 bpm


def mean_seconds_per_beat(onset_steps: np.ndarray, onset_seconds: np.ndarray) -> float:
    """Seconds per quarter-note beat (4 steps) from the first onset step to the last, each
    step timed by its earliest note; ``DEFAULT_SECONDS_PER_BEAT`` when every note starts on
    one step. onset_steps: int (n,) on the 1/16 grid; onset_seconds: float (n,)."""
    steps = np.asarray(onset_steps, np.int64)
    seconds = np.asarray(onset_seconds, np.float64)
    if not len(steps):
        return DEFAULT_SECONDS_PER_BEAT
    first, last = steps.min(), steps.max()
    if last == first:
        return DEFAULT_SECONDS_PER_BEAT
    return float(4.0 * (seconds[steps == last].min() - seconds[steps == first].min())
                 / (last - first))


def piece_seconds_per_beat(notes: Notes, ticks_per_beat: int, seconds: np.ndarray) -> float:
    """The notes' mean tempo (``mean_seconds_per_beat`` of their grid onsets); seconds: float
    (n,) each note's onset from the file's start (``midi.tick_seconds``)."""
    onset, _ = encoding.quantize(notes, ticks_per_beat)
    return mean_seconds_per_beat(onset, seconds)
