"""A per-note baseline: gradient-boosted trees on engineered note features (no JAX).

The approach of midihum: every note is described by ``note_features`` (metre, chord place,
voices, density, rolling context, tempo) and one scikit-learn ``HistGradientBoostingRegressor``
per style predicts its velocity (1..127). Early stopping watches a held-out tenth of each
style's training songs, drawn song by song: in classical, where a piece has several
performances, another performance of a held-out song's piece may be in training (holding out
whole pieces instead stopped classical at 48 trees, not 400, and scored lower on the held-out
test pieces: r 0.529 against 0.564, so the stronger baseline was kept).

A baseline may also read optional column sets (``EXTRA_COLUMNS``), appended in that table's
order: ``phrase_context`` (the music over 2 to 32 beats around each note, relative to the
piece: whether phrase levels can be read from the notes) and ``melody_line`` (the tune's
contour, peaks and runs around each note) and ``pedals`` (the pianist's sustain and soft
pedals under each note: a performance's, not a score's). The shipped tree reads all three;
a file's header names its columns.

Saved models are pickles: load only files you trust. A file holds two pickles in a row, a
header (format, version, scikit-learn version, feature names, styles) and then the models,
so that a file of another version is refused before its models are unpickled.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import pickle
import time
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np

from stylenet_jax import midi, performances
from stylenet_jax.atomic_write import write_atomically
from stylenet_jax.note_features import FEATURE_NAMES, note_features
from stylenet_jax.melody_line import MELODY_LINE_NAMES, melody_line
from stylenet_jax.pedal_columns import PEDAL_COLUMN_NAMES, pedal_columns
from stylenet_jax.phrase_context import PHRASE_CONTEXT_NAMES, phrase_context
from stylenet_jax.tree_borrowing import (BorrowError, balanced_weights, check_borrow,
                                         with_lender_columns)

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingRegressor

    from stylenet_jax.performances import Performed

FORMAT = "stylenet-feature-baseline"
VERSION = 1
DEFAULT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets",
                            "feature_baseline.pkl")
DEFAULT_SETTINGS = {"max_iter": 400, "learning_rate": 0.08, "max_leaf_nodes": 63,
                    "min_samples_leaf": 40, "l2_regularization": 1.0, "n_iter_no_change": 20}
# Each training error (config.ERRORS) as scikit-learn names it: the absolute error fits each
# note's median velocity given its features (the evaluation's best guess), the squared its mean.
TREE_LOSSES = {"squared": "squared_error", "absolute": "absolute_error"}
# The optional column sets, in the order they are appended: name -> (column names, a function
# (notes, ticks_per_beat, seconds) -> float32 (n, len(column names))).
EXTRA_COLUMNS: dict[str, tuple[tuple[str, ...], Callable]] = {
    "phrase_context": (PHRASE_CONTEXT_NAMES, phrase_context),
    "melody_line": (MELODY_LINE_NAMES, melody_line),
    "pedals": (PEDAL_COLUMN_NAMES, pedal_columns),
}
EARLY_STOPPING_SONGS = 0.1  # fraction of each style's training songs held out
MIN_SONGS_FOR_EARLY_STOPPING = 5


class FeatureBaselineError(ValueError):
    """A model file or a request that cannot be served (one line naming why)."""


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def velocity_targets(velocity: np.ndarray) -> np.ndarray:
    """MIDI velocities (any int (n,)) as the regression target, float64 (n,)."""
    return np.asarray(velocity, np.float64)


def ordered_extras(extras: Sequence[str]) -> tuple[str, ...]:
    """``extras`` (names of ``EXTRA_COLUMNS``, any order, repeats allowed) in table order;
    raises FeatureBaselineError naming an unknown one."""
    unknown = sorted(set(extras) - set(EXTRA_COLUMNS))
    if unknown:
        raise FeatureBaselineError(f"unknown extra columns {', '.join(unknown)}; known: "
                                   f"{', '.join(EXTRA_COLUMNS)}")
    return tuple(name for name in EXTRA_COLUMNS if name in extras)


def extra_label(name: str) -> str:
    """An optional column set's name as reports write it ("melody_line": "melody line")."""
    return name.replace("_", " ")


