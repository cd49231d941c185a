"""Which dataset build each ablation variant trains on, and the checks that keep it fair.

Most variants train on the sweep's ``--data_dir``. A variant that asks a data question (all
quarter-beat meters instead of 4/4) says so in its flagfile's header with a line

    # build: time_signatures=quarter

and trains on the build given as ``--variant_data=NAME=DIR``, whose manifest must have been
built with those options. Every variant is scored on the same test performances, so no build a
variant trains on may hold one of their pieces in its training or validation split.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

BUILD_PREFIX = "# build:"


def required_options(flagfile: str) -> dict[str, str]:
    """{option: value} from the flagfile's ``# build: a=b c=d`` header lines (empty: any
    build, the sweep's ``--data_dir``). Raises ValueError for a malformed pair."""
    options = {}
    with open(flagfile, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            if line.startswith(BUILD_PREFIX):
                for pair in line[len(BUILD_PREFIX):].split():
                    name, sep, value = pair.partition("=")
                    if not sep or not name:
                        raise ValueError(f"{flagfile}: '{pair}' in its build line is not "
                                         "OPTION=VALUE")
                    options[name] = value
    return options


def parse_variant_data(pairs: Sequence[str], variants: Iterable[str]) -> dict[str, str]:
    """{variant: data_dir} from ``NAME=DIR`` strings; raises ValueError for a malformed pair
    or a variant not in the sweep."""
    known, out = set(variants), {}
    for pair in pairs:
        name, sep, directory = pair.partition("=")
        if not sep or not name or not directory:
            raise ValueError(f"--variant_data={pair}: expected VARIANT=DATA_DIR")
        if name not in known:
            raise ValueError(f"--variant_data={pair}: {name} is not among the variants run")
        out[name] = directory
    return out


def check_build(variant: str, data_dir: str, manifest: Mapping, required: Mapping[str, str],
                test_pieces: Iterable[str]) -> None:
    """Raises ValueError when the build lacks the variant's required options or trains or
    validates on a piece of the sweep's test performances."""
    options = manifest.get("options") or {}
    wrong = {k: v for k, v in required.items() if str(options.get(k)) != v}
    if wrong:
        raise ValueError(
            f"{variant} needs a build with {' '.join(f'{k}={v}' for k, v in wrong.items())}; "
            f"{data_dir} was built with "
            f"{' '.join(f'{k}={options.get(k)}' for k in wrong)} (pass its own build with "
            f"--variant_data={variant}=DIR)")
    seen = {s.get("piece") for s in manifest.get("songs", []) if s.get("split") != "test"}
    leaked = sorted(seen & set(test_pieces))
    if leaked:
        raise ValueError(f"{variant}'s build {data_dir} trains or validates on {len(leaked)} of "
                         f"the test pieces (e.g. {leaked[0]}); build it with the same --seed "
                         "and --test_fraction as the test set's")
