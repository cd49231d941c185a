"""Training a learned scatter (``learned_scatter.ScatterNet``) against the classifier.

A generative adversarial game on 10-second excerpts of human performances: the scorer of
``human_classifier`` (same network, same features, same pairwise logistic loss) learns to
tell the pianist's velocities from the system's plus a drawn residual, and the network learns
to draw residuals it cannot tell apart. Two scorer steps per network step keep the scorer
ahead. Velocities are rounded to whole numbers on the way to the scorer (straight through), so
it cannot learn fractions no MIDI file has. The shipped recipe (``Settings``' defaults) also
charges the network for its distance from the pianist, draws each style equally often, starts
a fresh scorer every 1000 rounds (so the network also meets the tells a classifier trained from
scratch finds first, as the evaluation's is) and writes a moving average of the network's
weights (decay 0.998), which steadies what a game's last steps leave. With
``Settings.scorers`` the network can also play against one scorer per style, each learning
from its style's excerpts alone (the one-style judges of ``experiments.judges``), or against
both kinds at once; ``scorer_weights`` weighs the kinds, and ``scorer_columns`` gives the
scorers more columns (``excerpt_statistics.SCORER_COLUMNS``): statistics of a whole excerpt
that per-note features pooled by a mean and a max cannot compute, such as its count of distinct
velocities. ``statistics_weight`` charges the network, besides, for each style's systematic
offset from the pianists in the trees' excerpt statistics (``excerpt_statistics.
statistics_gap``): feature matching on the statistics of a judge it cannot play against.

Pipeline: ``excerpt_arrays`` (performances + a system's velocities -> padded arrays, static
shapes) -> ``train`` (jitted steps, explicit PRNG keys) -> ``learned_scatter.save``.
"""

from __future__ import annotations

import functools
import time
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from stylenet_jax import excerpt_statistics as es
from stylenet_jax import human_classifier as hc
from stylenet_jax import learned_scatter as ls
from stylenet_jax import straight_through_palette as stp
from stylenet_jax.performances import Performed


class Excerpts(NamedTuple):
    """P excerpts padded to L notes: context float32 (P, L, 5), style float32 (P, S) one-hot,
    system and human float32 (P, L) velocity/127, groups int32 (P, L) onset groups from 0 in
    each excerpt, mask bool (P, L) real notes."""

    context: np.ndarray
    style: np.ndarray
    system: np.ndarray
    human: np.ndarray
    groups: np.ndarray
    mask: np.ndarray


def excerpt_arrays(performed: Sequence[Performed], system_velocities: Sequence[np.ndarray],
                   styles: Sequence[str], max_notes: int = 512,
                   length_seconds: float = 10.0) -> Excerpts:
    """The ``hc.excerpts`` windows of every performance (notes in (onset, pitch) order, the
    first ``max_notes`` of a longer window), with the system's velocities (int (n,) each, in
    the performance's note order). Raises ValueError for a style not in ``styles``."""
    rows: list[tuple] = []
    for perf, system in zip(performed, system_velocities, strict=True):
        if perf.style not in styles:
            raise ValueError(f"{perf.id}: style {perf.style!r} is not one of {list(styles)}")
        inputs = ls.note_inputs(perf.notes, perf.ticks_per_beat, perf.seconds)
        human = perf.notes.velocity.astype(np.float32)[inputs.order] / 127.0
        system = np.asarray(system, np.float32)[inputs.order] / 127.0
        seconds = np.asarray(perf.seconds)[inputs.order]
        for idx in hc.excerpts(seconds, length_seconds):
            idx = idx[:max_notes]
            rows.append((inputs.context[idx], styles.index(perf.style), system[idx],
                         human[idx], inputs.groups[idx] - inputs.groups[idx[0]]))
    if not rows:
        raise ValueError("no excerpt of enough notes in these performances")
    count = len(rows)
    out = Excerpts(np.zeros((count, max_notes, 5), np.float32),
                   np.zeros((count, len(styles)), np.float32),
                   np.zeros((count, max_notes), np.float32),
                   np.zeros((count, max_notes), np.float32),
                   np.full((count, max_notes), max_notes - 1, np.int32),
                   np.zeros((count, max_notes), bool))
    for i, (context, style, system, human, groups) in enumerate(rows):
        n = len(system)
        out.context[i, :n], out.style[i, style] = context, 1.0
        out.system[i, :n], out.human[i, :n], out.groups[i, :n] = system, human, groups
        out.mask[i, :n] = True
    return out


