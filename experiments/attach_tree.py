r"""Record in a hybrid model's export which tree baseline it plays with, or show the record.

    python -m experiments.attach_tree --model=E.npz --tree=T.pkl   # record T in E
    python -m experiments.attach_tree --model=E.npz                # show E's record

A hybrid model (trained with ``--tree_prior_dir``) reads the tree baseline's velocities, and
plays as it was measured only with the tree it was chosen with. The export records that tree
(its sha256, columns and styles, ``stylenet_jax.tree_pairing``); ``stylize`` and
``experiments.evaluate`` then warn whenever the model is played with another tree, e.g. an
old model with a newer shipped tree. ``experiments.ensemble --tree`` records it as it joins
models. Only the export's metadata changes (atomically); its parameters are copied as they
are. A model that reads no tree is refused.
"""

from __future__ import annotations

import sys
from typing import Sequence

from absl import app, flags

from stylenet_jax.flag_parsing import parse_flags, usage_error


def _define_flags() -> None:
    flags.DEFINE_string("model", None, "A hybrid model's export (.npz, one model or an "
                        "ensemble), rewritten in place.")
    flags.DEFINE_string("tree", None, "The tree baseline it plays with (.pkl, from "
                        "`python -m experiments.feature_baseline`). Empty: print the record.")


def describe(record: dict | None) -> str:
    """One line for a recorded tree (``tree_pairing.tree_record``) or its absence."""
    if record is None:
        return "records no tree"
    return (f"plays with {record.get('file') or 'a tree'}: sha256 {record['sha256']}, "
            f"{len(record['feature_names'])} columns, styles "
            f"{', '.join(record.get('styles', []))}")


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        usage_error(f"unexpected arguments: {' '.join(argv[1:])}")
    FLAGS = flags.FLAGS
    from stylenet_jax import feature_baseline, tree_pairing

    try:
        if not FLAGS.tree:
            print(f"{FLAGS.model}: {describe(tree_pairing.recorded_tree(FLAGS.model))}")
            return
        tree = feature_baseline.FeatureBaseline.load(FLAGS.tree)
        record = tree_pairing.tree_record(tree, FLAGS.tree)
        tree_pairing.attach_tree(FLAGS.model, record)
    except (tree_pairing.PairingError, feature_baseline.FeatureBaselineError, OSError) as e:
        sys.exit(f"error: {e}")
    print(f"{FLAGS.model}: {describe(record)}")


if __name__ == "__main__":
    _define_flags()
    flags.mark_flag_as_required("model")
    app.run(main, flags_parser=parse_flags)
