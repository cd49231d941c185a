r"""Score a listening test: how often did listeners pick the pianist?

    python -m experiments.listening_score --kit=KIT answers-ann-*.csv answers-bob-*.csv
    python -m experiments.listening_score --kit=KIT --out=results/listening.md FOLDER/*.csv

Reads the kit's answer key (``experiments.listening_test``) and the CSVs listeners downloaded
from its page (kit, listener, pair, answer, answered_at), and prints a Markdown report: per
system and kind (10-second excerpts, the whole piece), how often the pianist was identified
among the decided answers, with a 95% Wilson interval and a two-sided exact binomial test
against chance (0.5), and how often listeners could not tell; then one row per listener. The
paper's listeners picked the human 53% of the time. A listener who answered a pair twice (two
downloads) counts once, with the later answer. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from typing import Iterable, Mapping, Sequence

from absl import app, flags

from experiments.listening_kit import ANSWERS, KEY_FIELDS
from stylenet_jax.atomic_write import write_text_atomically
from stylenet_jax.flag_parsing import parse_flags, usage_error

FLAGS = flags.FLAGS
ANSWER_FIELDS = ("kit", "listener", "pair", "answer", "answered_at")


class ScoreError(ValueError):
    """A key or answer file that cannot be scored (one line naming the file)."""


def read_key(kit_dir: str) -> tuple[str, dict[int, dict[str, str]]]:
    """The kit id and its key rows by pair number."""
    path = os.path.join(kit_dir, "answer_key.csv")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ScoreError(f"{path}: cannot read the answer key ({e.strerror or e})") from None
    if not rows or set(KEY_FIELDS) - set(rows[0]):
        raise ScoreError(f"{path}: not an answer key (expected columns {', '.join(KEY_FIELDS)})")
    return rows[0]["kit"], {int(r["pair"]): r for r in rows}


def read_answers(paths: Sequence[str], kit: str, key: Mapping[int, dict]
                 ) -> dict[tuple[str, int], str]:
    """{(listener, pair): answer}, the latest answer where a listener answered twice."""
    latest: dict[tuple[str, int], tuple[str, str]] = {}
    for path in paths:
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
                header = rows[0].keys() if rows else set()
        except (OSError, UnicodeDecodeError) as e:
            raise ScoreError(f"{path}: cannot read it ({getattr(e, 'strerror', None) or e})"
                             ) from None
        if rows and set(ANSWER_FIELDS) - set(header):
            raise ScoreError(f"{path}: not a listening-test answer file (expected columns "
                             f"{', '.join(ANSWER_FIELDS)})")
        for line, row in enumerate(rows, 2):
            if row["kit"] != kit:
                raise ScoreError(f"{path}: answers to kit {row['kit']}, not this kit ({kit})")
            try:
                pair = int(row["pair"])
            except ValueError:
                raise ScoreError(f"{path}:{line}: pair {row['pair']!r} is not a number") from None
            if pair not in key:
                raise ScoreError(f"{path}:{line}: the kit has no pair {pair}")
            if row["answer"] not in ANSWERS:
                raise ScoreError(f"{path}:{line}: answer {row['answer']!r} is not one of "
                                 f"{', '.join(ANSWERS)}")
            listener = row["listener"].strip() or f"anonymous ({os.path.basename(path)})"
            previous = latest.get((listener, pair))
            if previous is None or row["answered_at"] >= previous[0]:
                latest[(listener, pair)] = (row["answered_at"], row["answer"])
    return {k: answer for k, (_, answer) in latest.items()}


def wilson(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (0, 1 for no trials)."""
    if not trials:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (
        1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_p(successes: int, trials: int) -> float:
    """Two-sided exact binomial test of ``successes`` in ``trials`` against p = 0.5."""
    if not trials:
        return 1.0
    probabilities = [math.comb(trials, k) / 2 ** trials for k in range(trials + 1)]
    observed = probabilities[successes]
    return min(1.0, sum(q for q in probabilities if q <= observed * (1 + 1e-9)))


def tally(answers: Mapping[tuple[str, int], str], key: Mapping[int, dict],
          group: str) -> dict[str, dict[str, int]]:
    """Counts per value of ``group`` ("system" or "listener"; system rows also split by
    kind): answers, identified (picked the pianist), missed, cannot tell."""
    out: dict[str, dict[str, int]] = {}
    for (listener, pair), answer in sorted(answers.items()):
        row = key[pair]
        name = listener if group == "listener" else (
            row["system"] + (" (whole piece)" if row["kind"] == "whole" else ""))
        counts = out.setdefault(name, {"answers": 0, "identified": 0, "missed": 0,
                                       "cannot tell": 0})
        counts["answers"] += 1
        if answer == "cannot tell":
            counts["cannot tell"] += 1
        else:
            counts["identified" if answer == row["human"] else "missed"] += 1
    return out


def _rows(counts: Mapping[str, dict[str, int]]) -> Iterable[str]:
    for name, c in counts.items():
        decided = c["identified"] + c["missed"]
        share = f"{c['identified'] / decided:.2f}" if decided else "-"
        low, high = wilson(c["identified"], decided)
        yield (f"| {name} | {c['answers']} | {share} [{low:.2f}, {high:.2f}] | "
               f"{binomial_p(c['identified'], decided):.3g} | "
               f"{c['cannot tell'] / c['answers']:.2f} |")


def report(kit: str, answers: Mapping[tuple[str, int], str], key: Mapping[int, dict],
           files: Sequence[str]) -> str:
    """The Markdown report (see the module's docstring)."""
    listeners = sorted({listener for listener, _ in answers})
    head = ("| {} | answers | pianist identified (of decided) [95%] | p vs chance | "
            "cannot tell |\n|---|---|---|---|---|")
    lines = [f"# Listening test: kit {kit}", "",
             f"{len(answers)} answers from {len(listeners)} listener(s) "
             f"({len(files)} file(s)) to {len(key)} pairs. 0.50 is chance: the listeners "
             "could not tell the pianist from the system; the paper's listeners picked the "
             "human 53% of the time.", "", "## By system", "", head.format("system"),
             *_rows(tally(answers, key, "system")), "", "## By listener", "",
             head.format("listener"), *_rows(tally(answers, key, "listener"))]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> None:
    files = argv[1:]
    if not FLAGS.kit:
        usage_error("name the kit's folder with --kit")
    if not files:
        usage_error("give the listeners' answer CSV files")
    try:
        kit, key = read_key(FLAGS.kit)
        answers = read_answers(files, kit, key)
    except ScoreError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if not answers:
        usage_error("the answer files hold no answers")
    text = report(kit, answers, key, files)
    print(text, end="")
    if FLAGS.out:
        write_text_atomically(FLAGS.out, text)


if __name__ == "__main__":
    flags.DEFINE_string("kit", None, "The kit's folder (experiments.listening_test --out).")
    flags.DEFINE_string("out", None, "Also write the report to this Markdown file.")
    app.run(main, flags_parser=parse_flags)
