"""A style's velocity palette inside a jitted training step, straight through.

``velocity_palette.Palette.play`` in JAX: the forward pass writes what ``stylize --humanize
--palette`` writes (the same quantile map of each whole velocity, at a uniform drawn from an
explicit PRNG key), and the backward pass is the identity, as for the rounding to whole
velocities before it. ``scatter_training`` plays its drawn velocities through it when
``Settings.palette`` is on, so the scatter network learns against the velocities that will
be written, not against the smooth draw the palette then moves.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from stylenet_jax import velocity_palette


class PaletteTables(NamedTuple):
    """Each style's ``Palette.quantile_tables``, stacked in style order: ``below`` float32
    (S, 129), ``smoothed`` float32 (S, 128), ``cumulative`` float32 (S, 128)."""

    below: jax.Array
    smoothed: jax.Array
    cumulative: jax.Array


def tables(palettes: Mapping[str, velocity_palette.Palette],
           styles: Sequence[str]) -> PaletteTables:
    """The tables of ``palettes`` ({style: Palette}, e.g. ``velocity_palette.load().styles``)
    for ``styles`` in order. Raises ``velocity_palette.PaletteError`` for a style with none."""
    velocity_palette.check_styles(palettes, styles)
    rows = [palettes[s].quantile_tables() for s in styles]
    return PaletteTables(*(jnp.asarray(np.stack(column), jnp.float32) for column in zip(*rows)))


def play(velocity: jax.Array, style: jax.Array, palette: PaletteTables,
         key: jax.Array) -> jax.Array:
    """float32 (B, L), /127: whole velocities ``velocity`` (float (B, L), /127, 1..127 after
    rounding) of excerpts of one-hot ``style`` (float (B, S)) played on their style's palette,
    each note at its own uniform drawn from ``key``; the identity's gradient."""
    whole = jnp.clip(jnp.round(velocity * 127.0), 1, 127).astype(jnp.int32)
    row = jnp.argmax(style, axis=-1)  # (B,)
    below = jnp.take_along_axis(palette.below[row], whole, axis=1)
    mass = jnp.take_along_axis(palette.smoothed[row], whole, axis=1)
    quantile = below + jax.random.uniform(key, velocity.shape) * mass
    quantile = jnp.clip(quantile, 1e-7, 1.0 - 1e-7)
    # searchsorted, left side: how many cumulative masses lie below the quantile
    written = (palette.cumulative[row][:, None, :] < quantile[..., None]).sum(axis=-1)
    written = jnp.clip(written, 1, 127).astype(jnp.float32) / 127.0
    return velocity + jax.lax.stop_gradient(written - velocity)
