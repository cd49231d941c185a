r"""Make a listening test kit: can people tell the pianist from StyleNet (the paper's survey)?

    python -m experiments.listening_test --data_dir=DATASET --out=KIT         # its test split
    python -m experiments.listening_test --midi_dir=FOLDER --out=KIT          # any performances
    python -m experiments.listening_test --data_dir=DATASET --out=KIT --humanize=h100=model:1
    python -m experiments.listening_score --kit=KIT answers-*.csv             # score the answers

Picks ``--excerpts`` 10-second excerpts of human performances (styles in turn, a different
piece each time) and one whole piece (the paper's final test), has every system perform the
same notes (velocities flattened first, as in ``experiments.evaluate``), renders the pianist's
and each system's version with FluidSynth and a General MIDI piano soundfont, and writes:

    KIT/page/index.html     the page to give listeners (with KIT/page/clips/): pairs A/B in a
                            random order, "A is the pianist" / "B is the pianist" / "I cannot
                            tell", answers kept in the browser, a button to download a CSV
    KIT/answer_key.csv      which clip of each pair is the pianist: keep it from listeners
    KIT/kit.json            the command, settings and systems

Needs FluidSynth and a soundfont (Debian: ``sudo apt-get install fluidsynth
fluid-soundfont-gm``); the command says so when they are missing. KIT must not exist yet (or
be empty); it appears whole or not at all. Bad input: one line on stderr, exit status 2.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Sequence

import numpy as np
from absl import app, flags, logging

from experiments import evaluate, listening_audio, listening_kit
from experiments.evaluate import build_systems, define_performance_flags, load_performances
from stylenet_jax import dataset, encoding, evaluation, midi, midi_files, performances, smf
from stylenet_jax.atomic_write import write_text_atomically
from stylenet_jax.flag_parsing import parse_flags, usage_error

FLAGS = flags.FLAGS


def _define_flags() -> None:
    define_performance_flags("cut into excerpts")
    flags.adopt_module_key_flags(evaluate)  # --help lists them among this command's own
    flags.DEFINE_string("out", None, "The kit's folder (must not exist yet, or be empty).")
    flags.DEFINE_multi_string("model", None, "NAME=PATH of a StyleNet model to put against "
                              "the pianist (inference .npz or training workdir); repeat for "
                              "several. Default: model=the shipped model.")
    flags.DEFINE_list("baselines", ["features"], "Baselines put against the pianist too: "
                      + ", ".join(evaluation.BASELINES) + " (empty: none).")
    evaluate.define_features_model_flag()
    flags.DEFINE_multi_string("contrast", [], "NAME=SYSTEM:C: also put that system widened "
                              "as stylize --contrast C widens it against the pianist.")
    flags.DEFINE_multi_string("humanize", [], "NAME=SYSTEM:AMOUNT[@FILE]: also put that "
                              "system with a scatter added (stylize --humanize AMOUNT, drawn "
                              "from --seed; FILE as in experiments.evaluate) against the "
                              "pianist, e.g. model_h100=model:1.")
    evaluate.define_palette_flag()  # e.g. --palette=model_h110_p=model_h110
    flags.DEFINE_integer("excerpts", 20, "How many excerpts; each gives one pair per system.")
    flags.DEFINE_float("excerpt_seconds", 10.0, "Length of an excerpt (the paper: 10).")
    flags.DEFINE_integer("min_notes", 12, "Fewest notes an excerpt may hold.")
    flags.DEFINE_bool("whole_piece", True, "Also one whole piece of 45-180 s per system, "
                      "played last (the paper's final test).")
    flags.DEFINE_integer("flat_velocity", 64, "Velocity of every note given to a system.")
    flags.DEFINE_integer("seed", 0, "Seed of every choice: excerpts, A/B order, pair order.")
    flags.DEFINE_string("soundfont", None, "General MIDI .sf2 to render with (default: "
                        "FluidR3_GM.sf2 or another found in the usual places).")
    flags.DEFINE_integer("sample_rate", 44100, "Audio sample rate of the clips (Hz).")
    flags.DEFINE_string("title", "Pianist or computer?", "The page's title.")


def _check_flags() -> None:
    if not FLAGS.out:
        usage_error("name the kit's folder with --out")
    if os.path.exists(FLAGS.out) and (not os.path.isdir(FLAGS.out) or os.listdir(FLAGS.out)):
        usage_error(f"--out={FLAGS.out} already exists and is not an empty folder; a kit is "
                    "never written over another")
    if FLAGS.excerpts < 0 or FLAGS.excerpts == 0 and not FLAGS.whole_piece:
        usage_error("--excerpts must be 1 or more (or 0 with --whole_piece)")
    if not 1.0 <= FLAGS.excerpt_seconds <= 60.0:
        usage_error("--excerpt_seconds must be within 1..60")
    if not 8000 <= FLAGS.sample_rate <= 96000:
        usage_error("--sample_rate must be within 8000..96000")


def _render_versions(human: performances.Performed, versions: dict[str, np.ndarray],
                     work: str, soundfont: str, fluidsynth: str) -> dict[str, np.ndarray]:
    """Audio (float32 mono) of the pianist's file and of each system's velocities on it."""
    audio = {"human": listening_audio.render(human.path, soundfont, FLAGS.sample_rate,
                                             fluidsynth)}
    perf = midi.load_performance(human.path)
    notes = perf.notes.select(encoding.in_piano_range(perf.notes))  # as load_performed
    if len(notes) != len(human.notes) or not np.array_equal(notes.pitch, human.notes.pitch):
        raise ValueError(f"{human.path}: the file changed while the kit was made")
    for system, velocities in versions.items():
        path = os.path.join(work, f"{system}.mid")
        midi_files.save_atomically(midi.with_velocities(perf.midi, notes, velocities), path)
        audio[system] = listening_audio.render(path, soundfont, FLAGS.sample_rate, fluidsynth)
    return audio


def build_kit(performed: Sequence[performances.Performed], systems: Sequence,
              folder: str, soundfont: str, fluidsynth: str, log) -> dict:
    """Writes the page, clips and key into ``folder``; returns the kit's description."""
    rng = np.random.default_rng(FLAGS.seed)
    excerpts = listening_kit.choose_excerpts(performed, FLAGS.excerpts, FLAGS.excerpt_seconds,
                                             FLAGS.min_notes, rng) if FLAGS.excerpts else []
    whole = listening_kit.choose_whole_piece(performed, rng) if FLAGS.whole_piece else None
    if FLAGS.whole_piece and whole is None:
        log("note: no performance lasts 45 s or more; the kit has no whole piece")
    excerpts += [whole] if whole else []
    names = [s.name for s in systems]
    pairs = listening_kit.make_pairs(excerpts, names, rng)
    key_rows = listening_kit.answer_key("", pairs, performed)
    kit = hashlib.sha256(key_rows.encode()).hexdigest()[:10]
    used = sorted({e.performance for e in excerpts})
    clips_dir = os.path.join(folder, "page", "clips")
    os.makedirs(clips_dir)
    with tempfile.TemporaryDirectory(prefix="stylenet-kit-") as work:
        for count, index in enumerate(used, 1):
            human = performed[index]
            given = evaluation.flatten(human, FLAGS.flat_velocity)
            versions = {name: np.asarray(p.velocities, np.int64)
                        for name, p in evaluation.perform_piece(given, systems).items()}
            audio = _render_versions(human, versions, work, soundfont, fluidsynth)
            for pair in (p for p in pairs if p.excerpt.performance == index):
                e = pair.excerpt
                human_clip, system_clip = (
                    listening_audio.excerpt(audio[name], FLAGS.sample_rate, e.start_s,
                                            e.seconds) for name in ("human", pair.system))
                human_clip, system_clip = listening_audio.scale_together(human_clip,
                                                                         system_clip)
                a, b = (human_clip, system_clip) if pair.human_first else (system_clip,
                                                                           human_clip)
                for clip, name in zip((a, b), listening_kit.clip_names(pair)):
                    listening_audio.write_wav(os.path.join(folder, "page", name), clip,
                                              FLAGS.sample_rate)
            log(f"[{count}/{len(used)}] {human.id}: {len(human.notes)} notes, "
                f"{sum(p.excerpt.performance == index for p in pairs)} pair(s)")
    write_text_atomically(os.path.join(folder, "page", "index.html"),
                          listening_kit.page(kit, FLAGS.title, pairs))
    write_text_atomically(os.path.join(folder, "answer_key.csv"),
                          listening_kit.answer_key(kit, pairs, performed))
    return {"kit": kit, "pairs": len(pairs), "excerpts": len(excerpts) - bool(whole),
            "whole_piece": performed[whole.performance].id if whole else None,
            "systems": names}


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        usage_error(f"unexpected arguments: {' '.join(argv[1:])}")
    _check_flags()
    logging.set_verbosity(logging.WARNING)  # JAX's backend probing is not for this page
    began = time.perf_counter()
    try:
        fluidsynth = listening_audio.find_fluidsynth()
        soundfont = listening_audio.find_soundfont(FLAGS.soundfont)
        performed, data = load_performances()
        systems, described = build_systems(FLAGS.model, FLAGS.baselines,
                                           features_model=FLAGS.features_model,
                                           seed=FLAGS.seed, contrast_specs=FLAGS.contrast,
                                           humanize_specs=FLAGS.humanize,
                                           palette_specs=FLAGS.palette)
        if not systems:
            raise ValueError("no system to put against the pianist: give --model or "
                             "--baselines")
        evaluation.check_styles(performed, systems)
    except (ValueError, OSError, KeyError, dataset.DatasetError, smf.MidiError,
            listening_audio.AudioToolError) as e:
        usage_error(smf.one_line(e))
    out = os.path.abspath(FLAGS.out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    partial = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.partial-", dir=parent)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        summary = build_kit(performed, systems, partial, soundfont, fluidsynth, log)
        summary.update(command="python -m experiments.listening_test " + " ".join(sys.argv[1:]),
                       data=data, systems_described=described, soundfont=soundfont,
                       seed=FLAGS.seed, excerpt_seconds=FLAGS.excerpt_seconds,
                       sample_rate=FLAGS.sample_rate, flat_velocity=FLAGS.flat_velocity,
                       seconds=round(time.perf_counter() - began, 1))
        write_text_atomically(os.path.join(partial, "kit.json"),
                              json.dumps(summary, indent=1) + "\n")
        if os.path.isdir(out):
            os.rmdir(out)  # empty, checked above
        os.rename(partial, out)
    except BaseException as e:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(e, (ValueError, OSError, smf.MidiError, listening_audio.AudioToolError)):
            print(f"error: {smf.one_line(e)}", file=sys.stderr)
            sys.exit(2)
        raise
    print(f"wrote kit {summary['kit']} to {FLAGS.out}: {summary['pairs']} pairs "
          f"({summary['excerpts']} excerpts"
          f"{' + a whole piece' if summary['whole_piece'] else ''} x "
          f"{len(summary['systems'])} system(s)) in {summary['seconds']:.0f} s.\n"
          f"Give listeners {os.path.join(FLAGS.out, 'page')} (open index.html); keep "
          f"{os.path.join(FLAGS.out, 'answer_key.csv')} from them. Score their CSVs with: "
          f"python -m experiments.listening_score --kit={FLAGS.out} ANSWERS.csv ...")


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=parse_flags)
