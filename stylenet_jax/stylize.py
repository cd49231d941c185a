r"""Perform MIDI files: give every piano note a velocity from a StyleNet style head.

    python -m stylenet_jax.stylize INPUT.mid -o OUTPUT.mid --style jazz
    python -m stylenet_jax.stylize INPUT.mid -o OUTPUT.mid --style classical=0.7,jazz=0.3
    python -m stylenet_jax.stylize IN_FOLDER -o OUT_FOLDER --style jazz
    python -m stylenet_jax.stylize INPUT.mid -o OUTPUT.mid --baseline features --style jazz

Only piano note-on velocities change; every other message, time and track stays as it was.
Long pieces are predicted in overlapping 200-step windows (the length the model was trained
on), one window every 100 steps, and overlapping predictions are cross-faded with triangular
weights, so there are no borders to hear and memory stays bounded whatever the length.
Windows in which no note sounds are not run, and silences longer than two windows are cut out
of the grid before predicting (which changes no velocity; see ``performed_grid``), so what a
file costs follows its notes, not the silence between them.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import sys
import tempfile
import time
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from stylenet_jax import encoding, midi

DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets",
                             "stylenet.npz")
WINDOW = 200  # steps per window: the training windows' length
HOP = WINDOW // 2
ROWS = 16  # windows per compiled call: fixed, so every file reuses one compilation
BASELINES = ("random", "constant", "features")


class StylizeError(ValueError):
    """Bad input or arguments; the message is one line naming the problem."""


class Result(NamedTuple):
    """What happened to one file (printed per file)."""

    notes: int
    changed: int
    velocities: np.ndarray  # int64 (notes,), the new piano velocities
    seconds: float
    warnings: tuple[str, ...] = ()  # repairs made reading the file (midi.Performance.warnings)


def parse_blend(spec: str, styles: Sequence[str]) -> dict[str, float]:
    """"jazz" -> {"jazz": 1.0}; "classical=0.7,jazz=0.3" -> weights (must sum to 1)."""
    weights: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in styles:
            raise StylizeError(f"unknown style {name!r}; this model has: {', '.join(styles)}")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise StylizeError(f"--style: weight {weight!r} of {name} is not a number") from None
        if not math.isfinite(value):
            raise StylizeError(f"--style: weight {weight!r} of {name} is not a finite number")
        weights[name] = weights.get(name, 0.0) + value
    if not weights:
        raise StylizeError(f"--style is empty; choose from: {', '.join(styles)}")
    if any(w < 0 for w in weights.values()):
        raise StylizeError("--style: weights must not be negative")
    if abs(sum(weights.values()) - 1.0) > 1e-6:
        raise StylizeError(f"--style: weights must sum to 1 (they sum to {sum(weights.values()):g})")
    return weights


def window_weights() -> np.ndarray:
    """float32 (WINDOW,): triangular cross-fade weights, largest mid-window, never 0."""
    i = np.arange(WINDOW, dtype=np.float32) + 0.5
    return np.minimum(i, WINDOW - i) / HOP


class Stylizer:
    """A loaded model, ready to predict velocities for any number of files (one compile)."""

    def __init__(self, path: str | None = None):
        """Loads an inference export (``checkpoints.export_inference``; default: the shipped
        model) or, for a folder, a training run's best (else newest) checkpoint."""
        import jax  # imported here so that `--help` and argument errors stay instant

        from stylenet_jax import checkpoints
        from stylenet_jax.model import StyleNet

        self.path = path or DEFAULT_MODEL
        try:
            if os.path.isdir(self.path):
                best = os.path.join(self.path, checkpoints.BEST)
                params, config, styles = checkpoints.restore_params(
                    best if os.path.isdir(best) and os.listdir(best) else self.path)
                params = jax.device_get(params)
            else:
                params, config, styles = checkpoints.load_inference(self.path)
        except checkpoints.CheckpointError as e:
            raise StylizeError(midi.one_line(e)) from None
        if (config.input_size, config.output_size) != (encoding.INPUT_SIZE, encoding.NUM_KEYS):
            raise StylizeError(f"{self.path}: a model of {config.input_size} inputs and "
                               f"{config.output_size} outputs; stylize needs "
                               f"{encoding.INPUT_SIZE} and {encoding.NUM_KEYS}")
        self.params, self.config, self.styles = params, config, list(styles)
        self._jax = jax
        self._model_class = StyleNet
        self._predict = {}

    def _predictor(self, heads: tuple[int, ...]):
        """A jitted (ROWS, WINDOW, 176) uint8 -> (ROWS, WINDOW, 88) float32 blend function."""
        if heads not in self._predict:
            from stylenet_jax.model import is_head_param

            jax, jnp = self._jax, self._jax.numpy
            config = dataclasses.replace(self.config, num_styles=len(heads))
            model = self._model_class(config)
            index = np.array(heads)
            params = jax.tree_util.tree_map_with_path(
                lambda p, a: a[index] if is_head_param(p) else a, self.params)
            params = jax.device_put(params)

            @jax.jit
            def predict(params, inputs, weights):
                lengths = jnp.full((inputs.shape[0],), inputs.shape[1], jnp.int32)
                velocities, _ = model.apply({"params": params}, inputs, lengths, train=False)
                return jnp.tensordot(weights, velocities, axes=1)

            self._predict[heads] = (predict, params)
        return self._predict[heads]

    def predict(self, inputs: np.ndarray, blend: Mapping[str, float]) -> np.ndarray:
        """Velocities in [0, 1], float32 (T, 88), for encoded inputs uint8 (T, 176).

        Windows of WINDOW steps start every HOP steps (from -HOP, silence before the music)
        and are run ROWS at a time; overlapping outputs are cross-faded. A window in which no
        note sounds is not run: steps that only such windows cover are 0 (every sounding cell
        gets exactly what running every window would give it).
        """
        names = sorted(blend, key=self.styles.index)
        predict, params = self._predictor(tuple(self.styles.index(n) for n in names))
        weights = np.array([blend[n] for n in names], np.float32)
        steps = inputs.shape[0]
        padded = np.zeros((steps + 2 * WINDOW, inputs.shape[1]), np.uint8)
        padded[HOP:HOP + steps] = inputs  # padded row r is step r - HOP
        sounding = np.concatenate([[0], np.cumsum(padded.any(axis=1))])
        starts = np.arange(-HOP, steps, HOP)
        starts = starts[sounding[starts + HOP + WINDOW] > sounding[starts + HOP]]
        fade = window_weights()
        total = np.zeros((steps + 2 * WINDOW, encoding.NUM_KEYS), np.float32)
        norm = np.zeros((steps + 2 * WINDOW, 1), np.float32)
        for first in range(0, len(starts), ROWS):
            rows = starts[first:first + ROWS] + HOP
            batch = np.zeros((ROWS, WINDOW, inputs.shape[1]), np.uint8)
            for r, start in enumerate(rows):
                batch[r] = padded[start:start + WINDOW]
            out = np.asarray(predict(params, batch, weights))
            for r, start in enumerate(rows):
                total[start:start + WINDOW] += out[r] * fade[:, None]
                norm[start:start + WINDOW] += fade[:, None]
        return (total[HOP:HOP + steps] / np.maximum(norm[HOP:HOP + steps], 1e-6)).astype(
            np.float32)