def feature_names(extras: Sequence[str] = ()) -> tuple[str, ...]:
    """The columns a baseline reads: ``note_features``' and those of each of ``extras``."""
    return FEATURE_NAMES + tuple(column for name in ordered_extras(extras)
                                 for column in EXTRA_COLUMNS[name][0])


def feature_rows(notes: midi.Notes, ticks_per_beat: int, seconds: np.ndarray | None,
                 extras: Sequence[str] = ()) -> np.ndarray:
    """float32 (n, len(feature_names(extras))) rows for ``notes`` (n may be 0)."""
    rows = note_features(notes, ticks_per_beat, seconds)
    more = [EXTRA_COLUMNS[name][1](notes, ticks_per_beat, seconds)
            for name in ordered_extras(extras)]
    return np.hstack([rows, *more]) if more else rows


def _own_rows(rows: Sequence[np.ndarray], lenders: Sequence[str]) -> np.ndarray:
    """The rows of a style's own songs, with its lenders' columns (all 0) when it borrows."""
    x = np.concatenate(rows)
    return with_lender_columns(x, None, lenders) if lenders else x


def _training_rows(train: Sequence["Performed"], performed: Sequence["Performed"],
                   lenders: Sequence[str], rows_of: Callable[["Performed"], np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(x, y, sample weights or None)`` a style's trees fit: its ``train`` songs' rows,
    then, when it borrows, every song of its ``lenders`` with their columns, weighted so
    that the style's notes and the lent ones weigh the same in total."""
    x = _own_rows([rows_of(p) for p in train], lenders)
    y = np.concatenate([velocity_targets(p.notes.velocity) for p in train])
    lent = [p for p in performed if p.style in lenders]
    if not lent:
        return x, y, None
    lent_x = np.concatenate([with_lender_columns(rows_of(p), p.style, lenders) for p in lent])
    lent_y = np.concatenate([velocity_targets(p.notes.velocity) for p in lent])
    return (np.concatenate([x, lent_x]), np.concatenate([y, lent_y]),
            balanced_weights(len(x), len(lent_x)))


def check_hide_pedals(share: float, extras: Sequence[str]) -> None:
    """Raises FeatureBaselineError (one line) unless ``share``, of the training performances
    whose pedals ``FeatureBaseline.fit`` hides, is in 0..1, and 0 without the ``pedals``
    columns among ``extras``."""
    if not 0.0 <= share <= 1.0 or (share and "pedals" not in extras):
        raise FeatureBaselineError(f"the share of performances with hidden pedals "
                                   f"(--hide_pedals) must be in 0..1, with the pedals columns "
                                   f"(--pedals); got {share}")


def _pedals_hidden(count: int, share: float, extras: Sequence[str], seed: int) -> np.ndarray:
    """bool (count,): which of ``count`` training performances ``FeatureBaseline.fit`` shows
    without their pedals: round(share * count) of them, drawn with ``seed``; raises as
    ``check_hide_pedals``."""
    check_hide_pedals(share, extras)
    hidden = np.zeros(count, bool)
    hidden[np.random.default_rng([seed, 67]).permutation(count)[:round(share * count)]] = True
    return hidden


def stopping_songs(songs: Sequence["Performed"], seed: int,
                   by_piece: bool = False) -> np.ndarray:
    """bool (len(songs),): which of one style's ``songs`` its trees hold out for early stopping.

    None below MIN_SONGS_FOR_EARLY_STOPPING songs; else EARLY_STOPPING_SONGS of them, at least
    one, drawn with ``seed``. ``by_piece``: whole pieces instead (``Performed.piece``), in a
    seeded order until that many songs are out, never every piece, so that stopping scores the
    trees on pieces they never trained on, as the evaluation does; drawn by song, most held-out
    songs of a corpus with several performances a piece are of pieces the trees train on.
    """
    held_out = np.zeros(len(songs), bool)
    if len(songs) < MIN_SONGS_FOR_EARLY_STOPPING:
        return held_out
    rng = np.random.default_rng([seed, len(songs)])
    count = max(1, round(EARLY_STOPPING_SONGS * len(songs)))
    if not by_piece:
        held_out[rng.choice(len(songs), count, replace=False)] = True
        return held_out
    piece_of = np.array([p.piece for p in songs])
    pieces = sorted(set(piece_of.tolist()))
    for j in rng.permutation(len(pieces))[:len(pieces) - 1]:
        if held_out.sum() >= count:
            break
        held_out |= piece_of == pieces[j]
    return held_out


class FeatureBaseline:
    """One gradient-boosted regressor per style, mapping feature rows to velocities."""

    def __init__(self, models: Mapping[str, "HistGradientBoostingRegressor"],
                 extras: Sequence[str] = (), borrow: Mapping[str, Sequence[str]] | None = None):
        self.models = dict(models)
        self.extras = ordered_extras(extras)  # the optional column sets it reads
        # style -> the styles whose notes its trees also learned from (``tree_borrowing``)
        self.borrow = {style: tuple(lenders) for style, lenders in (borrow or {}).items()}
        self.sha256: str | None = None  # of the file it was loaded from (None: fitted here)

    @property
    def styles(self) -> list[str]:
        """The styles this baseline can perform, sorted."""
        return sorted(self.models)

    @classmethod
    def fit(cls, performed: Sequence["Performed"], seed: int = 0,
            log: Callable[[str], None] = print, extras: Sequence[str] = (),
            borrow: Mapping[str, Sequence[str]] | None = None, hide_pedals: float = 0.0,
            stop_on_pieces: bool = False, rounds: Mapping[str, int] | None = None,
            **settings) -> "FeatureBaseline":
        """Trains one regressor per style of ``performed`` (human performances).

        ``settings`` override DEFAULT_SETTINGS (HistGradientBoostingRegressor arguments).
        Each style holds out EARLY_STOPPING_SONGS of its songs (seeded, at least one; whole
        pieces with ``stop_on_pieces``: ``stopping_songs``) for early stopping when it has
        MIN_SONGS_FOR_EARLY_STOPPING songs or more; otherwise it trains all ``max_iter``
        rounds. ``log`` gets one line per style. ``extras`` names optional
        column sets to read as well (``EXTRA_COLUMNS``). ``borrow`` maps a style to others
        whose notes its trees also learn from (``tree_borrowing``); raises
        FeatureBaselineError when it names a style without songs. ``hide_pedals`` (0..1, with
        the ``pedals`` columns) is the share of ``performed``, drawn with ``seed``, whose
        pedals the trees never see (``Notes.pedals`` None), so that one tree learns to play
        files with and without a pianist's pedals. ``rounds`` maps a style to its own
        ``max_iter`` (the others keep the settings'); raises FeatureBaselineError for a style
        without songs.
        """
        from sklearn.ensemble import HistGradientBoostingRegressor

        if not performed:
            raise FeatureBaselineError("no performances to train on")
        extras = ordered_extras(extras)
        options = {**DEFAULT_SETTINGS, **settings}
        borrow, rounds = dict(borrow or {}), dict(rounds or {})
        styles = sorted({p.style for p in performed})
        try:
            check_borrow(borrow, styles)
        except BorrowError as e:
            raise FeatureBaselineError(str(e)) from None
        if unknown := sorted(set(rounds) - set(styles)):
            raise FeatureBaselineError(f"--rounds names {', '.join(unknown)}; the styles "
                                       f"with training songs: {', '.join(styles)}")
        hidden = _pedals_hidden(len(performed), hide_pedals, extras, seed)
        hidden_ids = {id(p) for p, hide in zip(performed, hidden) if hide}
        lending = {lender for lenders in borrow.values() for lender in lenders}
        kept: dict[int, np.ndarray] = {}  # the rows of lenders' songs, computed once

        def rows_of(p: "Performed") -> np.ndarray:
            if id(p) in kept:
                return kept[id(p)]
            shown = performances.without_pedals(p) if id(p) in hidden_ids else p
            rows = feature_rows(shown.notes, p.ticks_per_beat, p.seconds, extras)
            if p.style in lending:
                kept[id(p)] = rows
            return rows

        models = {}
        for style in styles:
            songs = [p for p in performed if p.style == style]
            began = time.perf_counter()
            held_out = stopping_songs(songs, seed, stop_on_pieces)
            model = HistGradientBoostingRegressor(
                random_state=seed, early_stopping=bool(held_out.any()),
                **{**options, "max_iter": rounds.get(style, options["max_iter"])})
            train = [p for p, out in zip(songs, held_out) if not out]
            check = [p for p, out in zip(songs, held_out) if out]
            lenders = tuple(borrow.get(style, ()))
            x, y, weights = _training_rows(train, performed, lenders, rows_of)
            validation = {}
            if check:
                validation = {"X_val": _own_rows([rows_of(p) for p in check], lenders),
                              "y_val": np.concatenate([velocity_targets(p.notes.velocity)
                                                       for p in check])}
            model.fit(x, y, sample_weight=weights, **validation)
            models[style] = model
            lent = f" (with {'+'.join(lenders)}'s)" if lenders else ""
            unseen = sum(id(p) in hidden_ids for p in songs)
            pedals = f", pedals hidden in {unseen} of them" if hide_pedals else ""
            whole = f" (whole pieces: {len({p.piece for p in check})})" if stop_on_pieces else ""
            log(f"{style}: {len(train)} songs, {len(x):,} training notes{lent}, {len(check)} "
                f"songs{whole} for early stopping{pedals}; {model.n_iter_} trees; "
                f"{time.perf_counter() - began:.1f} s")
        return cls(models, extras, borrow)

    def predict(self, notes: midi.Notes, ticks_per_beat: int, style: str,
                seconds: np.ndarray | None = None) -> np.ndarray:
        """int64 (n,) velocities 1..127 for ``notes`` (pitch 21..108) played in ``style``.

        seconds: float (n,) onset seconds of the notes, as ``note_features`` takes them.
        """
        if style not in self.models:
            raise FeatureBaselineError(f"unknown style {style!r}; this baseline has: "
                                       f"{', '.join(self.styles)}")
        if not len(notes):
            return np.zeros(0, np.int64)
        return self.predict_rows(
            feature_rows(notes, ticks_per_beat, seconds, self.extras), style)

    def predict_rows(self, rows: np.ndarray, style: str) -> np.ndarray:
        """int64 (n,) velocities 1..127 of float32 (n, columns) ``feature_rows`` in a style
        this baseline plays (``predict`` without the features' computation)."""
        if style in self.borrow:  # its own notes: the lenders' columns are 0
            rows = with_lender_columns(rows, None, self.borrow[style])
        return np.clip(np.rint(self.models[style].predict(rows)), 1, 127).astype(np.int64)

    def save(self, path: str) -> None:
        """Writes the header and models to ``path`` atomically (temporary file + rename)."""
        header = {"format": FORMAT, "version": VERSION, "sklearn": _sklearn_version(),
                  "feature_names": list(feature_names(self.extras)),
                  "styles": self.styles,
                  "borrow": {style: list(lenders) for style, lenders in self.borrow.items()}}

        def dump(f) -> None:
            pickle.dump(header, f, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(self.models, f, protocol=pickle.HIGHEST_PROTOCOL)

        write_atomically(path, dump)

    @classmethod
    def load(cls, path: str) -> "FeatureBaseline":
        """Reads a ``save``d file; raises FeatureBaselineError (one line) if it is missing,
        corrupt, or made with another scikit-learn version or feature set."""
        if not os.path.isfile(path):
            raise FeatureBaselineError(f"{path}: no such feature baseline file")
        try:
            with open(path, "rb") as f:
                data = f.read()
            stream = io.BytesIO(data)
            header = pickle.load(stream)
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise FeatureBaselineError(f"{path}: not a feature baseline file")
            if header.get("version") != VERSION:
                raise FeatureBaselineError(f"{path}: feature baseline format version "
                                           f"{header.get('version')}, need {VERSION}")
            if header.get("sklearn") != _sklearn_version():
                raise FeatureBaselineError(
                    f"{path}: made with scikit-learn {header.get('sklearn')}, this is "
                    f"{_sklearn_version()}; retrain it "
                    "(python -m experiments.feature_baseline)")
            names = tuple(header.get("feature_names", ()))
            extras = _extras_of(names)
            if extras is None:
                raise FeatureBaselineError(f"{path}: made for another feature set; retrain it "
                                           "(python -m experiments.feature_baseline)")
            models = pickle.load(stream)
        except FeatureBaselineError:
            raise
        except Exception as e:  # unpickling a damaged file can raise almost anything
            reason = " ".join(f"{type(e).__name__}: {e}".split())[:120]
            raise FeatureBaselineError(
                f"{path}: corrupt feature baseline file ({reason})") from None
        if not isinstance(models, dict) or sorted(models) != header.get("styles"):
            raise FeatureBaselineError(f"{path}: corrupt feature baseline file (models do not "
                                       "match the header)")
        borrow = header.get("borrow") or {}
        try:
            check_borrow(borrow, sorted(models))
        except (BorrowError, AttributeError, TypeError):
            raise FeatureBaselineError(f"{path}: corrupt feature baseline file (bad "
                                       "borrow)") from None
        model = cls(models, extras, borrow)
        model.sha256 = hashlib.sha256(data).hexdigest()
        return model


def _extras_of(names: Sequence[str]) -> tuple[str, ...] | None:
    """The optional column sets whose ``feature_names`` are ``names``, or None if none are."""
    for count in range(len(EXTRA_COLUMNS) + 1):
        for extras in itertools.combinations(EXTRA_COLUMNS, count):
            if tuple(names) == feature_names(extras):
                return extras
    return None


def mae_and_r(predicted: np.ndarray, human: np.ndarray) -> tuple[float, float]:
    """Mean |predicted - human| and their Pearson r (0 when either is constant), of two
    (n,) arrays of velocities, any numeric dtype."""
    predicted, human = np.asarray(predicted, np.float64), np.asarray(human, np.float64)
    r = (float(np.corrcoef(predicted, human)[0, 1])
         if predicted.std() > 0 and human.std() > 0 else 0.0)
    return float(np.abs(predicted - human).mean()), r


def evaluate(baseline: FeatureBaseline, performed: Sequence["Performed"]) -> list[dict]:
    """Per style of ``performed`` that the baseline knows: {style, songs, notes, mae, r}.

    mae: mean |predicted - human| velocity over notes (MIDI units); r: Pearson correlation of
    predicted and human velocities over notes (0 when either is constant).
    """
    out = []
    for style in sorted({p.style for p in performed} & set(baseline.styles)):
        songs = [p for p in performed if p.style == style]
        predicted = np.concatenate([baseline.predict(p.notes, p.ticks_per_beat, style, p.seconds)
                                    for p in songs])
        human = np.concatenate([velocity_targets(p.notes.velocity) for p in songs])
        mae, r = mae_and_r(predicted, human)
        out.append({"style": style, "songs": len(songs), "notes": len(human), "mae": mae,
                    "r": r})
    return out
