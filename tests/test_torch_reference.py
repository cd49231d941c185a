"""Tests of the benchmark's PyTorch network (experiments/torch_reference.py): it computes the
project's function, and its train step ends where the project's ``train_steps.train_step``
does.

They need torch, a benchmark-only dependency (``pip install -r requirements-bench.txt``); CI
installs only requirements.txt, so there they are skipped with that reason.
"""

import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from stylenet_jax import batching, train_steps
from stylenet_jax.config import ModelConfig, OptimConfig
from stylenet_jax.model import count_params, predict, select_heads

TORCH_SKIP = ("torch not installed: it is a benchmark-only dependency (pip install -r "
              "requirements-bench.txt); CI installs only requirements.txt, so these tests are "
              "skipped there")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason=TORCH_SKIP)


def _inputs(n, t, seed=1):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, t, 176)) < 0.3).astype(np.float32) * rng.random((n, t, 176))
    return x.astype(np.float32)


@pytest.mark.parametrize("fused, variant", [
    (False, {}), (True, {}), (False, {"bidirectional": False}),
    (True, {"bidirectional": False, "use_interpretation_layer": False}),
    (False, {"use_interpretation_layer": False})],
    ids=["per_layer", "fused_layers", "unidirectional", "fused_bare", "no_interpretation"])
def test_torch_reference_computes_the_jax_function(fused, variant):
    import torch

    from experiments import torch_reference

    config = ModelConfig(num_styles=2, hidden_size=8, num_layers=3, keep_prob=0.8, **variant)
    params = train_steps.init_params(config, jax.random.PRNGKey(0))
    x = _inputs(4, 10)
    lengths = np.array([10, 7, 1, 0], np.int32)  # full, padded, one step, empty
    want = np.asarray(predict(params, x, lengths, config=config))
    for style in range(2):
        model = torch_reference.TorchStyleNet.from_config(config, fused_layers=fused).eval()
        torch_reference.load_jax_params(model, jax.device_get(params), style)
        with torch.no_grad():
            got = model(torch.from_numpy(x), torch.from_numpy(lengths).long()).numpy()
            full = model(torch.from_numpy(x[:1])).numpy()  # lengths=None: the benchmark's path
        np.testing.assert_allclose(got, want[style], atol=1e-5, rtol=0)
        np.testing.assert_allclose(full, want[style][:1], atol=1e-5, rtol=0)
    head = select_heads(params, jnp.array([0]))
    assert sum(p.numel() for p in model.trainable_parameters()) == count_params(head)


@pytest.mark.parametrize("clip, loss", [("per_tensor", "full"), ("global", "full"),
                                        ("per_tensor", "onset"), ("none", "active")])
def test_torch_train_step_matches_the_project_step(clip, loss):
    """Without dropout, three steps of the project's JAX train step and of the torch
    reference (masked MSE over padded rows, clipping and Adam), both built from the same
    ModelConfig and OptimConfig, end at the same losses and parameters."""
    import torch

    from experiments import torch_reference

    # Gradient norms here are 5e-5..4e-3: 3e-4 clips some tensors and not others (and the
    # global norm); lr 1e-2 makes a wrong clip visible in the parameters after 3 steps.
    model_config = ModelConfig(num_styles=1, hidden_size=8, num_layers=2, keep_prob=1.0)
    optim = OptimConfig(clip=clip, clip_norm=3e-4, learning_rate=1e-2, loss=loss)
    configs = {"model_config": model_config, "optim": optim}
    state = train_steps.init_state(jax.random.PRNGKey(0), **configs)
    model = torch_reference.TorchStyleNet.from_config(model_config)
    torch_reference.load_jax_params(model, jax.device_get(state.params))
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=optim.learning_rate)
    torch_step = torch_reference.make_train_step(model, optimizer, optim.clip, optim.clip_norm,
                                                 loss=optim.loss)

    n, t = 3, 10
    rng = np.random.default_rng(2)
    inputs = (rng.random((n, t, 176)) < 0.2).astype(np.uint8)
    targets = rng.random((n, t, 88), dtype=np.float32)
    lengths = np.array([10, 6, 3], np.int32)
    batch = batching.Batch(inputs, targets, lengths, np.zeros(n, np.int32), np.ones(n, bool))
    tl = torch.from_numpy(lengths).long()
    for _ in range(3):
        state, metrics, _ = train_steps.train_step(state, train_steps.zero_metrics(1), batch,
                                                   None, **configs)
        m = jax.device_get(metrics)
        jax_loss = float(m["se"].sum() / m["cells"].sum())
        torch_loss = torch_step(torch.from_numpy(inputs).float(), torch.from_numpy(targets),
                                tl, tl).item()
        assert torch_loss == pytest.approx(jax_loss, abs=1e-6)
    after = torch_reference.TorchStyleNet.from_config(model_config)
    torch_reference.load_jax_params(after, jax.device_get(state.params))
    want = dict(after.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), want[name].detach().numpy(), atol=1e-5,
                                   rtol=0, err_msg=name)
    before = train_steps.init_state(jax.random.PRNGKey(0), **configs).params
    moved = max(float(jnp.abs(a - b).max()) for a, b in
                zip(jax.tree.leaves(state.params), jax.tree.leaves(before)))
    assert moved > 1e-2  # the steps did change the parameters


def test_torch_clip_per_tensor():
    import torch

    from experiments import torch_reference

    a, b = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    a.grad, b.grad = torch.tensor([30.0, 40.0, 0.0]), torch.tensor([0.3, 0.4])
    torch_reference.clip_grads_([a, b], "per_tensor", 10.0)
    np.testing.assert_allclose(a.grad.numpy(), [6.0, 8.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), [0.3, 0.4], rtol=1e-6)  # under the norm: kept


def test_torch_autocast_bfloat16_runs_the_lstm_in_bfloat16():
    """What results/performance_notes.md says of the bf16 runs on a CPU: under autocast,
    nn.LSTM's kernel (oneDNN's) gets bfloat16 input and weights, forward and backward; the
    loss, the parameters and their gradients stay float32."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from experiments import torch_reference

    torch.manual_seed(0)
    model = torch_reference.TorchStyleNet(8, 1)
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=1e-3)
    step = torch_reference.make_train_step(model, optimizer, "per_tensor", 10.0,
                                           autocast_dtype=torch.bfloat16)
    x = (torch.rand(2, 5, 176) < 0.1).float()
    y, n = torch.rand(2, 5, 88), torch.full((2,), 5)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        loss = step(x, y, n)
    rnn = [e for e in prof.events() if "rnn" in e.name or "lstm" in e.name]
    kernels = {e.name for e in rnn if e.input_dtypes[:3] == ["c10::BFloat16"] * 3}
    assert any("backward" not in k for k in kernels) and any("backward" in k for k in kernels), \
        {(e.name, tuple(e.input_dtypes[:3])) for e in rnn}
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32
               for p in model.trainable_parameters())
