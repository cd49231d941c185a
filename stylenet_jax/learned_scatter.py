"""A learned scatter around a deterministic performance (``stylize --humanize`` with an .npz).

``stylenet_jax.humanize`` draws a pianist's scatter as three Gaussian parts (slow, chord,
voice) that know nothing of the music: the identify-the-human classifier still picks the
pianist over it three times in four. Here a small network draws the scatter instead. It reads,
for each note, what the classifier reads without the velocities (``human_classifier.
note_context``: pitch, time since the last onset, duration, chord membership and rank), the
style, the system's velocity and its distance from its chord's mean, and four noise channels
(one per note, one per onset group, and two AR(1) series over the groups, correlations
``SLOW_PHIS``). A per-note layer and three dilated convolutions over the notes in time order
turn them into a residual of at most ``MAX_RESIDUAL`` × 127 velocities. It is trained against
the classifier (``stylenet_jax.scatter_training``, ``experiments.train_scatter``).

Notes are taken in (onset tick, pitch) order, the order the classifier reads them in; a draw
depends only on the explicit ``numpy.random.Generator`` it is given (it seeds a JAX key).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from stylenet_jax import dynamics, encoding, midi
from stylenet_jax.atomic_write import write_atomically
from stylenet_jax.humanize import LEARNED_PATH, require_styles

FORMAT = "stylenet-learned-scatter"
VERSION = 1
DEFAULT_PATH = LEARNED_PATH  # the shipped one, what stylize --humanize draws from
SLOW_PHIS = (0.8, 0.97)  # group-to-group correlations of the two slow noise channels
NOISE_CHANNELS = 2 + len(SLOW_PHIS)  # per note, per group, the slow ones
MAX_RESIDUAL = 0.25  # of full scale (127): the most a note moves at amount 1
MIN_LENGTH = 16  # the shortest padded sequence (lengths are powers of two: few compiles)
_META_KEY = "__meta__"


def segment_mean(values: jax.Array, groups: jax.Array, mask: jax.Array) -> jax.Array:
    """float32 (B, L): each note's mean of ``values`` (float (B, L)) over the real notes
    (``mask`` bool (B, L)) of its onset group (``groups`` int (B, L), 0..L-1 within a row)."""
    rows, length = values.shape
    flat = (groups + jnp.arange(rows)[:, None] * length).ravel()
    keep = mask.astype(values.dtype).ravel()
    sums = jax.ops.segment_sum(values.ravel() * keep, flat, rows * length)
    counts = jax.ops.segment_sum(keep, flat, rows * length)
    return (sums / jnp.maximum(counts, 1.0))[flat].reshape(rows, length)


def _ar1(white: jax.Array, phi: float) -> jax.Array:
    """Stationary unit-variance AR(1) along the last axis from standard normal ``white``."""
    scaled = white.at[..., 1:].multiply(jnp.sqrt(1.0 - phi ** 2))

    def combine(a, b):
        return a[0] * b[0], a[1] * b[0] + b[1]

    return jax.lax.associative_scan(combine, (jnp.full_like(scaled, phi), scaled), axis=-1)[1]


def draw_noise(key: jax.Array, groups: jax.Array) -> jax.Array:
    """float32 (B, L, NOISE_CHANNELS) standard normal channels for notes in onset ``groups``
    (int (B, L), in time order): per note, per group (shared by a chord), and the AR(1)
    series over groups of ``SLOW_PHIS``."""
    note_key, group_key = jax.random.split(key)
    per_note = jax.random.normal(note_key, groups.shape)
    per_group = jax.random.normal(group_key, (*groups.shape, 1 + len(SLOW_PHIS)))
    series = [per_group[..., 0]] + [_ar1(per_group[..., 1 + i], phi)
                                    for i, phi in enumerate(SLOW_PHIS)]
    by_note = [jnp.take_along_axis(s, groups, axis=1) for s in series]
    return jnp.stack([per_note, *by_note], axis=-1)


def window_mean(values: jax.Array, mask: jax.Array, half: int) -> jax.Array:
    """float32 (B, L, C): each note's mean of ``values`` (float (B, L, C)) over the real notes
    (``mask`` bool (B, L)) among the ``half`` notes either side of it and itself, in order."""
    keep = mask[..., None].astype(values.dtype)
    pad = ((0, 0), (1, 0), (0, 0))  # row i: the sum over the first i notes
    sums = jnp.pad(jnp.cumsum(values * keep, axis=1), pad)
    counts = jnp.pad(jnp.cumsum(keep, axis=1), pad)
    place = jnp.arange(values.shape[1])
    hi, lo = jnp.minimum(place + half + 1, values.shape[1]), jnp.maximum(place - half, 0)
    return (sums[:, hi] - sums[:, lo]) / jnp.maximum(counts[:, hi] - counts[:, lo], 1.0)


class ScatterNet(nn.Module):
    """(context (B, L, 5), style (B, L, S), velocity (B, L) /127, groups, mask (B, L), noise
    (B, L, NOISE_CHANNELS)) -> float32 (B, L) residual /127, within ±MAX_RESIDUAL.
    ``context_notes`` > 0 adds a view of the passage: the mean of the last hidden layer over
    that many notes either side (``window_mean``), through one more layer, added to each note's
    (0: the three dilated convolutions see 29 notes, and nothing is added)."""

    width: int = 32
    kernel_size: int = 5
    context_notes: int = 0

    @nn.compact
    def __call__(self, context, style, velocity, groups, mask, noise):
        keep = mask[..., None].astype(jnp.float32)
        chord_offset = velocity - segment_mean(velocity, groups, mask)
        x = jnp.concatenate([context, style, velocity[..., None], chord_offset[..., None],
                             noise], axis=-1)
        h = nn.relu(nn.Dense(self.width)(x)) * keep
        for dilation in (1, 2, 4):  # residual blocks; padding stays zero
            h = h + nn.relu(nn.Conv(self.width, (self.kernel_size,), kernel_dilation=dilation,
                                    padding="SAME")(h)) * keep
        if self.context_notes:  # named, so the other layers keep their names and weights
            around = window_mean(h, mask, self.context_notes)
            h = h + nn.relu(nn.Dense(self.width, name="passage")(around)) * keep
        return MAX_RESIDUAL * jnp.tanh(nn.Dense(1)(h)[..., 0])


@dataclasses.dataclass(frozen=True)
class NoteInputs:
    """One performance's notes as the network reads them: ``order`` int64 (n,) (file order ->
    (onset tick, pitch) order), ``context`` float32 (n, 5), ``groups`` int64 (n,) onset
    groups 0, 1, ... in that order."""

    order: np.ndarray
    context: np.ndarray
    groups: np.ndarray


def note_inputs(notes: midi.Notes, ticks_per_beat: int, seconds: np.ndarray) -> NoteInputs:
    """The velocity-free inputs of ``notes`` (n notes, onsets at ``seconds`` float (n,))."""
    from stylenet_jax import human_classifier

    order = np.lexsort((notes.pitch, notes.start)).astype(np.int64)
    ordered = notes.select(order)
    seconds = np.asarray(seconds, np.float64)[order]
    onset, _ = encoding.quantize(ordered, ticks_per_beat)
    groups = np.unique(onset, return_inverse=True)[1].astype(np.int64).ravel()
    return NoteInputs(order, human_classifier.note_context(ordered, ticks_per_beat, seconds),
                      groups)


def _padded_length(n: int) -> int:
    return max(1 << max(n - 1, 1).bit_length(), MIN_LENGTH)


@functools.partial(jax.jit, static_argnames="context_notes")
def _residual(params, key, context, style, velocity, groups, mask, context_notes):
    width = params["params"]["Dense_0"]["kernel"].shape[-1]
    return ScatterNet(width, context_notes=context_notes).apply(
        params, context, style, velocity, groups, mask, draw_noise(key, groups))


@dataclasses.dataclass(frozen=True)
class LearnedScatter:
    """A trained ``ScatterNet``: ``params``, the ``styles`` it knows (in its one-hot order),
    ``about`` (what it was trained on), ``weights`` (a blend's weight per style, set by
    ``for_blend``; None until then) and its ``context_notes``."""

    params: Any
    styles: tuple[str, ...]
    about: Mapping
    weights: tuple[float, ...] | None = None
    context_notes: int = 0

    def for_blend(self, blend: Mapping[str, float]) -> "LearnedScatter":
        """This scatter for a blend of styles ({style: weight}); HumanizeError for a style it
        was not trained on."""
        require_styles(blend, self.styles, "the learned scatter")
        return dataclasses.replace(self, weights=tuple(float(blend.get(s, 0.0))
                                                       for s in self.styles))

    def displacement(self, velocities: np.ndarray, notes: midi.Notes, ticks_per_beat: int,
                     seconds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """float64 (n,): one draw of the residual, in velocity units at amount 1, centred on
        0 over the notes, for ``velocities`` (integer (n,), one per note of ``notes``, onsets
        at ``seconds``). Takes one integer from ``rng`` (none for no notes)."""
        velocities = np.asarray(velocities, np.int64)
        if not velocities.size:
            return np.zeros(0)
        if self.weights is None:
            raise ValueError("choose the style first: LearnedScatter.for_blend")
        inputs = note_inputs(notes, ticks_per_beat, seconds)
        n, length = velocities.size, _padded_length(velocities.size)
        pad = length - n
        style = np.broadcast_to(np.asarray(self.weights, np.float32), (length, len(self.styles)))
        residual = _residual(
            self.params, jax.random.PRNGKey(int(rng.integers(2 ** 31))),
            np.pad(inputs.context, ((0, pad), (0, 0)))[None], style[None],
            np.pad(velocities[inputs.order] / 127.0, (0, pad)).astype(np.float32)[None],
            np.pad(inputs.groups, (0, pad), constant_values=length - 1)[None],
            (np.arange(length) < n)[None], self.context_notes)
        moved = np.empty(n, np.float64)
        moved[inputs.order] = np.asarray(residual[0, :n], np.float64) * 127.0
        return moved - moved.mean()  # texture only: the level is the system's

    def humanize(self, velocities: np.ndarray, notes: midi.Notes, ticks_per_beat: int,
                 seconds: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
        """int64 (n,): ``velocities`` (integer (n,), one per note of ``notes``, onsets at
        ``seconds``) plus ``amount`` times a ``displacement``, rounded (halves up) and clipped
        to 1..127. Amount 0 returns them unchanged and draws nothing."""
        velocities = np.asarray(velocities, np.int64)
        if amount == 0 or not velocities.size:
            return velocities.copy()
        moved = self.displacement(velocities, notes, ticks_per_beat, seconds, rng)
        return np.clip(dynamics.round_half_up(velocities + amount * moved), 1, 127)


def init_params(key: jax.Array, num_styles: int, width: int = 32,
                context_notes: int = 0) -> Any:
    """Fresh ``ScatterNet`` parameters for ``num_styles`` styles."""
    length = MIN_LENGTH
    zeros = jnp.zeros((1, length))
    return ScatterNet(width, context_notes=context_notes).init(
        key, jnp.zeros((1, length, 5)), jnp.zeros((1, length, num_styles)), zeros,
        jnp.zeros((1, length), jnp.int32), zeros > -1, jnp.zeros((1, length, NOISE_CHANNELS)))


def save(path: str, params: Any, styles: Sequence[str], made_by: str,
         about: Mapping, context_notes: int = 0) -> None:
    """Writes the parameters and what they are (atomically) as an .npz file."""
    flat = {"/".join(k): np.asarray(v) for k, v in
            traverse_util.flatten_dict(jax.device_get(params)).items()}
    meta = json.dumps({"format": FORMAT, "version": VERSION, "styles": list(styles),
                       "made_by": made_by, "about": dict(about),
                       **({"context_notes": context_notes} if context_notes else {})})

    def write(f) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **flat, **{_META_KEY: np.array(meta)})
        f.write(buffer.getvalue())

    write_atomically(path, write)


def load(path: str | None = None) -> LearnedScatter:
    """The scatter ``save`` wrote at ``path`` (default ``DEFAULT_PATH``); HumanizeError (one
    line) for a missing, unreadable or foreign file."""
    from stylenet_jax.humanize import HumanizeError

    path = path or DEFAULT_PATH
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop(_META_KEY)))
    except Exception as e:  # noqa: BLE001 - zipfile, numpy and json raise many types
        raise HumanizeError(f"{path}: not a readable learned scatter ({type(e).__name__})"
                            ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT \
            or meta.get("version") != VERSION or not meta.get("styles"):
        raise HumanizeError(f"{path}: not a {FORMAT} file of version {VERSION}")
    params = traverse_util.unflatten_dict({tuple(k.split("/")): jnp.asarray(v)
                                           for k, v in arrays.items()})
    try:  # the width is the first layer's; every other shape follows from it and the styles
        width = int(params["params"]["Dense_0"]["kernel"].shape[-1])
        context_notes = int(meta.get("context_notes", 0))
        fresh = init_params(jax.random.PRNGKey(0), len(meta["styles"]), width, context_notes)
        fits = jax.tree.map(np.shape, params) == jax.tree.map(np.shape, fresh)
    except (KeyError, TypeError, IndexError, ValueError):
        fits = False
    if not fits:
        raise HumanizeError(f"{path}: its parameters do not fit a scatter network of "
                            f"{len(meta['styles'])} styles")
    return LearnedScatter(params, tuple(meta["styles"]), meta.get("about", {}),
                          context_notes=context_notes)
