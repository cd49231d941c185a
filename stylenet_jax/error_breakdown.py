"""Where a system's note errors come from: the performance's overall level, or the shape
within it, and which musical roles (top voice, inner voice, chord, beat...) carry them.

A system can miss a performance in two separable ways: its overall loudness (the pianist's
mean velocity over the piece, which depends on the piece, the pianist and the recording) and
the dynamics within it (which notes are louder than the piece's own mean). ``breakdown``
splits every system's error that way per style:

* level: each performance's mean velocity, system against pianist: the mean signed
  difference (``level_bias``: negative for a system that plays the style's pieces softer
  than the pianists did, on average), the mean absolute difference (``level_mae``) and their
  correlation over the style's performances (``level_r``; NaN with fewer than 3
  performances or a constant system);
* within: each note's deviation from its own performance's mean, system against pianist:
  ``centred_mae`` over every note, and per role in ``ROLES`` (``roles[name]``: the share of
  notes, the centred MAE on them, and the mean deviation the system gives them beside the
  pianist's, e.g. +6.6 for a top voice the pianist plays 6.6 above the piece's mean);
* phrases: the centred deviations split again, into runs of ``PHRASE_NOTES`` consecutive
  notes (by onset, then pitch): the correlation of each run's mean deviation, system against
  pianist, over the style's runs (``phrase_r``: does the system get louder and softer where
  the pianist does?), and the MAE of what is left within the runs (``in_phrase_mae``: each
  note's deviation from its run's mean, note by note).

Roles come from ``note_features`` (the tree baseline's features), so no system's input is
involved. Pure numpy.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from stylenet_jax.note_features import FEATURE_NAMES, note_features
from stylenet_jax.performances import Performed

_COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}
MIN_LEVEL_PERFORMANCES = 3  # level_r needs at least this many performances
PHRASE_NOTES = 16  # consecutive notes (by onset, then pitch) per run: phrase_r, in_phrase_mae


def _column(features: np.ndarray, name: str) -> np.ndarray:
    return features[:, _COLUMN[name]]


ROLES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "top voice": lambda f: _column(f, "is_top_voice") == 1,
    "inner voice": lambda f: (_column(f, "is_top_voice") == 0)
    & (_column(f, "is_bottom_voice") == 0),
    "bottom voice": lambda f: _column(f, "is_bottom_voice") == 1,
    "single note": lambda f: _column(f, "chord_size") == 1,
    "chord of 3+": lambda f: _column(f, "chord_size") >= 3,
    "on the beat": lambda f: _column(f, "onset_mod_4") == 0,
    "off the beat": lambda f: _column(f, "onset_mod_4") != 0,
    "short (1 step)": lambda f: _column(f, "duration_steps") <= 1,
    "long (8+ steps)": lambda f: _column(f, "duration_steps") >= 8,
}


def note_roles(performed: Performed) -> dict[str, np.ndarray]:
    """{role: bool (n,)} for the performance's notes in file order (``ROLES``)."""
    features = note_features(performed.notes, performed.ticks_per_beat, performed.seconds)
    return {name: np.asarray(rule(features), bool) for name, rule in ROLES.items()}


def phrase_runs(performed: Performed, size: int = PHRASE_NOTES) -> np.ndarray:
    """int64 (n,): each note's run of ``size`` consecutive notes in (onset, pitch) order
    (0, 1, ...; the last run may be shorter), for the notes in file order."""
    rank = np.empty(len(performed.notes), np.int64)
    rank[np.lexsort((performed.notes.pitch, performed.notes.start))] = np.arange(len(rank))
    return rank // size


def run_means(values: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """float64 (runs.max() + 1,): the mean of ``values`` over each run."""
    return np.bincount(runs, values) / np.bincount(runs)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two float (n,) arrays; NaN with fewer than ``MIN_LEVEL_PERFORMANCES``
    values or a constant one."""
    if len(a) < MIN_LEVEL_PERFORMANCES or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def breakdown(performed: Sequence[Performed], velocities: Mapping[str, Sequence[np.ndarray]],
              ) -> dict[str, dict[str, dict]]:
    """``{system: {style: {"level_bias", "level_mae", "level_r", "centred_mae", "phrase_r",
    "in_phrase_mae", "roles": {role: {"share", "centred_mae", "deviation",
    "pianist_deviation"}}}}}``.

    performed: the human performances (velocities as played); velocities[system]: int (n,) per
    performance, in the same order (``evaluation.Evaluation.velocities``).
    """
    roles = [note_roles(p) for p in performed]
    runs = [phrase_runs(p) for p in performed]
    styles = sorted({p.style for p in performed})
    out: dict[str, dict[str, dict]] = {}
    for system, played in velocities.items():
        out[system] = {}
        for style in styles:
            idx = [i for i, p in enumerate(performed) if p.style == style]
            human = [performed[i].notes.velocity.astype(np.float64) for i in idx]
            system_v = [np.asarray(played[i], np.float64) for i in idx]
            human_level = np.array([h.mean() for h in human])
            system_level = np.array([s.mean() for s in system_v])
            human_dev = np.concatenate([h - h.mean() for h in human])
            system_dev = np.concatenate([s - s.mean() for s in system_v])
            error = np.abs(system_dev - human_dev)
            human_phrase, system_phrase, in_phrase = [], [], []  # per run, per run, per note
            for i, h, v in zip(idx, human, system_v):
                hm, sm = run_means(h - h.mean(), runs[i]), run_means(v - v.mean(), runs[i])
                human_phrase.append(hm)
                system_phrase.append(sm)
                in_phrase.append(np.abs((v - v.mean() - sm[runs[i]])
                                        - (h - h.mean() - hm[runs[i]])))
            role_rows = {}
            for role in ROLES:
                mask = np.concatenate([roles[i][role] for i in idx])
                some = bool(mask.any())
                role_rows[role] = {
                    "share": float(mask.mean()),
                    "centred_mae": float(error[mask].mean()) if some else float("nan"),
                    "deviation": float(system_dev[mask].mean()) if some else float("nan"),
                    "pianist_deviation": float(human_dev[mask].mean()) if some else float("nan")}
            out[system][style] = {
                "level_bias": float((system_level - human_level).mean()),
                "level_mae": float(np.abs(system_level - human_level).mean()),
                "level_r": correlation(human_level, system_level),
                "centred_mae": float(error.mean()),
                "phrase_r": correlation(np.concatenate(human_phrase),
                                         np.concatenate(system_phrase)),
                "in_phrase_mae": float(np.concatenate(in_phrase).mean()), "roles": role_rows}
    return out
