r"""Make the tree baseline's velocities for every song of a dataset, for a hybrid network
(``--tree_prior``; ``stylenet_jax.tree_prior``).

    python -m experiments.tree_prior --data_dir=DATASET --out_dir=PRIORS [--folds=3]
        [--melody_line] [--phrase_context] [--pedals]

Reads the MIDI files behind the dataset's training and validation splits (``--midi_dir`` if
they have moved since the build), fits one gradient-boosted baseline per fold of the training
pieces, and writes each song's prior grid: a training song's from the trees that did not see
its piece, a validation song's from the mean of every fold's trees. Checks that each grid
lines up with the song's arrays in the dataset, and prints (and keeps in ``priors.json``) the
validation songs' priors' onset MSE by style: the validation loss a hybrid must beat; and
the training songs' out-of-fold MAE and r by style (each from trees that never saw its piece),
a comparison of trees over every training piece instead of the few validation ones.
``--score_only`` prints both for the priors already in ``--out_dir`` and writes nothing;
``--against=OTHER`` adds the out-of-fold difference from another folder's priors by style, with
95% intervals over the training pieces (a piece's performances resampled together).
``--melody_line`` / ``--phrase_context`` / ``--pedals`` give the trees those optional columns, and
``--max_iter``, ``--learning_rate``, ``--max_leaf_nodes``, ``--min_samples_leaf``,
``--hide_pedals`` and ``--error`` set them (as ``experiments.feature_baseline`` does;
priors.json keeps them, and a hybrid trained on such priors is then played with such a tree,
``--features_model``). Bad input prints one line on stderr and exits with status 2. The trees
use every core; on a shared machine set ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import sys
import time
from typing import Sequence

import numpy as np
from absl import app, flags

import experiments.feature_baseline
from experiments.feature_baseline import (define_tree_flags, extras_from_flags,
                                          tree_settings_from_flags)
from stylenet_jax import dataset, performances, smf
from stylenet_jax.feature_baseline import FeatureBaselineError
from stylenet_jax.flag_parsing import parse_flags
from stylenet_jax.tree_prior import (TreePriorError, attach_priors, onset_mse, onset_scores,
                                     out_of_fold_priors, paired_onset_scores, read_index,
                                     save_priors)


def _define_flags() -> None:
    flags.DEFINE_string("data_dir", None, "A dataset built by `python -m data_prep.build`.")
    flags.DEFINE_string("midi_dir", None, "The folder the dataset was built from (default: the "
                        "path recorded in its manifest).")
    flags.DEFINE_string("out_dir", None, "Where to write the priors (a folder; train with "
                        "--tree_prior_dir=OUT_DIR).")
    flags.DEFINE_integer("folds", 3, "Folds of the training pieces (one baseline fitted per "
                         "fold; at least 2).")
    flags.DEFINE_integer("seed", 0, "Seed of the folds and of the trees.")
    flags.DEFINE_bool("score_only", False, "Fit nothing: print the scores of the priors "
                      "already in --out_dir (made for --data_dir) and exit.")
    flags.DEFINE_string("against", None, "With --score_only: another priors folder of the same "
                        "build; also print --out_dir's out-of-fold MAE and r minus its, by "
                        "style, with 95% intervals over the training pieces.")
    define_tree_flags()
    flags.adopt_module_key_flags(experiments.feature_baseline)  # listed by --help


def check_alignment(songs: Sequence[dataset.Song], priors: dict[str, np.ndarray]) -> int:
    """Raises TreePriorError unless every song of the dataset with a prior has one of its
    length; returns how many songs were checked."""
    checked = 0
    for song in songs:
        grid = priors.get(song.id)
        if grid is None:
            continue
        if grid.shape != song.velocities.shape or not np.array_equal(
                grid > 0, song.velocities > 0):
            raise TreePriorError(f"song {song.id}: the tree's grid {grid.shape} does not line "
                                 f"up with the dataset's {song.velocities.shape}")
        checked += 1
    return checked


def scores_of(songs: Sequence[dataset.Song], priors: dict[str, np.ndarray],
              validation: set[str]) -> dict:
    """Prints and returns the priors' scores: ``validation_onset_mse`` (``onset_mse`` of the
    ``validation`` song ids) and ``out_of_fold`` (``onset_scores`` of the others, the
    training songs)."""
    mse = onset_mse([s for s in songs if s.id in validation], priors)
    if mse:
        print("validation onset MSE of the priors (a hybrid's --loss=onset val_loss to beat): "
              + ", ".join(f"{style} {value:.5f}" for style, value in mse.items()), flush=True)
    out_of_fold = onset_scores([s for s in songs if s.id not in validation], priors)
    if out_of_fold:
        print("out-of-fold MAE / r on the training songs' onset cells: " + ", ".join(
            f"{style} {v['mae']:.2f} / {v['r']:.3f}" for style, v in out_of_fold.items()),
            flush=True)
    return {"validation_onset_mse": mse, "out_of_fold": out_of_fold}


def run(data_dir: str, midi_dir: str | None, out_dir: str, folds: int, seed: int,
        extras: Sequence[str] = (), settings: dict | None = None) -> None:
    """Fits, predicts, checks and writes (progress on stdout); raises the library errors.
    ``settings`` override the trees' (``FeatureBaseline.fit``); priors.json keeps them."""
    began = time.perf_counter()
    train = performances.from_dataset(data_dir, "train", midi_root=midi_dir)
    check = performances.from_dataset(data_dir, "validation", midi_root=midi_dir)
    print(f"read {len(train)} training and {len(check)} validation files in "
          f"{time.perf_counter() - began:.1f} s", flush=True)
    priors = out_of_fold_priors(train, check, folds=folds, seed=seed, extras=extras,
                                settings=settings, log=lambda line: print(line, flush=True))
    songs = dataset.load_songs(data_dir)
    print(f"checked {check_alignment(songs, priors)} songs against {data_dir}", flush=True)
    scores = scores_of(songs, priors, {p.id for p in check})
    save_priors(out_dir, priors, {"data_dir": data_dir, "folds": folds, "seed": seed,
                                  "extras": list(extras), "tree_settings": settings or {},
                                  **scores})
    print(f"wrote {len(priors)} priors to {out_dir} in {time.perf_counter() - began:.1f} s")


