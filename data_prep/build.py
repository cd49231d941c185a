r"""Folder of MIDI files -> a StyleNet dataset (arrays + manifest + train/validation split).

    python -m data_prep.build --midi_dir=../shared/data --out_dir=/tmp/stylenet-data

Style: the sub-folder a file is in (``classical/x.mid`` -> classical), or the ``style`` column
of ``manifest.csv`` in ``--midi_dir`` when it has one (its ``piece`` column then groups the
split), or ``--style`` for every file. Filters (the paper's values by default): meters
(``--time_signatures``), distinct velocities (``--min_velocities``), readable, >= 1 piano note.
Every rejected file is listed with its reason, then a table of counts per style and reason.

Output (read with ``stylenet_jax.dataset``): ``manifest.json`` and ``songs/<style>/<name>.npz``.
Files already examined (same content hash, same encoding) are not read again on a re-run.
"""

from __future__ import annotations

import collections
import concurrent.futures
import concurrent.futures.process
import csv
import hashlib
import json
import multiprocessing
import os
import sys
import zlib
from typing import Iterable, Sequence

import numpy as np
from absl import app, flags

from stylenet_jax import dataset, encoding, midi
from stylenet_jax.atomic_write import write_atomically, write_text_atomically

ENCODING_VERSION = 2  # bump when encoding or reading rules change: files are examined again
QUARTER_BEAT = "quarter"  # --time_signatures value: any meter whose beat is a quarter note


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


def meter_allowed(signatures: Sequence[Sequence[int]], allowed) -> bool:
    """True if every time signature of a file is allowed (a file with none is in 4/4)."""
    signatures = [tuple(s) for s in signatures] or [(4, 4)]
    if allowed == "any":
        return True
    if allowed == QUARTER_BEAT:
        return all(d == 4 for _, d in signatures)
    return all(s in allowed for s in signatures)


