"""Orbax checkpoints of a training run, and an inference-only export.

A run's checkpoints live in ONE Orbax manager, ``<workdir>/checkpoints/<step>/``, which keeps
the newest ``keep`` and the best on validation (lowest ``val_loss``, saved as the step's
metric), so one save per epoch writes both and no kill can leave them out of step. (Run
directories written before this layout keep their best in ``<workdir>/best/``; they are still
read.) Each checkpoint holds two items:

* ``state``: the train state pytree (params, optimizer state, step, PRNG key), float32;
* ``meta``: JSON: ``{"epoch": completed epochs, "model_config": ModelConfig as a dict,
  "styles": [style names in head order], "val_loss": float | None, ...}``,
  so a checkpoint alone rebuilds the model (``restore_params``).

An inference export (``export_inference``) is ONE ``.npz`` file: every parameter cast to
float16 under its '/'-joined path, plus ``__meta__``: the JSON of model config and styles.
An ensemble export (``export_ensemble``) is one such file holding several models of the same
styles, member k's parameters under ``member<k>/``, and ``__meta__`` listing each member's
config and styles; ``performer.Stylizer`` plays the mean of its members' velocities.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
import shutil
from typing import Any, Mapping, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp

from stylenet_jax.config import ModelConfig
from stylenet_jax.ensemble_plays import META_KEY as _META_KEY, check_plays

CHECKPOINTS = "checkpoints"
BEST = "best"  # the best checkpoint's folder in run directories of the old two-manager layout
EXPORT_FORMAT = "stylenet-jax-inference"
TMP_PATTERN = "*.orbax-checkpoint-tmp*"  # Orbax's folder for a save in progress
INFERENCE_FILE = "inference.npz"  # a run's export, in its workdir
MEMBER_PREFIX = "member"  # an ensemble export's member k lives under member<k>/


class _OrbaxChatter(logging.Filter):
    """Drops Orbax's INFO lines (a dozen per save or restore) and its warning that an epoch
    without validation saved no metric; its other warnings and errors pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if f"{os.sep}orbax{os.sep}" not in record.pathname:
            return True
        message = record.getMessage()
        return (record.levelno >= logging.WARNING and "tracked_metric" not in message
                and "Metadata file does not exist" not in message)


logging.getLogger("absl").addFilter(_OrbaxChatter())


class CheckpointError(RuntimeError):
    """A checkpoint or export is missing, unreadable, or does not fit the run."""


def _manager(directory: str, keep: int | None) -> ocp.CheckpointManager:
    """The run's manager: the newest ``keep`` (None: all) and the lowest ``val_loss``."""
    policies = ocp.checkpoint_managers
    preserve = policies.AnyPreservationPolicy([
        policies.LatestN(n=keep),
        policies.BestN(get_metric_fn=_val_loss, reverse=True, n=1,
                       keep_checkpoints_without_metrics=False)])
    options = ocp.CheckpointManagerOptions(
        create=True, enable_async_checkpointing=False, preservation_policy=preserve,
        # best_fn makes a reopened manager read the kept steps' metrics back, so a resumed
        # run still knows (and keeps) its best.
        best_fn=_val_loss, best_mode="min", keep_checkpoints_without_metrics=False)
    return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def _val_loss(metrics: Mapping[str, float]) -> float:
    return float(metrics["val_loss"])


class RunCheckpoints:
    """The checkpoints of one run directory: the newest ``keep`` and the best on validation."""

    def __init__(self, workdir: str, keep: int | None = 3, *, directory: str | None = None):
        """``directory``: the checkpoint folder itself (default ``workdir/checkpoints``);
        ``keep`` None keeps every step (for reading)."""
        self.workdir = workdir
        directory = directory or os.path.join(workdir, CHECKPOINTS)
        if keep is not None:  # a writer: drop what a save killed half-way left behind
            for partial in glob.glob(os.path.join(glob.escape(directory), TMP_PATTERN)):
                shutil.rmtree(partial, ignore_errors=True)
        self.manager = _manager(directory, keep)

    def save(self, step: int, state: Any, meta: Mapping[str, Any],
             val_loss: float | None = None) -> None:
        """Saves ``state`` and JSON ``meta`` as checkpoint ``step``, with its validation loss
        (None: not evaluated; such a step is kept only while among the newest). Synchronous:
        on return the files are complete."""
        metrics = None if val_loss is None else {"val_loss": float(val_loss)}
        self.manager.save(int(step), metrics=metrics, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(dict(meta))))
        self.manager.wait_until_finished()

    def latest_step(self) -> int | None:
        """Step of the newest kept checkpoint, None if there is none."""
        return self.manager.latest_step()

    def best_step(self) -> int | None:
        """Step of the kept checkpoint of lowest validation loss, None if none was evaluated."""
        return self.manager.best_step()  # steps saved without metrics are not ranked

    def meta(self, step: int | None = None) -> dict:
        """The JSON meta of checkpoint ``step`` (None: the newest) without its arrays."""
        step = self.manager.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"{self.manager.directory}: no checkpoint")
        return _meta(self.manager, step)

    def best_meta(self) -> dict | None:
        """The meta of the best checkpoint, None if there is none."""
        step = self.best_step()
        return None if step is None else _meta(self.manager, step)

    def restore(self, target: Any, step: int | None = None) -> tuple[Any, dict]:
        """Restores (state shaped like ``target``, meta) of ``step`` (None: the newest).

        Raises CheckpointError if there is none or it does not match ``target``.
        """
        step = self.manager.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"{self.manager.directory}: no checkpoint to restore")
        return _restore(self.manager, step, target)

    def close(self) -> None:
        self.manager.close()