def classifier_features(velocity: jax.Array, context: jax.Array, groups: jax.Array,
                        mask: jax.Array, columns: tuple[str, ...] = ()) -> jax.Array:
    """float32 (B, L, hc.NUM_FEATURES + len(columns)): ``hc.note_features`` of excerpts
    played at ``velocity`` (float (B, L), /127), differentiable, zero where ``mask`` is False.
    ``context``: float (B, L, 5), ``ls.note_inputs``'s of the whole performance. Then one
    column for each of ``columns``, ``es.SCORER_COLUMNS`` names (the training scorers' alone)."""
    keep = mask.astype(jnp.float32)
    context = context.at[:, 0, es.INTER_ONSET_COLUMN].set(0.0)  # a first note: none since
    mean = es.excerpt_mean(velocity, keep)
    previous = jnp.concatenate([velocity[:, :1], velocity[:, :-1]], axis=1)
    chord = velocity - ls.segment_mean(velocity, groups, mask)
    extra = [es.SCORER_COLUMNS[name](velocity, context, mask)[..., None] for name in columns]
    features = jnp.concatenate([jnp.stack([velocity, velocity - mean, velocity - previous], -1),
                                context, chord[..., None], *extra], axis=-1)
    return features * keep[..., None]


def draw_weights(style: np.ndarray, balance_styles: bool) -> np.ndarray:
    """float32 (P,) summing to 1: how likely each excerpt (one-hot ``style`` (P, S)) is to be
    drawn; with ``balance_styles`` each style present gets an equal share."""
    weights = np.ones(style.shape[0])
    if balance_styles:
        counts = style.sum(axis=0)
        weights = 1.0 / counts[style.argmax(axis=1)]
    return (weights / weights.sum()).astype(np.float32)


def _rounded(velocity: jax.Array) -> jax.Array:
    """Whole MIDI velocities 1..127 (/127) forward, the identity backward."""
    whole = jnp.clip(jnp.round(velocity * 127.0), 1.0, 127.0) / 127.0
    return velocity + jax.lax.stop_gradient(whole - velocity)


def statistics_scale(data: Excerpts, chunk: int = 1024) -> jax.Array:
    """float32 (len(es.MATCHED_STATISTICS),): each matched statistic's sd over the pianists'
    excerpts of ``data`` (floored at 1e-3), the unit ``es.statistics_gap`` charges in."""
    rows = [es.matched_statistics(*(jnp.asarray(a[i:i + chunk]) for a in
                                    (data.human, data.context, data.groups, data.mask)))
            for i in range(0, data.mask.shape[0], chunk)]
    return jnp.maximum(jnp.concatenate(rows).std(axis=0), 1e-3)


DEFAULT_STEPS = 5000  # the shipped scatter's: past about 2000 the classifier moves little
POOLED, PER_STYLE = "pooled", "per_style"  # the kinds of scorer (``Settings.scorers``)
SCORER_KINDS = (POOLED, PER_STYLE)


class Settings(NamedTuple):
    """The game's settings; the defaults are the shipped scatter's recipe."""

    batch_size: int = 32
    width: int = 32
    scorer_width: int = hc.WIDTH
    scorer_learning_rate: float = 2e-3
    learning_rate: float = 2e-4
    scorer_steps: int = 2
    accuracy_weight: float = 0.05  # × mean |drawn - pianist| in velocity units, on the network
    accuracy_by_style: tuple[float, ...] = ()  # (S,) in style order, else accuracy_weight
    balance_styles: bool = True  # draw each style's excerpts equally often
    ema_decay: float = 0.998  # > 0: return a moving average of the network's weights (0: last)
    scorer_reset_every: int = 1000  # > 0: a fresh scorer every this many rounds (0: one scorer)
    scorers: tuple[str, ...] = (POOLED,)  # kinds the network plays against; its loss: their mean
    scorer_weights: tuple[float, ...] = ()  # one per kind of ``scorers``: a weighted mean instead
    scorer_columns: tuple[str, ...] = ()  # ``es.SCORER_COLUMNS`` the scorers also see
    statistics_weight: float = 0.0  # > 0: × ``es.statistics_gap`` on the network's loss
    context_notes: int = 0  # > 0: the network's view of the passage (``ScatterNet``)
    palette: bool = False  # play each draw on its style's palette (``straight_through_palette``)


