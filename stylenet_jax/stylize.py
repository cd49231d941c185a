r"""Perform MIDI files: give the piano notes velocities from a StyleNet style head.

    python -m stylenet_jax.stylize INPUT.mid -o OUTPUT.mid --style jazz
    python -m stylenet_jax.stylize INPUT.mid -o OUTPUT.mid --style classical=0.7,jazz=0.3
    python -m stylenet_jax.stylize IN_FOLDER -o OUT_FOLDER --style jazz
    python -m stylenet_jax.stylize INPUT.mid -o OUTPUT.mid --baseline features --style jazz
    python -m stylenet_jax.stylize INPUT.mid -o OUTPUT.mid --style jazz --contrast 1.4
    python -m stylenet_jax.stylize INPUT.mid -o OUTPUT.mid --style jazz --humanize 1 --seed 2
    python -m stylenet_jax.stylize INPUT.mid -o OUTPUT.mid --style jazz --strength 0.5
    python -m stylenet_jax.stylize INPUT.mid -o OUTPUT.mid --style jazz --keep_level
    python -m stylenet_jax.stylize INPUT.mid -o OUTPUT.mid --style jazz --velocity_range 40,100
    python -m stylenet_jax.stylize INPUT.mid -o OUTPUT.mid --style jazz --channels 1,2
    python -m stylenet_jax.stylize INPUT.mid -o OUTPUT.mid --style jazz --plot OUTPUT.png

Which notes are performed: in a file that names its instruments (program changes), the notes
of piano programs (General MIDI 0-7, counted from 0) and of channels with no program set; in
a file that names none, every note. Drums (channel 10) never. --tracks (counted from 0, as in
the file) and --channels (1..16) choose instead. Each file's line says how many notes were left
as they were, and a file with nothing to perform is refused.

Only the performed notes' note-on velocities change; every other message, time and track
stays as it was. Long pieces are predicted in overlapping 200-step windows (the length the
model was trained on), one window every 100 steps, and overlapping predictions are
cross-faded with triangular weights, so there are no borders to hear and memory stays
bounded whatever the length.
Windows in which no note sounds are not run, and silences longer than two windows are cut out
of the grid before predicting (which changes no velocity; see ``performer.performed_grid``), so
what a file costs follows its notes, not the silence between them.

--humanize A adds A times a pianist's scatter around the model's velocities (0, the default:
none): phrases a little louder or softer than the model expects, chords and the notes within
them uneven, as a pianist plays them. The shipped scatter is learned
(``stylenet_jax.learned_scatter``: a small network that reads the notes, trained against the
identify-the-human classifier) and leaves the file's level where the model put it;
--humanize_scatter names another: ``mild`` (the same network charged more for its distance
from the pianist: less error, easier to tell from a pianist), ``gaussian``
(``stylenet_jax.humanize``) or a scatter file. --palette then plays the draw on the
style's velocity palette (``stylenet_jax.velocity_palette``: only the values its pianists'
instrument sends, as often as it sends them). Each
--seed draws another performance; the same seed gives the same file. At 1 it widens the
dynamics to about a pianist's and makes them much harder to tell from a pianist's, at a cost
in note accuracy against any one pianist (README, "Wider dynamics").

The musician's controls act on the new velocities before writing, in this order: --contrast
(every note's distance from the performance's mean level times C: wider or narrower dynamics),
--strength (blend with the file's own velocities), --keep_level (the file's own mean level), then
--velocity_range (the performance's min..max mapped onto LO..HI). Each file's line names any
notes at 110 and above or far above the file's mean ("3 notes at 104-121 (spikes?)").
"""

# The command line only (flags, files and folders, stdout, one-line errors); the library it
# runs (Stylizer, blends, baselines, perform_file) is ``stylenet_jax.performer``, imported only
# once the arguments are checked: it brings JAX and scikit-learn (seconds), and a mistyped flag
# or a missing file should be answered at once.

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from typing import Sequence

from stylenet_jax import dynamics, humanize, midi_files, note_selection, smf, velocity_palette
from stylenet_jax.flag_parsing import parse_flags
from stylenet_jax.style_choice import BASELINES, StylizeError, blend_name, parse_blend


