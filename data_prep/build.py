r"""Folder of MIDI files -> a StyleNet dataset (arrays + manifest + train/validation split).

    python -m data_prep.build --midi_dir=../shared/data --out_dir=/tmp/stylenet-data

Style: the sub-folder a file is in (``classical/x.mid`` -> classical), or the ``style`` column
of ``manifest.csv`` in ``--midi_dir`` when it has one (its ``piece`` column then groups the
split), or ``--style`` for every file. Filters (the paper's values by default): meters
(``--time_signatures``), distinct velocities (``--min_velocities``), readable, >= 1 piano note.
Every rejected file is listed with its reason, then a table of counts per style and reason.

Output (read with ``stylenet_jax.dataset``): ``manifest.json`` and ``songs/<style>/<name>.npz``.
Files already examined (same content hash, same encoding) are not read again on a re-run.

What a file is examined for is ``data_prep.examine``; which files are kept and why others are
not, ``data_prep.filters``; style, piece and the split, ``data_prep.split``. This module runs
them over a folder (in worker processes), keeps the cache, writes the manifest, and is the
command line.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import json
import multiprocessing
import os
import sys
from typing import Callable, Iterable, Sequence

from absl import app, flags

from data_prep.examine import ENCODING_VERSION, examine, file_sha256
from data_prep.filters import QUARTER_BEAT, rejection, summary_table
from data_prep.split import read_catalogue, split_by_piece, style_and_piece
from stylenet_jax import dataset, midi_files
from stylenet_jax.atomic_write import write_text_atomically


class BuildError(ValueError):
    """Bad builder arguments (missing folder, bad flag value)."""


def parse_time_signatures(spec: str) -> set[tuple[int, int]] | str:
    """"4/4,3/4" -> {(4, 4), (3, 4)}; "quarter" (or "*/4") and "any" are returned as such."""
    spec = spec.strip().lower()
    if spec in (QUARTER_BEAT, "*/4"):
        return QUARTER_BEAT
    if spec == "any":
        return "any"
    allowed = set()
    for part in spec.split(","):
        try:
            numerator, denominator = (int(x) for x in part.split("/"))
        except ValueError:
            raise BuildError(f"--time_signatures: {part!r} is not N/D (e.g. 4/4), "
                             f"'{QUARTER_BEAT}' or 'any'") from None
        allowed.add((numerator, denominator))
    return allowed


def _size(path: str) -> int:
    """The file's size in bytes (0 if it cannot be read): longest files are examined first."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _examine_task(task: tuple[str, str, str | None]) -> tuple[str, dict]:
    """(relative path, its facts) of one (relative path, path, arrays path) task."""
    rel, path, arrays_path = task
    return rel, examine(path, arrays_path)


def _song_id(rel: str, style: str) -> str:
    """A song's id: its path without suffix, under its style's folder (``jazz/x``)."""
    stem = os.path.splitext(rel)[0]
    return stem if stem.split("/")[0] == style else f"{style}/{stem}"


def _load_previous(out_dir: str) -> dict:
    """The facts of a previous build in ``out_dir`` by file, or {} (none, or another encoding)."""
    try:
        previous = dataset.read_manifest(out_dir)
    except dataset.DatasetError:
        return {}
    if previous.get("encoding_version") != ENCODING_VERSION:
        return {}
    return previous.get("files", {})