def _meta(manager: ocp.CheckpointManager, step: int) -> dict:
    try:
        out = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    except Exception as e:  # noqa: BLE001 - Orbax raises many types
        raise CheckpointError(f"{manager.directory}/{step}: unreadable meta "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
    return dict(out["meta"])


def _local_target(manager: ocp.CheckpointManager, step: int) -> Any:
    """The saved state's shapes and dtypes, placed on this process's first device: a
    checkpoint saved by any mesh or number of processes restores here as plain arrays."""
    saved = ocp.StandardCheckpointer().metadata(
        os.path.join(str(manager.directory), str(step), "state"))
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        getattr(saved, "item_metadata", saved),
                        is_leaf=lambda m: hasattr(m, "shape") and hasattr(m, "dtype"))


def _restore(manager: ocp.CheckpointManager, step: int, target: Any | None) -> tuple[Any, dict]:
    """(state, meta) of ``step``: shaped and placed like ``target`` (a pytree of arrays or
    ``jax.ShapeDtypeStruct``), or, for None, as saved on this process's first device."""
    try:
        abstract = (_local_target(manager, step) if target is None else
                    jax.tree.map(ocp.utils.to_shape_dtype_struct, target))
        out = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    except Exception as e:  # Orbax raises many types (FileNotFound, ValueError, KeyError...)
        raise CheckpointError(f"{manager.directory}/{step}: cannot restore "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
    return out["state"], dict(out["meta"])


def restore_params(path: str, step: int | None = None, *,
                   best: bool = False) -> tuple[Any, ModelConfig, list[str]]:
    """(params float32, ModelConfig, styles) from a run's workdir or a checkpoint folder:
    checkpoint ``step``, else (``best``) the best on validation if any was evaluated, else
    the newest. Needs no other file than the checkpoint."""
    directory = path
    if os.path.isdir(os.path.join(path, CHECKPOINTS)):
        directory = os.path.join(path, CHECKPOINTS)
    if not os.path.isdir(directory):
        raise CheckpointError(f"{path}: no such checkpoint directory")
    candidates = [directory]
    legacy_best = os.path.join(path, BEST)
    if best and step is None and os.path.isdir(legacy_best) and os.listdir(legacy_best):
        candidates.append(legacy_best)  # a run written before one manager kept the best
    found = []  # (val_loss or inf, directory, step)
    for folder in candidates:
        run = RunCheckpoints(path, None, directory=folder)
        try:
            chosen = step
            if chosen is None:
                chosen = run.best_step() if best else None
                chosen = run.latest_step() if chosen is None else chosen
            if chosen is not None:
                loss = run.meta(chosen).get("val_loss") if best and step is None else None
                found.append((float("inf") if loss is None else loss, folder, chosen))
        finally:
            run.close()
    if not found:
        raise CheckpointError(f"{directory}: no checkpoint in it")
    _, folder, chosen = min(found, key=lambda f: f[0])
    run = RunCheckpoints(path, None, directory=folder)
    try:
        state, meta = _restore(run.manager, chosen, None)
    finally:
        run.close()
    params = state["params"] if isinstance(state, Mapping) else state.params
    return params, _config(meta, folder), list(meta["styles"])


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
    _check_styles(config, styles)
    meta = {"format": EXPORT_FORMAT, "version": 1, "model_config": dataclasses.asdict(config),
            "styles": list(styles)}
    return _write_export(path, _flatten(jax.device_get(params)), meta)


def export_ensemble(path: str, members: Sequence[tuple[Mapping[str, Any], ModelConfig,
                                                       Sequence[str]]],
                    plays: Sequence[Sequence[str] | None] | None = None) -> str:
    """Writes several models, each ``(params, config, styles)``, to ONE ``.npz`` file at
    ``path`` (float16, suffix added if missing), member k's parameters under
    ``member<k>/``. Every member must have the same styles in the same order (their configs
    may differ). ``plays``: per member, None (every style) or the styles it alone plays
    (``ensemble_plays``). Returns the path written; raises ValueError for fewer than two
    members, styles that differ, or a bad ``plays``."""
    if len(members) < 2:
        raise ValueError(f"an ensemble needs two models or more, got {len(members)}")
    styles = list(members[0][2])
    flat, described = {}, []
    for k, (params, config, member_styles) in enumerate(members):
        _check_styles(config, member_styles)
        if list(member_styles) != styles:
            raise ValueError(f"model {k + 1} plays styles {list(member_styles)}, model 1 "
                             f"{styles}: an ensemble's models must have the same styles")
        flat.update(_flatten(jax.device_get(params), f"{MEMBER_PREFIX}{k}/"))
        described.append({"model_config": dataclasses.asdict(config), "styles": styles})
    for member, chosen, asked in zip(described, check_plays(plays or [None] * len(members),
                                                            styles), plays or []):
        if asked is not None:  # an unrestricted member is written as before
            member["plays"] = chosen
    return _write_export(path, flat, {"format": EXPORT_FORMAT, "version": 1,
                                      "members": described})


def _check_styles(config: ModelConfig, styles: Sequence[str]) -> None:
    if len(styles) != config.num_styles:
        raise ValueError(f"{len(styles)} style names for {config.num_styles} heads")


def _write_export(path: str, flat: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> str:
    """Writes ``flat`` parameters as float16 and ``meta`` as JSON, atomically."""
    if not path.endswith(".npz"):
        path += ".npz"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **{k: v.astype(np.float16) for k, v in flat.items()},
             **{_META_KEY: np.array(json.dumps(meta))})
    os.replace(tmp, path)
    return path


def export_run(workdir: str, last_params: Mapping[str, Any], config: ModelConfig,
               styles: Sequence[str]) -> str:
    """Exports a finished run to ``workdir/inference.npz``: its best checkpoint's parameters,
    else ``last_params`` (a run without validation keeps no best). Returns the path. In a
    run of several processes every process calls it and process 0 writes."""
    try:
        last_params, config, styles = restore_params(workdir, best=True)
    except CheckpointError:
        pass  # nothing saved (e.g. --checkpoint_every_epochs beyond the run): the last state
    path = os.path.join(workdir, INFERENCE_FILE)
    if jax.process_index() == 0:  # every process restores (collectively); one writes
        export_inference(path, last_params, config, styles)
    return path


def load_inference(path: str) -> tuple[dict, ModelConfig, list[str]]:
    """Reads an ``export_inference`` file: (params as float32 numpy, ModelConfig, styles).
    Raises CheckpointError as ``load_models`` does, and for an ensemble export."""
    models = load_models(path)
    if len(models) != 1:
        raise CheckpointError(f"{path}: an ensemble of {len(models)} models, not one model "
                              f"(stylize and experiments.evaluate read it)")
    return models[0]


def load_models_at(path: str) -> list[tuple[dict, ModelConfig, list[str]]]:
    """``load_models`` of an export file, or for a training run directory its best (else
    newest) checkpoint's ``(params as numpy, ModelConfig, styles)`` as a list of one."""
    if os.path.isdir(path):
        params, config, styles = restore_params(path, best=True)
        return [(jax.device_get(params), config, styles)]
    return load_models(path)


def load_models(path: str) -> list[tuple[dict, ModelConfig, list[str]]]:
    """Reads an ``export_inference`` or ``export_ensemble`` file: one ``(params as float32
    numpy, ModelConfig, styles)`` per model in it (one for a plain export).

    Raises CheckpointError (one-line message) if the file is missing or not a sound export:
    unreadable (truncated, empty, corrupted members), metadata of the wrong kind, or
    parameters that are not finite. Whether the parameters fit the model their config
    describes is ``model.param_problem``'s check (``performer.Stylizer`` runs it).
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
    problem = _check_params(flat)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    if "members" not in meta:
        return [(_unflatten(flat), *_config_and_styles(meta, path))]
    described = meta["members"]
    if not isinstance(described, list) or len(described) < 2 or not all(
            isinstance(m, dict) for m in described):
        raise CheckpointError(f"{path}: bad ensemble metadata (need two members or more)")
    models = []
    for k, member in enumerate(described):
        prefix = f"{MEMBER_PREFIX}{k}/"
        params = _unflatten({name[len(prefix):]: v for name, v in flat.items()
                             if name.startswith(prefix)})
        if not params:
            raise CheckpointError(f"{path}: ensemble member {k + 1} has no parameters")
        models.append((params, *_config_and_styles(member, f"{path} (member {k + 1})")))
    if any(styles != models[0][2] for _, _, styles in models):
        raise CheckpointError(f"{path}: the ensemble's members have different styles")
    return models


def _config_and_styles(meta: Mapping[str, Any], where: str) -> tuple[ModelConfig, list[str]]:
    config = _config(meta, where)
    styles = meta.get("styles")
    if (not isinstance(styles, list) or not all(isinstance(s, str) and s for s in styles)
            or len(set(styles)) != len(styles) or len(styles) != config.num_styles):
        raise CheckpointError(f"{where}: bad styles in the metadata (need {config.num_styles} "
                              f"distinct names, got {_first_line(styles)[:100]})")
    return config, list(styles)


def _first_line(x: Any) -> str:
    lines = str(x).splitlines()
    return lines[0][:200] if lines else ""


def _check_params(flat: Mapping[str, np.ndarray]) -> str | None:
    """Why ``flat`` parameters cannot be used (one line), or None. Whether they fit the model
    config is ``model.param_problem``'s to say (this module does not import the model)."""
    bad = [k for k in sorted(flat) if not np.isfinite(flat[k]).all()]
    if bad:
        return f"non-finite values (NaN or inf) in {', '.join(bad[:3])}" + (
            f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    return None
