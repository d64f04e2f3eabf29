"""The volumetric family's config (seed 003 / nnU-Net recipe), read by `kerasbrain.config`.

A config file has the sections [data], [model], [training], [augmentation], [inference],
[postprocessing] (chosen when training ends: `evaluation/postprocess_choice.py`) and
[distribution] (`training/distribution.py`) and the switch `augment`; any key left out takes the
default below, an unknown key is an error naming it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from kerasbrain.config import (  # noqa: F401  (ConfigError, read_toml, shipped_configs: re-exported)
    ConfigError,
    check,
    check_at_least,
    config_from_json_file,
    load_config_file,
    parse_config,
    read_toml,
    save_config_json,
    shipped_configs,
)
from kerasbrain.data.augment import FG_SAMPLING, AugmentConfig
from kerasbrain.inference.config import InferenceConfig
from kerasbrain.training.distribution import DistributionConfig


@dataclass(frozen=True)
class DataConfig:
    validation_fraction: float = 0.2
    split_seed: int = 0
    # hold out each kind of case (the labels it holds) in proportion (training/split.py); false: the
    # plain seeded shuffle of runs before 2026-12-06
    stratify_split: bool = True
    target_spacing: tuple[float, ...] = ()  # () = keep the native spacing
    cache_dir: str = ""  # "" = <run>/cache
    folds: int = 5  # k of `train --fold` (k-fold cross-validation; training/folds.py)
    folds_file: str = ""  # "" = <data>/kerasbrain_folds.json, shared by every configuration on the dataset

    def __post_init__(self):
        check(0.0 <= self.validation_fraction < 1.0, "validation_fraction", "must be in [0, 1)",
              self.validation_fraction)
        check(self.folds >= 2, "folds", "must be at least 2", self.folds)
        check(self.target_spacing == () or (len(self.target_spacing) == 3 and all(s > 0 for s in self.target_spacing)),
              "target_spacing", "[] or three positive sizes in mm", self.target_spacing)


@dataclass(frozen=True)
class ModelConfig:
    architecture: str = "unet"  # "unet" (plain conv blocks) or "resenc" (nnU-Net's residual encoder, resenc_unet.py)
    base_filters: int = 16
    depth: int = 4
    max_filters: int = 320
    norm: str = "instance"
    activation: str = "leaky_relu"
    deep_supervision: int = 0
    blocks_per_stage: tuple[int, ...] = ()  # resenc: residual blocks per encoder stage (() = ResEnc-M's)
    # what the outputs learn: "regions" (WT, TC, ET, nested; nnU-Net's region training) or "labels"
    # (seed 003's edema / core / enhancing channels; the saved model still answers in regions)
    targets: str = "regions"
    # each pooling's stride per axis, e.g. [[2, 2, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2]]: thick slices
    # unpooled at first (nnU-Net's; `data plan` chooses them); () = 2 on every axis
    strides: tuple[tuple[int, int, int], ...] = ()
    # each level's convolution kernel per axis (depth + 1 of them), e.g. [3, 3, 1] while slices are too
    # thick to mix (nnU-Net's; `data plan` chooses them); () = 3 everywhere
    kernel_sizes: tuple[tuple[int, int, int], ...] = ()

    def __post_init__(self):
        check(self.architecture in ("unet", "resenc"), "architecture", "unet or resenc", self.architecture)
        check(not self.blocks_per_stage or self.architecture == "resenc", "blocks_per_stage",
              "applies to architecture = \"resenc\" only", self.blocks_per_stage)
        check(self.targets in ("regions", "labels"), "targets", "'regions' or 'labels'", self.targets)
        from kerasbrain.windows import level_kernels, stage_strides

        self._per_level("strides", stage_strides, f"[] or {self.depth} lists (one per pooling) of 3 strides, each 1 "
                        "or 2 and at least one 2")
        self._per_level("kernel_sizes", level_kernels, f"[] or {self.depth + 1} lists (one per level) of 3 sizes, "
                        "each 1 or 3")

    def _per_level(self, key: str, parse, rule: str) -> None:
        """Check a per-level list with `parse` (windows.py) and keep it as tuples, so that a config read
        from TOML's lists compares equal to one built in Python."""
        value = getattr(self, key)
        try:
            parsed = parse(value, self.depth) if value else ()
        except (TypeError, ValueError):
            parsed = None
        check(parsed is not None, key, rule, value)
        object.__setattr__(self, key, parsed)


#: `[training] input_pipeline`: how patches reach `fit` (data/patch_batches.py resolves "auto")
INPUT_PIPELINES = ("auto", "tf.data", "pydataset")