def build_dataset(midi_dir: str, out_dir: str, *, time_signatures: str = "4/4",
                  min_velocities: int = 20, validation_fraction: float = 0.05,
                  test_fraction: float = 0.0, seed: int = 0,
                  styles: Sequence[str] | None = None, style: str | None = None,
                  workers: int | None = None, progress: bool = False,
                  log: Callable[[str], None] = print) -> dict:
    """Builds (or updates) the dataset in ``out_dir`` from the MIDI files below ``midi_dir``.

    Returns the manifest (also written to ``out_dir/manifest.json``). ``log`` receives each
    rejected file's line and the summary table (pass ``lambda *_: None`` to silence it).
    """
    if not os.path.isdir(midi_dir):
        raise BuildError(f"--midi_dir {midi_dir}: no such folder")
    if not 0 <= validation_fraction < 1:
        raise BuildError("--validation_fraction must be in [0, 1)")
    if not 0 <= test_fraction < 1:
        raise BuildError("--test_fraction must be in [0, 1)")
    allowed = parse_time_signatures(time_signatures)
    catalogue = read_catalogue(midi_dir)
    files = midi_files.find_midi_files(midi_dir)
    if not files:
        raise BuildError(f"--midi_dir {midi_dir}: no .mid or .midi files below it")
    os.makedirs(out_dir, exist_ok=True)
    previous = _load_previous(out_dir)

    entries, tasks = {}, []
    for rel in files:
        file_style, piece = style_and_piece(rel, catalogue, style)
        path = os.path.join(midi_dir, rel)
        entry = {"file": rel, "style": file_style, "piece": piece, "sha256": file_sha256(path)}
        entries[rel] = entry
        if file_style is None or (styles and file_style not in styles):
            continue
        entry["id"] = _song_id(rel, file_style)
        entry["arrays"] = f"songs/{entry['id']}.npz"
        cached = previous.get(rel)
        # facts of a build from before songs had a tempo are read again (the arrays are alike)
        if cached and entry["sha256"] and cached["sha256"] == entry["sha256"] and (
                "error" in cached["facts"] or "seconds_per_beat" in cached["facts"]) and (
                not cached["facts"].get("arrays")
                or os.path.isfile(os.path.join(out_dir, entry["arrays"]))):
            entry["facts"] = cached["facts"]
        else:
            tasks.append((rel, path, os.path.join(out_dir, entry["arrays"])))

    tasks.sort(key=lambda t: -_size(t[1]))  # longest first: balanced workers
    workers = workers or os.cpu_count() or 1
    results = _run(tasks, workers, progress)
    for rel, facts in results:
        entries[rel]["facts"] = facts

    songs, rejected, files_facts = [], [], {}
    for rel in files:
        entry = entries[rel]
        if entry["style"] is None:
            rejected.append({"file": rel, "style": None,
                             "reason": "no style (not in a sub-folder; use --style)"})
            continue
        if "facts" not in entry:
            continue  # a style left out with --styles
        facts = entry["facts"]
        files_facts[rel] = {"sha256": entry["sha256"], "facts": facts}
        reason = rejection(facts, allowed, min_velocities)
        if reason:
            rejected.append({"file": rel, "style": entry["style"], "reason": reason})
            continue
        songs.append({"id": entry["id"], "file": rel, "style": entry["style"],
                      "piece": entry["piece"], "steps": facts["steps"], "notes": facts["notes"],
                      "out_of_range": facts["out_of_range"],
                      "n_velocities": facts["n_velocities"],
                      "time_signatures": facts["time_signatures"],
                      "seconds_per_beat": facts["seconds_per_beat"],
                      "sha256": entry["sha256"], "arrays": entry["arrays"]})
    split_by_piece(songs, validation_fraction, seed, test_fraction)
    manifest = {
        "format": dataset.FORMAT, "version": dataset.VERSION,
        "encoding_version": ENCODING_VERSION,
        "source": os.path.abspath(midi_dir),
        "options": {"time_signatures": time_signatures, "min_velocities": min_velocities,
                    "validation_fraction": validation_fraction,
                    "test_fraction": test_fraction, "seed": seed,
                    "styles": list(styles) if styles else None, "style": style},
        "styles": sorted({s["style"] for s in songs}),
        "songs": songs, "rejected": rejected, "files": files_facts,
    }
    _write_json(os.path.join(out_dir, dataset.MANIFEST), manifest)
    # Arrays of every readable file stay (rejected ones too), so other filters need no re-read.
    _remove_stale_arrays(out_dir, {entries[rel]["arrays"] for rel, f in files_facts.items()
                                   if f["facts"].get("arrays")})
    for item in rejected:
        log(f"rejected {item['file']}: {item['reason']}")
    log(summary_table(songs, rejected))
    log(f"examined {len(tasks)} file(s), reused {len(files_facts) - len(tasks)} from a previous "
        f"build; wrote {os.path.join(out_dir, dataset.MANIFEST)}")
    return manifest


