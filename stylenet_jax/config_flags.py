"""absl flags derived from ``config``'s dataclass fields, and the ``Config`` they describe.

Why generated flags and not ml_collections' ``config_flags``: the user's interface is flat
absl flags and flagfiles (``--hidden_size=176`` in ``experiments/configs/*.flags``), which
every README command, ablation flagfile and shipped recipe already uses; ``config_flags``
would rename them all to ``--config.model.hidden_size`` and add a dependency. Generating one
flat flag per field keeps that interface, keeps ``--help`` listing every setting with its doc
line, and leaves the field (type, default, doc, choices) as the one definition.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Collection, Iterator

from absl import flags

from stylenet_jax.config import Config


def fields(cls: type = Config, names: Collection[str] | None = None,
           ) -> Iterator[tuple[str, dataclasses.Field, str]]:
    """(group, field, flag name) of every flag-bearing leaf field of ``Config``'s groups (or
    of one group class); ``names``: only the fields with these flag names."""
    groups = ([(g.name, g.default_factory) for g in dataclasses.fields(Config)]
              if cls is Config else [("", cls)])
    for group, group_cls in groups:
        for f in dataclasses.fields(group_cls):
            name = f.metadata.get("flag")
            if name is not None and (names is None or (name or f.name) in names):
                yield group, f, name or f.name


def define_flags(flag_values: flags.FlagValues = flags.FLAGS, cls: type = Config,
                 defaults: Any = None, names: Collection[str] | None = None) -> None:
    """Defines one absl flag per setting of ``cls`` (``Config`` or one group), with the
    field's doc line, type, choices and default (or ``defaults``' value: a ``cls``).
    ``names``: only these flags (e.g. a benchmark that needs ``window`` of ``DataConfig``)."""
    for group, f, name in fields(cls, names):
        default = f.default
        if defaults is not None:
            default = getattr(getattr(defaults, group) if group else defaults, f.name)
        doc, choices = f.metadata["doc"], list(f.metadata["choices"])
        kw = {"flag_values": flag_values}
        if choices:
            flags.DEFINE_enum(name, default, choices, doc, **kw)
        elif isinstance(default, bool):
            flags.DEFINE_bool(name, default, doc, **kw)
        elif isinstance(default, int):
            flags.DEFINE_integer(name, default, doc, **kw)
        elif isinstance(default, float):
            flags.DEFINE_float(name, default, doc, **kw)
        elif isinstance(default, str):
            flags.DEFINE_string(name, default, doc, **kw)
        elif isinstance(default, tuple):
            flags.DEFINE_list(name, list(default), doc, **kw)
        else:
            raise TypeError(f"no flag type for setting {f.name} = {default!r}")


def _values(flag_values: flags.FlagValues, cls: type,
            names: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for group, f, name in fields(cls, names):
        value = flag_values[name].value
        out.setdefault(group, {})[f.name] = tuple(value) if isinstance(value, list) else value
    return out


def config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> Config:
    """The ``Config`` the parsed flags describe. Raises ValueError for invalid settings."""
    return Config(**{group: dataclasses.replace(getattr(Config(), group), **values)
                     for group, values in _values(flag_values, Config).items()})


def group_from_flags(cls: type, flag_values: flags.FlagValues = flags.FLAGS,
                     names: Collection[str] | None = None) -> Any:
    """One group (e.g. ``ModelConfig``) from the flags ``define_flags(cls=..., names=...)``
    defined (the other fields keep their defaults). Raises ValueError for invalid settings."""
    return cls(**_values(flag_values, cls, names).get("", {}))
