r"""Calibrate the identify-the-human classifier on systems that need no training.

    python -m experiments.classifier_baselines --data_dir=DATA             # its test split
    python -m experiments.classifier_baselines --data_dir=DATA --models    # and the shipped ones

Scores three systems against the pianist: every note at 64, uniform random velocities, and
the pianist's own velocities shuffled among the piece's notes (the right distribution, the
wrong notes); with ``--models`` also the shipped StyleNet and tree. Each in 10-second
excerpts and over whole pieces, the classifier trained on half of the pieces and scored on
the other half (``stylenet_jax.human_classifier``). Prints one line per system and length.
Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import sys
from typing import Sequence

import numpy as np
from absl import app, flags

from experiments import evaluate
from stylenet_jax import human_classifier
from stylenet_jax.flag_parsing import parse_flags
from stylenet_jax.performances import Performed

FLAGS = flags.FLAGS


def _define_flags() -> None:
    evaluate.define_performance_flags("scored")
    flags.DEFINE_integer("steps", 400, "Training steps on 10-second excerpts.")
    flags.DEFINE_integer("whole_piece_steps", 200, "Training steps on whole pieces.")
    flags.DEFINE_integer("whole_piece_batch", 8, "Pairs per step on whole pieces.")
    flags.DEFINE_bool("models", False, "Also score the shipped StyleNet and tree.")
    flags.DEFINE_integer("seed", 0, "Seed of the random system, the split and the classifier.")


def baseline_systems(performed: Sequence[Performed],
                     seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Three systems' velocities (int64 (n,) each, per performance): constant 64, random
    uniform 1..127, and the human's own velocities shuffled among the piece's notes."""
    rng = np.random.default_rng(seed)
    return {
        "constant_64": [np.full(len(p.notes), 64, np.int64) for p in performed],
        "random_uniform": [rng.integers(1, 128, len(p.notes)) for p in performed],
        "shuffled_human": [rng.permutation(p.notes.velocity.astype(np.int64)) for p in performed],
    }


def main(argv: Sequence[str]) -> None:
    evaluate.start_app(argv)
    from stylenet_jax import evaluation

    try:
        performed, data = evaluate.load_performances()
        if len({p.piece for p in performed}) < 2:
            raise ValueError("the classifier needs two pieces or more (half train it, half "
                             "score it)")
        systems = baseline_systems(performed, FLAGS.seed)
        if FLAGS.models:
            shipped, _ = evaluate.build_systems(None, ["features"])
            for system in shipped:
                systems[system.name] = [system.perform(evaluation.flatten(p)).velocities
                                        for p in performed]
    except evaluate.BAD_INPUT as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"{data}: {len(performed)} performances, {len({p.piece for p in performed})} pieces")
    for system, velocities in systems.items():
        for length, steps, batch in ((10.0, FLAGS.steps, 32),
                                     (None, FLAGS.whole_piece_steps, FLAGS.whole_piece_batch)):
            pairs = human_classifier.make_pairs(performed, velocities, length_seconds=length)
            train, test = human_classifier.split_pieces(pairs, 0.5, FLAGS.seed)
            r = human_classifier.train_and_score(train, test, steps=steps, seed=FLAGS.seed,
                                                 batch_size=batch)
            print(f"{system:16s} {'10 s' if length else 'whole':5s}: accuracy {r['accuracy']:.3f} "
                  f"[{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] on {r['pairs']} pairs of "
                  f"{r['pieces']} pieces (train {r['train_pairs']} pairs of "
                  f"{r['train_pieces']}), loss {r['final_loss']:.3f}, {r['seconds']:.1f} s",
                  flush=True)


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=parse_flags)
