"""StyleNet in PyTorch, for the benchmark only (``experiments/bench.py``; the project never
imports torch). Needs ``pip install -r requirements-bench.txt``.

The same network as ``stylenet_jax.model.StyleNet`` with ONE style head, written the way a
PyTorch user would: ``nn.LSTM`` (cuDNN on a GPU) for every layer.

* interpretation layer: unidirectional ``nn.LSTM(176 -> H)``;
* GenreNet head: ``num_layers`` LSTM layers of H (bidirectional unless ``bidirectional=False``),
  then ``nn.Linear(D*H -> 88)`` and a sigmoid (``from_config`` builds it from the project's
  ``ModelConfig``);
* dropout (keep probability ``keep_prob``) exactly where the JAX model has it: on the input
  and the output of every LSTM layer (so twice between two stacked layers). With
  ``fused_layers=True`` the head is ONE ``nn.LSTM(num_layers=L, bidirectional=True)`` call
  (cuDNN runs the whole stack at once); its built-in dropout then acts once between layers,
  not twice: the same function in eval mode, slightly different training noise;
* padding: ``lengths`` (N,) real steps per row, as in JAX; rows shorter than T are packed
  (``pack_padded_sequence``), so the backward direction starts at each row's own last step,
  and outputs at padded steps are 0. ``lengths=None`` means every row is full (no packing:
  what the benchmark runs).

Parameters correspond one to one with the JAX model's (``load_jax_params``): gate order
i, f, g, o in both; JAX weights are (F, 4H) used as ``x @ W``, torch's (4H, F): transposed;
torch's two biases ``b_ih + b_hh`` hold JAX's one ``b`` in ``bias_ih`` while ``bias_hh`` is
held at zero and frozen (``requires_grad=False``), so the trainable tensors, their gradients,
the per-tensor clipping and Adam's updates are the JAX model's. The loss counts the cells of
``OptimConfig.loss`` (full, active, onset), selected by ``stylenet_jax.encoding``'s channels.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from stylenet_jax.config import ModelConfig
from stylenet_jax.encoding import held_channels, onset_channels


def _init_lstm(lstm: nn.LSTM) -> None:
    """JAX model's init: weights U(+-sqrt(6/(F+5H))) per layer, bias_ih forget gate = 1,
    bias_hh = 0 and frozen."""
    h = lstm.hidden_size
    for name, p in lstm.named_parameters():
        if name.startswith("weight_ih"):
            f = p.shape[1]
            limit = math.sqrt(6.0 / (f + 5 * h))
            nn.init.uniform_(p, -limit, limit)
            # the layer's recurrent weight uses the same limit (JAX: same init per layer)
            nn.init.uniform_(getattr(lstm, name.replace("weight_ih", "weight_hh")), -limit, limit)
        elif name.startswith("bias_ih"):
            with torch.no_grad():
                p.zero_()
                p[h: 2 * h] = 1.0
        elif name.startswith("bias_hh"):
            with torch.no_grad():
                p.zero_()
            p.requires_grad_(False)


class TorchStyleNet(nn.Module):
    """One-head StyleNet: (N, T, input_size) -> velocities (N, T, output_size) in [0, 1]."""

    def __init__(self, hidden_size: int = 176, num_layers: int = 3, *, input_size: int = 176,
                 output_size: int = 88, keep_prob: float = 0.8,
                 use_interpretation_layer: bool = True, bidirectional: bool = True,
                 fused_layers: bool = False):
        super().__init__()
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.directions = 2 if bidirectional else 1
        self.fused_layers = fused_layers
        p = 1.0 - keep_prob
        self.drop = nn.Dropout(p)
        self.interpretation = (nn.LSTM(input_size, hidden_size, batch_first=True)
                               if use_interpretation_layer else None)
        first = hidden_size if use_interpretation_layer else input_size
        if fused_layers:
            self.head = nn.LSTM(first, hidden_size, num_layers, batch_first=True,
                                bidirectional=bidirectional,
                                dropout=p if num_layers > 1 else 0.0)
            self.layers = None
        else:
            self.head = None
            width = self.directions * hidden_size
            self.layers = nn.ModuleList(
                nn.LSTM(first if l == 0 else width, hidden_size, batch_first=True,
                        bidirectional=bidirectional) for l in range(num_layers))
        self.out = nn.Linear(self.directions * hidden_size, output_size)
        for lstm in self.lstms():
            _init_lstm(lstm)
        std = (math.sqrt(1.0 / (self.directions * hidden_size))
               / 0.87962566103423978)  # flax lecun_normal
        nn.init.trunc_normal_(self.out.weight, std=std, a=-2 * std, b=2 * std)
        nn.init.zeros_(self.out.bias)

    @classmethod
    def from_config(cls, config: ModelConfig, fused_layers: bool = False) -> "TorchStyleNet":
        """The one-head network of the project's ``config`` (its JAX-only speed settings,
        ``unroll``, ``recurrence``, ``precision`` and ``matmul_dtype``, have no counterpart
        here: the benchmark maps the last two onto TF32 and autocast). ``note_context``,
        ``note_readout`` and ``tempo_input`` have none either: ValueError."""
        if config.note_context:
            raise ValueError("the PyTorch reference has no note-context channels: benchmark "
                             "with --nonote_context")
        if config.note_readout:
            raise ValueError("the PyTorch reference has no note readout: benchmark with "
                             "--note_readout=0")
        if config.tempo_input:
            raise ValueError("the PyTorch reference has no tempo channel: benchmark with "
                             "--notempo_input")
        return cls(config.hidden_size, config.num_layers, input_size=config.input_size,
                   output_size=config.output_size, keep_prob=config.keep_prob,
                   use_interpretation_layer=config.use_interpretation_layer,
                   bidirectional=config.bidirectional, fused_layers=fused_layers)

    def lstms(self) -> list[nn.LSTM]:
        head = [self.head] if self.fused_layers else list(self.layers)
        return ([self.interpretation] if self.interpretation is not None else []) + head

    @staticmethod
    def _run(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if lengths is None:
            return lstm(x)[0]
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True,
                                      enforce_sorted=False)
        return pad_packed_sequence(lstm(packed)[0], batch_first=True,
                                   total_length=x.shape[1])[0]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x: (N, T, F) float32; lengths: (N,) int64 real steps per row, or None = all T."""
        mask = None
        if lengths is not None:
            mask = (torch.arange(x.shape[1], device=x.device)[None, :]
                    < lengths.to(x.device)[:, None])[..., None]
            x = x * mask
        if self.interpretation is not None:
            x = self.drop(self._run(self.interpretation, self.drop(x), lengths))
        if self.fused_layers:
            x = self.drop(self._run(self.head, self.drop(x), lengths))
        else:
            for lstm in self.layers:
                x = self.drop(self._run(lstm, self.drop(x), lengths))
        y = torch.sigmoid(self.out(x))
        return y if mask is None else y * mask

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]