def check_scorers(scorers: Sequence[str], balance_styles: bool = True,
                  weights: Sequence[float] = ()) -> tuple[str, ...]:
    """``scorers`` as a tuple of distinct ``SCORER_KINDS``; raises ValueError otherwise, for
    per-style scorers without ``balance_styles`` (their batches hold each style equally), or
    for ``weights`` (empty: equal) that are not one per kind, 0 or more, with a positive sum."""
    unknown = [kind for kind in scorers if kind not in SCORER_KINDS]
    if unknown or not scorers or len(set(scorers)) != len(scorers):
        raise ValueError(f"scorers {list(scorers)}: name one or both of {list(SCORER_KINDS)}, "
                         "each once")
    if PER_STYLE in scorers and not balance_styles:
        raise ValueError("per-style scorers play on batches of each style equally: they need "
                         "balanced styles")
    if weights and (len(weights) != len(scorers) or min(weights) < 0 or sum(weights) <= 0):
        raise ValueError(f"scorer weights {list(weights)} for scorers {list(scorers)}: give one "
                         "weight of 0 or more per kind, not all 0")
    return tuple(scorers)


def _score(scorer: hc.HumannessScorer, kind: str, params, features: jax.Array,
           mask: jax.Array, num_styles: int) -> jax.Array:
    """float32 (B,): a pooled scorer's score of each excerpt (features (B, L, F), mask
    (B, L)), or (``PER_STYLE``, ``params`` stacked over ``num_styles`` scorers, the batch in
    equal runs of one style each, in style order: ``Draws.pick``'s) each excerpt's score by its
    own style's scorer, so each per-style scorer learns from its style's excerpts alone."""
    if kind == POOLED:
        return scorer.apply(params, features, mask)
    by_style = lambda a: a.reshape(num_styles, -1, *a.shape[1:])  # noqa: E731
    return jax.vmap(scorer.apply)(params, by_style(features), by_style(mask)).reshape(-1)


