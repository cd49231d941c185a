"""A training snapshot PNG like the paper's Fig. 17 (matplotlib Agg via ``Figure``).

Panels, time on the x axis: the input notes, the true velocities, each style head's
prediction, the own head's prediction minus the truth, and the interpretation layer's
activations. ``save_snapshot`` only plots arrays; ``write_snapshot`` runs the model first.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from stylenet_jax.batching import Windows
from stylenet_jax.config import ModelConfig
from stylenet_jax.encoding import held_channels
from stylenet_jax.model import predict


def save_snapshot(path: str, inputs: np.ndarray, target: np.ndarray, predictions: np.ndarray,
                  styles: Sequence[str], own_style: int,
                  interpretation: np.ndarray | None = None, title: str = "") -> str:
    """Writes the PNG and returns ``path``.

    Args:
      inputs: (T, 176) the model input ([played now, held] per key).
      target: float32 (T, 88) true velocities in [0, 1].
      predictions: float32 (S, T, 88) every head's velocities.
      styles: S style names; own_style: index of the song's own style.
      interpretation: float32 (T, H) interpretation-layer activations, or None.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI

    held = held_channels(np.asarray(inputs)).astype(np.float32)
    panels = [("input (held notes)", held, "Greys", 0.0, 1.0),
              (f"true velocities ({styles[own_style]})", target, "viridis", 0.0, 1.0)]
    panels += [(f"{s} head", predictions[i], "viridis", 0.0, 1.0) for i, s in enumerate(styles)]
    diff = predictions[own_style] - target
    panels.append((f"{styles[own_style]} head - true", diff, "RdBu_r", -1.0, 1.0))
    if interpretation is not None:
        panels.append(("interpretation layer", interpretation, "RdBu_r", -1.0, 1.0))
    fig = Figure(figsize=(10, 1.7 * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)
    for ax, (name, image, cmap, lo, hi) in zip(axes[:, 0], panels):
        im = ax.imshow(np.asarray(image).T, aspect="auto", origin="lower", cmap=cmap,
                       vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
        ax.tick_params(labelsize=6)
        fig.colorbar(im, ax=ax, pad=0.01, fraction=0.02)
    axes[-1, 0].set_xlabel("time step (1/16 note)")
    if title:
        fig.suptitle(title, fontsize=9)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    return path


def write_snapshot(path: str, config: ModelConfig, params: Any, song: Windows,
                   styles: Sequence[str], title: str, max_steps: int = 400) -> str:
    """The Fig. 17-style PNG of the first ``max_steps`` steps (whole windows, at least one)
    of ``song``, read as ONE sequence, by every head of ``params`` (``model.predict``); the same
    song every time, so it compiles once."""
    k = max(1, -(-max_steps // song.inputs.shape[1]))
    inputs = song.inputs[:k].reshape(1, -1, song.inputs.shape[-1])
    targets = song.targets[:k].reshape(-1, song.targets.shape[-1])
    n = int(song.lengths[:k].sum())
    priors = (None if song.priors is None  # the song's own style's, shown to every head
              else song.priors[:k].reshape(1, -1, song.priors.shape[-1]))
    vel, inter = predict(params, inputs, np.array([n], np.int32), config=config,
                         with_interpretation=True,
                         seconds_per_beat=np.array([song.seconds_per_beat], np.float32),
                         priors=priors)
    vel = np.asarray(vel)[:, 0, :n]
    inter = None if inter is None else np.asarray(inter)[0, :n]
    return save_snapshot(path, inputs[0, :n], targets[:n], vel, styles, song.style, inter,
                         title=f"{title} - {song.id}")