def performed_grid(notes: midi.Notes, ticks_per_beat: int) -> tuple[np.ndarray, np.ndarray]:
    """Onset and end steps (int64 (n,)) of ``notes`` on the grid the model reads: the 1/16 grid
    (``encoding.quantize``) with long silences cut out.

    The grid is cut in blocks of HOP steps, the stride of the prediction windows; a window
    covers two neighbouring blocks. Every block two or more blocks away from any block with an
    onset is removed. The windows that hold an onset see exactly what they would see on the
    whole grid (their blocks are all kept, and whole blocks keep the windows' alignment), and
    the other windows change no velocity (velocities are read at onsets only). So performing
    on this grid gives every note the velocity the whole grid would, at a cost that follows
    the notes: two notes ten hours apart make a grid of a few hundred steps.
    """
    onset, end = encoding.quantize(notes, ticks_per_beat)
    if not len(onset):
        return onset, end
    blocks = onset // HOP
    kept = np.unique(np.concatenate([blocks - 1, blocks, blocks + 1]))
    kept = kept[kept >= 0]

    def kept_steps_before(step: np.ndarray) -> np.ndarray:
        block = step // HOP
        index = np.searchsorted(kept, block)  # kept blocks before this step's block
        inside = kept[np.minimum(index, len(kept) - 1)] == block
        return index * HOP + np.where(inside, step - block * HOP, 0)

    return kept_steps_before(onset), kept_steps_before(end)


