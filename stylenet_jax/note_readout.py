"""The note readout (``ModelConfig.note_readout``): each key's velocity read from the head's
state *and* that key's own place in the music at that step.

The paper's head ends in one linear layer from the BiLSTM state h_t to 88 logits, so every
key's velocity is ``sigmoid(w_k . h_t + b_k)``: to play the top note of a chord louder than
the rest, h_t itself must spell out which key is on top. The gradient-boosted baseline that
beats the paper's network is handed exactly such per-note facts (chord rank, top voice,
duration). The note readout adds, per cell (step t, key k), a small MLP of width D:

    logit[t, k] += v . relu(A h_t + B f[t, k] + E_k + b)

where ``f[t, k]`` are the ``CELL_FEATURES`` below, computed from the input grid itself (no
dataset, export-format or stylize change), and E_k a learned key embedding. ``v`` starts at
zero, so an untrained note readout adds nothing: the network starts as the paper's.

Cell features (all float32, 0 where the cell's step is padding):

* onset, held: the cell's two input channels;
* top, bottom: the key is the highest / lowest one sounding at this step;
* duration: at an onset, the steps its note sounds within the window, ``min(steps, 64) / 16``;
* onsets_above, onsets_below: other keys starting at this step above / below this one, / 4;
* held_above, held_below: keys sounding at this step above / below this one, / 4;
* chord: keys starting at this step, / 4;
* beat_0 .. beat_3: one-hot place of the step in its quarter-note beat (windows start on
  beats: see ``note_context``);
* pitch: the key's place on the keyboard, 0 (A0) .. 1 (C8).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from stylenet_jax.encoding import NUM_KEYS, held_channels, onset_channels
from stylenet_jax.lstm import dense_dot_general
from stylenet_jax.note_context import MAX_DURATION_STEPS, STEPS_PER_BEAT, note_durations

Array = jax.Array
CELL_FEATURES: tuple[str, ...] = (
    "onset", "held", "top", "bottom", "duration", "onsets_above", "onsets_below",
    "held_above", "held_below", "chord", *(f"beat_{i}" for i in range(STEPS_PER_BEAT)),
    "pitch")
COUNT_SCALE = 4.0  # counts of keys are divided by this


def cell_features(inputs: Array) -> Array:
    """(N, T, 88, len(CELL_FEATURES)) float32 features of every (step, key) cell of inputs
    (N, T, 176) uint8 or float (0/1 cells in ``encoding``'s layout). Steps past a row's
    length still get beat and pitch features: the caller masks them."""
    onset = (onset_channels(inputs) > 0).astype(jnp.float32)  # (N, T, 88)
    held = (held_channels(inputs) > 0).astype(jnp.float32)
    n, t, _ = onset.shape

    def above_and_below(cells: Array) -> tuple[Array, Array]:
        at_or_below = jnp.cumsum(cells, axis=-1)
        total = at_or_below[..., -1:]
        return total - at_or_below, at_or_below - cells

    onsets_above, onsets_below = above_and_below(onset)
    held_above, held_below = above_and_below(held)
    top = held * (held_above == 0)
    bottom = held * (held_below == 0)
    duration = jnp.minimum(note_durations(onset, held), MAX_DURATION_STEPS) / 16.0
    chord = jnp.broadcast_to(onset.sum(-1, keepdims=True), onset.shape)
    beat = jax.nn.one_hot(jnp.arange(t) % STEPS_PER_BEAT, STEPS_PER_BEAT)  # (T, 4)
    beat = jnp.broadcast_to(beat[None, :, None, :], (n, t, NUM_KEYS, STEPS_PER_BEAT))
    pitch = jnp.broadcast_to(jnp.arange(NUM_KEYS, dtype=jnp.float32) / (NUM_KEYS - 1),
                             onset.shape)
    scalars = [onset, held, top, bottom, duration, onsets_above / COUNT_SCALE,
               onsets_below / COUNT_SCALE, held_above / COUNT_SCALE, held_below / COUNT_SCALE,
               chord / COUNT_SCALE]
    return jnp.concatenate([jnp.stack(scalars, axis=-1), beat, pitch[..., None]], axis=-1)


class NoteReadout(nn.Module):
    """The per-cell term added to a head's logits (see the module docstring).

    Params: ``state`` Dense(D) of h, ``cell`` Dense(D, no bias) of the cell features,
    ``key_embedding`` (88, D), ``v`` Dense(1, no bias) initialised to zero.
    """

    width: int
    precision: str | None = None
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, h: Array, features: Array) -> Array:
        """h: (T, N, H2) float32 head outputs; features: (T, N, 88, C) from ``cell_features``
        (time-major). Returns (T, N, 88) float32 logits to add."""
        dense = functools.partial(nn.Dense, precision=self.precision,
                                  dot_general=dense_dot_general(self.matmul_dtype))
        state = dense(self.width, name="state")(h)  # (T, N, D)
        cell = dense(self.width, use_bias=False, name="cell")(features)  # (T, N, 88, D)
        key = self.param("key_embedding", nn.initializers.normal(0.1),
                         (NUM_KEYS, self.width))
        hidden = jax.nn.relu(state[:, :, None, :] + cell + key)
        return dense(1, use_bias=False, kernel_init=nn.initializers.zeros, name="v")(hidden)[..., 0]
