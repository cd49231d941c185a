"""Data-parallel training over a ``jax.sharding.Mesh`` of devices (no ``pmap``).

The batch's window axis (rows) is sharded across the mesh's one axis, ``data``; parameters,
optimizer state, PRNG key and metric accumulators are replicated. The train and eval steps
stay the single ``jax.jit`` programs of ``train_steps``: JAX compiles them for the shardings of
their inputs (computation follows data), and XLA's partitioner inserts the all-reduce of the
gradients, so the maths is the single-device step's on the same global batch (the loss is a
mean over all real cells of all rows, wherever they live). The global batch is the paper's
4 songs / 32 windows; each of D devices computes 32 / D of its rows.

Rows a device count does not divide are padded with empty rows (length 0, which no loss,
metric or gradient counts). With one device nothing is placed explicitly: the run is
exactly today's single-device run.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from stylenet_jax import batching

DATA_AXIS = "data"


class DataParallel:
    """A 1-D mesh of ``devices`` (default: every device of this process) and how batches,
    carries and the train state are placed on it."""

    def __init__(self, devices: Sequence[jax.Device] | None = None):
        devices = list(jax.devices() if devices is None else devices)
        if not devices:
            raise ValueError("no devices to train on")
        self.mesh = Mesh(np.array(devices), (DATA_AXIS,))
        self.rows = NamedSharding(self.mesh, PartitionSpec(DATA_AXIS))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())

    @property
    def num_devices(self) -> int:
        return self.mesh.devices.size

    def padded_rows(self, rows: int) -> int:
        """The smallest multiple of the device count that holds ``rows`` rows."""
        return -(-rows // self.num_devices) * self.num_devices

    def pad_batch(self, batch: batching.Batch) -> batching.Batch:
        """``batch`` with empty rows appended up to ``padded_rows``: inputs and targets 0,
        length 0, the batch's style, reset True (a carried state restarts there)."""
        n = batch.inputs.shape[0]
        extra = self.padded_rows(n) - n
        if not extra:
            return batch

        def pad(a: np.ndarray, value: Any) -> np.ndarray:
            return np.concatenate([a, np.full((extra,) + a.shape[1:], value, a.dtype)])

        return batching.Batch(pad(batch.inputs, 0), pad(batch.targets, 0), pad(batch.lengths, 0),
                              pad(batch.styles, batch.styles[0]), pad(batch.reset, True))

    def put_batch(self, batch: batching.Batch) -> batching.Batch:
        """The padded batch on the mesh, every leaf sharded along its rows (axis 0)."""
        if self.num_devices == 1:
            return jax.device_put(batch)
        return jax.device_put(self.pad_batch(batch), self.rows)

    def put_carry(self, carry: Any) -> Any:
        """A one-head carry (``model.initial_carry``) on the mesh, sharded along its rows:
        the second-to-last axis of every leaf (..., N, H)."""
        if self.num_devices == 1 or carry is None:
            return carry

        def place(a: jax.Array) -> jax.Array:
            spec = PartitionSpec(*([None] * (a.ndim - 2) + [DATA_AXIS, None]))
            return jax.device_put(a, NamedSharding(self.mesh, spec))

        return jax.tree.map(place, carry)

    def put_replicated(self, tree: Any) -> Any:
        """Every leaf of ``tree`` (train state, metric accumulators) copied to every device."""
        if self.num_devices == 1:
            return tree
        return jax.device_put(tree, self.replicated)
