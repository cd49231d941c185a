"""The learned scatter: its noise, its network's reading of the notes, its draws and its file
(stylenet_jax.learned_scatter), and how humanize hands it the notes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylenet_jax import humanize, learned_scatter as ls
from stylenet_jax.notes import Notes

TPB = 4  # one tick per 1/16 step
STYLES = ("classical", "jazz", "pop")


def chords(n_groups: int = 40, seed: int = 0) -> tuple[Notes, np.ndarray]:
    """Groups of 1-3 notes on consecutive steps (in a shuffled file order), and their
    onset seconds."""
    rng = np.random.default_rng(seed)
    starts, pitches = [], []
    for g in range(n_groups):
        size = 1 + g % 3
        starts += [g] * size
        pitches += list(48 + rng.choice(24, size, replace=False))
    order = rng.permutation(len(starts))
    start = np.asarray(starts, np.int64)[order]
    n = len(start)
    notes = Notes(pitch=np.asarray(pitches, np.int16)[order], start=start, end=start + 2,
                  velocity=rng.integers(30, 100, n).astype(np.uint8),
                  channel=np.zeros(n, np.uint8), track=np.zeros(n, np.int32),
                  index=np.arange(n, dtype=np.int32))
    return notes, start * 0.125


@pytest.fixture(scope="module")
def scatter():
    return ls.LearnedScatter(ls.init_params(jax.random.PRNGKey(1), len(STYLES), width=8),
                             STYLES, {})


def test_segment_mean_is_each_groups_mean_over_real_notes_only():
    values = jnp.asarray([[1.0, 3.0, 5.0, 100.0], [2.0, 4.0, 6.0, 8.0]])
    groups = jnp.asarray([[0, 0, 1, 1], [0, 1, 1, 1]])
    mask = jnp.asarray([[True, True, True, False], [True, True, True, True]])
    got = np.asarray(ls.segment_mean(values, groups, mask))
    np.testing.assert_allclose(got[0, :3], [2.0, 2.0, 5.0])  # the padded 100 is left out
    np.testing.assert_allclose(got[1], [2.0, 6.0, 6.0, 6.0])  # rows never mix


def test_window_mean_is_each_notes_mean_over_the_real_notes_around_it():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 20, 3)).astype(np.float32)
    mask = rng.random((2, 20)) > 0.3
    got = np.asarray(ls.window_mean(jnp.asarray(values), jnp.asarray(mask), 4))
    for row in range(2):
        for i in range(20):
            near = np.arange(max(i - 4, 0), min(i + 5, 20))
            real = near[mask[row, near]]
            expected = values[row, real].mean(axis=0) if real.size else np.zeros(3)
            np.testing.assert_allclose(got[row, i], expected, atol=1e-6)


def test_a_view_of_the_passage_reaches_notes_the_convolutions_do_not():
    """Without it (the shipped network) a note 40 notes away moves nothing; with
    context_notes=64 it does; the other layers keep their names and first weights."""
    length, key = 128, jax.random.PRNGKey(2)
    rng = np.random.default_rng(3)
    inputs = [jnp.asarray(rng.normal(size=(1, length, 5)), jnp.float32),
              jnp.ones((1, length, 3)) / 3, jnp.full((1, length), 0.5),
              jnp.arange(length)[None], jnp.ones((1, length), bool),
              jnp.asarray(rng.normal(size=(1, length, ls.NOISE_CHANNELS)), jnp.float32)]
    far = [inputs[0].at[0, 100].add(3.0), *inputs[1:]]  # note 100, 40 after note 60
    for context_notes, reaches in ((0, False), (64, True)):
        params = ls.init_params(key, 3, 8, context_notes)
        net = ls.ScatterNet(8, context_notes=context_notes)
        moved = net.apply(params, *far)[0, 60] != net.apply(params, *inputs)[0, 60]
        assert bool(moved) == reaches
        assert ("passage" in params["params"]) == reaches
    plain, viewed = ls.init_params(key, 3, 8), ls.init_params(key, 3, 8, 64)
    for name in plain["params"]:
        for a, b in zip(jax.tree.leaves(plain["params"][name]),
                        jax.tree.leaves(viewed["params"][name])):
            np.testing.assert_array_equal(a, b)


def test_noise_is_shared_by_a_chord_where_it_should_be_and_slow_where_it_should_be():
    groups = jnp.asarray(np.repeat(np.arange(2048), 2))[None]
    noise = np.asarray(ls.draw_noise(jax.random.PRNGKey(0), groups))[0]
    assert noise.shape == (4096, ls.NOISE_CHANNELS)
    assert not np.allclose(noise[0::2, 0], noise[1::2, 0])  # per note
    for channel in range(1, ls.NOISE_CHANNELS):  # per group: both notes of a group share it
        np.testing.assert_array_equal(noise[0::2, channel], noise[1::2, channel])
    for channel, phi in zip(range(2, ls.NOISE_CHANNELS), ls.SLOW_PHIS):
        series = noise[0::2, channel]
        assert abs(np.corrcoef(series[1:], series[:-1])[0, 1] - phi) < 0.05
        assert abs(series.std() - 1.0) < 0.25
    chord = noise[0::2, 1]
    assert abs(np.corrcoef(chord[1:], chord[:-1])[0, 1]) < 0.1


def test_a_draw_is_seeded_rounded_clipped_bounded_and_zero_is_nothing(scatter):
    notes, seconds = chords()
    velocities = np.full(len(notes), 64)
    jazz = scatter.for_blend({"jazz": 1.0})

    def draw(seed, amount=1.0, v=velocities):
        return jazz.humanize(v, notes, TPB, seconds, amount, np.random.default_rng(seed))

    first, again, other = draw(3), draw(3), draw(4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.dtype == np.int64 and np.abs(first - 64).max() <= 2 * ls.MAX_RESIDUAL * 127 + 1
    np.testing.assert_array_equal(draw(3, 0.0), velocities)
    loud = draw(3, 2.0, np.full(len(notes), 127))
    assert loud.min() >= 1 and loud.max() <= 127
    half = draw(3, 0.5)  # the same residual, scaled
    assert np.abs((half - 64) * 2 - (first - 64)).max() <= 2


def test_a_draw_moves_the_texture_not_the_level(scatter):
    """Each file's moves are centred on 0: only rounding is left of their mean, whatever
    level the network's game drifted to (this untrained one raises the level by 2.4)."""
    notes, seconds = chords(n_groups=200, seed=4)
    velocities = np.random.default_rng(1).integers(40, 90, len(notes))
    for style in STYLES:
        drawn = scatter.for_blend({style: 1.0}).humanize(velocities, notes, TPB, seconds, 1.0,
                                                         np.random.default_rng(2))
        assert abs((drawn - velocities).mean()) <= 0.5
        assert (drawn - velocities).std() > 0.5


