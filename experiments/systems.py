"""The systems a scoring app performs the human performances with, built from its flags:
models and tree baselines by path, the baselines by name, and the systems derived from them
(``--mix``, ``--contrast``, ``--humanize``, ``--palette``, ``--level_shape``, ``--per_style``;
``stylenet_jax.derived_systems``). ``experiments.evaluate`` and every app that scores systems
as it does call ``build_systems``.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from stylenet_jax import derived_systems, evaluation, humanize

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "stylenet_jax", "assets")
DEFAULT_STATS = os.path.join(ASSETS, "note_statistics.json")
DEFAULT_FEATURES = os.path.join(ASSETS, "feature_baseline.pkl")


def _load_tree(path: str):
    """The tree baseline saved at ``path`` (raises FeatureBaselineError, a ValueError)."""
    from stylenet_jax import feature_baseline

    return feature_baseline.FeatureBaseline.load(path)


def _tree_description(path: str, tree) -> str:
    """The report's line for a tree baseline read from ``path``."""
    from stylenet_jax.feature_baseline import extra_label

    extras = [extra_label(name) for name in tree.extras]
    context = f" and their {' and '.join(extras)}" if extras else ""
    return f"gradient-boosted trees on per-note features{context} (`{os.path.relpath(path)}`)"


def build_systems(model_specs: Sequence[str] | None, baseline_names: Sequence[str], *,
                  blend_spec: str | None = None, features_model: str = DEFAULT_FEATURES,
                  train_data_dir: str | None = None, seed: int = 0,
                  mix_specs: Sequence[str] = (), contrast_specs: Sequence[str] = (),
                  level_shape_specs: Sequence[str] = (), humanize_specs: Sequence[str] = (),
                  humanize_scatter: str | None = None, palette_specs: Sequence[str] = (),
                  per_style_specs: Sequence[str] = ()) -> tuple[list, dict[str, str]]:
    """The systems to score and a line describing each.

    ``model_specs``: NAME=PATH per model, a tree baseline where PATH ends in .pkl (None:
    model=the shipped model); ``baseline_names``:
    from ``evaluation.BASELINES`` (empty strings ignored); ``mix_specs``: NAME=SYSTEM:WEIGHT,...
    per mix of those (``derived_systems.parse_mix``), scored after them; ``contrast_specs``:
    NAME=SYSTEM:C per widened system (``derived_systems.parse_contrast``); ``humanize_specs``:
    NAME=SYSTEM:AMOUNT[@FILE] (``derived_systems.parse_humanize``, drawing from FILE, else
    ``humanize_scatter``, else the shipped one, seeded by ``seed``); ``palette_specs``:
    NAME=SYSTEM[@FILE] (``derived_systems.parse_palette``, seeded by ``seed``);
    ``level_shape_specs``: NAME=LEVEL_SYSTEM:SHAPE_SYSTEM[:K]
    (``derived_systems.parse_level_shape``), scored after those, so either part may be
    humanized or played on a palette; ``per_style_specs``: NAME=STYLE:SYSTEM,... per
    system chosen style by style (``derived_systems.parse_per_style``), scored last. Raises
    ValueError (one line) for a bad spec, an unknown baseline or an unreadable scatter or
    palette file.
    """
    from stylenet_jax import performer, style_choice

    systems, described = [], {}
    for spec in model_specs or [f"model={performer.DEFAULT_MODEL}"]:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--model {spec!r}: expected NAME=PATH")
        if path.endswith(".pkl"):
            systems.append(evaluation.FeaturesSystem(_load_tree(path), name))
            described[name] = _tree_description(path, systems[-1].model)
            continue
        stylizer = performer.Stylizer(path, tree=features_model)
        blend = style_choice.parse_blend(blend_spec, stylizer.styles) if blend_spec else None
        systems.append(evaluation.ModelSystem(stylizer, name, blend))
        kind = ("StyleNet" if len(stylizer.members) == 1
                else f"an ensemble of {len(stylizer.members)} StyleNets")
        if stylizer.tree is not None:
            kind += " reading the tree baseline's velocities (hybrid)"
        if stylizer.tree_problem:
            print(f"warning: {name}: {stylizer.tree_problem}", file=sys.stderr)
            kind += f" (warning: {stylizer.tree_problem})"
        described[name] = (f"{kind} `{os.path.relpath(path)}` ("
                           f"{'blend ' + blend_spec if blend else 'each style its own head'})")
    baselines = [b for b in baseline_names if b]
    unknown = set(baselines) - set(evaluation.BASELINES)
    if unknown:
        raise ValueError(f"--baselines: unknown {sorted(unknown)}; choose from "
                         f"{', '.join(evaluation.BASELINES)}")
    if {"constant", "per_pitch"} & set(baselines):
        stats = (evaluation.NoteStatistics.from_dataset(train_data_dir) if train_data_dir
                 else evaluation.NoteStatistics.load(DEFAULT_STATS))
        source = f"the training split of `{train_data_dir}`" if train_data_dir else \
            f"`{os.path.relpath(DEFAULT_STATS)}`"
    for name in baselines:
        if name == "constant":
            systems.append(evaluation.ConstantSystem(stats))
            described[name] = f"every note at the style's mean training velocity ({source})"
        elif name == "per_pitch":
            systems.append(evaluation.PerPitchSystem(stats))
            described[name] = f"each key's mean training velocity in the style ({source})"
        elif name == "random":
            systems.append(evaluation.RandomSystem(seed))
            described[name] = "uniform 1..127 (the paper's baseline)"
        elif name == "features":
            systems.append(evaluation.FeaturesSystem(_load_tree(features_model)))
            described[name] = _tree_description(features_model, systems[-1].model)
    for spec in mix_specs:
        mix = derived_systems.parse_mix(spec, [system.name for system in systems])
        systems.append(mix)
        described[mix.name] = "per note, " + " + ".join(
            f"{weight:.2f} × {part}" for part, weight in mix.parts) + " (rounded)"
    for spec in contrast_specs:
        widened = derived_systems.parse_contrast(spec, [system.name for system in systems])
        systems.append(widened)
        described[widened.name] = (f"{widened.part} with every note's distance from the "
                                   f"performance's mean × {widened.contrast:g} (stylize "
                                   f"--contrast={widened.contrast:g})")
    loaded: dict[str, object] = {}  # scatter file -> humanize.load's answer
    for spec in humanize_specs:
        from stylenet_jax import per_style_scatter

        spec, _, path = spec.partition("@")
        path = humanize.scatter_path(path or humanize_scatter)
        if path not in loaded:
            loaded[path] = humanize.load(path)
        scattered = derived_systems.parse_humanize(spec, [system.name for system in systems],
                                                   loaded[path], seed)
        systems.append(scattered)
        kind = ("a pianist's scatter" if isinstance(loaded[path], dict) else
                "a learned scatter per style"
                if isinstance(loaded[path], per_style_scatter.PerStyleScatter)
                else "a learned scatter")
        described[scattered.name] = (
            f"{scattered.part} plus {scattered.amount:g} × {kind} (stylize "
            f"--humanize={scattered.amount:g}; `{os.path.relpath(path)}`, seeded per "
            "performance)")
    for spec in palette_specs:
        from stylenet_jax import velocity_palette

        spec, _, path = spec.partition("@")
        played = derived_systems.parse_palette(spec, [system.name for system in systems],
                                               velocity_palette.load(path or None), seed)
        systems.append(played)
        described[played.name] = (f"{played.part} played on its style's velocity palette "
                                  f"(`{os.path.relpath(path or velocity_palette.DEFAULT_PATH)}`"
                                  ", as stylize --humanize --palette plays its draw; "
                                  "seeded per performance)")
    for spec in level_shape_specs:
        moved = derived_systems.parse_level_shape(spec, [system.name for system in systems])
        systems.append(moved)
        where = (f"each run of {moved.run_notes} consecutive notes" if moved.run_notes
                 else "each performance")
        described[moved.name] = (f"{moved.shape}'s velocities moved to {moved.level}'s mean "
                                 f"in {where} (the level of one, the shape of the other)")
    for spec in per_style_specs:
        chosen = derived_systems.parse_per_style(spec, [system.name for system in systems])
        systems.append(chosen)
        described[chosen.name] = "each style as one system plays it: " + ", ".join(
            f"{style} as `{part}`" for style, part in chosen.choices)
    return systems, described
