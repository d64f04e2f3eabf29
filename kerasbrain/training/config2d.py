"""The 2-D slice family's config (seeds 002 and 004), read by `kerasbrain.config` like every family's.

Training runs in stages; seed 004's two-stage fine-tuning is stage 1 with the encoder frozen
(AdamW 1e-4, 5 epochs) and stage 2 with every layer trainable (1e-5, 15 epochs), each with
ReduceLROnPlateau (patience 3, factor 0.1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from kerasbrain.config import check, config_from_json_file, load_config_file, parse_config, save_config_json
from kerasbrain.data.slices import SliceAugment


@dataclass(frozen=True)
class SliceData:
    n_splits: int = 5
    fold: int = 0
    test_fold: int = 1  # -1: no test fold
    split_seed: int = 0
    enhance: bool = False  # seed 004's median + CLAHE

    def __post_init__(self):
        check(self.n_splits >= 2, "n_splits", "must be at least 2", self.n_splits)
        check(0 <= self.fold < self.n_splits, "fold", f"must be in [0, n_splits = {self.n_splits})", self.fold)
        check(self.test_fold == -1 or 0 <= self.test_fold < self.n_splits, "test_fold",
              f"must be -1 (no test fold) or in [0, n_splits = {self.n_splits})", self.test_fold)
        check(self.test_fold != self.fold, "test_fold", "must differ from fold (validation would equal test)",
              self.test_fold)


@dataclass(frozen=True)
class SliceModel:
    encoder: str = "none"  # "none" (seed 002's U-Net from scratch), resnet18/34/50, efficientnet_b0
    base_filters: int = 32  # scratch U-Net only
    depth: int = 4  # scratch U-Net only
    norm: str = "auto"  # scratch U-Net and decoder: batch, instance, group, none; auto = batch (see train_unet2d)
    encoder_weights: str = ""  # "" random; "imagenet" (keras-hub preset), a preset folder or .weights.h5; or a .keras encoder
    stem_skip: bool = True  # encoder U-Nets: the stride-2 decoder level takes the encoder's stem features
    image_skip_filters: int = 32  # encoder U-Nets: width of the full-resolution block over the image (0: raw image)
    output_prior: float = 0.01  # foreground probability the sigmoid output starts at (0: a zero bias, 0.5)

    def __post_init__(self):
        check(0.0 <= self.output_prior < 1.0, "output_prior", "must be in [0, 1)", self.output_prior)
        check(self.image_skip_filters >= 0, "image_skip_filters", "must not be negative", self.image_skip_filters)


@dataclass(frozen=True)
class Stage:
    epochs: int = 5
    learning_rate: float = 1e-4
    freeze_encoder: bool = False

    def __post_init__(self):
        check(self.epochs >= 1, "epochs", "must be at least 1", self.epochs)
        check(self.learning_rate > 0, "learning_rate", "must be positive", self.learning_rate)


@dataclass(frozen=True)
class SliceTraining:
    batch_size: int = 8
    loss: str = "dice_bce"  # seed 004's ComboLoss; or "dice"
    weight_decay: float = 1e-4
    plateau_patience: int = 3
    plateau_factor: float = 0.1
    seed: int = 0
    compile_mode: str = "auto"
    precision: str = "auto"  # "fp32", "bf16" or "auto" (bf16 where the GPU or CPU computes it natively)
    bn_recalibration_batches: int = 16  # precise batch norm before each validation (0 = off); see training/batchnorm.py
    max_slices: int = 0  # 0 = all; a cap for quick runs

    def __post_init__(self):
        check(self.batch_size >= 1, "batch_size", "must be at least 1", self.batch_size)
        check(self.bn_recalibration_batches >= 0, "bn_recalibration_batches", "must not be negative",
              self.bn_recalibration_batches)
        check(self.max_slices >= 0, "max_slices", "must not be negative", self.max_slices)


@dataclass(frozen=True)
class SliceConfig:
    data: SliceData = field(default_factory=SliceData)
    model: SliceModel = field(default_factory=SliceModel)
    training: SliceTraining = field(default_factory=SliceTraining)
    stages: tuple[Stage, ...] = (Stage(epochs=20, learning_rate=1e-4),)
    augmentation: SliceAugment = field(default_factory=SliceAugment)
    augment: bool = True

    def to_dict(self):
        return dataclasses.asdict(self)


def slice_config_from_dict(raw: dict, source: str = "config") -> SliceConfig:
    return parse_config(SliceConfig, raw, source)


def load_slice_config(path) -> SliceConfig:
    """Read a TOML slice config file, or a shipped one by name (None = all defaults)."""
    return load_config_file(SliceConfig, path)


def save_slice_config(config: SliceConfig, path) -> None:
    save_config_json(config, path)


def slice_config_from_json(path) -> SliceConfig:
    return config_from_json_file(SliceConfig, path)
