"""experiments.classifier_baselines: the classifier calibrated on systems with no training."""

import os
import subprocess
import sys

import numpy as np

from experiments import classifier_baselines
from midi_factory import midi_file, notes_track
from performer_factory import ROOT
from stylenet_jax import performances


def _pieces(folder, count):
    """``count`` classical pieces of about 24 s, quavers at 120 bpm with random velocities."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(count)
    for k in range(count):
        notes = [(i * 240, i * 240 + 200, int(rng.integers(40, 80)), int(rng.integers(20, 110)))
                 for i in range(96)]
        midi_file(notes_track(notes), ticks_per_beat=480).save(
            os.path.join(folder, f"piece{k}.mid"))
    return folder


def test_the_baselines_are_flat_random_and_the_pianist_shuffled(tmp_path):
    performed = performances.from_folder(_pieces(str(tmp_path), 2), "classical")
    systems = classifier_baselines.baseline_systems(performed, seed=1)
    for p, flat, noise, shuffled in zip(performed, *systems.values()):
        human = p.notes.velocity.astype(np.int64)
        assert (flat == 64).all() and flat.shape == human.shape
        assert noise.min() >= 1 and noise.max() <= 127 and noise.shape == human.shape
        assert sorted(shuffled) == sorted(human) and not np.array_equal(shuffled, human)
    again = classifier_baselines.baseline_systems(performed, seed=1)
    assert all(np.array_equal(a, b) for k in systems for a, b in zip(systems[k], again[k]))


def _run(folder):
    return subprocess.run(
        [sys.executable, "-m", "experiments.classifier_baselines", f"--midi_dir={folder}",
         "--files_style=classical", "--steps=20", "--whole_piece_steps=20"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_command_prints_each_system_at_both_lengths_and_needs_two_pieces(tmp_path):
    done = _run(_pieces(str(tmp_path / "two"), 2))
    assert done.returncode == 0, done.stderr
    for system in ("constant_64", "random_uniform", "shuffled_human"):
        for length in ("10 s", "whole"):
            assert any(line.startswith(system) and f" {length}" in line and "accuracy" in line
                       for line in done.stdout.splitlines()), (system, length, done.stdout)
    alone = _run(_pieces(str(tmp_path / "one"), 1))
    assert alone.returncode == 2 and alone.stderr.startswith("error: ")
    assert alone.stderr.count("\n") == 1 and "two pieces" in alone.stderr
