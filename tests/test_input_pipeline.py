"""stylenet_jax.input_pipeline: order kept, batches sent ahead of the steps."""

import jax
import numpy as np

from stylenet_jax import input_pipeline


def test_prefetch_to_device_keeps_order_and_runs_ahead():
    from stylenet_jax import batching

    pulled = []

    def source():
        for k in range(5):
            pulled.append(k)
            yield batching.Batch(np.full((2, 3, 176), k, np.uint8),
                                 np.zeros((2, 3, 88), np.float32),
                                 np.array([3, k % 4], np.int32), np.full((2,), k % 2, np.int32),
                                 np.ones((2,), bool))

    out = input_pipeline.prefetch_to_device(source(), size=2)
    style, first = next(out)
    assert pulled == [0, 1, 2]  # two batches already on their way while the first runs
    assert style == 0 and isinstance(first.inputs, jax.Array)
    rest = list(out)
    assert [s for s, _ in rest] == [1, 0, 1, 0]
    assert [int(b.inputs[0, 0, 0]) for _, b in rest] == [1, 2, 3, 4]
    np.testing.assert_array_equal(np.asarray(rest[-1][1].lengths), [3, 0])
