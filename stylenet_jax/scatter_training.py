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
weights (decay 0.998), which steadies what a game's last steps leave.

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

from stylenet_jax import human_classifier as hc
from stylenet_jax import learned_scatter as ls
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
                        mask: jax.Array) -> jax.Array:
    """float32 (B, L, hc.NUM_FEATURES): ``hc.note_features`` of excerpts played at
    ``velocity`` (float (B, L), /127), differentiable, zero where ``mask`` is False.
    ``context``: float (B, L, 5), ``ls.note_inputs``'s of the whole performance."""
    keep = mask.astype(jnp.float32)
    context = context.at[:, 0, 1].set(0.0)  # an excerpt's first note: no time since the last
    mean = (velocity * keep).sum(1, keepdims=True) / jnp.maximum(keep.sum(1, keepdims=True), 1)
    previous = jnp.concatenate([velocity[:, :1], velocity[:, :-1]], axis=1)
    chord = velocity - ls.segment_mean(velocity, groups, mask)
    features = jnp.concatenate([jnp.stack([velocity, velocity - mean, velocity - previous], -1),
                                context, chord[..., None]], axis=-1)
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


DEFAULT_STEPS = 5000  # the shipped scatter's: past about 2000 the classifier moves little


class Settings(NamedTuple):
    """The game's settings; the defaults are the shipped scatter's recipe."""

    batch_size: int = 32
    width: int = 32
    scorer_width: int = hc.WIDTH
    scorer_learning_rate: float = 2e-3
    learning_rate: float = 2e-4
    scorer_steps: int = 2
    accuracy_weight: float = 0.05  # × mean |drawn - pianist| in velocity units, on the network
    balance_styles: bool = True  # draw each style's excerpts equally often
    ema_decay: float = 0.998  # > 0: return a moving average of the network's weights (0: last)
    scorer_reset_every: int = 1000  # > 0: a fresh scorer every this many rounds (0: one scorer)


class GameState(NamedTuple):
    """The game between steps: the network's params and Adam state, the scorer's, and the
    moving average of the network's params (``Settings.ema_decay``)."""

    net: object
    net_opt: object
    scorer: object
    scorer_opt: object
    average: object


@functools.partial(jax.jit, static_argnames=("settings",))
def _step(state: GameState, key, data: Excerpts, draw_weights: jax.Array, settings: Settings):
    """One round on a batch drawn with ``draw_weights`` (float32 (P,), summing to 1):
    ``settings.scorer_steps`` scorer steps, then one network step. Returns the new state and
    (scorer loss, network loss)."""
    net_params, net_opt, scorer_params, scorer_opt, average = state
    scorer = hc.HumannessScorer(settings.scorer_width)
    net = ls.ScatterNet(settings.width)
    pick_key, noise_key = jax.random.split(key)
    pick = jax.random.choice(pick_key, data.mask.shape[0], (settings.batch_size,),
                             p=draw_weights)
    batch = Excerpts(*(jnp.asarray(a)[pick] for a in data))
    noise = ls.draw_noise(noise_key, batch.groups)
    style = jnp.broadcast_to(batch.style[:, None, :], (*batch.mask.shape, batch.style.shape[-1]))
    human = classifier_features(batch.human, batch.context, batch.groups, batch.mask)

    def drawn(params):
        residual = net.apply(params, batch.context, style, batch.system, batch.groups,
                             batch.mask, noise)
        return _rounded(jnp.clip(batch.system + residual, 1 / 127, 1.0))

    def played(velocity):
        return classifier_features(velocity, batch.context, batch.groups, batch.mask)

    def scorer_loss(params, system):
        margin = scorer.apply(params, human, batch.mask) - scorer.apply(params, system,
                                                                         batch.mask)
        return -jnp.mean(jax.nn.log_sigmoid(margin))

    system = jax.lax.stop_gradient(played(drawn(net_params)))
    scorer_optimizer = optax.adam(settings.scorer_learning_rate)
    for _ in range(settings.scorer_steps):
        loss_d, grads = jax.value_and_grad(scorer_loss)(scorer_params, system)
        updates, scorer_opt = scorer_optimizer.update(grads, scorer_opt, scorer_params)
        scorer_params = optax.apply_updates(scorer_params, updates)

    def net_loss(params):  # the scorer should rank the drawn performance above the human's
        velocity = drawn(params)
        margin = (scorer.apply(scorer_params, played(velocity), batch.mask)
                  - scorer.apply(scorer_params, human, batch.mask))
        keep = batch.mask.astype(jnp.float32)
        error = 127.0 * (jnp.abs(velocity - batch.human) * keep).sum() / keep.sum()
        return -jnp.mean(jax.nn.log_sigmoid(margin)) + settings.accuracy_weight * error

    loss_g, grads = jax.value_and_grad(net_loss)(net_params)
    updates, net_opt = optax.adam(settings.learning_rate).update(grads, net_opt, net_params)
    net_params = optax.apply_updates(net_params, updates)
    if settings.ema_decay > 0:  # static: with 0 the average is never read, so never computed
        average = optax.incremental_update(net_params, average, 1.0 - settings.ema_decay)
    return GameState(net_params, net_opt, scorer_params, scorer_opt, average), (loss_d, loss_g)


def train(data: Excerpts, *, steps: int, seed: int = 0, settings: Settings = Settings(),
          progress: Callable[[str], None] = lambda line: None, report_every: int = 250):
    """Trains a scatter network on ``data`` for ``steps`` rounds; returns its params (their
    moving average where ``settings.ema_decay`` > 0) and the per-round (scorer loss, network
    loss) as float64 (steps, 2). One compile; every draw comes from ``seed``'s PRNG key."""
    key = jax.random.PRNGKey(seed)
    net_key, scorer_key, key = jax.random.split(key, 3)
    net_params = ls.init_params(net_key, data.style.shape[-1], settings.width)
    probe = jnp.asarray(data.human[:1])
    probe_features = classifier_features(probe, jnp.asarray(data.context[:1]),
                                         jnp.asarray(data.groups[:1]),
                                         jnp.asarray(data.mask[:1]))

    def fresh_scorer(scorer_key):
        params = hc.HumannessScorer(settings.scorer_width).init(
            scorer_key, probe_features, jnp.asarray(data.mask[:1]))
        return params, optax.adam(settings.scorer_learning_rate).init(params)

    state = GameState(net_params, optax.adam(settings.learning_rate).init(net_params),
                      *fresh_scorer(scorer_key), net_params)
    device_data = Excerpts(*(jnp.asarray(a) for a in data))
    weights = jnp.asarray(draw_weights(data.style, settings.balance_styles))
    losses, began = [], time.perf_counter()
    for step in range(1, steps + 1):
        key, step_key = jax.random.split(key)
        if settings.scorer_reset_every and step % settings.scorer_reset_every == 0:
            scorer, scorer_opt = fresh_scorer(jax.random.fold_in(scorer_key, step))
            state = state._replace(scorer=scorer, scorer_opt=scorer_opt)
        state, loss = _step(state, step_key, device_data, weights, settings)
        losses.append(loss)
        if step % report_every == 0 or step == steps:
            recent = np.asarray(jax.device_get(losses[-report_every:]), np.float64)
            progress(f"step {step}/{steps}: scorer loss {recent[:, 0].mean():.3f}, network "
                     f"loss {recent[:, 1].mean():.3f}, {time.perf_counter() - began:.0f} s")
    params = state.average if settings.ema_decay > 0 else state.net
    return params, np.asarray(jax.device_get(losses), np.float64).reshape(-1, 2)
