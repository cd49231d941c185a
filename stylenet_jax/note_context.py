"""Note-context input channels: what the tree baseline's strongest features say about a note,
computed from the encoded input inside the model (``ModelConfig.note_context``).

The paper's network sees only which keys start and which are held at each 1/16 step; the
gradient-boosted baseline that beats it also knows each note's place in its chord, its
duration and its place in the beat. These channels give the network the same facts, derived
in JAX from the (N, T, 176) input itself, so datasets, checkpoints' input size, batching and
stylize are unchanged:

* ``top`` (88): the key is the highest one sounding at this step (the melody, mostly);
* ``bottom`` (88): the key is the lowest one sounding (the bass line);
* ``duration`` (88): at an onset, how many steps the note then sounds within the window,
  ``min(steps, 64) / 16``; 0 elsewhere;
* ``chord`` (1): notes starting at this step / 10;
* ``beat`` (4): one-hot position of the step within its quarter-note beat (step mod 4).
  Training windows start at multiples of the window (200) and stylize's at multiples of its
  hop (100), both multiples of 4, so a window's step 0 is always on a beat.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from stylenet_jax.encoding import NUM_KEYS, held_channels, onset_channels

Array = jax.Array
STEPS_PER_BEAT = 4
MAX_DURATION_STEPS = 64
NUM_CONTEXT_CHANNELS = 3 * NUM_KEYS + 1 + STEPS_PER_BEAT  # 269


def note_durations(onset: Array, held: Array) -> Array:
    """(N, T, 88) float32: at each onset cell, the steps its note sounds from there to its
    release, the next onset of its key, or the window's end; 0 at other cells.

    A reverse ``lax.scan`` over time: ``run[t] = held[t] * (1 + run[t+1] * (1 - onset[t+1]))``.
    """
    def step(after, cells):
        onset_t, held_t, onset_next = cells
        run = held_t * (1.0 + after * (1.0 - onset_next))
        return run, run

    onset_tm, held_tm = onset.swapaxes(0, 1), held.swapaxes(0, 1)  # (T, N, 88)
    onset_next = jnp.concatenate([onset_tm[1:], jnp.zeros_like(onset_tm[:1])])
    _, runs = jax.lax.scan(step, jnp.zeros_like(held_tm[0]), (onset_tm, held_tm, onset_next),
                           reverse=True)
    return runs.swapaxes(0, 1) * onset


def context_channels(inputs: Array) -> Array:
    """(N, T, 269) float32 note-context channels [top | bottom | duration | chord | beat] of
    inputs (N, T, 176) (uint8 or float, 0/1 cells in ``encoding``'s layout)."""
    onset = (onset_channels(inputs) > 0).astype(jnp.float32)
    held = (held_channels(inputs) > 0).astype(jnp.float32)
    held_at_or_above = jnp.cumsum(held[..., ::-1], axis=-1)[..., ::-1]
    held_at_or_below = jnp.cumsum(held, axis=-1)
    top = held * (held_at_or_above == 1)
    bottom = held * (held_at_or_below == 1)
    duration = jnp.minimum(note_durations(onset, held), MAX_DURATION_STEPS) / 16.0
    chord = onset.sum(-1, keepdims=True) / 10.0
    n, t = inputs.shape[:2]
    beat = jax.nn.one_hot(jnp.arange(t) % STEPS_PER_BEAT, STEPS_PER_BEAT)
    beat = jnp.broadcast_to(beat, (n, t, STEPS_PER_BEAT))
    return jnp.concatenate([top, bottom, duration, chord, beat], axis=-1)
