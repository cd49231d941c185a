r"""Benchmark: stylenet-jax's training step and inference beside the same network in PyTorch.

    python -m experiments.bench                    # auto device, writes results/performance.md
    python -m experiments.bench --device=cpu --batch_sizes=8,32 --repeats=5
    python -m experiments.bench --skip_torch --out=/tmp/perf.md
    python -m experiments.bench --matmul_dtype=bfloat16 --recurrence=autodiff --unroll=2
    python -m experiments.bench --profile_dir=/tmp/prof  # + where the JAX step's time goes
    python -m experiments.bench --device=cpu --devices=1,2,4  # + data parallel, N devices

Flags may also come from a file (``--flagfile=FILE``, one flag a line); ``--help`` lists them.
The network and optimizer settings (``--hidden_size``, ``--precision``, ``--clip``, ...) are
the project's own: their flags come from ``ModelConfig`` and ``OptimConfig``
(``stylenet_jax.config_flags``), as in ``experiments.train``, as do ``--window`` and
``--seed``; the flags defined here are the benchmark's own.

In ONE run on one machine it times, for each batch size of the sweep, the project's jitted
train step and the same network in PyTorch (``experiments.torch_reference``), then inference
on one piece (``bench_measure``; the machine: ``bench_machine``), and writes a markdown report
(``bench_report``). ``--devices`` adds the JAX step data parallel over N devices at each
batch size (``bench_devices``; on a CPU: N forced host devices, not a GPU figure). By default
every measurement runs in a fresh subprocess (``--isolate``). PyTorch is optional
(``requirements-bench.txt``): without it the script says so and measures JAX only. The
huge-page allocator step is ``experiments.launch``'s (``--huge_pages``), quiet here: the
report names the allocator.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import sys
import time
from typing import Any, Sequence

from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # `python experiments/bench.py`
    sys.path.insert(0, ROOT)

from experiments import (bench_devices, bench_machine, bench_measure, bench_report,  # noqa: E402
                         launch)
from stylenet_jax import config_flags  # noqa: E402
from stylenet_jax.config import DataConfig, ModelConfig, OptimConfig, ScheduleConfig  # noqa: E402

DEFAULT_OUT = os.path.join(ROOT, "results", "performance.md")
CONFIG_FLAGS = ((ModelConfig, None), (OptimConfig, None), (DataConfig, ("window",)),
                (ScheduleConfig, ("seed",)))  # (group, flag names or None = all)
FLAGS = flags.FLAGS


class _BatchSizesParser(flags.ArgumentParser):
    """``--batch_sizes=8,32`` (or ``--devices=1,2``, ``what``): a comma list of integers >= 1,
    as a tuple."""

    def __init__(self, what: str = "batch sizes"):
        super().__init__()
        self.what = what

    def parse(self, argument: Any) -> tuple[int, ...] | None:
        if argument is None or isinstance(argument, tuple):
            return argument
        try:
            sizes = tuple(int(s) for s in str(argument).split(",") if s.strip())
        except ValueError:
            raise ValueError(f"not a comma list of integers: {argument!r}") from None
        if not sizes or min(sizes) < 1:
            raise ValueError(f"{self.what} must be >= 1: {argument!r}")
        return sizes

    def flag_type(self) -> str:
        return "comma list of integers >= 1"


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The command's flags: the benchmark's own and the config's (``CONFIG_FLAGS``), defined
    only when it runs as a program (or into a test's own ``FlagValues``)."""
    for cls, names in CONFIG_FLAGS:
        config_flags.define_flags(flag_values, cls=cls, names=names)
    gpu, cpu = bench_measure.DEVICE_DEFAULTS["gpu"], bench_measure.DEVICE_DEFAULTS["cpu"]
    fv = {"flag_values": flag_values}
    flags.DEFINE_enum("device", "auto", ["cpu", "gpu", "auto"],
                      "Where both frameworks run. auto: the GPU if JAX sees one, else the CPU. "
                      "gpu fails with a message if JAX has no GPU.", **fv)
    flags.DEFINE(_BatchSizesParser(), "batch_sizes", None,
                 "Comma list of windows per training batch (--windows_per_batch of "
                 f"experiments.train) to sweep. Default: {','.join(map(str, gpu['batch_sizes']))} "
                 f"on a GPU, {','.join(map(str, cpu['batch_sizes']))} on a CPU.",
                 serializer=flags.CsvListSerializer(","), **fv)
    flags.DEFINE(_BatchSizesParser("device counts"), "devices", None,
                 "Comma list of device counts N: also time the JAX train step data parallel "
                 "(stylenet_jax.parallel) over N devices at each batch size, the batch's rows "
                 "sharded over them (global batch = the batch size). CPU: N forced host "
                 "devices (XLA_FLAGS, needs --isolate), which share the cores: not a GPU "
                 "figure. GPU: the first N GPUs. Empty: off.",
                 serializer=flags.CsvListSerializer(","), **fv)
    flags.DEFINE_integer("repeats", None, "Timed calls per measurement (median and min-max are "
                         f"reported). Default: {gpu['repeats']} on a GPU, {cpu['repeats']} on a "
                         "CPU.", lower_bound=1, **fv)
    flags.DEFINE_integer("warmup", None, "Untimed calls after the first (compiling) call. "
                         f"Default: {gpu['warmup']} on a GPU, {cpu['warmup']} on a CPU.",
                         lower_bound=0, **fv)
    flags.DEFINE_bool("skip_torch", False, "Measure JAX only (no PyTorch columns).", **fv)
    flags.DEFINE_bool("torch_fused_layers", False,
                      "PyTorch head as ONE nn.LSTM(num_layers) call (cuDNN runs the stack at "
                      "once; dropout once between layers) instead of one nn.LSTM per layer "
                      "(dropout exactly as in JAX).", **fv)
    flags.DEFINE_integer("inference_steps", 1500,
                         "Steps of the inference piece (batch 1, forward only; ~1,500 = a "
                         "3-minute piece in sixteenths). 0 skips inference.", lower_bound=0, **fv)
    flags.DEFINE_float("epoch_seconds", None,
                       "Measured seconds per epoch of a real `experiments.train` run with the "
                       "paper's flags on ../shared/data on this device; the report then "
                       "projects the 160-epoch schedule from it (labelled as a projection).",
                       **fv)
    flags.DEFINE_string("epoch_note", "", "Where --epoch_seconds comes from (run, epochs "
                        "averaged), for the report.", **fv)
    flags.DEFINE_integer("cpu_threads", 0,
                         "CPU only, needs --isolate: pin each measurement's process to this "
                         "many cores (sched_setaffinity) and give torch as many threads, for "
                         "both frameworks alike. 0: each framework's default (all usable "
                         "cores). 1 gives a stable single-core comparison on a shared machine.",
                         lower_bound=0, **fv)
    flags.DEFINE_multi_string("note", [], "A line for the report's notes, e.g. what else was "
                              "running", **fv)
    flags.DEFINE_string("out", DEFAULT_OUT, "Markdown report to write.", **fv)
    flags.DEFINE_bool("isolate", True,
                      "Run every measurement in a fresh subprocess (clean peak memory, no "
                      "shared allocator). --noisolate runs all in this process (faster; memory "
                      "figures are then this process's running peak).", **fv)
    flags.DEFINE_string("notes_file", "",
                        "A markdown file in results/ whose text is copied into the report "
                        "under 'Analysis' (the hand-written reading of the figures).", **fv)
    flags.DEFINE_string("profile_dir", "",
                        "If set: after the timed JAX train step at the FIRST batch size, trace "
                        f"{bench_measure.PROFILE_STEPS} more steps with jax.profiler into this "
                        "folder (Perfetto trace) and add a 'Where the time goes' section: the "
                        "top XLA ops per step, each labelled with the JAX operation it came "
                        "from. Empty: off.", **fv)