def masked_mse(pred: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor,
               inputs: torch.Tensor | None = None, mode: str = "full") -> torch.Tensor:
    """The JAX project's ``loss.masked_mse``: squared error summed over the counted cells of
    real steps, divided by their number. ``mode``: ``full`` every cell, ``active`` / ``onset``
    the cells whose held / onset channel of ``inputs`` (N, T, 176) is set."""
    weight = (torch.arange(pred.shape[1], device=pred.device)[None, :]
              < lengths[:, None]).to(pred.dtype)[..., None]
    if mode in ("active", "onset"):
        channels = held_channels(inputs) if mode == "active" else onset_channels(inputs)
        weight = weight * (channels > 0).to(pred.dtype)
    elif mode == "full":
        weight = weight.expand_as(pred)
    else:
        raise ValueError(f"loss mode must be full, active or onset, got {mode!r}")
    return (torch.square(pred - targets) * weight).sum() / torch.clamp(weight.sum(), min=1.0)


def clip_grads_(params: Iterable[torch.Tensor], mode: str, max_norm: float) -> None:
    """In place. ``per_tensor``: each gradient ``g * max_norm / max(|g|, max_norm)`` (the JAX
    project's ``clip_by_tensor_norm``, TF's per-variable ``clip_by_norm``); ``global``:
    ``clip_grad_norm_`` over all (= ``optax.clip_by_global_norm``); ``none``."""
    params = list(params)
    grads = [p.grad for p in params if p.grad is not None]
    if mode == "none" or not grads:
        return
    if mode == "global":
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        return
    if mode != "per_tensor":
        raise ValueError(f"clip must be per_tensor, global or none, got {mode!r}")
    norms = torch.stack(torch._foreach_norm(grads))  # one kernel for all norms
    scales = max_norm / torch.clamp(norms, min=max_norm)
    torch._foreach_mul_(grads, list(scales.unbind()))