def _sha256(path: str) -> str | None:
    """The file's SHA-256, or None if it is not a regular file (a FIFO would block) or cannot
    be read: ``examine`` then says why."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _save_arrays(path: str, enc: encoding.Encoding) -> None:
    """Writes inputs/velocities to ``path`` atomically (compressed .npz); nothing is left
    behind if that fails."""
    write_atomically(path, lambda f: np.savez_compressed(f, inputs=enc.inputs,
                                                        velocities=enc.velocities))


def examine(path: str, arrays_path: str | None = None) -> dict:
    """Facts about one MIDI file; writes its arrays to ``arrays_path`` when given, non-empty
    and not too long (``encoding.MAX_STEPS``).

    Returns {"error": str} for a file that cannot be read (or fails in any other way: one file
    never stops a build), else {"notes", "out_of_range", "n_velocities", "time_signatures",
    "steps", "ticks_per_beat"} (+ "arrays" if written).
    """
    try:
        return _examine(path, arrays_path)
    except midi.MidiError as e:
        return {"error": midi.one_line(e)}
    except Exception as e:  # noqa: BLE001 - MemoryError, a bug: report the file, go on
        return {"error": f"{midi.shown(path)}: failed ({type(e).__name__}: {midi.one_line(e)})"}


def _examine(path: str, arrays_path: str | None) -> dict:
    perf = midi.load_performance(path)
    in_range = encoding.in_piano_range(perf.notes)
    notes = perf.notes.select(in_range)
    facts = {
        "notes": len(notes), "out_of_range": int((~in_range).sum()),
        "n_velocities": int(len(np.unique(notes.velocity))),
        "time_signatures": [list(s) for s in perf.time_signatures],
        "steps": encoding.grid_steps(notes, perf.ticks_per_beat),
        "ticks_per_beat": perf.ticks_per_beat,
    }
    if arrays_path and len(notes) and not encoding.too_long(facts["steps"]):
        _save_arrays(arrays_path, encoding.encode(notes, perf.ticks_per_beat))
        facts["arrays"] = True
    return facts


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _examine_task(task: tuple[str, str, str | None]) -> tuple[str, dict]:
    rel, path, arrays_path = task
    return rel, examine(path, arrays_path)


def rejection(facts: dict, allowed_meters, min_velocities: int) -> str | None:
    """Why a file is left out (one line), or None if it is kept."""
    if "error" in facts:
        return "unreadable: " + facts["error"]
    if facts["notes"] == 0:
        return "no piano notes"
    if encoding.too_long(facts["steps"]):
        return encoding.too_long(facts["steps"])
    if not meter_allowed(facts["time_signatures"], allowed_meters):
        meters = ",".join(f"{n}/{d}" for n, d in facts["time_signatures"])
        return f"time signature {meters} not allowed"
    if facts["n_velocities"] < min_velocities:
        return f"{facts['n_velocities']} distinct velocities (< {min_velocities})"
    return None


def reason_kind(reason: str) -> str:
    """The table column of a rejection reason."""
    for kind in ("unreadable", "no piano notes", "too long", "time signature",
                 "distinct velocities"):
        if kind in reason:
            return "too few velocities" if kind == "distinct velocities" else kind
    return reason


def read_catalogue(midi_dir: str) -> dict[str, dict]:
    """``manifest.csv`` rows of ``midi_dir`` by file, or {} if it has none."""
    path = os.path.join(midi_dir, "manifest.csv")
    if not os.path.isfile(path):
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {row["file"]: row for row in csv.DictReader(f) if row.get("file")}


def style_and_piece(rel: str, catalogue: dict[str, dict], forced_style: str | None):
    """(style or None, piece) of a file: --style, else manifest.csv, else its sub-folder."""
    row = catalogue.get(rel, {})
    piece = row.get("piece") or os.path.splitext(rel)[0]
    if forced_style:
        return forced_style, piece
    if row.get("style"):
        return row["style"], piece
    return (rel.split("/")[0] if "/" in rel else None), piece


def piece_draw(seed: int, style: str, piece: str) -> float:
    """A number in [0, 1) fixed by (seed, style, piece) alone (SHA-256 of the three)."""
    digest = hashlib.sha256(f"{seed}\0{style}\0{piece}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def split_by_piece(songs: list[dict], fraction: float, seed: int,
                   test_fraction: float = 0.0) -> None:
    """Sets each song's "split" to "train", "validation" or "test", per style, grouped by piece.

    Test (held out to compare recipes): a piece is a test piece when its ``piece_draw(seed,
    style, piece)`` is below ``test_fraction``. The draw depends on the piece alone, not on which
    other files a build kept, so builds with other filters (e.g. more meters) hold out the same
    pieces; the test share is ``test_fraction`` of the pieces on average, not exactly.

    Validation (the paper's split, for checkpoint selection), among the other songs: pieces are
    shuffled with a generator seeded by (seed, style) and moved to validation, skipping any
    that would overshoot, until it holds round(fraction * songs) (at least one song when the
    style has two or more and fraction > 0). With ``test_fraction=0`` this is the whole split.
    Deterministic: the same songs and seed give the same split.
    """
    by_style = collections.defaultdict(list)
    for song in songs:
        if test_fraction > 0 and piece_draw(seed, song["style"], song["piece"]) < test_fraction:
            song["split"] = "test"
            continue
        song["split"] = "train"
        by_style[song["style"]].append(song)
    for style, members in sorted(by_style.items()):
        target = int(round(fraction * len(members)))
        if fraction > 0 and len(members) > 1:
            target = max(target, 1)  # a small style still gets a validation song
        pieces = collections.defaultdict(list)
        for song in members:
            pieces[song["piece"]].append(song)
        rng = np.random.default_rng([seed, zlib.crc32(style.encode())])
        held_out = 0
        for index in rng.permutation(len(pieces)):
            group = pieces[sorted(pieces)[index]]
            if held_out >= target:
                break
            if held_out + len(group) <= target:
                for song in group:
                    song["split"] = "validation"
                held_out += len(group)


def _song_id(rel: str, style: str) -> str:
    stem = os.path.splitext(rel)[0]
    return stem if stem.split("/")[0] == style else f"{style}/{stem}"


def _load_previous(out_dir: str) -> dict:
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
                  log=print) -> dict:
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
    files = midi.find_midi_files(midi_dir)
    if not files:
        raise BuildError(f"--midi_dir {midi_dir}: no .mid or .midi files below it")
    os.makedirs(out_dir, exist_ok=True)
    previous = _load_previous(out_dir)

    entries, tasks = {}, []
    for rel in files:
        file_style, piece = style_and_piece(rel, catalogue, style)
        path = os.path.join(midi_dir, rel)
        entry = {"file": rel, "style": file_style, "piece": piece, "sha256": _sha256(path)}
        entries[rel] = entry
        if file_style is None or (styles and file_style not in styles):
            continue
        entry["id"] = _song_id(rel, file_style)
        entry["arrays"] = f"songs/{entry['id']}.npz"
        cached = previous.get(rel)
        if cached and entry["sha256"] and cached["sha256"] == entry["sha256"] and (
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
    write_text_atomically(path, json.dumps(data, indent=1))


def _remove_stale_arrays(out_dir: str, keep: Iterable[str]) -> None:
    keep = {os.path.normpath(os.path.join(out_dir, k)) for k in keep}
    for root, _, names in os.walk(os.path.join(out_dir, "songs")):
        for name in names:
            path = os.path.normpath(os.path.join(root, name))
            if path not in keep:
                os.unlink(path)


def summary_table(songs: list[dict], rejected: list[dict]) -> str:
    """Kept (train/validation/test) and rejected counts per style and per reason, as text."""
    kinds = sorted({reason_kind(r["reason"]) for r in rejected})
    styles = sorted({s["style"] for s in songs} | {r["style"] or "(none)" for r in rejected})
    header = ["style", "kept", "train", "validation", "test", "rejected"] + kinds
    rows = []
    for style in styles + ["total"]:
        mine = [s for s in songs if style in ("total", s["style"])]
        out = [r for r in rejected if style in ("total", r["style"] or "(none)")]
        count = collections.Counter(reason_kind(r["reason"]) for r in out)
        rows.append([style, len(mine), sum(s["split"] == "train" for s in mine),
                     sum(s["split"] == "validation" for s in mine),
                     sum(s["split"] == "test" for s in mine), len(out)]
                    + [count[k] for k in kinds])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).rjust(w) if i else str(x).ljust(w)
                       for i, (x, w) in enumerate(zip(row, widths))) for row in [header] + rows]
    return "\n".join(lines)


def _define_flags() -> None:
    """The command's flags, defined only when run as a program (importers keep theirs)."""
    flags.DEFINE_string("midi_dir", None, "Folder of MIDI files (.mid/.midi), searched recursively. "
                        "Style = first sub-folder, or manifest.csv's style column.")
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