def _run(tasks: list, workers: int, progress: bool) -> list[tuple[str, dict]]:
    """Examines the tasks, in ``workers`` processes when there are several."""
    from tqdm import tqdm  # progress bars only; imported here to keep the module light

    bar = tqdm(total=len(tasks), unit="file", desc="examining", disable=not progress or not tasks,
               file=sys.stderr)
    results = []
    if workers > 1 and len(tasks) > 1:
        # concurrent.futures rather than multiprocessing.Pool: a worker killed by the
        # system (out of memory) is an error here, where Pool would wait for it forever.
        with concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            try:
                for result in pool.map(_examine_task, tasks, chunksize=2):
                    results.append(result)
                    bar.update()
            except concurrent.futures.process.BrokenProcessPool:
                raise BuildError("a worker process died while reading MIDI files (out of "
                                 "memory?); try again with --workers=1") from None
    else:
        for task in tasks:
            results.append(_examine_task(task))
            bar.update()
    bar.close()
    return results


def _write_json(path: str, data) -> None:
    """Writes ``data`` as indented JSON to ``path`` atomically."""
    write_text_atomically(path, json.dumps(data, indent=1))


def _remove_stale_arrays(out_dir: str, keep: Iterable[str]) -> None:
    """Removes the files under ``out_dir/songs`` that are not in ``keep`` (relative paths)."""
    keep = {os.path.normpath(os.path.join(out_dir, k)) for k in keep}
    for root, _, names in os.walk(os.path.join(out_dir, "songs")):
        for name in names:
            path = os.path.normpath(os.path.join(root, name))
            if path not in keep:
                os.unlink(path)


def _define_flags() -> None:
    """The command's flags, defined only when run as a program (importers keep theirs)."""
    flags.DEFINE_string("midi_dir", None, "Folder of MIDI files (.mid/.midi), searched "
                        "recursively. Style = first sub-folder, or manifest.csv's style column.")
    flags.DEFINE_string("out_dir", None, "Where to write manifest.json and songs/*.npz. Re-running "
                        "into the same folder reuses the files already examined.")
    flags.DEFINE_string("time_signatures", "4/4", "Allowed meters: comma-separated N/D values (the "
                        "paper: 4/4), 'quarter' for any meter with a quarter-note beat (N/4), or "
                        "'any'. A file with no time signature counts as 4/4.")
    flags.DEFINE_integer("min_velocities", 20, "Keep files with at least this many distinct "
                         "note-on velocities (the paper: 20).")
    flags.DEFINE_float("validation_fraction", 0.05, "Fraction of each style's files held out for "
                       "validation (the paper: 5%), grouped by piece.")
    flags.DEFINE_float("test_fraction", 0.0, "Fraction of each style's pieces held out as a "
                       "test split to compare recipes on unseen music (0: none, the paper). "
                       "A piece's side depends on its name and --seed alone, so builds with "
                       "other filters hold out the same pieces.")
    flags.DEFINE_integer("seed", 0, "Seed of the train/validation/test split.")
    flags.DEFINE_list("styles", None, "Keep only these styles (default: all found).")
    flags.DEFINE_string("style", None, "Give every file this style (a flat folder of one style).")
    flags.DEFINE_integer("workers", None, "Processes reading MIDI files (default: all CPUs).")
    flags.mark_flags_as_required(["midi_dir", "out_dir"])


def main(argv: Sequence[str]) -> None:
    FLAGS = flags.FLAGS
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        build_dataset(FLAGS.midi_dir, FLAGS.out_dir, time_signatures=FLAGS.time_signatures,
                      min_velocities=FLAGS.min_velocities,
                      validation_fraction=FLAGS.validation_fraction,
                      test_fraction=FLAGS.test_fraction, seed=FLAGS.seed,
                      styles=FLAGS.styles, style=FLAGS.style, workers=FLAGS.workers,
                      progress=True)
    except (BuildError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
