"""Which dataset build each ablation variant trains on, and the checks that keep it fair.

Most variants train on the sweep's ``--data_dir``. A variant that asks a data question (all
quarter-beat meters instead of 4/4) says so in its flagfile's header with a line

    # build: time_signatures=quarter

and trains on the build given as ``--variant_data=NAME=DIR``, whose manifest must have been
built with those options. Every variant is scored on the same test performances, so no build a
variant trains on may hold one of their pieces in its training or validation split. A hybrid
variant (its header has ``# priors: tree``) also needs the tree baseline's out-of-fold
velocities for its build, ``--variant_priors=NAME=DIR`` (``experiments.tree_prior``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable, Mapping, Sequence

BUILD_PREFIX = "# build:"
PRIORS_LINE = "# priors: tree"  # the variant is a hybrid: it needs --variant_priors=NAME=DIR


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


def needs_priors(flagfile: str) -> bool:
    """True when the flagfile's header has the line ``# priors: tree``: a hybrid variant,
    trained with ``--tree_prior_dir`` (given to the sweep as ``--variant_priors=NAME=DIR``)."""
    with open(flagfile, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                return False
            if line.strip() == PRIORS_LINE:
                return True
    return False


def parse_variant_data(pairs: Sequence[str], variants: Iterable[str],
                       flag: str = "--variant_data", what: str = "DIR") -> dict[str, str]:
    """{variant: value} from ``NAME=VALUE`` strings (of ``flag``, a directory unless ``what``
    names the value otherwise; both named in errors); raises ValueError for a malformed pair
    or a variant not in the sweep."""
    known, out = set(variants), {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"{flag}={pair}: expected VARIANT={what}")
        if name not in known:
            raise ValueError(f"{flag}={pair}: {name} is not among the variants run")
        out[name] = value
    return out


def file_sha256(path: str) -> str:
    """sha256 of a file's bytes (a hybrid variant's scoring tree, for its run key); raises
    ValueError (one line) when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror or e}") from None
    return digest.hexdigest()


def check_priors(variant: str, prior_dir: str, manifest: Mapping) -> str:
    """The priors' fingerprint (sha256 of their index) after checking that ``prior_dir``
    (``experiments.tree_prior``) has a prior for every training and validation song of the
    variant's build. Raises ValueError (one line) otherwise."""
    from stylenet_jax import tree_prior

    try:
        index = tree_prior.read_index(prior_dir)
    except tree_prior.TreePriorError as e:
        raise ValueError(f"{variant}: {e}") from None
    wanted = {s["id"] for s in manifest.get("songs", []) if s.get("split") != "test"}
    missing = sorted(wanted - set(index["songs"]))
    if missing:
        raise ValueError(f"{variant}: {prior_dir} has no prior for {len(missing)} of its "
                         f"build's songs (e.g. {missing[0]}); make them for that build "
                         "(python -m experiments.tree_prior)")
    text = json.dumps(index, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


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