@dataclasses.dataclass(frozen=True)
class Options:
    """A parsed command line: the one-head network (``model``, ``num_styles=1``), its
    optimizer, window and seed from the config's flags; the rest are the benchmark's own
    flags of the same names (``define_flags``). ``batch_sizes``, ``repeats`` and ``warmup``
    are None until ``run`` fills in the device's defaults."""

    model: ModelConfig
    optim: OptimConfig
    window: int
    seed: int
    device: str
    batch_sizes: tuple[int, ...] | None
    devices: tuple[int, ...]
    repeats: int | None
    warmup: int | None
    skip_torch: bool
    torch_fused_layers: bool
    inference_steps: int
    epoch_seconds: float | None
    epoch_note: str
    cpu_threads: int
    note: tuple[str, ...]
    out: str
    isolate: bool
    notes_file: str
    profile_dir: str

    @classmethod
    def from_flags(cls, flag_values: flags.FlagValues = FLAGS) -> "Options":
        """Raises ValueError for an invalid setting of the config (e.g. --keep_prob=2)."""
        groups = {c: config_flags.group_from_flags(c, flag_values, names)
                  for c, names in CONFIG_FLAGS}
        configs = {"model": dataclasses.replace(groups[ModelConfig], num_styles=1),
                   "optim": groups[OptimConfig], "window": groups[DataConfig].window,
                   "seed": groups[ScheduleConfig].seed}
        own = {f.name: flag_values[f.name].value for f in dataclasses.fields(cls)
               if f.name not in configs}
        return cls(**configs, **{**own, "note": tuple(own["note"] or ()),
                                 "devices": tuple(own["devices"] or ())})


def parse_options(argv: Sequence[str]) -> Options:
    """``Options`` from command-line arguments (no program name), parsed by this command's
    own flag definitions in a fresh ``FlagValues`` (for tests and callers that are not the
    command). Bad values raise ``absl.flags.Error`` (or ValueError from the config)."""
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    flag_values(["bench", *argv])
    return Options.from_flags(flag_values)


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _progress(line: str) -> None:
    print(f"[bench] {line}", file=sys.stderr, flush=True)


