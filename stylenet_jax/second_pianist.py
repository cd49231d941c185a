"""Another pianist as a system: how close two pianists' velocities are on the same notes.

The targets the systems are held to (a note's velocity as this pianist played it) have a
reference no system can be asked to beat by much: another pianist of the same piece. Where a
split holds several performances of one piece (the corpus's classical files, several pianists
a piece, written on a grid whose beats are the score's), two performances share most of their
notes: the same key struck on the same 1/16 step. ``shared_notes`` matches them (a key struck
twice on one step in either performance is left out), and ``comparisons`` scores, for every
ordered pair of performances (A the pianist, B the other), B's velocities and every system's
performance of A on the notes A shares with B.
"""

from __future__ import annotations

import itertools
from typing import Mapping, Sequence

import numpy as np

from stylenet_jax import encoding, metrics
from stylenet_jax.performances import Performed

ANOTHER_PIANIST = "another_pianist"  # the name of the other pianist as a system


def note_keys(performed: Performed) -> dict[tuple[int, int], int]:
    """{(onset step, MIDI pitch): note index} of the notes whose key and step no other note
    of the performance shares."""
    onset, _ = encoding.quantize(performed.notes, performed.ticks_per_beat)
    keys = list(zip(onset.tolist(), performed.notes.pitch.tolist()))
    seen: dict[tuple[int, int], int] = {}
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
    return {key: i for i, key in enumerate(keys) if seen[key] == 1}


def shared_notes(a: Performed, b: Performed) -> tuple[np.ndarray, np.ndarray]:
    """int64 (m,) indices into a's notes and into b's, of the m notes both play on the same
    step with the same key (in a's order)."""
    keys_a, keys_b = note_keys(a), note_keys(b)
    common = sorted(set(keys_a) & set(keys_b), key=keys_a.__getitem__)
    return (np.array([keys_a[k] for k in common], np.int64),
            np.array([keys_b[k] for k in common], np.int64))


def comparisons(performed: Sequence[Performed], velocities: Mapping[str, Sequence[np.ndarray]],
                min_notes: int = 2) -> tuple[dict[str, dict[str, list]], dict[str, float]]:
    """({system: {style: [metrics.PieceComparison]}}, counts) over every ordered pair of
    performances of one piece.

    ``velocities``: {system name: int (n,) velocities per performance, ``performed``'s order}.
    The other pianist is ``ANOTHER_PIANIST``; every system is scored on the same notes of the
    same pianist, so paired differences against it are fair. Pairs sharing fewer than
    ``min_notes`` notes are left out. counts: pieces, pairs, shared notes, and their share
    of the pianists' notes.
    """
    by_piece: dict[str, list[int]] = {}
    for i, p in enumerate(performed):
        by_piece.setdefault(p.piece, []).append(i)
    out: dict[str, dict[str, list]] = {ANOTHER_PIANIST: {}, **{name: {} for name in velocities}}
    pieces, pairs, shared, played = set(), 0, 0, 0
    for piece, members in by_piece.items():
        for i, j in itertools.permutations(members, 2):
            a, b = performed[i], performed[j]
            ia, ib = shared_notes(a, b)
            if len(ia) < min_notes:
                continue
            pieces.add(piece)
            pairs += 1
            shared += len(ia)
            played += len(a.notes)
            human = a.notes.velocity[ia].astype(np.int64)
            out[ANOTHER_PIANIST].setdefault(a.style, []).append(metrics.PieceComparison(
                piece, human, b.notes.velocity[ib].astype(np.int64)))
            for name, per_performance in velocities.items():
                out[name].setdefault(a.style, []).append(metrics.PieceComparison(
                    piece, human, np.asarray(per_performance[i], np.int64)[ia]))
    counts = {"pieces": len(pieces), "pairs": pairs, "shared_notes": shared,
              "shared_share": shared / played if played else float("nan")}
    return out, counts