def enable_compilation_cache(directory: str) -> str | None:
    """Keeps compiled programs in ``directory`` so later runs skip XLA compilation.

    Returns None, or a one-line warning when the folder cannot be used (a file, a read-only
    disk, no permission): the run then compiles without a cache.
    """
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass  # the cache must be writable, or JAX fails later
    except OSError as e:
        return (f"--cache_dir {smf.shown(directory)}: cannot use it "
                f"({e.strerror or e}); compiling without a cache")
    import jax

    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return None


def _warn(text: str) -> None:
    print(f"warning: {smf.one_line(text)}", file=sys.stderr, flush=True)


def _perform_one(source: str, target: str, label: str, options: dict,
                 make_parents: bool = False, plot: str | None = None) -> None:
    """Performs one file and prints its line (and any warning about how it was read)."""
    from stylenet_jax.performer import describe, perform_file

    result = perform_file(source, target, make_parents=make_parents, plot=plot,
                          plot_title=f"{smf.shown(os.path.basename(source))}: "
                          f"{label.replace('style ', '', 1)}", **options)
    for warning in result.warnings:
        _warn(f"{smf.shown(source)}: {warning}")
    print(describe(target, result, label), flush=True,
          file=sys.stderr if _is_stdout(target) else sys.stdout)