@dataclass(frozen=True)
class TrainingConfig:
    patch_size: tuple[int, int, int] = (128, 128, 128)
    batch_size: int = 2
    epochs: int = 100
    steps_per_epoch: int = 250
    validation_patches: int = 32
    loss: str = "dice_ce"  # "dice_ce" or "soft_dice"
    optimizer: str = "adamw"  # "adamw", "adam" or "sgd"
    learning_rate: float = 3e-4
    weight_decay: float = 1e-5
    # "cosine" (decay over the whole run), "anneal" (constant, then a linear fall over the last
    # anneal_fraction of the run) or "constant"; over the clock with --time-budget
    lr_schedule: str = "cosine"
    anneal_fraction: float = 0.2
    # Polyak averaging: validation and the checkpoints use the moving average of the weights with this
    # momentum (Keras's ema_momentum; training/averaged_weights.py); 0 = the trained weights themselves
    ema_momentum: float = 0.0
    fg_fraction: float = 0.33
    fg_sampling: str = "voxels"  # a foreground patch's centre: "voxels" or nnU-Net's "classes" (data/pipeline.py)
    compile_mode: str = "auto"  # see kerasbrain.runtime
    precision: str = "auto"  # "fp32", "bf16" or "auto" (bf16 where the GPU or CPU has it); kerasbrain.runtime
    seed: int = 0
    # parallel patch draws; 0 = tf.data's AUTOTUNE, or for the PyDataset one thread per core (its 1 draws
    # in the training loop itself, as Keras's PyDataset does)
    workers: int = 0
    # how patches reach `fit`: "tf.data", "pydataset" (Keras's, no TensorFlow needed: data/patch_batches.py)
    # or "auto" (tf.data where TensorFlow is installed); the same batches either way
    input_pipeline: str = "auto"
    # where patches are augmented: "host" (tf.data workers), "device" (inside the compiled step,
    # training/device_augment.py) or "auto" (the device where there is a GPU)
    augment_on: str = "auto"

    def __post_init__(self):
        check(len(self.patch_size) == 3 and all(p >= 1 for p in self.patch_size), "patch_size",
              "three positive sides", self.patch_size)
        check_at_least(self, 1, "batch_size", "epochs", "steps_per_epoch")
        check(self.validation_patches >= 0, "validation_patches", "must not be negative", self.validation_patches)
        check(0.0 <= self.fg_fraction <= 1.0, "fg_fraction", "must be in [0, 1]", self.fg_fraction)
        check(self.fg_sampling in FG_SAMPLING, "fg_sampling", "must be " + " or ".join(map(repr, FG_SAMPLING)),
              self.fg_sampling)
        check(self.learning_rate > 0, "learning_rate", "must be positive", self.learning_rate)
        check(self.lr_schedule in ("cosine", "anneal", "constant"), "lr_schedule",
              "must be 'cosine', 'anneal' or 'constant'", self.lr_schedule)
        check(0.0 < self.anneal_fraction <= 1.0, "anneal_fraction", "must be in (0, 1]", self.anneal_fraction)
        check(0.0 <= self.ema_momentum < 1.0, "ema_momentum", "must be in [0, 1) (0 = off)", self.ema_momentum)
        check(self.workers >= 0, "workers", "must not be negative", self.workers)
        check(self.input_pipeline in INPUT_PIPELINES, "input_pipeline",
              "must be " + ", ".join(map(repr, INPUT_PIPELINES)), self.input_pipeline)
        check(self.augment_on in ("auto", "host", "device"), "augment_on", "must be 'auto', 'host' or 'device'",
              self.augment_on)


@dataclass(frozen=True)
class PostprocessingConfig:
    """How `train` chooses `[inference] min_component_ml / min_enhancing_ml` when it ends
    (`evaluation/postprocess_choice.py`): on which cases, for which score."""

    # "validation+train": the validation cases and training cases up to max_cases; "validation": those
    # alone; "off": keep [inference]'s own thresholds
    choose_on: str = "validation+train"
    # validation cases first, then training cases drawn with [data] split_seed; each is predicted as
    # deployed (mirror TTA and all): ~12 s for a 120 x 120 x 78 phantom on 2 CPU cores
    max_cases: int = 8
    target: str = "lesion"  # "lesion" (BraTS 2023's lesion-wise Dice) or "legacy" (whole-region Dice)
    lesion_preset: str = "GLI"  # kerasbrain.metrics.lesion_wise.PRESETS

    def __post_init__(self):
        check(self.choose_on in ("validation+train", "validation", "off"), "choose_on",
              "'validation+train', 'validation' or 'off'", self.choose_on)
        check(self.max_cases >= 1, "max_cases", "must be at least 1", self.max_cases)
        check(self.target in ("lesion", "legacy"), "target", "'lesion' or 'legacy'", self.target)
        check(self.lesion_preset in ("GLI", "MET", "PED", "MEN", "SSA"), "lesion_preset",
              "GLI, MET, PED, MEN or SSA", self.lesion_preset)


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    augment: bool = True
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    postprocessing: PostprocessingConfig = field(default_factory=PostprocessingConfig)
    distribution: DistributionConfig = field(default_factory=DistributionConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def config_from_dict(raw: dict, source: str = "config") -> Config:
    return parse_config(Config, raw, source)


def load_config(path: str | Path | None) -> Config:
    """Read a TOML config file, or a shipped one by name (None = all defaults)."""
    return load_config_file(Config, path)


def save_config(config: Config, path: str | Path) -> None:
    save_config_json(config, path)


def config_from_json(path: str | Path) -> Config:
    return config_from_json_file(Config, path)
