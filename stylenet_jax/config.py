"""Every setting of a training run, defined once: a nested, frozen ``Config``.

``Config(model=ModelConfig, optim=OptimConfig, data=DataConfig, schedule=ScheduleConfig)``.
Each field carries its doc line (and, where the command line spells it differently, its flag
name) in ``dataclasses.field(metadata=...)``; ``config_flags`` derives the absl flags of
``experiments.train`` and ``experiments.bench`` from these fields, so a new setting is one new
field. Defaults are the paper's final setup (Malik & Ek 2017). Pure Python: importing this
module imports neither JAX nor Flax (only numpy, through ``encoding``), so checkpoint metadata
can be read without them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from stylenet_jax.encoding import INPUT_SIZE, NUM_KEYS, STEPS_PER_BEAT

PRECISIONS = ("default", "high", "highest")
RECURRENCES = ("custom_vjp", "autodiff")
MATMUL_DTYPES = ("float32", "bfloat16")
LOSSES = ("full", "active", "onset")
ERRORS = ("squared", "absolute")
SPREAD_LEVELS = ("notes", "steps", "bars")
BAR_STEPS = 4 * STEPS_PER_BEAT  # --spread_of=bars: runs of a 4/4 bar's length
CLIPS = ("per_tensor", "global", "none")
LR_SCHEDULES = ("constant", "cosine")


SHARED_HEADS_WITH_PRIORS = ("shared_heads and a tree prior (tree_prior, --tree_prior_dir) "
                            "exclude each other: the tree's velocities differ per style, and a "
                            "shared head plays every style alike")


def setting(default: Any, doc: str, *, flag: str | None = "", choices: Sequence[str] = (),
            ) -> Any:
    """A config field with its doc line. ``flag``: the command-line name ("" = the field's
    name; None = not a flag, set by the program). ``choices``: allowed values (an enum flag)."""
    return dataclasses.field(default=default,
                             metadata={"doc": doc, "flag": flag, "choices": tuple(choices)})


def _check_choice(obj: Any, name: str, choices: Sequence[Any]) -> None:
    if getattr(obj, name) not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {getattr(obj, name)!r}")


def _check_positive(obj: Any, *names: str) -> None:
    for name in names:
        if getattr(obj, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(obj, name)}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """StyleNet's network (JSON-serialisable with ``dataclasses.asdict``; stored with every
    checkpoint and export)."""

    num_styles: int = setting(2, "GenreNet heads, one per style of the dataset.", flag=None)
    hidden_size: int = setting(176, "LSTM units of the interpretation layer and of every "
                               "GenreNet layer (paper: 176).")
    num_layers: int = setting(3, "Stacked (Bi)LSTM layers per GenreNet head (paper: 3).")
    bidirectional: bool = setting(True, "Bidirectional GenreNet layers (paper: yes).")
    use_interpretation_layer: bool = setting(
        True, "Use the shared interpretation LSTM layer (paper: yes).",
        flag="interpretation_layer")
    keep_prob: float = setting(0.8, "Dropout keep probability on every LSTM's inputs and "
                               "outputs (paper: 0.8; its Fig. 15 ablation: 0.5; 1.0 disables "
                               "dropout).")
    note_context: bool = setting(False, "Beyond the paper: add note-context input channels "
                                 "computed from the notes (highest and lowest sounding key, "
                                 "each onset's duration, chord size, place in the beat; see "
                                 "stylenet_jax/note_context.py). Off: the paper's input.")
    note_readout: int = setting(0, "Beyond the paper: width of each head's note readout, a "
                                "small per-key MLP that reads the head's state together with "
                                "the key's place at that step (top or bottom voice, place in "
                                "the chord, duration, beat; stylenet_jax/note_readout.py) "
                                "beside the paper's linear layer. 0: the paper's linear "
                                "readout only.")
    tempo_input: bool = setting(False, "Beyond the paper: one more input channel, the "
                                "piece's mean tempo (log2 of seconds per beat over 0.5, on "
                                "every step; stylenet_jax/tempo.py), which the 1/16 grid "
                                "alone does not tell. Needs a dataset built with tempos "
                                "(data_prep.build since they were added). Off: the paper's "
                                "input.")
    tree_prior: bool = setting(False, "Beyond the paper: each head also reads the tree "
                               "baseline's velocity of every cell (stylenet_jax/"
                               "tree_prior.py), beside its LSTM input, in its note readout "
                               "and added to its logits; set from --tree_prior_dir.",
                               flag=None)
    shared_heads: bool = setting(False, "One GenreNet head's weights serve every style (the "
                                 "seed's published code may have shared them): the styles "
                                 "then differ in nothing. Off: one head per style (the "
                                 "paper).")
    velocity_scale: int = setting(127, "What the heads' sigmoid output 1.0 means: velocity "
                                  "127 (the paper's text) or 120 (the seed's published code "
                                  "divides velocities by 120: it then writes at most 120; the "
                                  "same loss up to a constant factor).")
    input_size: int = setting(INPUT_SIZE, "Input channels (onset + held per key).", flag=None)
    output_size: int = setting(NUM_KEYS, "Output velocities (one per key).", flag=None)
    unroll: int = setting(1, "lax.scan unroll factor of the time loops (speed only).")
    precision: str | None = setting(None, "Matmul precision; 'highest' = true fp32 on GPUs "
                                    "that default to TF32.", choices=PRECISIONS)
    recurrence: str = setting("custom_vjp", "How the LSTM time loop is differentiated: the "
                              "hand-written backward pass (faster) or JAX's own derivative "
                              "of the scan (speed only; same maths).", choices=RECURRENCES)
    matmul_dtype: str = setting("float32", "bfloat16: round every matmul's inputs to bf16, "
                                "accumulate in fp32 (faster where the hardware has bf16 "
                                "units; changes results slightly).", choices=MATMUL_DTYPES)

    def __post_init__(self) -> None:
        _check_positive(self, "num_styles", "hidden_size", "num_layers", "input_size",
                        "output_size", "unroll")
        if self.note_readout < 0:
            raise ValueError(f"note_readout must be >= 0, got {self.note_readout}")
        if not 1 <= self.velocity_scale <= 127:
            raise ValueError(f"velocity_scale must be in 1..127, got {self.velocity_scale}")
        if not 0.0 < self.keep_prob <= 1.0:
            raise ValueError(f"keep_prob must be in (0, 1], got {self.keep_prob}")
        _check_choice(self, "precision", (None,) + PRECISIONS)
        _check_choice(self, "recurrence", RECURRENCES)
        _check_choice(self, "matmul_dtype", MATMUL_DTYPES)
        if self.shared_heads and self.tree_prior:
            raise ValueError(SHARED_HEADS_WITH_PRIORS)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of ``dataclasses.asdict``; unknown keys are an error, missing ones take
        their defaults (fields added since a checkpoint was written)."""
        return _from_dict(cls, d)


