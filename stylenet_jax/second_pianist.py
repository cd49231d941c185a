"""Another pianist as a system: how close two pianists' velocities are on the same notes.

The targets the systems are held to (a note's velocity as this pianist played it) have a
reference no system can be asked to beat by much: another pianist of the same piece. Where a
split holds several performances of one piece (the corpus's classical files, several pianists
a piece, written on a grid whose beats are the score's), two performances share most of their
notes: the same key struck on the same 1/16 step. ``shared_notes`` matches them (a key struck
twice on one step in either performance is left out), and with a ``tolerance`` of d steps
also the same key struck up to d steps apart: rubato moves notes across the grid (on the 4/4
build's test pieces 39% of a pianist's notes match on the same step, 47% within one step).
``shared_pairs`` takes every ordered pair of performances (A the pianist, B the other) to A's
notes that B shares, with B's velocities and every system's performance of A on them, and
``comparisons`` scores those, and ``level_and_shape`` splits their errors into the level and
the shape within it as ``experiments.evaluate`` does. ``at_other_phrases`` adds an oracle: a
system's shape within each phrase, at the levels another pianist gave the phrases.
"""

from __future__ import annotations

import itertools
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from stylenet_jax import encoding, error_breakdown, metrics
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


def shared_notes(a: Performed, b: Performed, tolerance: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """int64 (m,) indices into a's notes and into b's, of the m notes both play with the same
    key on the same step, or (``tolerance`` d > 0) up to d steps apart, in a's order. Each
    note is matched once: first on the same step, then 1 step apart, ... (the earlier of two
    candidates first)."""
    return _matched(note_keys(a), note_keys(b), tolerance)


def _matched(keys_a: dict, keys_b: dict, tolerance: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``shared_notes`` of two performances' ``note_keys``."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be 0 or more steps, got {tolerance}")
    pairs = {k: k for k in set(keys_a) & set(keys_b)}  # A's key -> B's key
    taken = set(pairs)
    for shift in range(1, tolerance + 1):
        for step, pitch in sorted(set(keys_a) - set(pairs), key=keys_a.__getitem__):
            for candidate in ((step - shift, pitch), (step + shift, pitch)):
                if candidate in keys_b and candidate not in taken:
                    pairs[step, pitch] = candidate
                    taken.add(candidate)
                    break
    common = sorted(pairs, key=keys_a.__getitem__)
    return (np.array([keys_a[k] for k in common], np.int64),
            np.array([keys_b[pairs[k]] for k in common], np.int64))


def with_others(performed: Sequence[Performed]) -> list[Performed]:
    """The performances whose piece has another performance among ``performed`` (in order):
    the only ones ``shared_pairs`` can use."""
    count: dict[str, int] = {}
    for p in performed:
        count[p.piece] = count.get(p.piece, 0) + 1
    return [p for p in performed if count[p.piece] > 1]


class SharedPair(NamedTuple):
    """One ordered pair of performances of a piece: ``pianist`` is A with only the notes it
    shares with B (their velocities A's own), ``versions`` {name: int64 (m,)} the velocities
    on those notes of B (``ANOTHER_PIANIST``) and of each system's performance of A, and
    ``played`` A's count of notes before the selection."""

    pianist: Performed
    versions: dict[str, np.ndarray]
    played: int


def shared_pairs(performed: Sequence[Performed], velocities: Mapping[str, Sequence[np.ndarray]],
                 min_notes: int = 2, tolerance: int = 0) -> list[SharedPair]:
    """Every ordered pair of performances of one piece that share ``min_notes`` or more notes
    (``shared_notes`` within ``tolerance`` steps).

    ``velocities``: {system name: int (n,) velocities per performance, ``performed``'s order}
    (may be empty). Every system is taken on the same notes of the same pianist as the other
    pianist, so paired differences against it are fair.
    """
    by_piece: dict[str, list[int]] = {}
    for i, p in enumerate(performed):
        by_piece.setdefault(p.piece, []).append(i)
    keys = {i: note_keys(performed[i]) for members in by_piece.values() if len(members) > 1
            for i in members}  # once per performance, not once per pair
    out = []
    for members in by_piece.values():
        for i, j in itertools.permutations(members, 2):
            a, b = performed[i], performed[j]
            ia, ib = _matched(keys[i], keys[j], tolerance)
            if len(ia) < min_notes:
                continue
            keep = np.zeros(len(a.notes), bool)
            keep[ia] = True
            other = np.zeros(len(a.notes), np.int64)
            other[ia] = b.notes.velocity[ib]
            versions = {ANOTHER_PIANIST: other[keep], **{
                name: np.asarray(per_performance[i], np.int64)[keep]
                for name, per_performance in velocities.items()}}
            out.append(SharedPair(a._replace(notes=a.notes.select(keep),
                                             seconds=np.asarray(a.seconds)[keep]),
                                  versions, len(a.notes)))
    return out


def comparisons(pairs: Sequence[SharedPair]) -> tuple[dict[str, dict[str, list]],
                                                       dict[str, float]]:
    """({name: {style: [metrics.PieceComparison]}}, counts) of ``shared_pairs``: each
    version against the pianist on the shared notes. counts: pieces, pairs, shared notes,
    and their share of the pianists' notes."""
    out: dict[str, dict[str, list]] = {}
    for pair in pairs:
        a = pair.pianist
        human = a.notes.velocity.astype(np.int64)
        for name, version in pair.versions.items():
            out.setdefault(name, {}).setdefault(a.style, []).append(
                metrics.PieceComparison(a.piece, human, version))
    shared = sum(len(p.pianist.notes) for p in pairs)
    played = sum(p.played for p in pairs)
    counts = {"pieces": len({p.pianist.piece for p in pairs}), "pairs": len(pairs),
              "shared_notes": shared, "shared_share": shared / played if played else float("nan")}
    return out, counts


def level_and_shape(pairs: Sequence[SharedPair]) -> dict[str, dict[str, dict]]:
    """``error_breakdown.breakdown`` of ``shared_pairs``, each pair a performance: A's shared
    notes, with every version (another pianist's and each system's) on them. The level is the
    shared notes' mean, the phrases are runs of consecutive shared notes, and the roles are
    read from the shared notes alone."""
    names = pairs[0].versions if pairs else {}
    return error_breakdown.breakdown([p.pianist for p in pairs],
                                     {name: [p.versions[name] for p in pairs] for name in names})


def parse_at_other_phrases(spec: str, known: Sequence[str]) -> tuple[str, str]:
    """``NAME=SYSTEM`` -> (NAME, SYSTEM) for ``at_other_phrases``; SYSTEM must be one of
    ``known`` and NAME none of them nor ``ANOTHER_PIANIST``. Raises ValueError (one line)."""
    name, sep, system = (text.strip() for text in spec.partition("="))
    if not sep or not name or system not in known:
        raise ValueError(f"--at_other_phrases {spec!r}: expected NAME=SYSTEM with a system of "
                         f"{', '.join(known)}")
    if name in known or name == ANOTHER_PIANIST:
        raise ValueError(f"--at_other_phrases {spec!r}: {name!r} is already a version's name")
    return name, system


def at_other_phrases(pairs: Sequence[SharedPair], system: str, name: str) -> list[SharedPair]:
    """``pairs``, each with one more version, ``name``: an oracle, not a system. It is
    ``system``'s velocities with each phrase (``error_breakdown.phrase_runs`` of the shared
    notes) moved to the level another pianist gave it, relative to that pianist's mean. It
    keeps the system's overall level and its shape within each phrase, and rounds and clips
    to 1..127 (int64). It says how close the system would come if it followed the phrases
    as another pianist does."""
    out = []
    for pair in pairs:
        shift = phrase_levels(pair, ANOTHER_PIANIST) - phrase_levels(pair, system)
        moved = pair.versions[system] + shift[error_breakdown.phrase_runs(pair.pianist)]
        version = np.clip(np.rint(moved), 1, 127).astype(np.int64)
        out.append(pair._replace(versions={**pair.versions, name: version}))
    return out


def phrase_levels(pair: SharedPair, name: str | None) -> np.ndarray:
    """float64 (phrases,): each phrase's mean velocity (``error_breakdown.phrase_runs`` of
    the shared notes) minus the mean over all of them, for the version ``name`` of the pair,
    or for the pianist with ``name`` None."""
    played = (pair.pianist.notes.velocity if name is None else pair.versions[name]
              ).astype(np.float64)
    return error_breakdown.run_means(played - played.mean(),
                                     error_breakdown.phrase_runs(pair.pianist))
