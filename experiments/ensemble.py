r"""Join several trained models into one ensemble export, which plays their mean velocities.

    python -m experiments.ensemble --model=runs/a/inference.npz --model=runs/b --out=E.npz

Each ``--model`` is an inference export (``.npz``; an ensemble adds each of its models) or a
training run directory (its best, else newest, checkpoint). The models must play the same
styles in the same order; their recipes may differ (e.g. one with ``--tempo_input``, one
without). The written file is read like any model by ``python -m stylenet_jax.stylize
--checkpoint=E.npz`` and ``python -m experiments.evaluate --model=NAME=E.npz``: every note's
velocity is the mean of what the members predict for it (each member's style blend first),
at the cost of one network run per member. Nothing is written when a model cannot be read.

A member may play only some styles: ``--model=classical,pop=runs/c`` (styles, ``=``, the
model). A style's velocity is then the mean of the members that play it, and every style
needs at least one (``stylenet_jax.ensemble_plays``). For example, absolute-error models for
classical and pop beside squared-error ones for jazz:

    python -m experiments.ensemble --model=classical,pop=runs/abs0 --model=classical,pop=runs/abs1 \
        --model=jazz=runs/sq0 --model=jazz=runs/sq1 --out=E.npz

Hybrid models (trained with ``--tree_prior_dir``) play with a tree baseline: ``--tree=T.pkl``
records which in the ensemble (``experiments.attach_tree``), so that playing it with another
tree is warned of. Members that already record a tree pass it on; two different trees are
refused.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from absl import app, flags

from stylenet_jax.flag_parsing import parse_flags, usage_error


def _define_flags() -> None:
    flags.DEFINE_multi_string("model", [], "A member: an inference export (.npz) or a "
                              "training run directory, optionally after STYLE,STYLE= to have it "
                              "play only those styles. Two or more.")
    flags.DEFINE_string("out", None, "Where to write the ensemble (.npz).")
    flags.DEFINE_string("tree", "", "For hybrid models (--tree_prior_dir): the tree baseline "
                        "they play with (.pkl), recorded in the ensemble so that stylize and "
                        "experiments.evaluate warn when it is played with another "
                        "(experiments.attach_tree). Empty: the tree its models record, if "
                        "they agree.")


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        usage_error(f"unexpected arguments: {' '.join(argv[1:])}")
    FLAGS = flags.FLAGS
    if len(FLAGS.model) < 2:
        usage_error(f"give two --model or more (got {len(FLAGS.model)})")
    from stylenet_jax import checkpoints, ensemble_plays, tree_pairing

    try:
        members, plays, records = [], [], {}
        for spec in FLAGS.model:  # an ensemble given as a model adds each of its members
            asked, path = ensemble_plays.split_member_spec(spec)
            models = checkpoints.load_models_at(path)
            records[path] = tree_pairing.recorded_tree(path)
            recorded = ensemble_plays.member_plays(path, len(models), models[0][2])
            if asked is not None:  # checked against the model's own styles (all members')
                ensemble_plays.check_plays([asked], models[0][2], every_style=False)
            for member, own in zip(models, recorded):
                _, config, styles = member
                chosen = [s for s in own if asked is None or s in asked]
                if not chosen:
                    raise ValueError(f"{spec}: a member of it plays none of {asked}")
                print(f"{path}: styles {', '.join(styles)}; hidden {config.hidden_size}, "
                      f"{config.num_layers} layer(s), tempo input {config.tempo_input}"
                      + ("" if chosen == list(styles) else f"; plays {', '.join(chosen)}"))
                members.append(member)
                plays.append(None if chosen == list(styles) else chosen)
        record = _tree_of(records, FLAGS.tree)
        if record is not None and not any(config.tree_prior for _, config, _ in members):
            raise ValueError("--tree: none of the models reads a tree (no --tree_prior_dir)")
        path = checkpoints.export_ensemble(FLAGS.out, members, plays)
        if record is not None:
            tree_pairing.attach_tree(path, record)
    except (checkpoints.CheckpointError, ValueError, OSError) as e:
        sys.exit(f"error: {e}")
    print(f"wrote {path}: the mean of {len(members)} models "
          f"({os.path.getsize(path) / 1e6:.1f} MB)"
          + (f"; it plays with {record['file']}" if record else ""))


def _tree_of(records: dict[str, dict | None], tree_path: str) -> dict | None:
    """The tree to record: ``tree_path``'s, else the one the members record (None if none
    does). Raises ValueError (one line; PairingError and FeatureBaselineError are
    ValueErrors) when members record different trees, or another tree than ``tree_path``."""
    from stylenet_jax import feature_baseline, tree_pairing

    chosen = None
    if tree_path:
        tree = feature_baseline.FeatureBaseline.load(tree_path)
        chosen = tree_pairing.tree_record(tree, tree_path)
    for path, record in records.items():
        if record is None:
            continue
        if chosen is not None and record["sha256"] != chosen["sha256"]:
            source = "--tree" if tree_path else "another model"
            raise ValueError(f"{path} records the tree {record.get('file') or ''} (sha256 "
                             f"{record['sha256'][:12]}), {source} another: join models "
                             "made for one tree")
        chosen = chosen or record
    return chosen


if __name__ == "__main__":
    _define_flags()
    flags.mark_flag_as_required("out")
    app.run(main, flags_parser=parse_flags)
