"""A run's metric log: ``metrics.jsonl`` (one JSON object a line), mirrored to TensorBoard."""

from __future__ import annotations

import importlib.util
import json
import os
from typing import Any

from absl import logging

from stylenet_jax.atomic_write import write_text_atomically


METRICS_FILE = "metrics.jsonl"  # in a run's workdir


class MetricsWriter:
    """Appends one JSON object per line to ``<workdir>/metrics.jsonl``; mirrors numeric values
    to TensorBoard event files in ``<workdir>/tensorboard`` when ``tensorboardX`` is installed
    (optional; torch and TensorFlow writers are not tried: too heavy to import here)."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, METRICS_FILE)
        self._tb = None
        if importlib.util.find_spec("tensorboardX") is not None:
            try:
                from tensorboardX import SummaryWriter

                self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
            except Exception as e:  # noqa: BLE001 - optional: any failure means "none"
                logging.warning("no TensorBoard events: %s", e)

    def truncate_after(self, step: int) -> None:
        """Drops records past ``step`` (a resumed run replays from its checkpoint; a fresh
        run passes 0) and any line a kill cut short."""
        if not os.path.isfile(self.path):
            return
        keep = []
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    if json.loads(line)["step"] <= step:
                        keep.append(line if line.endswith("\n") else line + "\n")
                except (ValueError, KeyError, TypeError):
                    continue  # a half-written line
        write_text_atomically(self.path, "".join(keep))

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in record.items():
                if k not in ("step", "epoch") and isinstance(v, (int, float)):
                    self._tb.add_scalar(f"{record.get('kind', '')}/{k}", v, record["step"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_epoch_curves(metrics_path: str) -> dict[int, dict[str, float]]:
    """Per epoch of a run's metrics.jsonl (sorted): ``train_loss`` (the mean over the epoch's
    logged steps, weighted by their real time steps) and, on evaluated epochs, ``val_loss``
    and each style's ``val_loss/<style>``."""
    curves: dict[int, dict[str, float]] = {}
    weighted: dict[int, list[float]] = {}
    with open(metrics_path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            e = int(r["epoch"])
            if r["kind"] == "train":
                w = weighted.setdefault(e, [0.0, 0.0])
                w[0] += r["train_loss"] * r["train_steps"]
                w[1] += r["train_steps"]
            elif r["kind"] == "eval":
                curves.setdefault(e, {}).update(
                    {k: float(v) for k, v in r.items() if k.split("/")[0] == "val_loss"})
    for e, (total, steps) in weighted.items():
        curves.setdefault(e, {})["train_loss"] = total / max(steps, 1.0)
    return dict(sorted(curves.items()))
