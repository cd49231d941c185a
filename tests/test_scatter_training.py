"""Training the learned scatter against the classifier's scorer (stylenet_jax.scatter_training)
and the command that does it (experiments.train_scatter)."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from side_by_side import run_side_by_side
from stylenet_jax import excerpt_statistics as es, human_classifier as hc, learned_scatter as ls
from stylenet_jax import scatter_training as st
from stylenet_jax.notes import Notes
from stylenet_jax.performances import Performed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TPB = 4


def performance(song_id: str, style: str, seed: int, seconds_long: float = 25.0) -> Performed:
    """Chords of 1-3 notes, one every 1/16 step (0.125 s), human-like velocities."""
    rng = np.random.default_rng(seed)
    starts, pitches = [], []
    for step in range(int(seconds_long / 0.125)):
        size = 1 + rng.integers(3)
        starts += [step] * size
        pitches += list(40 + rng.choice(40, size, replace=False))
    start = np.asarray(starts, np.int64)
    n = len(start)
    notes = Notes(pitch=np.asarray(pitches, np.int16), start=start, end=start + 3,
                  velocity=rng.integers(25, 110, n).astype(np.uint8),
                  channel=np.zeros(n, np.uint8), track=np.zeros(n, np.int32),
                  index=np.arange(n, dtype=np.int32))
    return Performed(song_id, style, song_id, f"{song_id}.mid", notes, TPB, start * 0.125)


def test_the_differentiable_features_are_the_classifiers_features():
    perf = performance("a", "jazz", 0, 12.0)
    data = st.excerpt_arrays([perf], [np.full(len(perf.notes), 64)], ["jazz"], max_notes=256)
    inputs = ls.note_inputs(perf.notes, TPB, perf.seconds)
    ordered = perf.notes.select(inputs.order)
    seconds = perf.seconds[inputs.order]
    for row, idx in enumerate(hc.excerpts(seconds)):
        n = len(idx)
        expected = hc.note_features(ordered.select(idx), TPB, seconds[idx],
                                    ordered.velocity[idx].astype(np.int64))
        got = np.asarray(st.classifier_features(
            jnp.asarray(data.human[row:row + 1]), jnp.asarray(data.context[row:row + 1]),
            jnp.asarray(data.groups[row:row + 1]), jnp.asarray(data.mask[row:row + 1])))[0]
        np.testing.assert_allclose(got[:n], expected[:256], atol=1e-6)
        assert not got[n:].any()  # padding is zeros, as the classifier pads


def test_excerpts_carry_style_system_human_and_groups_from_zero():
    perfs = [performance("a", "jazz", 1), performance("b", "pop", 2)]
    system = [np.full(len(p.notes), 50 + 10 * i) for i, p in enumerate(perfs)]
    data = st.excerpt_arrays(perfs, system, ["classical", "jazz", "pop"], max_notes=64)
    count = data.mask.shape[0]
    assert data.context.shape == (count, 64, 5) and data.style.shape == (count, 3)
    assert set(map(tuple, data.style)) == {(0, 1, 0), (0, 0, 1)}
    jazz = data.style[:, 1] == 1
    np.testing.assert_allclose(data.system[jazz][data.mask[jazz]], 50 / 127)
    np.testing.assert_allclose(data.system[~jazz][data.mask[~jazz]], 60 / 127)
    assert (data.groups[:, 0] == 0).all()
    assert data.mask.sum(1).max() == 64  # ten-second windows of ~160 notes, truncated
    assert ((data.human[data.mask] * 127).round() >= 25).all()
    with pytest.raises(ValueError, match="'pop' is not one of"):
        st.excerpt_arrays(perfs, system, ["jazz"], max_notes=64)


def test_rounding_is_whole_velocities_forward_and_the_identity_backward():
    v = jnp.asarray([0.3, 0.5001, 2.0, -1.0]) / 127
    np.testing.assert_allclose(np.asarray(st._rounded(v)) * 127, [1, 1, 2, 1], atol=1e-5)
    grad = jax.grad(lambda x: st._rounded(x).sum())(v)
    np.testing.assert_allclose(np.asarray(grad), 1.0)


def test_balanced_draws_give_each_style_an_equal_share():
    style = np.eye(3, dtype=np.float32)[[0] * 6 + [1] * 3 + [2]]
    plain, balanced = st.draw_weights(style, False), st.draw_weights(style, True)
    np.testing.assert_allclose(plain, 0.1)
    np.testing.assert_allclose(style.T @ balanced, [1 / 3] * 3, rtol=1e-6)
    assert balanced.dtype == np.float32 and abs(balanced.sum() - 1) < 1e-6


def _small_game():
    perfs = [performance(f"p{i}", "jazz" if i % 2 else "pop", i) for i in range(4)]
    data = st.excerpt_arrays(perfs, [np.full(len(p.notes), 64) for p in perfs],
                             ["jazz", "pop"], max_notes=64)
    return data, st.Settings(batch_size=4, width=8, scorer_width=8, ema_decay=0.0,
                             scorer_reset_every=0)


@pytest.mark.slow  # 13 s on 2 cores; in CI (--runslow), outside the default suite
def test_training_moves_the_network_reproducibly():
    data, settings = _small_game()
    lines = []
    params, losses = st.train(data, steps=6, seed=0, settings=settings, progress=lines.append,
                              report_every=3)
    again, _ = st.train(data, steps=6, seed=0, settings=settings)
    assert losses.shape == (6, 2) and np.isfinite(losses).all()
    assert len(lines) == 2 and lines[-1].startswith("step 6/6: scorer loss ")
    fresh = ls.init_params(jax.random.split(jax.random.PRNGKey(0), 3)[0], 2, 8)
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), params,
                                         fresh))
    assert max(moved) > 0
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_moving_average_mixes_the_weights_and_leaves_the_game_alone():
    """The average never feeds back into the game, so after one step at decay d it is
    (1 - d) x the raw weights + d x the initial ones, exactly; decay 0 is the raw weights."""
    data, settings = _small_game()
    raw, raw_losses = st.train(data, steps=1, seed=3, settings=settings)
    averaged, losses = st.train(data, steps=1, seed=3,
                                settings=settings._replace(ema_decay=0.25))
    initial = ls.init_params(jax.random.split(jax.random.PRNGKey(3), 3)[0], 2, 8)
    np.testing.assert_array_equal(losses, raw_losses)
    for a, r, i in zip(*map(jax.tree.leaves, (averaged, raw, initial))):
        np.testing.assert_allclose(np.asarray(a), 0.75 * np.asarray(r) + 0.25 * np.asarray(i),
                                   rtol=1e-5, atol=1e-7)
        assert not np.array_equal(np.asarray(a), np.asarray(r)) or np.array_equal(r, i)


def test_a_fresh_scorer_changes_the_game_only_from_its_step():
    data, settings = _small_game()
    reset = settings._replace(scorer_reset_every=3)
    one, one_losses = st.train(data, steps=2, seed=1, settings=settings)
    one_reset, one_reset_losses = st.train(data, steps=2, seed=1, settings=reset)
    np.testing.assert_array_equal(one_reset_losses, one_losses)  # before step 3: one scorer
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(one_reset)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    _, losses = st.train(data, steps=3, seed=1, settings=settings)
    _, reset_losses = st.train(data, steps=3, seed=1, settings=reset)
    assert losses[2, 0] != reset_losses[2, 0]  # step 3's scorer starts again from fresh weights


def test_scorer_kinds_are_checked_in_one_line():
    assert st.check_scorers(["per_style", "pooled"]) == ("per_style", "pooled")
    for scorers in ([], ["pooled", "pooled"], ["pooled", "judge"]):
        with pytest.raises(ValueError, match="name one or both of"):
            st.check_scorers(scorers)
    with pytest.raises(ValueError, match="need balanced styles"):
        st.check_scorers(["per_style"], balance_styles=False)
    st.check_scorers(["pooled"], balance_styles=False)
    assert st.check_scorers(["pooled", "per_style"], weights=(1.0, 0.0)) == ("pooled", "per_style")
    for weights in ((1.0,), (1.0, -1.0), (0.0, 0.0)):
        with pytest.raises(ValueError, match="one weight of 0 or more per kind"):
            st.check_scorers(["pooled", "per_style"], weights=weights)


def test_against_per_style_scorers_a_batch_is_an_equal_run_of_each_style():
    style = np.eye(3, dtype=np.float32)[[0] * 7 + [2] * 2 + [1] * 4]
    picks = st.make_draws(style, balance_styles=True)
    assert picks.by_style.shape == (3, 7) and list(np.asarray(picks.counts)) == [7, 4, 2]
    settings = st.Settings(batch_size=8, scorers=("pooled", "per_style"))
    seen = set()
    for i in range(20):
        pick = np.asarray(picks.pick(jax.random.PRNGKey(i), settings))
        assert pick.shape == (9,)  # 8 / 3 rounded up, three times
        assert list(style[pick].argmax(1)) == [0] * 3 + [1] * 3 + [2] * 3
        seen |= set(pick.tolist())
    assert seen == set(range(13))  # every excerpt of every style gets drawn
    pooled = np.asarray(picks.pick(jax.random.PRNGKey(0), settings._replace(scorers=("pooled",))))
    assert pooled.shape == (8,)


@pytest.mark.slow  # 12 s on 2 cores; in CI (--runslow), outside the default suite
def test_each_per_style_scorer_scores_and_learns_from_its_own_style_alone():
    scorer = hc.HumannessScorer(6)
    features = jax.random.normal(jax.random.PRNGKey(0), (6, 10, hc.NUM_FEATURES))
    mask = jnp.ones((6, 10), bool)
    params = jax.vmap(lambda k: scorer.init(k, features[:1], mask[:1]))(
        jax.random.split(jax.random.PRNGKey(1), 3))
    scores = st._score(scorer, st.PER_STYLE, params, features, mask, 3)
    for s in range(3):  # rows 2s, 2s+1 are style s's
        own = jax.tree.map(lambda a: a[s], params)
        np.testing.assert_allclose(np.asarray(scores[2 * s:2 * s + 2]),
                                   np.asarray(scorer.apply(own, features[2 * s:2 * s + 2],
                                                           mask[2 * s:2 * s + 2])), rtol=1e-5)
    grad = lambda f: jax.grad(lambda p: st._score(scorer, st.PER_STYLE, p, f, mask, 3).sum())(
        params)  # noqa: E731
    moved = grad(features.at[2:4].add(1.0))  # only style 1's excerpts change
    changed = []
    for a, b in zip(jax.tree.leaves(grad(features)), jax.tree.leaves(moved)):
        np.testing.assert_array_equal(np.asarray(a)[[0, 2]], np.asarray(b)[[0, 2]])
        changed.append(not np.array_equal(np.asarray(a)[1], np.asarray(b)[1]))
    assert sum(changed) >= len(changed) - 1  # all but the output bias's (always 1 an excerpt)


@pytest.mark.slow
def test_a_game_against_both_kinds_of_scorer_trains_reproducibly():
    """Three small games, three compiles: about 7 s on 2 cores, hence slow (CI runs it)."""
    data, settings = _small_game()
    both = settings._replace(scorers=("pooled", "per_style"))
    params, losses = st.train(data, steps=4, seed=2, settings=both)
    again, _ = st.train(data, steps=4, seed=2, settings=both)
    pooled, pooled_losses = st.train(data, steps=4, seed=2, settings=settings)
    assert losses.shape == (4, 2) and np.isfinite(losses).all()
    assert losses[0, 0] > pooled_losses[0, 0] * 1.5  # two scorers' losses, summed
    for a, b, c in zip(*map(jax.tree.leaves, (params, again, pooled))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert a.shape == c.shape  # the same network, whatever it played against
    one_style = st.excerpt_arrays([performance("j", "jazz", 5)], [np.full(1000, 64)],
                                  ["jazz", "pop"], max_notes=64)
    with pytest.raises(ValueError, match="excerpts of every style"):
        st.train(one_style, steps=1, settings=both)


@pytest.mark.slow
def test_a_charge_per_style_is_the_single_charge_when_equal_and_moves_the_game_otherwise():
    """Three small games, three compiles: about 6 s on 2 cores, hence slow (CI runs it)."""
    data, settings = _small_game()  # jazz, pop
    single, single_losses = st.train(data, steps=3, seed=4, settings=settings)
    equal, equal_losses = st.train(data, steps=3, seed=4,
                                   settings=settings._replace(accuracy_by_style=(0.05, 0.05)))
    np.testing.assert_allclose(equal_losses, single_losses, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(equal), jax.tree.leaves(single)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    _, pop_only = st.train(data, steps=3, seed=4,
                           settings=settings._replace(accuracy_by_style=(0.0, 0.05)))
    assert (pop_only[:, 1] < single_losses[:, 1]).all()  # jazz notes no longer charged
    with pytest.raises(ValueError, match="3 accuracy weights for 2 styles"):
        st.train(data, steps=1, settings=settings._replace(accuracy_by_style=(1.0,) * 3))


@pytest.mark.slow
def test_weighted_scorer_kinds_mix_each_kinds_loss_by_its_weight():
    """Four small games, four compiles: hence slow (CI runs it). At the first round the
    scorers and network are the same whatever the weights, so the network's loss is the
    weighted mean of each kind's alone, plus the same charge."""
    data, settings = _small_game()
    both = settings._replace(scorers=("pooled", "per_style"))

    def first_loss(weights):
        return st.train(data, steps=1, seed=3, settings=both._replace(scorer_weights=weights))[1]

    pooled, per_style, three_to_one = (first_loss(w) for w in ((1.0, 0.0), (0.0, 1.0),
                                                                 (3.0, 1.0)))
    assert pooled[0, 1] != per_style[0, 1]
    np.testing.assert_allclose(three_to_one[0, 1], (3 * pooled[0, 1] + per_style[0, 1]) / 4,
                               rtol=1e-5)
    np.testing.assert_allclose(first_loss(())[0, 1], (pooled[0, 1] + per_style[0, 1]) / 2,
                               rtol=1e-5)  # no weights: the plain mean
    np.testing.assert_array_equal(three_to_one[:, 0], pooled[:, 0])  # scorers don't see them