def run(options: Options, argv: Sequence[str]) -> int:
    """The benchmark for parsed ``options``; ``argv``: the command line, for the report.
    Returns the exit status (0, or 2 with a one-line message for an impossible request)."""
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    t_start, load_before = time.perf_counter(), bench_machine.load_average()
    device, device_note = bench_machine.resolve_device(options.device)
    if device is None:
        return _error(device_note)
    if options.notes_file and not os.path.isfile(options.notes_file):
        return _error(f"--notes_file: no such file {options.notes_file}")
    if options.cpu_threads and device == "cpu" and not options.isolate:
        return _error("--cpu_threads needs --isolate (JAX's threads start with the process)")
    if refused := bench_devices.refusal(device, options.devices, options.isolate):
        return _error(refused)
    defaults = bench_measure.DEVICE_DEFAULTS[device]
    options = dataclasses.replace(
        options, batch_sizes=options.batch_sizes or defaults["batch_sizes"],
        repeats=options.repeats or defaults["repeats"],
        warmup=defaults["warmup"] if options.warmup is None else options.warmup,
        profile_dir=os.path.abspath(options.profile_dir) if options.profile_dir else "")
    with_torch, torch_note = bench_machine.torch_status(device, options.skip_torch)
    if not with_torch:
        print(torch_note, file=sys.stderr)
    measure = bench_measure.measure_isolated if options.isolate else bench_measure.measure
    common = dict(device=device, model=options.model, optim=options.optim,
                  repeats=options.repeats, warmup=options.warmup, seed=options.seed,
                  torch_fused_layers=options.torch_fused_layers,
                  cpu_threads=options.cpu_threads if device == "cpu" else 0)
    env: dict[str, Any] = {}

    def measured(label: str, spec: bench_measure.Spec) -> dict[str, Any]:
        _progress(f"{label} {spec.framework} {spec.batch} x {spec.steps} ...")
        r = measure(spec)
        env.update({k: v for k, v in r.items() if k.startswith(bench_measure.ENVIRONMENT_KEYS)})
        s = bench_report.summarize_times(r, spec.batch, spec.steps)
        _progress(f"  {r['error'] if 'error' in r else bench_report.format_sps(s) + ' steps/s'}")
        if spec.profile_dir and "profile" in r:
            _progress(f"  profile: {r['profile'].get('error') or r['profile'].get('trace')}")
        return r

    frameworks = ["jax"] + (["torch"] if with_torch else [])
    train: dict[int, dict[str, Any]] = {}
    for b in options.batch_sizes:  # JAX and PyTorch alternate, so slow drifts hit both
        train[b] = {}
        for fw in frameworks:
            profile = options.profile_dir if fw == "jax" and b == options.batch_sizes[0] else ""
            train[b][fw] = measured("train", bench_measure.Spec(
                fw, "train", b, options.window, profile_dir=profile, **common))
    parallel: dict[int, dict[int, dict[str, Any]]] = {}
    for b in options.batch_sizes if options.devices else ():
        parallel[b] = {n: measured(f"data parallel over {n} devices:", bench_measure.Spec(
            "jax", "train", b, options.window, devices=n, **common)) for n in options.devices}
    infer = {fw: measured("inference", bench_measure.Spec(
        fw, "infer", 1, options.inference_steps, **common))
        for fw in (frameworks if options.inference_steps else [])}
    results = bench_report.Results(device, device_note, with_torch, torch_note, train, infer,
                                   env, started, time.perf_counter() - t_start,
                                   (load_before, bench_machine.load_average()), parallel)
    notes, notes_path = "", ""
    if options.notes_file:
        with open(options.notes_file, encoding="utf-8") as f:
            notes = f.read()
        notes_path = os.path.relpath(options.notes_file, ROOT)
    report = bench_report.render(options, argv, results, notes, notes_path)
    os.makedirs(os.path.dirname(os.path.abspath(options.out)), exist_ok=True)
    tmp = options.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(report)
    os.replace(tmp, options.out)
    print(f"[bench] wrote {options.out}", file=sys.stderr)
    return 0


def main(argv: Sequence[str]) -> int:
    """The absl program: ``argv`` is what is left after the flags."""
    if len(argv) > 1:
        return _error(f"unexpected arguments: {' '.join(argv[1:])} (see --help)")
    try:
        options = Options.from_flags(FLAGS)
    except ValueError as e:
        return _error(str(e))
    return run(options, sys.argv[1:])


if __name__ == "__main__":
    define_flags()
    flags.adopt_module_key_flags(config_flags)  # --help lists the config's flags
    flags.adopt_module_key_flags(launch)  # and --huge_pages
    launch.run(main, announce=False)
