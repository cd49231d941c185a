"""stylenet_jax.straight_through_palette: Palette.play inside a jitted step, and the scatter
game played through it (scatter_training.Settings.palette)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylenet_jax import scatter_training as st
from stylenet_jax import straight_through_palette as stp
from stylenet_jax import velocity_palette as vp
from test_scatter_training import _small_game
from test_velocity_palette import _lumpy_counts


class _GivenUniforms:
    """Stands in for numpy's Generator in ``Palette.play``: hands back fixed uniforms."""

    def __init__(self, uniforms: np.ndarray):
        self.uniforms = uniforms

    def uniform(self, low, high, shape):
        assert (low, high) == (0.0, 1.0) and tuple(shape) == self.uniforms.shape
        return self.uniforms


def _palettes():
    flat = np.zeros(vp.VELOCITIES)
    flat[1:] = 3.0
    return {"jazz": vp.Palette(_lumpy_counts()), "pop": vp.Palette(flat)}


def test_it_writes_what_the_numpy_palette_writes_at_the_same_uniforms():
    palettes = _palettes()
    tables = stp.tables(palettes, ["jazz", "pop"])
    rng = np.random.default_rng(0)
    velocity = rng.integers(15, 100, (2, 3000))
    style = np.asarray([[1.0, 0.0], [0.0, 1.0]], np.float32)
    key = jax.random.PRNGKey(5)
    written = np.asarray(stp.play(jnp.asarray(velocity / 127.0, jnp.float32),
                                  jnp.asarray(style), tables, key))
    written = np.round(written * 127).astype(np.int64)
    uniforms = np.asarray(jax.random.uniform(key, velocity.shape), np.float64)
    for row, name in enumerate(["jazz", "pop"]):
        expected = palettes[name].play(velocity[row], _GivenUniforms(uniforms[row]))
        agree = (written[row] == expected).mean()
        assert agree > 0.999, (name, agree)  # float32 tables: a rare tie lands a step apart
        assert np.abs(written[row] - expected).max() <= 1
    assert not np.isin(written[0], [53]).any()  # never what jazz's instrument never sends
    assert (written[0] != velocity[0]).mean() > 0.05  # the lumpy palette moves notes
    np.testing.assert_array_equal(written[1], velocity[1])  # a flat palette moves none


def test_its_gradient_is_the_identity():
    tables = stp.tables(_palettes(), ["jazz", "pop"])
    velocity = jnp.full((2, 50), 53 / 127.0)
    style = jnp.asarray([[1.0, 0.0], [0.0, 1.0]])
    grad = jax.grad(lambda v: (stp.play(v, style, tables, jax.random.PRNGKey(0)) * 3.0).sum())
    np.testing.assert_array_equal(np.asarray(grad(velocity)), 3.0)


def test_a_style_without_a_palette_is_one_line():
    with pytest.raises(vp.PaletteError, match="no velocity palette for classical"):
        stp.tables(_palettes(), ["classical", "jazz"])


@pytest.mark.slow
def test_a_game_on_the_palette_plays_on_and_needs_its_tables():
    """Three small games, three compiles: slow (CI runs it), as the other games' tests."""
    data, settings = _small_game()  # styles jazz and pop, a system at a flat 64
    on = settings._replace(palette=True)
    with pytest.raises(ValueError, match="one palette per style"):
        st.train(data, steps=1, settings=on)
    off_params, off = st.train(data, steps=2, seed=1, settings=settings)
    flat_tables = stp.tables({"jazz": _palettes()["pop"], "pop": _palettes()["pop"]},
                             ["jazz", "pop"])
    flat_params, flat = st.train(data, steps=2, seed=1, settings=on, palette=flat_tables)
    np.testing.assert_allclose(flat, off, rtol=1e-6)  # a flat palette changes no velocity
    for a, b in zip(jax.tree.leaves(flat_params), jax.tree.leaves(off_params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
    shipped = stp.tables(vp.load().styles, ["jazz", "pop"])  # the pianists' lumpy ones
    _, lumpy = st.train(data, steps=2, seed=1, settings=on, palette=shipped)
    assert np.isfinite(lumpy).all() and not np.allclose(lumpy[0], off[0])
