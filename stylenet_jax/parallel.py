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

Several processes (``initialize_distributed``; one per host or per GPU) form one mesh of all
their devices. Every process walks the same batches in the same order (the order is a
function of seed and epoch) and hands JAX only the rows of its own devices
(``jax.make_array_from_callback``), so the global batch and the maths are the single-process
run's. Replicated values are assembled the same way from each process's identical copy.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from stylenet_jax import batching
from stylenet_jax.tempo import DEFAULT_SECONDS_PER_BEAT

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
        length 0, the batch's style, reset True (a carried state restarts there), the default
        tempo."""
        n = batch.inputs.shape[0]
        extra = self.padded_rows(n) - n
        if not extra:
            return batch

        def pad(a: np.ndarray, value: Any) -> np.ndarray:
            return np.concatenate([a, np.full((extra,) + a.shape[1:], value, a.dtype)])

        tempo = (None if batch.seconds_per_beat is None
                 else pad(batch.seconds_per_beat, DEFAULT_SECONDS_PER_BEAT))
        priors = None if batch.priors is None else pad(batch.priors, 0)
        return batching.Batch(pad(batch.inputs, 0), pad(batch.targets, 0), pad(batch.lengths, 0),
                              pad(batch.styles, batch.styles[0]), pad(batch.reset, True), tempo,
                              priors)

    @property
    def multiprocess(self) -> bool:
        return jax.process_count() > 1

    def put_batch(self, batch: batching.Batch) -> batching.Batch:
        """The padded batch on the mesh, every leaf sharded along its rows (axis 0)."""
        if self.num_devices == 1:
            return jax.device_put(batch)
        return self._place(self.pad_batch(batch), self.rows)

    def _place(self, tree: Any, sharding: NamedSharding) -> Any:
        """Host values (the same on every process) as global arrays of ``sharding``: each
        process transfers only the pieces its own devices hold."""
        if not self.multiprocess:
            return jax.device_put(tree, sharding)

        def place(a: Any) -> jax.Array:
            host = np.asarray(a)
            return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

        return jax.tree.map(place, tree)

    def put_carry(self, carry: Any) -> Any:
        """A one-head carry (``model.initial_carry``) on the mesh, sharded along its rows:
        the second-to-last axis of every leaf (..., N, H)."""
        if self.num_devices == 1 or carry is None:
            return carry

        def place(a: jax.Array) -> jax.Array:
            spec = PartitionSpec(*([None] * (a.ndim - 2) + [DATA_AXIS, None]))
            return self._place(a, NamedSharding(self.mesh, spec))

        return jax.tree.map(place, carry)

    def put_replicated(self, tree: Any) -> Any:
        """Every leaf of ``tree`` (train state, metric accumulators) copied to every device."""
        if self.num_devices == 1:
            return tree
        return self._place(tree, self.replicated)

    def abstract_replicated(self, tree: Any) -> Any:
        """``jax.ShapeDtypeStruct`` leaves of ``tree`` with the replicated sharding: the
        target a checkpoint is restored into, collectively, on every process."""
        sharding = None if self.num_devices == 1 else self.replicated
        return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding),
                            tree)


def is_primary() -> bool:
    """Whether this process writes the run's files (metrics, snapshots, the export)."""
    return jax.process_index() == 0


def initialize_distributed(coordinator_address: str = "", num_processes: int = 0,
                           process_id: int = -1) -> None:
    """``jax.distributed.initialize`` from explicit settings, or (all left unset) from the
    cluster environment JAX detects (SLURM, Open MPI, Kubernetes, ...). On CPUs the processes
    talk through gloo. Call before any other JAX work."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = {}
    if coordinator_address:
        kwargs = {"coordinator_address": coordinator_address, "num_processes": num_processes,
                  "process_id": process_id}
    jax.distributed.initialize(**kwargs)
