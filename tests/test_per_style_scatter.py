"""One learned scatter per style (stylenet_jax.per_style_scatter): its file, its draws for one
style and for a blend, and the shipped one."""

import json

import jax
import numpy as np
import pytest

from stylenet_jax import dynamics, humanize, learned_scatter as ls, per_style_scatter as pss
from test_learned_scatter import STYLES, TPB, chords


def write_networks(folder, styles_by_file):
    """Saves a small random learned scatter per file ({file name: its styles}) in ``folder``."""
    for i, (name, styles) in enumerate(styles_by_file.items()):
        ls.save(str(folder / name), ls.init_params(jax.random.PRNGKey(10 + i), len(styles), 8),
                styles, "python -m experiments.train_scatter", {"steps": 10 + i})


def write_per_style(path, styles, **extra):
    path.write_text(json.dumps({"format": pss.FORMAT, "version": pss.VERSION,
                                "styles": styles, **extra}))
    return str(path)


@pytest.fixture()
def per_style(tmp_path):
    write_networks(tmp_path, {"a.npz": ("jazz",), "b.npz": ("pop",), "c.npz": STYLES})
    (tmp_path / "sub").mkdir()
    return write_per_style(tmp_path / "sub" / "per_style.json",
                           {"jazz": "../a.npz", "pop": "../b.npz", "classical": "../c.npz"})


def test_one_style_draws_exactly_what_its_network_alone_draws(per_style, tmp_path):
    loaded = humanize.load(per_style)
    assert isinstance(loaded, pss.PerStyleScatter) and loaded.styles == ("jazz", "pop",
                                                                         "classical")
    assert loaded.about["pop"] == {"steps": 11}
    notes, seconds = chords()
    velocities = np.full(len(notes), 70)
    for style, name in (("jazz", "a.npz"), ("pop", "b.npz"), ("classical", "c.npz")):
        alone = humanize.for_blend(humanize.load(str(tmp_path / name)), {style: 1.0})
        both = [humanize.draw(humanize.for_blend(s, {style: 1.0}), velocities, notes, TPB,
                              seconds, 1.1, np.random.default_rng(3)) for s in (loaded, alone)]
        np.testing.assert_array_equal(*both)
        assert np.abs(both[0] - 70).max() > 0  # it moved notes


def test_a_blend_adds_each_styles_displacement_by_weight(per_style):
    loaded = humanize.load(per_style)
    notes, seconds = chords()
    velocities = np.random.default_rng(0).integers(40, 90, len(notes))
    got = humanize.draw(loaded.for_blend({"jazz": 0.25, "pop": 0.75}), velocities, notes, TPB,
                        seconds, 0.9, np.random.default_rng(5))
    rng = np.random.default_rng(5)  # drawn in the blend's order from the one generator
    moves = [loaded.scatters[s].for_blend({s: 1.0}).displacement(velocities, notes, TPB,
                                                                   seconds, rng)
             for s in ("jazz", "pop")]
    expected = np.clip(dynamics.round_half_up(velocities + 0.9 * (0.25 * moves[0]
                                                                  + 0.75 * moves[1])), 1, 127)
    np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(moves[0], moves[1])
    assert abs(np.mean(moves[0])) < 1e-9  # the texture, not the level


def test_amount_zero_draws_nothing_and_a_style_must_be_chosen(per_style):
    loaded = humanize.load(per_style)
    notes, seconds = chords()
    velocities = np.full(len(notes), 64)
    rng = np.random.default_rng(2)
    state = rng.bit_generator.state
    same = loaded.for_blend({"jazz": 1.0}).humanize(velocities, notes, TPB, seconds, 0.0, rng)
    np.testing.assert_array_equal(same, velocities)
    assert rng.bit_generator.state == state
    with pytest.raises(ValueError, match="choose the style first"):
        loaded.humanize(velocities, notes, TPB, seconds, 1.0, rng)
    with pytest.raises(humanize.HumanizeError, match="has no style rock"):
        humanize.for_blend(loaded, {"rock": 1.0})


def test_a_bad_per_style_file_is_one_line(tmp_path):
    write_networks(tmp_path, {"pop.npz": ("pop",)})
    cases = {
        "old.json": ({"pop": "pop.npz"}, {"version": 99}, "not a stylenet-scatter-per-style"),
        "empty.json": ({}, {}, "not a stylenet-scatter-per-style"),
        "number.json": ({"pop": 3}, {}, "not a stylenet-scatter-per-style"),
        "missing.json": ({"pop": "none.npz"}, {}, "its pop scatter"),
        "wrong.json": ({"jazz": "pop.npz"}, {}, "knows only pop"),
    }
    for name, (styles, extra, words) in cases.items():
        path = write_per_style(tmp_path / name, styles, **extra)
        with pytest.raises(humanize.HumanizeError) as raised:
            humanize.load(path)
        assert words in str(raised.value) and "\n" not in str(raised.value), name
    (tmp_path / "junk.npz").write_bytes(b"junk")
    path = write_per_style(tmp_path / "junk.json", {"pop": "junk.npz"})
    with pytest.raises(humanize.HumanizeError, match="not a readable learned scatter"):
        humanize.load(path)


def test_the_shipped_per_style_scatter_has_a_network_trained_on_each_style_alone():
    shipped = humanize.load("per_style")
    default = humanize.load()
    assert isinstance(shipped, pss.PerStyleScatter) and set(shipped.styles) == set(STYLES)
    recipe = ("steps", "ema_decay", "scorer_reset_every", "balance_styles")
    for style in STYLES:
        network = shipped.scatters[style]
        assert network.styles == (style,)
        assert f'"styles": ["{style}"]' in network.about["data"]
        assert {k: network.about[k] for k in recipe} == {k: default.about[k] for k in recipe}
    # pop's network is charged 0.2 per velocity unit (chosen on validation), the others 0.05
    charged = {style: shipped.scatters[style].about["accuracy_weight"] for style in STYLES}
    assert charged == {"classical": default.about["accuracy_weight"],
                       "jazz": default.about["accuracy_weight"], "pop": 0.2}
    assert humanize.scatter_label("per_style") == "per_style"


def test_evaluate_plays_each_style_from_its_own_network(tmp_path, per_style):
    from experiments import evaluate
    from performer_factory import export_tiny_model

    model = export_tiny_model(str(tmp_path / "model.npz"))
    systems, described = evaluate.build_systems(
        [f"model={model}"], [], humanize_specs=["p=model:1.1@per_style",
                                                f"q=model:1@{per_style}"])
    by_name = {s.name: s for s in systems}
    assert isinstance(by_name["p"].scatters, pss.PerStyleScatter)
    assert by_name["p"].amount == 1.1 and by_name["q"].scatters.styles[0] == "jazz"
    assert "1.1 × a learned scatter per style" in described["p"]
    assert "scatter_per_style.json" in described["p"]