def baseline_velocities(kind: str, notes: int, *, seed: int = 0, velocity: int = 64) -> np.ndarray:
    """The paper's baselines: ``random`` uniform 1..127 (seeded) or one ``constant`` velocity."""
    if kind == "random":
        return np.random.default_rng(seed).integers(1, 128, notes).astype(np.int64)
    if kind == "constant":
        if not 1 <= velocity <= 127:
            raise StylizeError("--velocity must be in 1..127")
        return np.full(notes, velocity, np.int64)
    raise StylizeError(f"--baseline must be one of {', '.join(BASELINES)}")


def perform_file(source: str, target: str, *, stylizer: Stylizer | None = None,
                 blend: Mapping[str, float] | None = None, baseline: str | None = None,
                 seed: int = 0, velocity: int = 64, features=None,
                 make_parents: bool = False) -> Result:
    """Writes ``source`` with new piano velocities to ``target`` (atomically).

    Uses the stylizer's blend of style heads, or a ``baseline``; ``baseline="features"`` takes
    ``features``, a (feature_baseline.FeatureBaseline, style) pair. Raises StylizeError or
    midi.MidiError (one line naming the file) without writing anything. A file whose notes
    span more than ``encoding.MAX_STEPS`` steps, long silences left out
    (``performed_grid``), is refused, whatever the mode. ``make_parents`` creates the
    target's missing folders, only once there is something to write.
    """
    began = time.perf_counter()
    perf = midi.load_performance(source)
    notes = perf.notes.select(encoding.in_piano_range(perf.notes))
    name = midi.shown(source)
    if not len(notes):
        raise StylizeError(f"{name}: no piano notes (MIDI 21..108 outside channel 10)")
    onset, end = performed_grid(notes, perf.ticks_per_beat)
    reason = encoding.too_long(int(end.max()), "steps (silences left out)")
    if reason:
        raise StylizeError(f"{name}: {reason}")
    if baseline == "features":
        model, style = features
        seconds = midi.tick_seconds(perf.midi, notes.start)
        velocities = model.predict(notes, perf.ticks_per_beat, style, seconds)
    elif baseline:
        velocities = baseline_velocities(baseline, len(notes), seed=seed, velocity=velocity)
    else:
        inputs = encoding.encode_steps(onset, end, notes.pitch, notes.velocity).inputs
        predicted = stylizer.predict(inputs, blend)
        velocities = encoding.velocities_at(predicted, onset, notes.pitch)
    midi.save_atomically(midi.with_velocities(perf.midi, notes, velocities), target,
                         make_parents=make_parents)
    changed = int((velocities != notes.velocity).sum())
    return Result(len(notes), changed, velocities, time.perf_counter() - began, perf.warnings)


def describe(path: str, result: Result, label: str) -> str:
    """One line per file: notes changed, velocity min/mean/max, style, seconds."""
    v = result.velocities
    return (f"{midi.shown(path)}: {result.changed}/{result.notes} notes changed, velocity "
            f"min {v.min()} mean {v.mean():.1f} max {v.max()}, {label}, {result.seconds:.2f} s")


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
        return (f"--cache_dir {midi.shown(directory)}: cannot use it "
                f"({e.strerror or e}); compiling without a cache")
    import jax

    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return None


def _feature_baseline(flags_) -> tuple:
    """(FeatureBaseline, style) for --baseline features: one style of --features_model."""
    from stylenet_jax import feature_baseline

    try:
        model = feature_baseline.FeatureBaseline.load(
            flags_.features_model or feature_baseline.DEFAULT_PATH)
    except feature_baseline.FeatureBaselineError as e:
        raise StylizeError(midi.one_line(e)) from None
    style = (flags_.style or "").strip()
    if style not in model.styles:
        raise StylizeError(f"--baseline features needs --style: one of {', '.join(model.styles)} "
                           f"(no blends), got {style!r}")
    return model, style


def _warn(text: str) -> None:
    print(f"warning: {midi.one_line(text)}", file=sys.stderr, flush=True)


