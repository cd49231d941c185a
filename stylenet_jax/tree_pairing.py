"""Which tree baseline a hybrid model was made to play with (pure Python + numpy, no JAX).

A hybrid model (``ModelConfig.tree_prior``) reads the tree baseline's velocities, so it plays
as it was measured only with the tree it was chosen with: trained on priors of trees with the
same columns, and scored with that tree. The export cannot hold the tree (a 6 MB pickle), so
it records which one it is, as ``"tree"`` in its JSON metadata:

    {"sha256": hex digest of the tree file, "feature_names": [its columns],
     "styles": [its styles], "file": its file name when recorded}

``attach_tree`` writes the record into an export (``experiments.ensemble --tree`` and
``python -m experiments.attach_tree``); ``performer.Stylizer`` compares it with the tree it is
given (``pairing_problem``), and ``stylize`` and ``experiments.evaluate`` say so when they
differ. They warn rather than refuse: playing a model with another tree is a fair experiment,
but it must not happen unnoticed (the model shipped before scored validation MAE 11.55 with
the new tree against 11.65 with its own).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from stylenet_jax import ensemble_plays
from stylenet_jax.atomic_write import write_atomically
from stylenet_jax.ensemble_plays import META_KEY

if TYPE_CHECKING:
    from stylenet_jax.feature_baseline import FeatureBaseline

TREE_KEY = "tree"  # the record's key in an export's metadata
SHOWN_DIGITS = 12  # of a sha256, in messages


class PairingError(ValueError):
    """An export or tree that cannot be paired (one line naming why)."""


def tree_record(tree: "FeatureBaseline", file: str = "") -> dict[str, Any]:
    """The record of a tree loaded from a file (``FeatureBaseline.load``, which sets its
    ``sha256``); ``file`` is the name kept for messages. Raises PairingError for a tree
    fitted in memory (no file, so nothing to check against later)."""
    from stylenet_jax.feature_baseline import feature_names

    if not tree.sha256:
        raise PairingError("the tree was not loaded from a file: save it first")
    return {"sha256": tree.sha256, "feature_names": list(feature_names(tree.extras)),
            "styles": list(tree.styles), "file": os.path.basename(file)}


def read_metadata(path: str) -> dict:
    """``ensemble_plays.read_metadata``, raising PairingError (one line)."""
    try:
        return ensemble_plays.read_metadata(path)
    except ValueError as e:
        raise PairingError(str(e)) from None


def recorded_tree(path: str) -> dict | None:
    """The tree recorded in the export at ``path``; None for a training run directory or an
    export without a record. Raises PairingError for an unreadable file or a bad record."""
    if os.path.isdir(path):
        return None
    record = read_metadata(path).get(TREE_KEY)
    if record is None:
        return None
    if not (isinstance(record, dict) and isinstance(record.get("sha256"), str)
            and isinstance(record.get("feature_names"), list)):
        raise PairingError(f"{path}: bad tree record in its metadata")
    return record


def is_hybrid(meta: Mapping[str, Any]) -> bool:
    """Whether an export's metadata describes a model (or an ensemble with a member) that
    reads the tree's velocities (``ModelConfig.tree_prior``)."""
    described = meta.get("members") or [meta]
    return any(isinstance(m, dict) and isinstance(m.get("model_config"), dict)
               and m["model_config"].get("tree_prior") for m in described)


def attach_tree(path: str, record: Mapping[str, Any]) -> str:
    """Rewrites the export at ``path`` with ``record`` (``tree_record``) in its metadata,
    atomically; the parameters are copied byte for byte. Returns ``path``. Raises
    PairingError for a file that is not an export or a model that reads no tree."""
    meta = read_metadata(path)
    if not is_hybrid(meta):
        raise PairingError(f"{path}: not a hybrid model (it reads no tree), so no tree to record")
    meta[TREE_KEY] = dict(record)
    with np.load(path, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files if name != META_KEY}

    def write(f) -> None:
        np.savez(f, **arrays, **{META_KEY: np.array(json.dumps(meta))})

    return write_atomically(path, write)


def _shown(name: str, record: Mapping[str, Any]) -> str:
    return (f"{name or 'a tree'} (sha256 {str(record['sha256'])[:SHOWN_DIGITS]}, "
            f"{len(record['feature_names'])} columns)")


def pairing_problem(record: Mapping[str, Any] | None, tree: "FeatureBaseline",
                    tree_file: str = "") -> str | None:
    """None when the tree matches the model's record (or the model has none); else one line
    saying which tree the model was made for and which it is given (``tree_file``, how the
    message names it). A tree fitted in memory cannot be checked and passes."""
    if record is None or not tree.sha256 or tree.sha256 == record["sha256"]:
        return None
    given = tree_record(tree)
    columns = ("" if given["feature_names"] == list(record["feature_names"])
               else ", which reads other columns")
    return (f"the model was made to play with the tree {_shown(record.get('file', ''), record)}"
            f" but is given {_shown(tree_file, given)}{columns}: it will not play as it was "
            "measured")
