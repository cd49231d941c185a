"""Orbax checkpoints of a training run, and an inference-only export.

A training checkpoint (``<workdir>/checkpoints/<step>/``, last ``keep`` kept, and
``<workdir>/best/<step>/``, the best on validation) holds two items:

* ``state``: the train state pytree (params, optimizer state, step, PRNG key), float32;
* ``meta``: JSON: ``{"epoch": completed epochs, "model_config": ModelConfig as a dict,
  "styles": [style names in head order], "val_loss": float | None, ...}``,
  so a checkpoint alone rebuilds the model (``restore_params``).

An inference export (``export_inference``) is ONE ``.npz`` file: every parameter cast to
float16 under its '/'-joined path, plus ``__meta__``: the JSON of model config and styles.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp

from stylenet_jax.config import ModelConfig

CHECKPOINTS = "checkpoints"
BEST = "best"
_META_KEY = "__meta__"
EXPORT_FORMAT = "stylenet-jax-inference"
INFERENCE_FILE = "inference.npz"  # a run's export, in its workdir


class CheckpointError(RuntimeError):
    """A checkpoint or export is missing, unreadable, or does not fit the run."""


def _manager(directory: str, keep: int | None) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(os.path.abspath(directory), options=options)


class RunCheckpoints:
    """The checkpoints of one run directory: the last ``keep`` and the best on validation."""

    def __init__(self, workdir: str, keep: int = 3):
        self.workdir = workdir
        self.latest = _manager(os.path.join(workdir, CHECKPOINTS), keep)
        self.best = _manager(os.path.join(workdir, BEST), 1)

    def save(self, step: int, state: Any, meta: Mapping[str, Any], *, best: bool = False) -> None:
        """Saves ``state`` and JSON ``meta`` as checkpoint ``step`` (also as the best if
        ``best``). Synchronous: on return the files are complete."""
        managers = [self.latest] + ([self.best] if best else [])
        for m in managers:
            m.save(int(step), args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                      meta=ocp.args.JsonSave(dict(meta))))
            m.wait_until_finished()

    def latest_step(self) -> int | None:
        """Step of the newest kept checkpoint, None if there is none."""
        return self.latest.latest_step()

    def meta(self, step: int | None = None) -> dict:
        """The JSON meta of checkpoint ``step`` (None: the newest) without its arrays."""
        step = self.latest.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"{self.latest.directory}: no checkpoint")
        return _meta(self.latest, step)

    def best_meta(self) -> dict | None:
        """The meta of the best checkpoint, None if there is none."""
        step = self.best.latest_step()
        return None if step is None else _meta(self.best, step)

    def restore(self, target: Any, step: int | None = None) -> tuple[Any, dict]:
        """Restores (state shaped like ``target``, meta) of ``step`` (None: the newest).

        Raises CheckpointError if there is none or it does not match ``target``.
        """
        step = self.latest.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"{self.latest.directory}: no checkpoint to restore")
        return _restore(self.latest, step, target)

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def _meta(manager: ocp.CheckpointManager, step: int) -> dict:
    try:
        out = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    except Exception as e:  # noqa: BLE001 - Orbax raises many types
        raise CheckpointError(f"{manager.directory}/{step}: unreadable meta "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
    return dict(out["meta"])


def _restore(manager: ocp.CheckpointManager, step: int, target: Any | None) -> tuple[Any, dict]:
    abstract = None if target is None else jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    try:
        out = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    except Exception as e:  # Orbax raises many types (FileNotFound, ValueError, KeyError...)
        raise CheckpointError(f"{manager.directory}/{step}: cannot restore "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
    return out["state"], dict(out["meta"])


def restore_params(path: str, step: int | None = None) -> tuple[Any, ModelConfig, list[str]]:
    """(params float32, ModelConfig, styles) from a run's workdir, or its ``checkpoints`` or
    ``best`` folder; ``step`` None = the newest. Needs no other file than the checkpoint."""
    directory = path
    if os.path.isdir(os.path.join(path, CHECKPOINTS)):
        directory = os.path.join(path, CHECKPOINTS)
    if not os.path.isdir(directory):
        raise CheckpointError(f"{path}: no such checkpoint directory")
    manager = _manager(directory, None)
    try:
        step = manager.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"{directory}: no checkpoint in it")
        state, meta = _restore(manager, step, None)
    finally:
        manager.close()
    params = state["params"] if isinstance(state, Mapping) else state.params
    return params, _config(meta, directory), list(meta["styles"])


def _config(meta: Mapping[str, Any], where: str) -> ModelConfig:
    try:
        if not isinstance(meta["model_config"], Mapping):
            raise TypeError(f"not a mapping: {_first_line(meta['model_config'])[:100]}")
        return ModelConfig.from_dict(meta["model_config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{where}: bad model config in checkpoint ({e})") from None


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for k, v in tree.items():
        if "/" in k or k == _META_KEY:
            raise ValueError(f"parameter name {k!r} cannot be exported")
        if isinstance(v, Mapping):
            flat.update(_flatten(v, f"{prefix}{k}/"))
        else:
            flat[f"{prefix}{k}"] = np.asarray(v)
    return flat


def _unflatten(flat: Mapping[str, np.ndarray]) -> dict:
    tree: dict = {}
    for path, v in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return tree


def export_inference(path: str, params: Mapping[str, Any], config: ModelConfig,
                     styles: Sequence[str]) -> str:
    """Writes params (cast to float16) + config + styles to ONE ``.npz`` file at ``path``
    (suffix added if missing); no optimizer state. Returns the path written."""
    if not path.endswith(".npz"):
        path += ".npz"
    if len(styles) != config.num_styles:
        raise ValueError(f"{len(styles)} style names for {config.num_styles} heads")
    flat = {k: v.astype(np.float16) for k, v in _flatten(jax.device_get(params)).items()}
    meta = {"format": EXPORT_FORMAT, "version": 1, "model_config": dataclasses.asdict(config),
            "styles": list(styles)}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **flat, **{_META_KEY: np.array(json.dumps(meta))})
    os.replace(tmp, path)
    return path


def export_run(workdir: str, last_params: Mapping[str, Any], config: ModelConfig,
               styles: Sequence[str]) -> str:
    """Exports a finished run to ``workdir/inference.npz``: its best checkpoint's parameters,
    else ``last_params`` (a run without validation keeps no best). Returns the path."""
    best = os.path.join(workdir, BEST)
    if os.path.isdir(best) and os.listdir(best):
        last_params, config, styles = restore_params(best)
    return export_inference(os.path.join(workdir, INFERENCE_FILE), last_params, config, styles)


def load_inference(path: str) -> tuple[dict, ModelConfig, list[str]]:
    """Reads an ``export_inference`` file: (params as float32 numpy, ModelConfig, styles).

    Raises CheckpointError (one-line message) if the file is missing or not a sound export:
    unreadable (truncated, empty, corrupted members), metadata of the wrong kind, parameters
    missing, extra or of the wrong shape for the model its config describes (checked against
    ``jax.eval_shape`` of the model's init), or not finite.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z[_META_KEY]))
            flat = {k: z[k].astype(np.float32) for k in z.files if k != _META_KEY}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such inference export") from None
    except Exception as e:  # noqa: BLE001 - zipfile, zlib, numpy and json raise many types
        raise CheckpointError(f"{path}: not a stylenet-jax inference export "
                              f"({type(e).__name__}: {_first_line(e)})") from None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{path}: not a {EXPORT_FORMAT} file")
    config = _config(meta, path)
    styles = meta.get("styles")
    if (not isinstance(styles, list) or not all(isinstance(s, str) and s for s in styles)
            or len(set(styles)) != len(styles) or len(styles) != config.num_styles):
        raise CheckpointError(f"{path}: bad styles in the metadata (need {config.num_styles} "
                              f"distinct names, got {_first_line(styles)[:100]})")
    problem = _check_params(flat, config)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    return _unflatten(flat), config, list(styles)


def _first_line(x: Any) -> str:
    lines = str(x).splitlines()
    return lines[0][:200] if lines else ""


def expected_param_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """{'/'-joined parameter path: shape} of ``StyleNet(config)``, from ``jax.eval_shape`` of
    its init (nothing is computed or allocated)."""
    import jax.numpy as jnp

    from stylenet_jax.model import StyleNet

    # The speed-only fields change no parameter; these values trace fastest (0.1 s, not 0.3).
    config = dataclasses.replace(config, unroll=1, recurrence="autodiff")

    def init():
        return StyleNet(config).init(jax.random.key(0), jnp.zeros((1, 1, config.input_size)),
                                     jnp.ones((1,), jnp.int32), train=False)["params"]

    leaves, _ = jax.tree_util.tree_flatten_with_path(jax.eval_shape(init))
    return {"/".join(str(getattr(k, "key", k)) for k in p): tuple(v.shape) for p, v in leaves}


def _check_params(flat: Mapping[str, np.ndarray], config: ModelConfig) -> str | None:
    """Why ``flat`` parameters do not fit ``config`` (one line), or None if they do."""
    if config.num_layers > len(flat):  # every layer has parameters: bound before tracing
        return f"{len(flat)} parameters cannot make {config.num_layers} layers"
    try:
        expected = expected_param_shapes(config)
    except Exception as e:  # noqa: BLE001 - a config of odd values fails in many ways
        return f"its model config does not build a model ({type(e).__name__}: {_first_line(e)})"
    missing = sorted(set(expected) - set(flat))
    extra = sorted(set(flat) - set(expected))
    wrong = [f"{k} {flat[k].shape} (need {expected[k]})" for k in sorted(expected)
             if k in flat and flat[k].shape != expected[k]]
    for what, names in (("missing parameters", missing), ("unexpected parameters", extra),
                        ("parameters of the wrong shape", wrong)):
        if names:
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            return f"{what} for its model config: {', '.join(names[:3])}{more}"
    bad = [k for k in sorted(flat) if not np.isfinite(flat[k]).all()]
    if bad:
        return f"non-finite values (NaN or inf) in {', '.join(bad[:3])}" + (
            f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    return None