def test_a_draw_follows_the_notes_not_their_order_in_the_file(scatter):
    notes, seconds = chords(seed=2)
    velocities = np.random.default_rng(0).integers(40, 90, len(notes))
    pop = scatter.for_blend({"pop": 1.0})
    drawn = pop.humanize(velocities, notes, TPB, seconds, 1.0, np.random.default_rng(5))
    shuffle = np.random.default_rng(9).permutation(len(notes))
    again = pop.humanize(velocities[shuffle], notes.select(shuffle), TPB, seconds[shuffle], 1.0,
                         np.random.default_rng(5))
    np.testing.assert_array_equal(again, drawn[shuffle])


def test_styles_change_the_draw_and_an_unknown_style_or_none_is_refused(scatter):
    notes, seconds = chords()
    velocities = np.full(len(notes), 64)
    draws = [scatter.for_blend(b).humanize(velocities, notes, TPB, seconds, 1.0,
                                           np.random.default_rng(0))
             for b in ({"classical": 1.0}, {"pop": 1.0})]
    assert not np.array_equal(*draws)
    with pytest.raises(humanize.HumanizeError, match="no style swing"):
        scatter.for_blend({"swing": 1.0})
    with pytest.raises(ValueError, match="for_blend"):
        scatter.humanize(velocities, notes, TPB, seconds, 1.0, np.random.default_rng(0))


def test_the_file_round_trips_through_humanize_and_a_bad_one_is_one_line(scatter, tmp_path):
    path = str(tmp_path / "scatter.npz")
    ls.save(path, scatter.params, STYLES, "python -m experiments.train_scatter", {"steps": 3})
    loaded = humanize.load(path)
    assert isinstance(loaded, ls.LearnedScatter) and loaded.styles == STYLES
    assert loaded.about == {"steps": 3}
    notes, seconds = chords()
    velocities = np.full(len(notes), 70)
    both = [humanize.draw(humanize.for_blend(s, {"jazz": 1.0}), velocities, notes, TPB,
                          seconds, 0.8, np.random.default_rng(1)) for s in (scatter, loaded)]
    np.testing.assert_array_equal(*both)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    ls.save(str(tmp_path / "two.npz"), scatter.params, STYLES[:2], "x", {})  # 3-style weights
    ls.save(str(tmp_path / "unviewed.npz"), scatter.params, STYLES, "x", {}, context_notes=8)
    viewed = ls.init_params(jax.random.PRNGKey(4), len(STYLES), width=8, context_notes=16)
    ls.save(str(tmp_path / "viewed.npz"), viewed, STYLES, "x", {}, context_notes=16)
    assert humanize.load(str(tmp_path / "viewed.npz")).context_notes == 16
    assert loaded.context_notes == 0
    for name, words in (("junk.npz", "not a readable learned scatter"),
                        ("foreign.npz", "not a readable learned scatter"),
                        ("two.npz", "do not fit a scatter network of 2 styles"),
                        ("unviewed.npz", "do not fit a scatter network of 3 styles"),
                        ("missing.npz", "no such file")):
        with pytest.raises(humanize.HumanizeError) as raised:
            humanize.load(str(tmp_path / name))
        assert words in str(raised.value) and "\n" not in str(raised.value)