def _read_priors(data_dir: str, out_dir: str) -> tuple[list[dataset.Song], set[str]]:
    """The training and validation songs of ``data_dir`` with ``out_dir``'s priors attached,
    and the validation ids; raises TreePriorError when none has a prior there."""
    index = read_index(out_dir)
    validation = [s for s in dataset.load_songs(data_dir, "validation") if s.id in index["songs"]]
    songs = [s for s in dataset.load_songs(data_dir, "train") if s.id in index["songs"]]
    songs += validation
    if not songs:
        raise TreePriorError(f"{out_dir}: no priors for the songs of {data_dir}; were they "
                             f"made for another build?")
    print(f"{out_dir} ({_made_with(index)}), {len(songs)} songs of {data_dir}", flush=True)
    return attach_priors(songs, out_dir), {s.id for s in validation}


def _made_with(index: dict) -> str:
    """A priors folder's optional columns and tree settings, from its ``priors.json``."""
    settings = index.get("tree_settings")
    return (f"extras: {', '.join(index.get('extras', [])) or 'none'}; trees: " +
            (", ".join(f"{k} {v}" for k, v in sorted(settings.items())) if settings
             else "default"))


def score_only(data_dir: str, out_dir: str, against: str | None = None) -> None:
    """Prints ``scores_of`` the priors in ``out_dir`` for the training and validation songs
    of ``data_dir``, and with ``against`` (another priors folder) the training songs'
    ``paired_onset_scores``, ``out_dir`` minus ``against``; raises the library errors
    (TreePriorError for a song without one)."""
    songs, validation = _read_priors(data_dir, out_dir)
    scores_of(songs, {s.id: s.prior for s in songs}, validation)
    if against is None:
        return
    print(f"{against} ({_made_with(read_index(against))})", flush=True)
    train = [s for s in songs if s.id not in validation]
    others = attach_priors(train, against)  # the same songs, the other folder's priors
    paired = paired_onset_scores(train, {s.id: s.prior for s in others},
                                 {s.id: s.prior for s in train})
    print(f"out of fold, {out_dir} minus {against} (95% intervals over training pieces):")
    for style, d in paired.items():
        print(f"  {style}: MAE {d['mae']:+.3f} [{d['mae_lo']:+.3f}, {d['mae_hi']:+.3f}], "
              f"r {d['pearson_r']:+.4f} [{d['pearson_r_lo']:+.4f}, {d['pearson_r_hi']:+.4f}], "
              f"{d['pieces']} pieces", flush=True)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        sys.exit(2)
    f = flags.FLAGS
    if not f.data_dir or not f.out_dir:
        print("error: --data_dir and --out_dir are required", file=sys.stderr)
        sys.exit(2)
    try:
        if f.against and not f.score_only:
            raise TreePriorError("--against compares priors already made; add --score_only")
        if f.score_only:
            score_only(f.data_dir, f.out_dir, f.against)
        else:
            run(f.data_dir, f.midi_dir, f.out_dir, f.folds, f.seed, extras_from_flags(),
                tree_settings_from_flags())
    except (dataset.DatasetError, performances.PerformancesError, smf.MidiError,
            FeatureBaselineError, TreePriorError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=parse_flags)
