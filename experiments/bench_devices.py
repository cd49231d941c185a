"""The benchmark's data-parallel sweep (``experiments.bench --devices=1,2,4``): the JAX train
step run by ``stylenet_jax.parallel.DataParallel`` over N devices, and its report section.

For each batch size of the sweep and each N, one measurement (``bench_measure.Spec`` with
``devices=N``, in its own process): the global batch is the batch size measured, its rows
sharded over the first N devices, parameters and optimizer state replicated. On a CPU the
measurement's process gets N forced host devices (``XLA_FLAGS=
--xla_force_host_platform_device_count=N``, set before JAX starts: ``bench_measure.
worker_environment``); they share the machine's cores, so their figures show that the
partitioning works and what it costs, never a GPU speed-up. On a GPU: the first N real GPUs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from experiments import bench_machine

if TYPE_CHECKING:
    from experiments.bench import Options
    from experiments.bench_report import Results

TITLE = "## Data parallel: steps/s against device count"
FORCED_HOST_LABEL = ("N forced CPU host devices share this machine's cores; this shows the "
                     "partitioning works and what it costs, not a GPU figure")


# ----------------------------------------------------------------------------- measuring


def gpu_count() -> int:
    """GPUs JAX sees in this process."""
    import jax

    try:
        return len(jax.devices("gpu"))
    except RuntimeError:
        return 0


def refusal(device: str, devices: tuple[int, ...], isolate: bool) -> str | None:
    """Why ``--devices`` cannot run on ``device`` (one line), or None."""
    if not devices:
        return None
    if device == "cpu" and not isolate:
        return ("--devices on a CPU needs --isolate (the forced host device count is set "
                "when JAX starts, in each measurement's own process)")
    if device == "gpu" and max(devices) > (seen := gpu_count()):
        return f"--devices={max(devices)}, but JAX sees {seen} GPU(s) on this machine"
    return None


def data_parallel(devices: int):
    """A ``DataParallel`` over the first ``devices`` devices JAX sees (ValueError if fewer)."""
    import jax

    from stylenet_jax.parallel import DataParallel

    seen = jax.devices()
    if devices > len(seen):
        raise ValueError(f"{devices} devices asked for, JAX sees {len(seen)} ({seen[0].platform})")
    return DataParallel(seen[:devices])


def placement(parallel, batch, state) -> dict[str, Any]:
    """Where a measured data-parallel step's arrays lived (for the report's checks): devices
    used and seen, devices holding the batch, rows per device, padding rows, and on how many
    devices the (first) parameter is replicated (0: not fully replicated)."""
    import jax

    rows = batch.inputs.shape[0]  # padded to a multiple of the device count
    leaf = jax.tree.leaves(state.params)[0].sharding
    return {"devices": parallel.num_devices, "device_count": jax.device_count(),
            "platform": jax.devices()[0].platform,
            "batch_on": len(batch.inputs.sharding.device_set),
            "rows_per_device": rows // parallel.num_devices,
            "replicated_on": len(leaf.device_set) if leaf.is_fully_replicated else 0}


def rows_per_device(batch: int, devices: int) -> tuple[int, int]:
    """(rows each device computes, empty padding rows in all) for ``batch`` rows on
    ``devices`` (``DataParallel.padded_rows``)."""
    per = -(-batch // devices)
    return per, per * devices - batch


# ----------------------------------------------------------------------------- report


def _label(results: "Results") -> str:
    if results.device == "cpu":
        return (f"**Forced host devices, not a GPU figure.** {FORCED_HOST_LABEL}. Each "
                "measurement's process ran with `XLA_FLAGS=--xla_force_host_platform_device_"
                f"count=N` on this CPU ({bench_machine.usable_cores()} usable cores), so more "
                "devices split the same cores: expect no speed-up, only the cost of the "
                "partitioning and the gradient all-reduce.")
    return "Real GPUs: the first N of the GPUs JAX sees on this machine."


def render(options: "Options", results: "Results") -> list[str]:
    """The "Data parallel" section (no lines without ``--devices``)."""
    if not options.devices:
        return []
    from experiments import bench_report

    window = options.window
    lines = [TITLE, "", _label(results), "",
             "The project's jitted train step (`train_steps.train_step`), run by "
             "`stylenet_jax.parallel.DataParallel` over a 1-D mesh of N devices: the global "
             "batch is the batch size measured (B windows), its rows sharded over the N "
             "devices (padded with empty rows, which count for nothing, where N does not "
             "divide B); parameters and optimizer state replicated; XLA all-reduces the "
             "gradients. Each N in its own process. Steps/s = B x window / seconds per step "
             "(real rows only), median (min-max); speed-up: over N = 1 at the same batch.", "",
             "| global batch | devices N | windows per device | steps/s | s/step | "
             "speed-up over N = 1 |", "|---|---|---|---|---|---|"]
    warnings = []
    for b in options.batch_sizes:
        runs = results.devices.get(b, {})
        base = bench_report.summarize_times(runs.get(1) or {}, b, window)
        for n in options.devices:
            r = runs.get(n)
            s = bench_report.summarize_times(r, b, window) if r else None
            per, pad = rows_per_device(b, n)
            rows = f"{per}" + (f" (+{pad} empty padding rows in all)" if pad else "")
            speedup = f"{s['sps'] / base['sps']:.2f}x" if s and base else "-"
            if r is None:
                cells = ["not measured", "-"]
            elif "error" in r:
                cells = [f"failed: {r['error']}", "-"]
            else:
                cells = [bench_report.format_sps(s) if s else "-",
                         bench_report._fmt_s(s['s']) if s else "-"]
            lines.append(f"| {b} x {window} | {n} | {rows} | {' | '.join(cells)} | {speedup} |")
            dp = (r or {}).get("data_parallel")
            if dp and (dp["batch_on"] != n or dp["replicated_on"] != n):
                warnings.append(f"at N = {n}, batch {b}: batch on {dp['batch_on']} devices, "
                                f"parameters replicated on {dp['replicated_on']}")
            if (r or {}).get("compiles", 1) > 1:
                warnings.append(f"at N = {n}, batch {b}: the step compiled {r['compiles']} times")
    if 1 not in options.devices:
        lines += ["", "No N = 1 in `--devices`: no speed-up to show."]
    lines += [""] + [f"Warning: {w}." for w in warnings] + ([""] if warnings else [])
    return lines