@pytest.mark.slow
def test_a_game_whose_scorers_see_more_columns_trains_the_same_network():
    """Two small games, two compiles: hence slow (CI runs it)."""
    data, settings = _small_game()
    both = settings._replace(scorers=("pooled", "per_style"))
    plain_params, plain = st.train(data, steps=2, seed=5, settings=both)
    params, sharing = st.train(data, steps=2, seed=5,
                               settings=both._replace(scorer_columns=("velocity_sharing",
                                                                      "duration_coupling")))
    assert np.isfinite(sharing).all() and not np.allclose(sharing[0, 0], plain[0, 0])
    for a, b in zip(*map(jax.tree.leaves, (params, plain_params))):
        assert a.shape == b.shape  # only the scorers read the extra column


@pytest.mark.slow
def test_the_statistics_charge_adds_its_weight_times_the_gap_and_leaves_the_scorers_alone():
    """Three small games, three compiles: slow (CI runs it). At the first round the network
    and scorers are the same whatever the weight, so the charge is linear in it."""
    data, settings = _small_game()
    scale = np.asarray(st.statistics_scale(data))
    assert scale.shape == (len(es.MATCHED_STATISTICS),) and (scale >= 1e-3).all()
    off, one, two = (st.train(data, steps=2, seed=4,
                              settings=settings._replace(statistics_weight=w))[1]
                     for w in (0.0, 1.0, 2.0))
    assert one[0, 1] > off[0, 1]  # a flat system is far from the pianists' statistics
    np.testing.assert_allclose(two[0, 1] - off[0, 1], 2 * (one[0, 1] - off[0, 1]), rtol=1e-4)
    np.testing.assert_array_equal(one[0, 0], off[0, 0])  # the scorers never see the charge
    assert not np.allclose(one[1], off[1])  # and the network it trains plays on differently