def num_heads(config: "ModelConfig") -> int:
    """Head parameter sets of a model: 1 with ``shared_heads``, else one per style."""
    return 1 if config.shared_heads else config.num_styles


SPEED_ONLY_FIELDS = ("unroll", "recurrence")  # ModelConfig fields that leave the maths alone


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """The objective and the optimizer (``loss``, ``optim``)."""

    learning_rate: float = setting(1e-3, "Adam learning rate (paper: 0.001).")
    clip: str = setting("per_tensor", "Gradient clipping: each tensor's L2 norm separately "
                        "(the paper's code), the global norm of all gradients "
                        "(optax.clip_by_global_norm), or none.", choices=CLIPS)
    clip_norm: float = setting(10.0, "Maximum gradient norm for --clip (paper: 10).")
    lr_schedule: str = setting("constant", "Beyond the paper: 'cosine' decays the learning "
                               "rate to 1% of --learning_rate along a cosine over "
                               "--lr_decay_steps steps (then stays there); 'constant' (the "
                               "paper) keeps it.", choices=LR_SCHEDULES)
    lr_decay_steps: int = setting(0, "Steps of the cosine decay (--lr_schedule=cosine); 0: "
                                  "the whole run (--num_epochs x the first epoch's batches).")
    warmup_steps: int = setting(0, "Beyond the paper: raise the learning rate linearly from "
                                "0 over this many first steps; 0: none (the paper).")
    loss: str = setting("full", "MSE over the whole (T, 88) velocity matrix of real steps "
                        "(paper), over sounding (held) cells only, or over onset cells only "
                        "(the velocities written back to MIDI).", choices=LOSSES)
    error: str = setting("squared", "Each counted cell's error in the loss: squared (the "
                         "paper's MSE: its best guess is a note's mean velocity) or absolute "
                         "(beyond the paper: the evaluation's MAE, whose best guess is the "
                         "median). The validation loss stays the MSE either way.",
                         choices=ERRORS)
    spread_weight: float = setting(0.0, "Beyond the paper: add this weight times each "
                                   "window's (sd of predicted - sd of the pianist's "
                                   "velocities)^2 over the loss's cells, or over their "
                                   "levels with --spread_of (velocity / 127), "
                                   "against the MSE's compression of dynamics "
                                   "(loss.spread_gap); 0: off (the paper).")
    spread_of: str = setting("notes", "What --spread_weight's standard deviations are taken "
                             "over: every counted note (cell); each time step's mean velocity "
                             "over its counted notes (the level of each chord), which voicing "
                             f"a chord wider cannot raise; or each run of {BAR_STEPS} steps' "
                             "mean from the window's start (a 4/4 bar's level).",
                             choices=SPREAD_LEVELS)
    level_weight: float = setting(0.0, "Beyond the paper: add this weight times the error "
                                  "(--error) between each predicted and played bar level, "
                                  f"the mean velocity of a run of {BAR_STEPS} steps' counted "
                                  "cells, so each bar counts once more whatever its notes "
                                  "(loss.level_error); 0: off (the paper).")

    def __post_init__(self) -> None:
        _check_choice(self, "clip", CLIPS)
        _check_choice(self, "loss", LOSSES)
        _check_choice(self, "error", ERRORS)
        _check_choice(self, "spread_of", SPREAD_LEVELS)
        _check_choice(self, "lr_schedule", LR_SCHEDULES)
        if self.warmup_steps < 0 or self.lr_decay_steps < 0:
            raise ValueError("warmup_steps and lr_decay_steps must be >= 0")
        if (self.lr_schedule == "cosine" and self.lr_decay_steps
                and self.lr_decay_steps <= self.warmup_steps):
            raise ValueError("lr_schedule=cosine needs lr_decay_steps > warmup_steps, got "
                             f"{self.lr_decay_steps} and {self.warmup_steps}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not self.clip_norm > 0:
            raise ValueError(f"clip_norm must be > 0, got {self.clip_norm}")
        if not self.spread_weight >= 0:
            raise ValueError(f"spread_weight must be >= 0, got {self.spread_weight}")
        if not self.level_weight >= 0:
            raise ValueError(f"level_weight must be >= 0, got {self.level_weight}")


WINDOW, SONGS_PER_BATCH, WINDOWS_PER_BATCH = 200, 4, 32  # the paper's batching


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the songs come from and how they are cut into batches (``batching``)."""

    data_dir: str = setting("", "A dataset built by `python -m data_prep.build`. Empty: "
                            "generate synthetic MIDI and build a small dataset in "
                            "WORKDIR/data.")
    tree_prior_dir: str = setting("", "Beyond the paper: a hybrid network. Priors made for "
                                  "--data_dir by `python -m experiments.tree_prior` (the "
                                  "tree baseline's out-of-fold velocities); the heads then "
                                  "read them (ModelConfig.tree_prior). Empty: off.")
    window: int = setting(WINDOW, "Truncated-BPTT window in 1/16 steps (paper: 200).")
    songs_per_batch: int = setting(SONGS_PER_BATCH, "Songs of one style per mini-batch "
                                   "(paper: 4).")
    windows_per_batch: int = setting(WINDOWS_PER_BATCH, "Rows of a batch of independent "
                                     "windows (the windows of --songs_per_batch songs fill "
                                     "batches of this fixed size).")
    pack_windows: bool = setting(False, "Fill each style's batches with windows across song "
                                 "groups, so only its last batch of an epoch has empty rows "
                                 "(faster epochs; batches no longer hold exactly "
                                 "--songs_per_batch songs).")
    mixed_styles: bool = setting(False, "Shuffle the songs of all styles together, so a "
                                 "batch mixes styles (each row trained through its own head; "
                                 "every head is computed: about S times the head compute). "
                                 "Off: the paper's batches of one style, styles alternating.")
    carry_state: bool = setting(False, "Carry each song's forward LSTM state across its "
                                "consecutive windows (rows = songs) instead of independent "
                                "windows.")
    transpose: int = setting(0, "Beyond the paper: move every training window by a random "
                             "number of semitones within +-N (never pushing a note off the "
                             "keyboard), drawn afresh each epoch; 0: off (the paper).")
    performances_per_piece: int = setting(0, "Beyond the paper: each epoch trains on at "
                                          "most N performances of each piece, drawn afresh "
                                          "every epoch, so that a piece many pianists played "
                                          "(classical: about 5 each) weighs no more than one "
                                          "played once; 0: every performance (the paper).")
    devices: int = setting(0, "Devices to train on, data parallel: each computes its share of "
                           "every batch's windows (see stylenet_jax/parallel.py). 0: every "
                           "device of this process (one on a CPU: the single-device run); "
                           "N: the first N.")
    synthetic_styles: tuple[str, ...] = setting(("classical", "jazz"), "Without --data_dir: "
                                                "styles of the generated corpus.")
    synthetic_songs_per_style: int = setting(8, "Without --data_dir: songs per style.")
    synthetic_steps: int = setting(400, "Without --data_dir: longest song, in 1/16 steps "
                                   "(shortest is half).")
    synthetic_validation_fraction: float = setting(0.25, "Without --data_dir: fraction of "
                                                   "each style held out for validation.")

    def __post_init__(self) -> None:
        if self.carry_state and self.pack_windows:
            raise ValueError("carry_state and pack_windows exclude each other (a carried state "
                             "needs each row to be one song)")
        if self.mixed_styles and (self.carry_state or self.pack_windows):
            raise ValueError("mixed_styles excludes carry_state and pack_windows (a carry and "
                             "a packed stream are per style)")
        _check_positive(self, "window", "songs_per_batch", "windows_per_batch",
                        "synthetic_songs_per_style", "synthetic_steps")
        if self.devices < 0:
            raise ValueError(f"devices must be >= 0, got {self.devices}")
        if self.performances_per_piece < 0:
            raise ValueError("performances_per_piece must be >= 0 (0: every performance), "
                             f"got {self.performances_per_piece}")
        if not 0 <= self.transpose <= 12:
            raise ValueError(f"transpose must be within 0..12 semitones, got {self.transpose}")
        if self.transpose and self.carry_state:
            raise ValueError("transpose moves each window on its own; it cannot keep a "
                             "carried song's windows together (carry_state)")
        if not self.synthetic_styles:
            raise ValueError("synthetic_styles must name at least one style")
        if not 0.0 <= self.synthetic_validation_fraction < 1.0:
            raise ValueError("synthetic_validation_fraction must be in [0, 1), got "
                             f"{self.synthetic_validation_fraction}")

    @property
    def layout(self) -> str:
        """The ``batching`` layout: "carry", "packed", "mixed" or "independent"."""
        if self.carry_state:
            return "carry"
        if self.mixed_styles:
            return "mixed"
        return "packed" if self.pack_windows else "independent"


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """How long to train and what to keep along the way."""

    num_epochs: int = setting(160, "Epochs over the train split (paper: 160).")
    seed: int = setting(0, "Seed of initialisation, dropout, data order (and synthetic data).")
    eval_every_epochs: int = setting(1, "Validation MSE every N epochs (and at the end); 0: "
                                     "only at the end.")
    checkpoint_every_epochs: int = setting(1, "Checkpoint every N epochs (and at the end); 0: "
                                           "only at the end. A resumed run restarts at the "
                                           "last one.")
    keep_checkpoints: int = setting(3, "Newest checkpoints kept (the best is kept apart).")
    snapshot_every_epochs: int = setting(10, "Fig. 17-style PNG of a validation song every N "
                                         "epochs (and at the end); 0: never.")
    log_every_steps: int = setting(50, "Read metrics from the device and append to "
                                   "metrics.jsonl every N steps (and at each epoch end).")
    progress: bool = setting(True, "Show a progress bar per epoch.")
    debug_nan_step: int = setting(-1, "Testing only: poison the loss with NaN at this global "
                                  "step to exercise the non-finite stop.")

    def __post_init__(self) -> None:
        _check_positive(self, "num_epochs", "keep_checkpoints", "log_every_steps")
        for name in ("eval_every_epochs", "checkpoint_every_epochs", "snapshot_every_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole training run besides its workdir (defaults: the paper's final setup).
    ``model.num_styles`` is set from the dataset when the run starts."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)

    def __post_init__(self) -> None:
        if self.model.shared_heads and self.data.tree_prior_dir:
            raise ValueError(SHARED_HEADS_WITH_PRIORS)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Config":
        """Inverse of ``dataclasses.asdict`` (missing fields take their defaults)."""
        return cls(**{f.name: _from_dict(f.default_factory, d.get(f.name, {}))
                      for f in dataclasses.fields(cls)})

    def replace(self, **changes: Any) -> "Config":
        """A copy with leaf settings changed by name, e.g. ``replace(hidden_size=8,
        num_epochs=2)``; each name must be a field of exactly one group."""
        groups: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            owner = [g.name for g in dataclasses.fields(self)
                     if name in {f.name for f in dataclasses.fields(getattr(self, g.name))}]
            if not owner:
                raise ValueError(f"unknown setting {name!r}")
            groups.setdefault(owner[0], {})[name] = value
        return dataclasses.replace(self, **{g: dataclasses.replace(getattr(self, g), **v)
                                            for g, v in groups.items()})


def _from_dict(cls: type, d: Mapping[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
    return cls(**values)
