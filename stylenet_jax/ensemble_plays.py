"""Which styles each member of an ensemble export plays (pure Python + numpy, no JAX).

By default every member of an ensemble plays every style and a note's velocity is the mean
of all members. A member may instead play only some styles (``experiments.ensemble
--model=classical,pop=PATH``): then a style's velocity is the mean of the members that play
it, so one file can hold, say, models trained on the absolute error for classical and pop
and models trained on the squared error for jazz, each style chosen on validation.

The export records it as ``"plays": [style, ...]`` in a member's metadata
(``checkpoints.export_ensemble(..., plays=...)``); a member without it plays every style, so
an ensemble of unrestricted members is written exactly as before this option existed.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

META_KEY = "__meta__"  # where an export (checkpoints) keeps its JSON metadata


def check_plays(plays: Sequence[Sequence[str] | None], styles: Sequence[str], *,
                every_style: bool = True) -> list[list[str]]:
    """Every member's styles, in the model's head order: ``plays`` has one entry per member,
    None (every style) or style names. Raises ValueError (one line) for an unknown, repeated
    or empty choice, or (``every_style``) a style that no member plays."""
    chosen = []
    for k, names in enumerate(plays):
        if names is None:
            chosen.append(list(styles))
            continue
        names = list(names)
        unknown = [n for n in names if n not in styles]
        if unknown or not names or len(set(names)) != len(names):
            raise ValueError(f"model {k + 1}: plays {names}; choose distinct styles among "
                             f"{list(styles)}")
        chosen.append([s for s in styles if s in names])
    orphans = [s for s in styles if not any(s in c for c in chosen)]
    if orphans and every_style:
        raise ValueError(f"no model plays {', '.join(orphans)}: every style needs one")
    return chosen


def split_member_spec(spec: str) -> tuple[list[str] | None, str]:
    """``"STYLE,STYLE=PATH"`` -> (styles, path); a plain ``PATH`` (or one that exists as it
    is, ``=`` included) -> (None, path): the member plays every style."""
    head, sep, path = spec.partition("=")
    if not sep or os.path.exists(spec) or not path:
        return None, spec
    return [name.strip() for name in head.split(",")], path


def member_plays(path: str, members: int, styles: Sequence[str]) -> list[list[str]]:
    """Each of the ``members`` models' styles in the export at ``path`` (every style for a
    training run directory, a plain export, or a member without a choice). Raises ValueError
    for a recorded choice that ``check_plays`` refuses."""
    if os.path.isdir(path) or members == 1:
        return [list(styles)] * members
    described = read_metadata(path).get("members", [])
    recorded = [m.get("plays") if isinstance(m, dict) else None for m in described]
    if len(recorded) != members or not all(
            r is None or (isinstance(r, list) and all(isinstance(n, str) for n in r))
            for r in recorded):
        raise ValueError(f"{path}: bad 'plays' in the ensemble metadata")
    return check_plays(recorded, styles)


def read_metadata(path: str) -> dict:
    """The JSON metadata of the export file at ``path``; raises ValueError (one line) for a
    missing file or one that is not an export."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z[META_KEY]))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except Exception as e:  # noqa: BLE001 - zipfile, numpy and json raise many types
        raise ValueError(f"{path}: not a stylenet-jax export ({type(e).__name__})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: not a stylenet-jax export (bad metadata)")
    return meta


def member_weights(plays: Sequence[Sequence[str]], blend: dict[str, float]
                   ) -> list[dict[str, float]]:
    """Per member, the weight of each blended style it plays, scaled so that the members'
    blends summed and divided by their number give each style the mean of the members that
    play it: ``blend[s] * members / (members playing s)`` (exactly ``blend[s]`` when all play
    it, so an unrestricted ensemble computes what it always did). A member that plays none
    of the blend's styles gets {} (it need not run)."""
    members = len(plays)
    players = {s: sum(s in p for p in plays) for s in blend}
    return [{s: w * (members / players[s]) for s, w in blend.items() if s in p}
            for p in plays]
