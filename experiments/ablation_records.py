"""The sweep's finished runs, kept beside its report (``results/ablations.json``).

A run's work directory holds its checkpoints, metrics and cached scores, but work directories
live in a git-ignored folder that a new machine does not have. The record file keeps what the
report needs of every finished run (scores, per-performance note sums, validation curve, wall
time), keyed by everything that decides the result: the variant's flags with every nested
flagfile inlined, the extra training flags, the seed, the epochs, the training data and the
test performances. A sweep re-run where a run's work directory is gone reuses the run's record
when its key still matches, and trains it again when anything in the key changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Mapping, Sequence

from stylenet_jax.atomic_write import write_text_atomically

RECORD_FORMAT = 1
_FLAGFILE = "--flagfile="


def records_path(report: str) -> str:
    """The record file beside a report: ``results/ablations.md`` -> ``results/ablations.json``."""
    return os.path.splitext(report)[0] + ".json"


def resolved_flags(flagfile: str, root: str, _seen: tuple[str, ...] = ()) -> list[str]:
    """The flag lines of ``flagfile`` with every ``--flagfile=`` line replaced by that file's
    own resolved lines (paths relative to ``root``, where training runs); comments and blank
    lines dropped. Raises ValueError for a flagfile that includes itself."""
    path = flagfile if os.path.isabs(flagfile) else os.path.join(root, flagfile)
    path = os.path.normpath(path)
    if path in _seen:
        raise ValueError(f"{flagfile} includes itself")
    lines = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#") or line.startswith("//"):
                continue
            if line.startswith(_FLAGFILE):
                lines += resolved_flags(line[len(_FLAGFILE):], root, _seen + (path,))
            else:
                lines.append(line)
    return lines


def data_fingerprint(manifest: Mapping) -> str:
    """sha256 of what a build trains and tests on: each song's id, split and file hash, and
    the encoding version (not where the corpus was, so it matches on another machine)."""
    songs = sorted((s["id"], s.get("split", ""), s.get("sha256", ""))
                   for s in manifest.get("songs", []))
    text = json.dumps({"encoding": manifest.get("encoding_version"), "songs": songs})
    return hashlib.sha256(text.encode()).hexdigest()


def run_key(flag_lines: Sequence[str], train_flags: Sequence[str], seed: int, epochs: int,
            data: str, test_ids: Sequence[str], classifier: bool) -> dict:
    """Everything that decides one run's scores, as a JSON-able dict."""
    flags_text = "\n".join(list(flag_lines) + ["--"] + list(train_flags))
    return {"format": RECORD_FORMAT, "flags": hashlib.sha256(flags_text.encode()).hexdigest(),
            "seed": seed, "epochs": epochs, "data": data, "test": sorted(test_ids),
            "classifier": classifier}


def read(path: str) -> dict[str, dict]:
    """{"<variant>/seed_<k>": record}; empty when the file is absent or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    runs = data.get("runs") if isinstance(data, dict) else None
    return runs if isinstance(runs, dict) and data.get("format") == RECORD_FORMAT else {}


def matching(records: Mapping[str, dict], variant: str, seed: int, key: dict) -> dict | None:
    """The stored run of ``variant`` and ``seed`` if its key equals ``key``, else None."""
    record = records.get(f"{variant}/seed_{seed}")
    return record if record and record.get("key") == key else None


def write(path: str, records: Mapping[str, dict]) -> str:
    """Writes every record (whole or nothing); returns ``path``."""
    return write_text_atomically(path, json.dumps(
        {"format": RECORD_FORMAT, "runs": dict(sorted(records.items()))}, indent=1))