def _is_stdout(path: str) -> bool:
    """True when ``path`` is where stdout goes (``-o /dev/stdout``): the line about the file
    then goes to stderr, not into the MIDI bytes."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False


def _run(inputs: Sequence[str], flags_) -> int:
    """The command: returns the exit status (0 ok, 2 bad input or arguments)."""
    if flags_.baseline and flags_.baseline not in BASELINES:
        raise StylizeError(f"--baseline must be one of {', '.join(BASELINES)}")
    if flags_.seed < 0:
        raise StylizeError(f"--seed must be 0 or more, got {flags_.seed}")
    if flags_.baseline == "constant" and not 1 <= flags_.velocity <= 127:
        raise StylizeError("--velocity must be in 1..127")
    try:
        amount = humanize.check_amount(flags_.humanize)
    except humanize.HumanizeError as e:
        raise StylizeError(str(e)) from None
    if amount and flags_.baseline in ("random", "constant"):
        raise StylizeError(f"--humanize scatters a style's performance; --baseline "
                           f"{flags_.baseline} has no style to scatter")
    try:
        controls = dynamics.Controls.from_flags(flags_.strength, flags_.keep_level,
                                                flags_.velocity_range, flags_.contrast)
    except dynamics.ControlError as e:
        raise StylizeError(str(e)) from None
    try:
        tracks = note_selection.parse_tracks(flags_.tracks)
        channels = note_selection.parse_channels(flags_.channels)
    except note_selection.SelectionError as e:
        raise StylizeError(str(e)) from None
    if flags_.baseline in ("random", "constant") and flags_.style:
        _warn(f"--baseline {flags_.baseline} ignores --style ({flags_.style})")
    if flags_.humanize_scatter and not amount:
        _warn(f"--humanize_scatter ({flags_.humanize_scatter}) draws nothing without "
              "--humanize (e.g. --humanize 1)")
    if flags_.palette and not amount:
        _warn("--palette plays nothing without --humanize (e.g. --humanize 1)")
    if not flags_.list_styles:
        if len(inputs) != 1:
            raise StylizeError("give one INPUT: a MIDI file or a folder of them (see --help)")
        if not os.path.lexists(inputs[0]):
            raise StylizeError(f"{smf.shown(inputs[0])}: no such file or folder")
    from stylenet_jax.performer import Stylizer, load_features

    stylizer = blend = None
    if flags_.list_styles or not flags_.baseline:
        if flags_.cache_dir:
            warning = enable_compilation_cache(flags_.cache_dir)
            if warning:
                _warn(warning)
        stylizer = Stylizer(flags_.checkpoint, tree=flags_.features_model)
        if stylizer.tree_problem:
            _warn(stylizer.tree_problem)
    if flags_.list_styles:
        print("\n".join(stylizer.styles))
        return 0
    source = inputs[0]
    if stylizer:
        if not flags_.style:
            raise StylizeError(f"choose --style: one of {', '.join(stylizer.styles)} "
                               "or a blend such as a=0.5,b=0.5")
        blend = parse_blend(flags_.style, stylizer.styles)
    features = (load_features(flags_.features_model, flags_.style)
                if flags_.baseline == "features" else None)
    scatter = palette = None
    if amount:
        try:
            loaded = humanize.load(flags_.humanize_scatter)
            scatter = humanize.for_blend(loaded, blend or {features[1]: 1.0})
        except humanize.HumanizeError as e:
            raise StylizeError(f"--humanize: {e}") from None
        if getattr(loaded, "about", {}).get("palette") and not flags_.palette:
            _warn("this scatter learned to play on the velocity palette (train_scatter "
                  "--palette): add --palette to play it as it was trained")
    if amount and flags_.palette:
        try:
            palette = velocity_palette.load().for_blend(blend or {features[1]: 1.0})
        except velocity_palette.PaletteError as e:
            raise StylizeError(f"--palette: {e}") from None
    label = f"baseline {flags_.baseline}" if flags_.baseline else f"style {flags_.style}"
    label += (f" ({features[1]})" if features else "")
    scatter_name = humanize.scatter_label(flags_.humanize_scatter) if amount else ""
    if amount:
        label += f", humanize {amount:g}{f' ({scatter_name})' if scatter_name else ''}" \
                 f"{' on the palette' if palette else ''} seed {flags_.seed}"
    label += controls.label()
    options = dict(stylizer=stylizer, blend=blend, baseline=flags_.baseline, seed=flags_.seed,
                   velocity=flags_.velocity, features=features,
                   scatter=(scatter, amount) if amount else None, palette=palette,
                   controls=None if controls.is_default else controls, tracks=tracks,
                   channels=channels)
    if not os.path.isdir(source):
        stem = (f"features-{features[1]}" if features else flags_.baseline
                or blend_name(blend, stylizer.styles))
        if amount:
            stem += f"-humanize{round(amount * 100):d}{'-' if scatter_name else ''}" \
                    f"{scatter_name}{'-palette' if palette else ''}"
        if (flags_.baseline == "random" or amount) and flags_.seed:
            stem += f"-seed{flags_.seed}"
        target = flags_.output or (os.path.splitext(source)[0] + f".{stem}"
                                   f"{controls.file_suffix()}.mid")
        plot = flags_.plot
        if plot and (os.path.isdir(plot) or not plot.lower().endswith(".png")):
            raise StylizeError(f"--plot {smf.shown(plot)}: name a .png file (INPUT is a file)")
        _perform_one(source, target, label, options, plot=plot)
        if plot:
            print(f"picture: {smf.shown(plot)}", file=sys.stderr if _is_stdout(target)
                  else sys.stdout)
        return 0

    if not flags_.output:
        raise StylizeError(f"{smf.shown(source)} is a folder: name an output folder with -o")
    if os.path.exists(flags_.output) and not os.path.isdir(flags_.output):
        raise StylizeError(f"{smf.shown(flags_.output)}: not a folder (INPUT is a folder)")
    if flags_.plot and os.path.exists(flags_.plot) and not os.path.isdir(flags_.plot):
        raise StylizeError(f"--plot {smf.shown(flags_.plot)}: not a folder (INPUT is a "
                           "folder: each file's picture goes into it as NAME.png)")
    names = midi_files.find_midi_files(source)
    if not names:
        raise StylizeError(f"{smf.shown(source)}: no .mid, .midi or .kar files in this folder")
    began, failed = time.perf_counter(), 0
    for name in names:
        path = os.path.join(source, name)
        try:
            plot = (os.path.join(flags_.plot, os.path.splitext(name)[0] + ".png")
                    if flags_.plot else None)
            _perform_one(path, os.path.join(flags_.output, name), label, options,
                         make_parents=True, plot=plot)
        except Exception as e:  # noqa: BLE001 - one bad file never stops the others
            failed += 1
            print(f"error: {_naming(path, e)}", file=sys.stderr, flush=True)
    print(f"performed {len(names) - failed} of {len(names)} files into "
          f"{smf.shown(flags_.output)} ({failed} failed) in {time.perf_counter() - began:.1f} s")
    return 2 if failed else 0


def _naming(path: str, error: BaseException) -> str:
    """The one-line message of ``error``, starting with the input file's name."""
    message = smf.one_line(error) if isinstance(error, (StylizeError, smf.MidiError)) else (
        f"unexpected {type(error).__name__}: {smf.one_line(error)}")
    name = smf.shown(path)
    return message if message.startswith(name) else f"{name}: {message}"


