"""Checkpoint averaging: one model whose every parameter is the mean of several checkpoints'
of one run (Polyak averaging after the fact; `experiments.average_checkpoints`).

Checkpoints late in one run usually lie in one basin of the loss, and their mean sits nearer
its floor than any of them: a cheap candidate for a better shipped model that needs no more
training.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import numpy as np

from stylenet_jax import checkpoints
from stylenet_jax.config import ModelConfig


def average_params(trees: Sequence[Mapping[str, Any]]) -> dict:
    """The leaf-wise mean of parameter trees of one structure, float32 numpy.

    Raises ValueError for no trees or trees whose structure or leaf shapes differ.
    """
    if not trees:
        raise ValueError("nothing to average")
    structure = jax.tree.structure(trees[0])
    for tree in trees[1:]:
        if jax.tree.structure(tree) != structure:
            raise ValueError("checkpoints of different models cannot be averaged")
    leaves = [[np.asarray(x, np.float32) for x in jax.tree.leaves(t)] for t in trees]
    for others in leaves[1:]:
        for a, b in zip(leaves[0], others):
            if a.shape != b.shape:
                raise ValueError(f"parameter shapes differ: {a.shape} and {b.shape}")
    means = [np.mean(np.stack(group), axis=0) for group in zip(*leaves)]
    return jax.tree.unflatten(structure, means)


def average_run(workdir: str, steps: Sequence[int]) -> tuple[dict, ModelConfig, list[str]]:
    """(mean params float32, ModelConfig, styles) of ``workdir``'s checkpoints at ``steps``.

    Raises CheckpointError if a step is missing or the checkpoints disagree on the model or
    the styles, ValueError for no steps.
    """
    if not steps:
        raise ValueError("no checkpoint steps to average")
    trees, first = [], None
    for step in steps:
        params, config, styles = checkpoints.restore_params(workdir, step)
        if first is None:
            first = (config, styles)
        elif (config, styles) != first:
            raise checkpoints.CheckpointError(
                f"{workdir}: step {step} is a different model ({config}, {styles}) from step "
                f"{steps[0]} ({first[0]}, {first[1]})")
        trees.append(params)
    return average_params(trees), first[0], list(first[1])
