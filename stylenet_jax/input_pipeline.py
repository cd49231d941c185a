"""Batches on their way to the device: each batch is sent while the steps before it run."""

from __future__ import annotations

import collections
from typing import Callable, Iterator

import jax

from stylenet_jax import batching


def prefetch_to_device(batches: Iterator[batching.Batch], size: int = 2,
                       put: Callable[[batching.Batch], batching.Batch] = jax.device_put,
                       ) -> Iterator[tuple[int, batching.Batch]]:
    """``(style, batch)`` pairs in the order of ``batches``, each batch's arrays already sent to
    the device(s) with ``put`` (default ``jax.device_put`` to the default device;
    ``parallel.DataParallel.put_batch`` shards it over a mesh), which returns at once: the
    copies of the next ``size`` batches overlap the steps still running. ``style``
    (``batch.styles[0]``) is read on the host before the copy, so picking a style's carry never
    waits for the device."""
    queue: collections.deque = collections.deque()
    for batch in batches:
        queue.append((int(batch.styles[0]), put(batch)))
        if len(queue) > size:
            yield queue.popleft()
    while queue:
        yield queue.popleft()