def test_humanize_draw_still_gives_the_gaussian_scatter_its_groups():
    notes, seconds = chords()
    velocities = np.full(len(notes), 64)
    scatter = humanize.Scatter(3.0, 0.9, 2.0, 4.0)
    onset = notes.start  # one tick per step
    expected = humanize.humanize(velocities, humanize.onset_groups(onset), scatter, 0.75,
                                 np.random.default_rng(7))
    got = humanize.draw(scatter, velocities, notes, TPB, seconds, 0.75, np.random.default_rng(7))
    np.testing.assert_array_equal(got, expected)


def test_the_shipped_default_is_a_learned_scatter_of_the_shipped_styles():
    shipped = humanize.load()
    assert isinstance(shipped, ls.LearnedScatter) and shipped.styles == STYLES
    assert shipped.about["steps"] > 0 and "train" in shipped.about["data"]


def test_the_shipped_mild_scatter_is_the_same_recipe_charged_more_and_moves_notes_less():
    default, mild = humanize.load(), humanize.load("mild")
    assert isinstance(mild, ls.LearnedScatter) and mild.styles == STYLES
    assert mild.about["accuracy_weight"] > default.about["accuracy_weight"]
    recipe = ("data", "system", "steps", "ema_decay", "scorer_reset_every", "balance_styles")
    assert {k: mild.about[k] for k in recipe} == {k: default.about[k] for k in recipe}
    notes, seconds = chords(200)
    velocities = np.full(len(notes), 64)
    for style in STYLES:  # mean move over 16 draws (one draw's slow part swings it widely)
        moved = [np.mean([np.abs(humanize.draw(scatter.for_blend({style: 1.0}), velocities,
                                               notes, TPB, seconds, 1.0,
                                               np.random.default_rng(seed)) - 64).mean()
                          for seed in range(16)]) for scatter in (default, mild)]
        assert 1.0 < moved[1] < 0.9 * moved[0], (style, moved)


def test_the_shipped_both_judges_scatter_is_the_same_recipe_against_both_kinds_of_scorer():
    default, both = humanize.load(), humanize.load("both_judges")
    assert isinstance(both, ls.LearnedScatter) and both.styles == STYLES
    assert both.about["scorers"] == ["pooled", "per_style"]
    assert "scorers" not in default.about  # trained before the option: one pooled scorer
    recipe = ("data", "steps", "seed", "accuracy_weight", "ema_decay", "scorer_reset_every",
              "balance_styles")
    assert {k: both.about[k] for k in recipe} == {k: default.about[k] for k in recipe}
    notes, seconds = chords(120)
    draw = [humanize.draw(scatter.for_blend({"pop": 1.0}), np.full(len(notes), 64), notes,
                          TPB, seconds, 1.0, np.random.default_rng(0))
            for scatter in (default, both)]
    assert not np.array_equal(*draw)  # another network, not a copy of the default


def test_evaluate_draws_each_humanize_spec_from_its_own_file(tmp_path):
    from experiments import evaluate
    from performer_factory import export_tiny_model

    model = export_tiny_model(str(tmp_path / "model.npz"))
    systems, described = evaluate.build_systems(
        [f"model={model}"], [],
        humanize_specs=[f"g=model:0.75@{humanize.GAUSSIAN_PATH}", "l=model:1",
                        "m=model:1@mild"])
    by_name = {s.name: s for s in systems}
    assert isinstance(by_name["g"].scatters, dict) and by_name["g"].amount == 0.75
    assert isinstance(by_name["l"].scatters, ls.LearnedScatter) and by_name["l"].amount == 1
    assert "0.75 × a pianist's scatter" in described["g"] and "humanize.json" in described["g"]
    assert "1 × a learned scatter" in described["l"]
    assert "learned_scatter.npz" in described["l"]
    assert isinstance(by_name["m"].scatters, ls.LearnedScatter)  # a shipped scatter by name
    assert by_name["m"].scatters.about["accuracy_weight"] == 0.4
    assert "learned_scatter_mild.npz" in described["m"]
    with pytest.raises(humanize.HumanizeError, match="none.npz: no such file"):
        evaluate.build_systems([f"model={model}"], [],
                               humanize_specs=[f"x=model:1@{tmp_path / 'none.npz'}"])
