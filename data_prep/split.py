"""A file's style and piece, and the train/validation/test split of a dataset's songs.

Style and piece come from ``--style``, else the ``manifest.csv`` of the MIDI folder (its
``style`` and ``piece`` columns), else the file's sub-folder and name. The split is made per
style and grouped by piece, deterministically from a seed (``split_by_piece``).
"""

from __future__ import annotations

import collections
import csv
import hashlib
import os
import zlib

import numpy as np


def read_catalogue(midi_dir: str) -> dict[str, dict]:
    """``manifest.csv`` rows of ``midi_dir`` by file, or {} if it has none."""
    path = os.path.join(midi_dir, "manifest.csv")
    if not os.path.isfile(path):
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {row["file"]: row for row in csv.DictReader(f) if row.get("file")}


def style_and_piece(rel: str, catalogue: dict[str, dict],
                    forced_style: str | None) -> tuple[str | None, str]:
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
