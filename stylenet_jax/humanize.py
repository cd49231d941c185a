"""A pianist's scatter around a deterministic performance (``stylize --humanize``).

A StyleNet trained to the least error plays each note at about its expected velocity. A
pianist's velocities scatter around that expectation, so the model's dynamics come out narrower
than a pianist's, and a classifier tells the two apart from their texture (README, "What gives
a system away"). The scatter has structure: phrases sit louder or softer than expected for a
while, whole chords come out louder or softer, and the notes of one chord differ. This module
models the scatter of one style (the residual, pianist minus model, of performances the model
never trained on) as three Gaussian parts over a performance's onset groups (the notes that
start on one 1/16 step, "chords"; a single note is a group of one), in time order:

- slow: an AR(1) over the groups, standard deviation ``slow_sd``, correlation ``slow_phi`` from
  one group to the next;
- chord: independent per group, ``chord_sd``;
- voice: independent per note, ``voice_sd``, in groups of two or more only (a lone note's
  scatter is its group's).

``sample`` draws it; ``humanize`` adds ``amount`` times a draw to the velocities (0: unchanged,
1: the fitted scatter); ``fit`` estimates the parts from residuals. Pure numpy (and scipy's
linear filter, which scikit-learn brings); a draw depends only on the explicit
``numpy.random.Generator`` it is given.

A scatter file may also be an .npz learned scatter (``stylenet_jax.learned_scatter``: a small
network that reads the notes), or a JSON file naming one learned scatter per style
(``stylenet_jax.per_style_scatter``). ``load`` and ``for_blend`` take every kind, and ``draw``
adds any kind's draw to a performance.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from stylenet_jax import dynamics
from stylenet_jax.atomic_write import write_text_atomically

if TYPE_CHECKING:
    from stylenet_jax.learned_scatter import LearnedScatter
    from stylenet_jax.notes import Notes
    from stylenet_jax.per_style_scatter import PerStyleScatter

FORMAT = "stylenet-humanize"
VERSION = 1
PER_STYLE_FORMAT = "stylenet-scatter-per-style"  # per_style_scatter.FORMAT (that imports JAX)
ASSETS = os.path.join(os.path.dirname(__file__), "assets")
GAUSSIAN_PATH = os.path.join(ASSETS, "humanize.json")  # experiments.fit_humanize writes it
LEARNED_PATH = os.path.join(ASSETS, "learned_scatter.npz")  # experiments.train_scatter's
# the same recipe charged 0.4 per velocity unit (--accuracy_weight) instead of 0.05: closer to
# the pianist, easier to tell from one (README, "Less realism for less error")
MILD_PATH = os.path.join(ASSETS, "learned_scatter_mild.npz")
# the same recipe trained on each style alone, one network per style
# (stylenet_jax.per_style_scatter; README, "A scatter per style")
PER_STYLE_PATH = os.path.join(ASSETS, "scatter_per_style.json")
# the same recipe, one network for every style, played against a scorer of all styles and a
# scorer per style at once (train_scatter --scorers; README, "Against both kinds of judge")
BOTH_JUDGES_PATH = os.path.join(ASSETS, "scatter_both_judges.npz")
DEFAULT_PATH = LEARNED_PATH  # what --humanize draws from unless told otherwise
# the shipped scatters by the names --humanize_scatter (and evaluate's @NAME) take
SHIPPED_SCATTERS = {"learned": LEARNED_PATH, "mild": MILD_PATH, "per_style": PER_STYLE_PATH,
                    "both_judges": BOTH_JUDGES_PATH, "gaussian": GAUSSIAN_PATH}
MAX_AMOUNT = 2.0  # twice the fitted scatter: already far wider than a pianist
MAX_LAG = 64  # groups over which the slow part's correlation is fitted
MIN_GROUPS_PAST_LAG = 10  # a performance's correlation at lag L needs L + this many groups


class HumanizeError(ValueError):
    """A bad amount or a bad scatter file; the message is one line."""


def require_styles(blend: Mapping[str, float], known: Sequence[str], scatter: str) -> None:
    """HumanizeError naming each style of ``blend`` not in ``known`` (the styles that
    ``scatter``, e.g. "the learned scatter", has)."""
    missing = [s for s in blend if s not in known]
    if missing:
        raise HumanizeError(f"{scatter} has no style {', '.join(missing)} (it has "
                            f"{', '.join(known)})")


@dataclasses.dataclass(frozen=True)
class Scatter:
    """One style's scatter model, in MIDI velocity units (see the module's docstring)."""

    slow_sd: float
    slow_phi: float
    chord_sd: float
    voice_sd: float

    def __post_init__(self) -> None:
        values = dataclasses.asdict(self)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and v >= 0
                   for v in values.values()) or not values["slow_phi"] < 1:
            raise HumanizeError(f"a scatter needs standard deviations >= 0 and 0 <= slow_phi "
                                f"< 1, got {values}")


def onset_groups(onset_steps: np.ndarray) -> np.ndarray:
    """int64 (n,): each note's onset group, numbered 0, 1, ... in time order, from its onset
    step (integer (n,), ``encoding.quantize``'s first output)."""
    return np.unique(np.asarray(onset_steps), return_inverse=True)[1].astype(np.int64).ravel()


def sample(scatter: Scatter, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float64 (n,): one draw of the scatter for notes in onset ``groups`` (int (n,) from
    ``onset_groups``)."""
    from scipy.signal import lfilter  # here, not at import: stylize --help stays quick

    groups = np.asarray(groups, np.int64)
    if not groups.size:
        return np.zeros(0)
    count = int(groups.max()) + 1
    innovations = rng.standard_normal(count) * scatter.slow_sd
    innovations[1:] *= math.sqrt(1.0 - scatter.slow_phi ** 2)  # stationary from the first
    slow = lfilter([1.0], [1.0, -scatter.slow_phi], innovations)
    chord = rng.standard_normal(count) * scatter.chord_sd
    in_chord = np.bincount(groups, minlength=count)[groups] > 1
    voice = rng.standard_normal(groups.size) * scatter.voice_sd * in_chord
    return slow[groups] + chord[groups] + voice


def check_amount(value: object) -> float:
    """``value`` as a float in 0..MAX_AMOUNT; raises HumanizeError (one line) otherwise."""
    return dynamics.number_in(value, "--humanize", MAX_AMOUNT,
                              "0: off, 1: a pianist's fitted scatter", HumanizeError)


def humanize(velocities: np.ndarray, groups: np.ndarray, scatter: Scatter, amount: float,
             rng: np.random.Generator) -> np.ndarray:
    """int64 (n,): ``velocities`` (integer (n,)) plus ``amount`` times a ``sample``, rounded
    (halves up) and clipped to 1..127. Amount 0 returns the velocities as int64, unchanged,
    and draws nothing."""
    velocities = np.asarray(velocities, np.int64)
    if amount == 0:
        return velocities.copy()
    moved = velocities + check_amount(amount) * sample(scatter, groups, rng)
    return np.clip(dynamics.round_half_up(moved), 1, 127)


def draw(scatter: "Scatter | LearnedScatter | PerStyleScatter", velocities: np.ndarray,
         notes: "Notes", ticks_per_beat: int, seconds: np.ndarray, amount: float,
         rng: np.random.Generator) -> np.ndarray:
    """int64 (n,): ``velocities`` (integer (n,), one per note of ``notes``, onsets at
    ``seconds`` float (n,)) humanized by any kind of scatter (``for_blend``'s answer):
    ``humanize`` over the notes' onset groups, or the learned scatter's own ``humanize``."""
    if isinstance(scatter, Scatter):
        from stylenet_jax import encoding

        onset, _ = encoding.quantize(notes, ticks_per_beat)
        return humanize(velocities, onset_groups(onset), scatter, amount, rng)
    return scatter.humanize(velocities, notes, ticks_per_beat, seconds, check_amount(amount),
                            rng)


def for_blend(scatters: "Mapping[str, Scatter] | LearnedScatter | PerStyleScatter",
              blend: Mapping[str, float]) -> "Scatter | LearnedScatter | PerStyleScatter":
    """The scatter of a blend of styles ({style: weight}, weights summing to 1): variances
    and the slow correlation mixed by weight (a learned scatter reads the weights). Raises
    HumanizeError for a style with none."""
    if not isinstance(scatters, Mapping):
        return scatters.for_blend(blend)
    require_styles(blend, tuple(scatters), "the scatter file")
    if len(blend) == 1:
        return scatters[next(iter(blend))]  # one style: its own numbers, to the last bit

    def mixed(field: str, squared: bool) -> float:
        total = sum(w * getattr(scatters[s], field) ** (2 if squared else 1)
                    for s, w in blend.items())
        return math.sqrt(total) if squared else total

    return Scatter(mixed("slow_sd", True), mixed("slow_phi", False), mixed("chord_sd", True),
                   mixed("voice_sd", True))


def fit(residuals: Sequence[np.ndarray], groups: Sequence[np.ndarray],
        max_lag: int = MAX_LAG) -> Scatter:
    """The scatter of one style from its performances' residuals (float (n,) each, pianist
    minus model, notes in time order) and onset ``groups`` (int (n,) each).

    Each performance's mean residual is taken out first (its overall level is not scatter).
    Group means give the slow and chord parts: an exponential ``a * phi**lag`` fitted (least
    squares) to their mean correlation at lags 1..``max_lag`` gives the slow part's share ``a``
    of their variance, and the chord part is the rest, less the voice variance a group's mean
    carries (``voice_sd**2 / size``). The spread of notes about their group's mean, in groups
    of two or more (corrected for the group's own mean), gives ``voice_sd``.
    """
    if len(residuals) != len(groups) or not residuals:
        raise ValueError(f"need residuals and groups for the same performances, got "
                         f"{len(residuals)} and {len(groups)}")
    group_variances, voice_shares, voice_sum, voice_count = [], [], 0.0, 0
    correlations: list[list[float]] = [[] for _ in range(max_lag)]
    for residual, group in zip(residuals, groups):
        residual = np.asarray(residual, np.float64) - np.mean(residual)
        group = np.asarray(group, np.int64)
        size = np.bincount(group)
        means = np.bincount(group, residual) / np.maximum(size, 1)
        inside = size[group] > 1
        spread = (residual - means[group])[inside]
        own_size = size[group][inside]
        voice_sum += float((spread ** 2 * own_size / (own_size - 1)).sum())
        voice_count += int(inside.sum())
        group_variances.append(float(np.var(means)))
        voice_shares.append(float(np.mean(np.where(size > 1, 1.0 / np.maximum(size, 1), 0.0))))
        for lag in range(1, max_lag + 1):
            if len(means) >= lag + MIN_GROUPS_PAST_LAG and group_variances[-1] > 0:
                correlations[lag - 1].append(float(np.corrcoef(means[lag:], means[:-lag])[0, 1]))
    lags = np.arange(1, max_lag + 1)
    seen = np.array([bool(c) for c in correlations])
    if not seen.any():
        raise ValueError(f"too few onset groups to fit the slow part (a performance needs "
                         f"{1 + MIN_GROUPS_PAST_LAG} or more)")
    observed = np.array([np.mean(c) if c else 0.0 for c in correlations])[seen]
    best = (math.inf, 0.0, 0.0)
    for phi in np.linspace(0.0, 0.999, 1000):
        shape = phi ** lags[seen]
        share = float(np.clip(shape @ observed / max(shape @ shape, 1e-12), 0.0, 1.0))
        error = float(((share * shape - observed) ** 2).sum())
        if error < best[0]:
            best = (error, share, float(phi))
    _, share, phi = best
    voice_variance = voice_sum / voice_count if voice_count else 0.0
    variance = float(np.mean(group_variances))
    slow_variance = share * variance  # the correlations are shares of all of the means' variance
    # ... which also holds 1/size of a group's voice variance: that part is not the chord's
    chord_variance = variance - slow_variance - voice_variance * float(np.mean(voice_shares))
    return Scatter(math.sqrt(slow_variance), phi, math.sqrt(max(chord_variance, 0.0)),
                   math.sqrt(voice_variance))


def save(path: str, scatters: Mapping[str, Scatter], made_by: str, about: Mapping) -> None:
    """Writes the per-style scatters as JSON (atomically), with the command that made them
    and ``about`` (what they were fitted on)."""
    write_text_atomically(path, json.dumps({
        "format": FORMAT, "version": VERSION, "made_by": made_by, "about": dict(about),
        "styles": {s: dataclasses.asdict(v) for s, v in scatters.items()}}, indent=1) + "\n")


def scatter_path(choice: str | None) -> str:
    """The file of a scatter ``choice``: a name in ``SHIPPED_SCATTERS`` (an existing file of
    that name wins over it), a path, or None (``DEFAULT_PATH``)."""
    if not choice:
        return DEFAULT_PATH
    if choice in SHIPPED_SCATTERS and not os.path.exists(choice):
        return SHIPPED_SCATTERS[choice]
    return choice


def scatter_label(choice: str | None) -> str:
    """What names a scatter ``choice`` in an output file's name: "" for the default, a shipped
    scatter's name, else the file's name without its folder and extension (characters other
    than letters, digits, ``_`` and ``-`` dropped)."""
    path = os.path.abspath(scatter_path(choice))
    if path == os.path.abspath(DEFAULT_PATH):
        return ""
    for name, shipped in SHIPPED_SCATTERS.items():
        if path == os.path.abspath(shipped):
            return name
    stem = os.path.splitext(os.path.basename(path))[0]
    return "".join(c for c in stem if c.isascii() and (c.isalnum() or c in "_-")) or "scatter"


def load(path: str | None = None) -> "dict[str, Scatter] | LearnedScatter | PerStyleScatter":
    """{style: Scatter} from a .json file ``save`` wrote, a ``per_style_scatter.
    PerStyleScatter`` from a .json file of that format, or, for an .npz file, a
    ``learned_scatter.LearnedScatter``; ``path`` may also be a shipped scatter's name
    (``scatter_path``; default: ``DEFAULT_PATH``, the shipped learned scatter). Raises
    HumanizeError (one line) for a missing or malformed file."""
    path = scatter_path(path)
    if not os.path.exists(path):
        raise HumanizeError(f"{path}: no such file (a scatter file, or a shipped scatter: "
                            f"{', '.join(SHIPPED_SCATTERS)})")
    if path.lower().endswith(".npz"):
        from stylenet_jax import learned_scatter  # JAX only for a learned scatter

        return learned_scatter.load(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HumanizeError(f"{path}: not a readable scatter file ({e})") from None
    if isinstance(data, dict) and data.get("format") == PER_STYLE_FORMAT:
        from stylenet_jax import per_style_scatter  # JAX only for a learned scatter

        return per_style_scatter.from_file(path, data)
    if not isinstance(data, dict) or data.get("format") != FORMAT \
            or data.get("version") != VERSION or not isinstance(data.get("styles"), dict):
        raise HumanizeError(f"{path}: not a {FORMAT} file of version {VERSION}")
    try:
        return {style: Scatter(**values) for style, values in data["styles"].items()}
    except TypeError as e:
        raise HumanizeError(f"{path}: a style's scatter is malformed ({e})") from None
