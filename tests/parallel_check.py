"""Run by tests/test_parallel.py in a fresh interpreter with 4 forced CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``): prints one JSON line of measurements
comparing data-parallel steps and runs with single-device ones."""

import dataclasses
import json
import sys

import jax
import numpy as np

from dataset_factory import write_dataset
from stylenet_jax import batching, dataset, train_steps, training
from stylenet_jax.config import Config
from stylenet_jax.parallel import DataParallel


def max_difference(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def one_step(config: Config, batch: batching.Batch, parallel: DataParallel):
    model = dataclasses.replace(config.model, num_styles=2)
    state = train_steps.init_state(jax.random.PRNGKey(0), model_config=model, optim=config.optim)
    state = parallel.put_replicated(state)
    metrics = parallel.put_replicated(train_steps.zero_metrics(2))
    state, metrics, _ = train_steps.train_step(state, metrics, parallel.put_batch(batch), None,
                                               model_config=model, optim=config.optim)
    return jax.device_get(state.params), jax.device_get(metrics)


def main(workdir: str) -> None:
    out = {"devices": jax.device_count()}
    data_dir = write_dataset(f"{workdir}/data")
    base = Config().replace(data_dir=data_dir, hidden_size=8, num_layers=1, window=16,
                            songs_per_batch=2, keep_prob=1.0, num_epochs=2, progress=False,
                            snapshot_every_epochs=0, log_every_steps=4)
    songs = batching.window_songs(dataset.load_songs(data_dir, "train"), ["classical", "jazz"],
                                  16)
    one, four = DataParallel(jax.devices()[:1]), DataParallel()
    for rows in (8, 6):  # 6 rows: 4 devices take 2 each after 2 empty rows are added
        batch = next(batching.epoch_batches(songs, songs_per_batch=2, windows_per_batch=rows))
        p1, m1 = one_step(base, batch, one)
        p4, m4 = one_step(base, batch, four)
        out[f"step_rows_{rows}"] = max_difference(p1, p4)
        out[f"metrics_rows_{rows}"] = max_difference({k: m1[k] for k in ("se", "cells")},
                                                     {k: m4[k] for k in ("se", "cells")})
    single = training.train_and_evaluate(base.replace(devices=1), f"{workdir}/one")
    parallel = training.train_and_evaluate(base, f"{workdir}/four")
    out["run_difference"] = max_difference(single.state.params, parallel.state.params)
    out["run_compiles"] = parallel.train_compiles
    sharding = parallel.state.params["interpretation_lstm"]["w_hh"].sharding
    out["replicated_on"] = len(sharding.device_set) if sharding.is_fully_replicated else 0
    resumed = training.train_and_evaluate(base.replace(num_epochs=3), f"{workdir}/four")
    whole = training.train_and_evaluate(base.replace(num_epochs=3), f"{workdir}/four_whole")
    out["resume_difference"] = max_difference(resumed.state.params, whole.state.params)
    out["resumed_epoch"] = resumed.epoch
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