def main(argv: Sequence[str]) -> None:
    from absl import flags, logging

    logging.set_verbosity(logging.WARNING)  # JAX's backend-probing notes are not for users
    try:
        status = _run(argv[1:], flags.FLAGS)
    except (StylizeError, smf.MidiError) as e:
        print(f"error: {smf.one_line(e)}", file=sys.stderr)
        status = 2
    except Exception as e:  # noqa: BLE001 - the promise is one line and status 2, never a traceback
        source = argv[1] if len(argv) == 2 else None
        print(f"error: {_naming(source, e) if source else _naming('stylize', e)}",
              file=sys.stderr)
        status = 2
    sys.exit(status)


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("output", None, "Output MIDI file, or output folder when INPUT is a "
                        "folder (default for a file: INPUT.<style>.mid beside it, a blend as "
                        "INPUT.classical70-jazz30.mid; controls, --humanize and a "
                        "seed add to the name: INPUT.jazz-strength50.mid, "
                        "INPUT.jazz-humanize75-seed2.mid, INPUT.random-seed3.mid). INPUT is "
                        "only overwritten if -o names it.",
                        short_name="o")
    flags.DEFINE_string("style", None, "A style head of the model (see --list_styles), or a "
                        "blend of heads' velocities by weight: classical=0.7,jazz=0.3 "
                        "(weights sum to 1).")
    flags.DEFINE_boolean("list_styles", False, "Print the model's styles and exit.")
    flags.DEFINE_string("checkpoint", None, "Inference or ensemble export (.npz; an "
                        "ensemble plays its models' mean) or training workdir (its best "
                        "checkpoint) to use; default: the model shipped in the repository "
                        "(stylenet_jax/assets/stylenet.npz).")
    flags.DEFINE_string("baseline", None, "Write one of the paper's baselines instead of the "
                        "model: 'random' (uniform velocities 1..127, see --seed), 'constant' "
                        "(see --velocity) or 'features' (gradient-boosted trees on note "
                        "features, one --style, see --features_model).")
    flags.DEFINE_string("features_model", None, "The model of --baseline=features (from "
                        "`python -m experiments.feature_baseline`), and the tree a hybrid "
                        "model (--tree_prior_dir in training) reads; default: the shipped "
                        "stylenet_jax/assets/feature_baseline.pkl. A warning is printed when "
                        "the model records another tree (experiments.attach_tree).")
    flags.DEFINE_integer("seed", 0, "Seed of --baseline=random and of --humanize's draw (0 "
                         "or more): another seed, another performance.")
    flags.DEFINE_float("humanize", 0.0, "0..2: add this much of a pianist's scatter around "
                       "the model's velocities (uneven phrases, chords and voices, drawn by a "
                       "network trained against the identify-the-human classifier); 0 adds "
                       "none, 1 gives about a pianist's spread and texture, at a cost in note "
                       "accuracy (README, Wider dynamics). Applied before the controls below.")
    flags.DEFINE_string("humanize_scatter", None, "The scatter --humanize draws from: "
                        "learned (the default, stylenet_jax/assets/learned_scatter.npz), mild "
                        "(trained closer to the pianist: less error, less realism; "
                        "learned_scatter_mild.npz), per_style (the same recipe trained on "
                        "each style alone: harder for a judge of one style to catch; "
                        "scatter_per_style.json), both_judges (one network trained against "
                        "judges of all styles and of each style at once; "
                        "scatter_both_judges.npz), gaussian (the earlier "
                        "Gaussian parts, humanize.json), or a file: a .json of Gaussian parts "
                        "(`python -m experiments.fit_humanize`), an .npz learned scatter "
                        "(`python -m experiments.train_scatter`) or a .json naming one per "
                        "style (stylenet_jax.per_style_scatter). Other than the default, its "
                        "name joins the output's (IN.jazz-humanize100-mild.mid).")
    flags.DEFINE_boolean("palette", False, "With --humanize: play the draw on the style's "
                         "velocity palette, only the values its pianists' instrument sends "
                         "(stylenet_jax.velocity_palette: the jazz and pop pianists' digital "
                         "piano never sends 53, 62, 66, ...). It joins the output's name "
                         "(IN.jazz-humanize100-palette.mid). Off by default: it hides one "
                         "tell from some judges, not from all (README, The instrument's "
                         "palette).")
    flags.DEFINE_integer("velocity", 64, "The velocity of --baseline=constant.")
    flags.DEFINE_float("contrast", 1.0, "0..4: multiply every note's distance from the "
                       "performance's mean velocity by C (clipped to 1..127). The shipped model "
                       "plays narrower dynamics than a pianist (0.57 and 0.66 of the spread in "
                       "classical and jazz, files without pedals); 1.4 gives about a "
                       "pianist's range at some cost in note accuracy (README, Wider "
                       "dynamics). Applied first.")
    flags.DEFINE_float("strength", 1.0, "0..1: how much of the new velocities to use, the "
                       "rest being the file's own: round((1-S)*own + S*new); 1 is the model "
                       "alone, 0 leaves the file as it was. Applied after --contrast.")
    flags.DEFINE_boolean("keep_level", False, "Shift the performance so that its mean "
                         "velocity is the input file's own (clipped to 1..127). Applied "
                         "after --strength.")
    flags.DEFINE_string("velocity_range", None, "LO,HI (1 <= LO <= HI <= 127): map the "
                        "performance's quietest..loudest note onto LO..HI, keeping its shape "
                        "(all notes equal: the middle). Applied last.")
    flags.DEFINE_string("plot", None, "Also draw the performance: a PNG with the piano roll "
                        "coloured by velocity before and after, and velocity over time. "
                        "INPUT a file: the .png to write; INPUT a folder: a folder that gets "
                        "one NAME.png per file.")
    flags.DEFINE_string("tracks", None, "Perform only the notes of these tracks, counted "
                        "from 0 as they lie in the file (in a format 1 file, track 0 is "
                        "usually the tempo track): 1,2. Default: the piano part (see above).")
    flags.DEFINE_string("channels", None, "Perform only the notes of these MIDI channels, "
                        "1..16 (10, drums, never): 1,2. With --tracks, a note must match "
                        "both. Default: the piano part (see above).")
    flags.DEFINE_string("cache_dir", os.path.join(os.path.expanduser("~"), ".cache",
                                                  "stylenet-jax", "xla"),
                        "JAX persistent compilation cache ('' to turn it off): later runs "
                        "skip compiling. A folder that cannot be written is skipped with a "
                        "warning.")


HELP_FLAGS = ("-h", "-help", "--help", "-?", "--helpshort", "-helpshort", "--helpfull",
              "-helpfull")


def cli(argv: Sequence[str] | None = None) -> None:
    """The command line: flags parsed here rather than by absl's app.run, so that a flag
    error is one line and status 2 (absl: usage text and 1) and --help is status 0."""
    from absl import flags

    argv = list(sys.argv if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):  # a file name never breaks a strict encoding
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    _define_flags()
    if any(arg in HELP_FLAGS for arg in argv[1:]):
        print(__doc__.strip() + "\n\nFlags:\n" + flags.FLAGS.main_module_help())
        sys.exit(0)
    main(parse_flags(argv))


if __name__ == "__main__":
    try:
        cli()
    except BrokenPipeError:  # stdout closed early (`| head`): not worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C: files written so far are whole, the one in hand is not
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