@pytest.mark.slow
def test_a_network_with_a_view_of_the_passage_trains_its_view_too():
    """One more compile of a small game: slow (CI runs it)."""
    data, settings = _small_game()
    params, losses = st.train(data, steps=3, seed=2,
                              settings=settings._replace(context_notes=8, ema_decay=0.0))
    fresh = ls.init_params(jax.random.split(jax.random.PRNGKey(2), 3)[0], 2, 8, 8)
    assert np.isfinite(losses).all()
    assert float(jnp.abs(params["params"]["passage"]["kernel"]
                         - fresh["params"]["passage"]["kernel"]).max()) > 0


def test_named_weights_are_read_in_order_and_checked():
    from experiments.train_scatter import named_weights

    styles = ["classical", "jazz", "pop"]
    assert named_weights(["pop:0.2"], styles, 0.05, "style_accuracy_weight") == {
        "classical": 0.05, "jazz": 0.05, "pop": 0.2}
    assert named_weights(["per_style:3"], ["pooled", "per_style"], 1.0, "scorer_weight") == {
        "pooled": 1.0, "per_style": 3.0}
    for given, words in ((["pop"], "--style_accuracy_weight 'pop': write NAME:WEIGHT"),
                         (["rock:1"], "at most once"), (["pop:1", "pop:2"], "at most once"),
                         (["pop:-1"], "0 or more")):
        with pytest.raises(ValueError, match=words):
            named_weights(given, styles, 0.05, "style_accuracy_weight")