class Draws(NamedTuple):
    """How each round picks its batch of excerpts (``make_draws``): ``weights`` float32 (P,)
    summing to 1 (``draw_weights``), and each style's excerpt indices, ``by_style`` int32
    (S, M) (a style's first ``counts[s]`` entries; the rest repeat them) and ``counts`` int32
    (S,)."""

    weights: jax.Array
    by_style: jax.Array
    counts: jax.Array

    def pick(self, key, settings: Settings) -> jax.Array:
        """int32 (B,): the round's excerpts. Against per-style scorers, an equal run of each
        style's (``batch_size`` / S rounded up each), in style order; else ``batch_size``
        drawn with ``weights``. Both with replacement."""
        if PER_STYLE in settings.scorers:
            per_style = -(-settings.batch_size // self.counts.shape[0])
            rows = jax.random.randint(key, (self.counts.shape[0], per_style), 0,
                                      self.counts[:, None])
            return jnp.take_along_axis(self.by_style, rows, axis=1).reshape(-1)
        return jax.random.choice(key, self.weights.shape[0], (settings.batch_size,),
                                 p=self.weights)


def make_draws(style: np.ndarray, balance_styles: bool) -> Draws:
    """``Draws`` of excerpts of one-hot ``style`` float (P, S)."""
    label = style.argmax(axis=1)
    rows = [np.flatnonzero(label == s) for s in range(style.shape[1])]
    table = np.stack([np.resize(r, max(map(len, rows))) if len(r) else
                      np.zeros(max(map(len, rows)), int) for r in rows]).astype(np.int32)
    return Draws(jnp.asarray(draw_weights(style, balance_styles)), jnp.asarray(table),
                 jnp.asarray([len(r) for r in rows], jnp.int32))


class GameState(NamedTuple):
    """The game between steps: the network's params and Adam state, the scorers' (a tuple of
    params, one per ``Settings.scorers`` kind, and their Adam state), and the moving average
    of the network's params (``Settings.ema_decay``)."""

    net: object
    net_opt: object
    scorer: object
    scorer_opt: object
    average: object


@functools.partial(jax.jit, static_argnames=("settings",))
def _step(state: GameState, key, data: Excerpts, draws: Draws, statistics_scale: jax.Array,
          palette: stp.PaletteTables | None, settings: Settings):
    """One round on a batch picked by ``draws``:
    ``settings.scorer_steps`` scorer steps, then one network step (``statistics_scale``: float
    (K,), ``es.statistics_gap``'s; ``palette``: the styles' tables where ``settings.palette``).
    Returns the new state and (scorer loss, network loss)."""
    net_params, net_opt, scorer_params, scorer_opt, average = state
    scorer = hc.HumannessScorer(settings.scorer_width)
    net = ls.ScatterNet(settings.width, context_notes=settings.context_notes)
    pick_key, noise_key = jax.random.split(key)
    pick = draws.pick(pick_key, settings)
    batch = Excerpts(*(jnp.asarray(a)[pick] for a in data))
    noise = ls.draw_noise(noise_key, batch.groups)
    style = jnp.broadcast_to(batch.style[:, None, :], (*batch.mask.shape, batch.style.shape[-1]))
    human = classifier_features(batch.human, batch.context, batch.groups, batch.mask,
                                settings.scorer_columns)

    def drawn(params):
        residual = net.apply(params, batch.context, style, batch.system, batch.groups,
                             batch.mask, noise)
        whole = _rounded(jnp.clip(batch.system + residual, 1 / 127, 1.0))
        if settings.palette:  # static: off, the keys and the game are as they were
            return stp.play(whole, batch.style, palette, jax.random.fold_in(noise_key, 1))
        return whole

    def played(velocity):
        return classifier_features(velocity, batch.context, batch.groups, batch.mask,
                                   settings.scorer_columns)

    def margins(params, first, second):  # (kinds, B): each scorer's first minus second
        styles = batch.style.shape[-1]
        return jnp.stack([_score(scorer, kind, p, first, batch.mask, styles)
                          - _score(scorer, kind, p, second, batch.mask, styles)
                          for kind, p in zip(settings.scorers, params)])

    def scorer_loss(params, system):  # the scorers are independent: the sum trains each alone
        return -jax.nn.log_sigmoid(margins(params, human, system)).mean(axis=1).sum()

    system = jax.lax.stop_gradient(played(drawn(net_params)))
    scorer_optimizer = optax.adam(settings.scorer_learning_rate)
    for _ in range(settings.scorer_steps):
        loss_d, grads = jax.value_and_grad(scorer_loss)(scorer_params, system)
        updates, scorer_opt = scorer_optimizer.update(grads, scorer_opt, scorer_params)
        scorer_params = optax.apply_updates(scorer_params, updates)

    def net_loss(params):  # the scorer should rank the drawn performance above the human's
        velocity = drawn(params)
        fooled = -jax.nn.log_sigmoid(margins(scorer_params, played(velocity), human))  # (K, B)
        if settings.scorer_weights:  # static: without weights the mean is the equal-weight one
            kind_weight = jnp.asarray(settings.scorer_weights)
            realism = (kind_weight * fooled.mean(axis=1)).sum() / kind_weight.sum()
        else:
            realism = fooled.mean()
        keep = batch.mask.astype(jnp.float32)
        if settings.accuracy_by_style:  # each excerpt's notes charged at its style's weight
            weight = keep * (batch.style @ jnp.asarray(settings.accuracy_by_style))[:, None]
            charge = 127.0 * (jnp.abs(velocity - batch.human) * weight).sum() / keep.sum()
        else:
            error = 127.0 * (jnp.abs(velocity - batch.human) * keep).sum() / keep.sum()
            charge = settings.accuracy_weight * error
        if settings.statistics_weight > 0:  # static: off, the game is unchanged
            gap = es.statistics_gap(
                es.matched_statistics(velocity, batch.context, batch.groups, batch.mask),
                es.matched_statistics(batch.human, batch.context, batch.groups, batch.mask),
                batch.style, statistics_scale)
            charge = charge + settings.statistics_weight * gap
        return realism + charge

    loss_g, grads = jax.value_and_grad(net_loss)(net_params)
    updates, net_opt = optax.adam(settings.learning_rate).update(grads, net_opt, net_params)
    net_params = optax.apply_updates(net_params, updates)
    if settings.ema_decay > 0:  # static: with 0 the average is never read, so never computed
        average = optax.incremental_update(net_params, average, 1.0 - settings.ema_decay)
    return GameState(net_params, net_opt, scorer_params, scorer_opt, average), (loss_d, loss_g)


def train(data: Excerpts, *, steps: int, seed: int = 0, settings: Settings = Settings(),
          progress: Callable[[str], None] = lambda line: None, report_every: int = 250,
          palette: stp.PaletteTables | None = None):
    """Trains a scatter network on ``data`` for ``steps`` rounds; returns its params (their
    moving average where ``settings.ema_decay`` > 0) and the per-round (scorer loss, network
    loss) as float64 (steps, 2); with several scorers the scorer loss is their sum. One
    compile; every draw comes from ``seed``'s PRNG key. ``palette``: the styles' tables
    (``stp.tables``), needed where ``settings.palette``."""
    check_scorers(settings.scorers, settings.balance_styles, settings.scorer_weights)
    es.check_columns(settings.scorer_columns)
    if settings.palette and (palette is None or palette.below.shape[0] != data.style.shape[-1]):
        raise ValueError("a game on the palette needs one palette per style")
    if settings.accuracy_by_style and len(settings.accuracy_by_style) != data.style.shape[-1]:
        raise ValueError(f"{len(settings.accuracy_by_style)} accuracy weights for "
                         f"{data.style.shape[-1]} styles")
    key = jax.random.PRNGKey(seed)
    net_key, scorer_key, key = jax.random.split(key, 3)
    net_params = ls.init_params(net_key, data.style.shape[-1], settings.width,
                                settings.context_notes)
    probe = jnp.asarray(data.human[:1])
    probe_features = classifier_features(probe, jnp.asarray(data.context[:1]),
                                         jnp.asarray(data.groups[:1]),
                                         jnp.asarray(data.mask[:1]), settings.scorer_columns)

    def one_scorer(scorer_key):
        return hc.HumannessScorer(settings.scorer_width).init(scorer_key, probe_features,
                                                              jnp.asarray(data.mask[:1]))

    def fresh_scorer(scorer_key):  # a pooled scorer starts where the pooled-only game's did
        params = tuple(one_scorer(scorer_key) if kind == POOLED else
                       jax.vmap(one_scorer)(jax.random.split(jax.random.fold_in(scorer_key, 1),
                                                             data.style.shape[-1]))
                       for kind in settings.scorers)
        return params, optax.adam(settings.scorer_learning_rate).init(params)

    state = GameState(net_params, optax.adam(settings.learning_rate).init(net_params),
                      *fresh_scorer(scorer_key), net_params)
    scale = statistics_scale(data) if settings.statistics_weight > 0 else jnp.ones(1)
    device_data = Excerpts(*(jnp.asarray(a) for a in data))
    picks = make_draws(data.style, settings.balance_styles)
    if PER_STYLE in settings.scorers and int(picks.counts.min()) == 0:
        raise ValueError("per-style scorers need excerpts of every style")
    losses, began = [], time.perf_counter()
    for step in range(1, steps + 1):
        key, step_key = jax.random.split(key)
        if settings.scorer_reset_every and step % settings.scorer_reset_every == 0:
            scorer, scorer_opt = fresh_scorer(jax.random.fold_in(scorer_key, step))
            state = state._replace(scorer=scorer, scorer_opt=scorer_opt)
        state, loss = _step(state, step_key, device_data, picks, scale,
                            palette if settings.palette else None, settings)
        losses.append(loss)
        if step % report_every == 0 or step == steps:
            recent = np.asarray(jax.device_get(losses[-report_every:]), np.float64)
            progress(f"step {step}/{steps}: scorer loss {recent[:, 0].mean():.3f}, network "
                     f"loss {recent[:, 1].mean():.3f}, {time.perf_counter() - began:.0f} s")
    params = state.average if settings.ema_decay > 0 else state.net
    return params, np.asarray(jax.device_get(losses), np.float64).reshape(-1, 2)