def make_train_step(model: TorchStyleNet, optimizer: torch.optim.Optimizer, clip: str,
                    clip_norm: float, autocast_dtype: torch.dtype | None = None,
                    loss: str = "full"):
    """``step(x, targets, lengths, packed_lengths=None) -> loss``: one training step
    (forward, masked MSE over the ``loss`` cells, backward, clip, Adam). ``packed_lengths``
    is passed to the model (None = full rows, no packing); ``lengths`` masks the loss.

    ``autocast_dtype`` (e.g. ``torch.bfloat16``): the forward pass runs under
    ``torch.autocast(x.device.type, dtype=autocast_dtype)`` (matmuls and, on the CPU,
    oneDNN's LSTM kernel in that dtype; parameters, gradients and Adam stay float32), the
    loss is taken in float32 and the backward pass runs outside autocast, as PyTorch's AMP
    recipe has it."""
    params = model.trainable_parameters()

    def step(x, targets, lengths, packed_lengths=None):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=autocast_dtype or torch.bfloat16,
                            enabled=autocast_dtype is not None):
            pred = model(x, packed_lengths)
        value = masked_mse(pred.float(), targets, lengths, x, loss)
        value.backward()
        clip_grads_(params, clip, clip_norm)
        optimizer.step()
        return value

    return step


# ----------------------------------------------------------------------------- JAX params


def _np(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _set(p: torch.Tensor, value: np.ndarray) -> None:
    if tuple(p.shape) != value.shape:
        raise ValueError(f"shape mismatch: torch {tuple(p.shape)} vs JAX {value.shape}")
    with torch.no_grad():
        p.copy_(torch.tensor(value, dtype=p.dtype))


def _load_layer(lstm: nn.LSTM, index: int, layer: Mapping[str, Any], directions: int) -> None:
    # (D, F, 4H), (D, H, 4H), (D, 4H)
    w_ih, w_hh, b = _np(layer["w_ih"]), _np(layer["w_hh"]), _np(layer["b"])
    if w_ih.shape[0] != directions:
        raise ValueError(f"expected {directions} directions, JAX layer has {w_ih.shape[0]}")
    for d in range(directions):
        suffix = f"l{index}" + ("_reverse" if d == 1 else "")
        _set(getattr(lstm, f"weight_ih_{suffix}"), w_ih[d].T)
        _set(getattr(lstm, f"weight_hh_{suffix}"), w_hh[d].T)
        _set(getattr(lstm, f"bias_ih_{suffix}"), b[d])
        _set(getattr(lstm, f"bias_hh_{suffix}"), np.zeros_like(b[d]))


def load_jax_params(model: TorchStyleNet, params: Mapping[str, Any], style: int = 0) -> None:
    """Copies a JAX StyleNet parameter tree (``{'interpretation_lstm', 'heads'}``, numpy or
    jax arrays; head leaves with a leading style axis S) into ``model``: head ``style``."""
    if model.interpretation is not None:
        _load_layer(model.interpretation, 0, params["interpretation_lstm"], 1)
    heads = params["heads"]
    for l in range(model.num_layers):
        layer = {k: _np(v)[style] for k, v in heads[f"layer_{l}"].items()}
        if model.fused_layers:
            _load_layer(model.head, l, layer, model.directions)
        else:
            _load_layer(model.layers[l], 0, layer, model.directions)
    _set(model.out.weight, _np(heads["out"]["kernel"])[style].T)
    _set(model.out.bias, _np(heads["out"]["bias"])[style])