def test_command_refuses_what_it_cannot_train_on_in_one_line(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "experiments.train_scatter", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    cases = [(["--prior_dir=x"], "give --data_dir and --prior_dir"),
             (["--data_dir=x", "--prior_dir=y", "--split=test"], "--split test"),
             (["--data_dir=x", "--prior_dir=y", "--out=a.json"], "an .npz file"),
             (["--data_dir=x", "--prior_dir=y", "--scorers=judge"], "one or both"),
             (["--data_dir=x", "--prior_dir=y", "--scorer_weight=judge:1"], "at most once"),
             (["--data_dir=x", "--prior_dir=y", "--palette=none.json"],
              "none.json: not a readable velocity palette"),
             ([f"--data_dir={tmp_path}", "--prior_dir=y"], str(tmp_path))]
    for (args, words), done in zip(cases, run_side_by_side(run, [a for a, _ in cases])):
        assert done.returncode == 2 and done.stderr.startswith("error: "), (args, done.stderr)
        assert words in done.stderr and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.slow
def test_command_trains_a_scatter_that_stylize_and_evaluate_draw_from(tmp_path):
    """A built synthetic corpus, its tree priors, a few training steps, then the file in use,
    then a scatter around a model's velocities, played on the palette: eight processes, hence
    slow (CI runs it)."""
    from data_prep import build, synthetic

    midi_dir, data_dir = str(tmp_path / "midi"), str(tmp_path / "data")
    synthetic.write_synthetic_corpus(midi_dir, styles=("classical", "jazz"), songs_per_style=6,
                                     steps=300, seed=0)
    build.build_dataset(midi_dir, data_dir, validation_fraction=0.2, test_fraction=0.3,
                        workers=1, log=lambda *_: None)

    def run(module, *args):
        done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done

    priors, out = str(tmp_path / "priors"), str(tmp_path / "learned.npz")
    run("experiments.tree_prior", f"--data_dir={data_dir}", f"--out_dir={priors}", "--folds=2")
    done = run("experiments.train_scatter", f"--data_dir={data_dir}", f"--prior_dir={priors}",
               "--steps=3", "--width=8", "--scorer_width=6", f"--out={out}", "--noprogress",
               "--duration_coupling", "--statistics_weight=0.5")
    assert done.stdout.startswith(f"wrote {os.path.relpath(out, ROOT)}: 3 steps on ")
    scatter = ls.load(out)
    assert scatter.styles == ("classical", "jazz") and scatter.about["steps"] == 3
    assert scatter.about["scorer_width"] == 6  # the game's scorer: recorded, not stored
    assert scatter.about["scorer_columns"] == ["duration_coupling"]
    assert scatter.about["statistics_weight"] == 0.5
    assert scatter.about["width"] == 8  # --width, read back from the file's own shapes:
    assert scatter.params["params"]["Dense_0"]["kernel"].shape[-1] == 8
    source = sorted((tmp_path / "midi" / "jazz").iterdir())[0]
    files = [str(tmp_path / f"{k}.mid") for k in "abc"]
    for target, seed in zip(files, (1, 1, 2)):
        run("stylenet_jax.stylize", str(source), "-o", target, "--style=jazz",
            "--humanize=1", f"--seed={seed}", f"--humanize_scatter={out}")
    a, b, c = (open(f, "rb").read() for f in files)
    assert a == b and a != c  # seeded draws from the learned scatter
    report = str(tmp_path / "report.md")
    run("experiments.evaluate", f"--data_dir={data_dir}", "--split=validation",
        "--humanize=model_learned=model:1", f"--humanize_scatter={out}", f"--out={report}",
        "--noprogress", "--noclassifier", "--resamples=20")
    text = open(report).read()
    assert "`model_learned`: model plus 1 × a learned scatter" in text
    # around the tree's and a model's velocities: the ones the evaluation's model system plays
    from experiments import evaluate, train_scatter
    from performer_factory import export_tiny_model
    from stylenet_jax import evaluation, performer, tree_prior, velocity_palette

    tiny, around = export_tiny_model(str(tmp_path / "tiny.npz")), str(tmp_path / "model.npz")
    done = run("experiments.train_scatter", f"--data_dir={data_dir}", f"--prior_dir={priors}",
               "--steps=2", "--width=8", "--scorer_width=6", f"--out={around}",
               "--system=both", f"--model={tiny}", "--palette=shipped")
    assert "the model played" in done.stderr
    about = ls.load(around).about  # every excerpt twice: around the tree, then the model
    assert about["system"].startswith("each excerpt twice: around the tree's out-of-fold")
    assert f"around the model `{tiny}` reading the tree" in about["system"]
    assert about["excerpts"] == 2 * scatter.about["excerpts"]
    assert about["palette"] == velocity_palette.DEFAULT_PATH  # its draws on it
    performed, _ = evaluate.read_performances(data_dir, None, split="train")
    by_model = train_scatter.system_velocities(performed, priors, "model", tiny, print)
    by_tree = train_scatter.system_velocities(performed, priors, "tree", None, print)
    plays = evaluation.ModelSystem(performer.Stylizer(tiny))
    for p, model_says, tree_says in zip(performed, by_model, by_tree):
        np.testing.assert_array_equal(model_says,
                                      plays.perform(evaluation.flatten(p)).velocities)
        np.testing.assert_array_equal(tree_says,
                                      tree_prior.note_priors(priors, p))
    assert any((m != t).any() for m, t in zip(by_model, by_tree))
    missing = subprocess.run([sys.executable, "-m", "experiments.train_scatter",
                              f"--data_dir={data_dir}", f"--prior_dir={priors}",
                              "--system=model", f"--model={tmp_path / 'none.npz'}"],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: ") and "none.npz" in missing.stderr
