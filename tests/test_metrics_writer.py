"""stylenet_jax.metrics_writer: reading a run's metrics.jsonl back as per-epoch curves."""

import json

import pytest

from stylenet_jax.metrics_writer import read_epoch_curves


def test_epoch_curves_weight_train_records_by_steps(tmp_path):
    path = tmp_path / "metrics.jsonl"
    records = [{"kind": "train", "epoch": 1, "step": 5, "train_loss": 0.3, "train_steps": 100},
               {"kind": "train", "epoch": 1, "step": 9, "train_loss": 0.1, "train_steps": 300},
               {"kind": "eval", "epoch": 1, "step": 9, "val_loss": 0.2, "val_loss/jazz": 0.4,
                "val_mean_velocity": 60.0},
               {"kind": "train", "epoch": 2, "step": 12, "train_loss": 0.05, "train_steps": 10}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "\n")  # a blank line too
    curves = read_epoch_curves(str(path))
    assert curves[1]["train_loss"] == pytest.approx((0.3 * 100 + 0.1 * 300) / 400)
    assert curves[1]["val_loss"] == 0.2 and "val_loss" not in curves[2]
    assert curves[1]["val_loss/jazz"] == 0.4 and "val_mean_velocity" not in curves[1]