def _perform_one(source: str, target: str, label: str, options: dict,
                 make_parents: bool = False) -> None:
    """Performs one file and prints its line (and any warning about how it was read)."""
    result = perform_file(source, target, make_parents=make_parents, **options)
    for warning in result.warnings:
        _warn(f"{midi.shown(source)}: {warning}")
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
    stylizer = blend = None
    if flags_.list_styles or not flags_.baseline:
        if flags_.cache_dir:
            warning = enable_compilation_cache(flags_.cache_dir)
            if warning:
                _warn(warning)
        stylizer = Stylizer(flags_.checkpoint)
    if flags_.list_styles:
        print("\n".join(stylizer.styles))
        return 0
    if len(inputs) != 1:
        raise StylizeError("give one INPUT: a MIDI file or a folder of them (see --help)")
    source = inputs[0]
    if not os.path.lexists(source):
        raise StylizeError(f"{midi.shown(source)}: no such file or folder")
    if stylizer:
        if not flags_.style:
            raise StylizeError(f"choose --style: one of {', '.join(stylizer.styles)} "
                               "or a blend such as a=0.5,b=0.5")
        blend = parse_blend(flags_.style, stylizer.styles)
    features = _feature_baseline(flags_) if flags_.baseline == "features" else None
    label = f"baseline {flags_.baseline}" if flags_.baseline else f"style {flags_.style}"
    label += f" ({features[1]})" if features else ""
    options = dict(stylizer=stylizer, blend=blend, baseline=flags_.baseline, seed=flags_.seed,
                   velocity=flags_.velocity, features=features)
    if not os.path.isdir(source):
        stem = f"features-{features[1]}" if features else flags_.baseline or "-".join(blend)
        target = flags_.output or os.path.splitext(source)[0] + f".{stem}.mid"
        _perform_one(source, target, label, options)
        return 0

    if not flags_.output:
        raise StylizeError(f"{midi.shown(source)} is a folder: name an output folder with -o")
    if os.path.exists(flags_.output) and not os.path.isdir(flags_.output):
        raise StylizeError(f"{midi.shown(flags_.output)}: not a folder (INPUT is a folder)")
    names = midi.find_midi_files(source)
    if not names:
        raise StylizeError(f"{midi.shown(source)}: no .mid, .midi or .kar files in this folder")
    began, failed = time.perf_counter(), 0
    for name in names:
        path = os.path.join(source, name)
        try:
            _perform_one(path, os.path.join(flags_.output, name), label, options,
                         make_parents=True)
        except Exception as e:  # noqa: BLE001 - one bad file never stops the others
            failed += 1
            print(f"error: {_naming(path, e)}", file=sys.stderr, flush=True)
    print(f"performed {len(names) - failed} of {len(names)} files into "
          f"{midi.shown(flags_.output)} ({failed} failed) in {time.perf_counter() - began:.1f} s")
    return 2 if failed else 0


def _naming(path: str, error: BaseException) -> str:
    """The one-line message of ``error``, starting with the input file's name."""
    message = midi.one_line(error) if isinstance(error, (StylizeError, midi.MidiError)) else (
        f"unexpected {type(error).__name__}: {midi.one_line(error)}")
    name = midi.shown(path)
    return message if message.startswith(name) else f"{name}: {message}"


def main(argv: Sequence[str]) -> None:
    from absl import flags, logging

    logging.set_verbosity(logging.WARNING)  # JAX's backend-probing notes are not for users
    try:
        status = _run(argv[1:], flags.FLAGS)
    except (StylizeError, midi.MidiError) as e:
        print(f"error: {midi.one_line(e)}", file=sys.stderr)
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
                        "folder (default for a file: INPUT.<style>.mid beside it). INPUT is "
                        "only overwritten if -o names it.", short_name="o")
    flags.DEFINE_string("style", None, "A style head of the model (see --list_styles), or a "
                        "blend of heads' velocities by weight: classical=0.7,jazz=0.3 "
                        "(weights sum to 1).")
    flags.DEFINE_boolean("list_styles", False, "Print the model's styles and exit.")
    flags.DEFINE_string("checkpoint", None, "Inference export (.npz) or training workdir (its "
                        "best checkpoint) to use; default: the model shipped in the "
                        "repository (stylenet_jax/assets/stylenet.npz).")
    flags.DEFINE_string("baseline", None, "Write one of the paper's baselines instead of the "
                        "model: 'random' (uniform velocities 1..127, see --seed), 'constant' "
                        "(see --velocity) or 'features' (gradient-boosted trees on note "
                        "features, one --style, see --features_model).")
    flags.DEFINE_string("features_model", None, "The model of --baseline=features (from "
                        "`python -m experiments.feature_baseline`); default: the shipped "
                        "stylenet_jax/assets/feature_baseline.pkl.")
    flags.DEFINE_integer("seed", 0, "Seed of --baseline=random (0 or more).")
    flags.DEFINE_integer("velocity", 64, "The velocity of --baseline=constant.")
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
    try:
        remaining = flags.FLAGS(argv)
    except flags.Error as e:
        print(f"error: {midi.one_line(e)} (see --help)", file=sys.stderr)
        sys.exit(2)
    main(remaining)


if __name__ == "__main__":
    try:
        cli()
    except BrokenPipeError:  # stdout closed early (`| head`): not worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C: files written so far are whole, the one in hand is not
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
