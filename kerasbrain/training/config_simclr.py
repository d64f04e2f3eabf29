"""The config of SimCLR pretraining (`kerasbrain pretrain simclr`), read by `kerasbrain.config`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from kerasbrain.config import check, check_at_least
from kerasbrain.data.contrastive import ViewAugment


@dataclass(frozen=True)
class SimCLRData:
    image_size: int = 128  # square side of every view (a multiple of 32)
    max_images: int = 0  # 0 = all training images; a cap for quick runs

    def __post_init__(self):
        check(self.image_size >= 32 and self.image_size % 32 == 0, "image_size", "a positive multiple of 32",
              self.image_size)
        check(self.max_images >= 0, "max_images", "must not be negative", self.max_images)


@dataclass(frozen=True)
class SimCLRModelConfig:
    encoder: str = "resnet18"  # seed 000's encoder
    projection_dims: tuple[int, int] = (512, 128)
    temperature: float = 0.5

    def __post_init__(self):
        check(self.temperature > 0, "temperature", "must be positive", self.temperature)


@dataclass(frozen=True)
class SimCLRTraining:
    batch_size: int = 64  # images per step; each step sees 2 x batch_size views
    epochs: int = 50
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 2  # linear warm-up, then cosine decay to zero
    bn_recalibration_batches: int = 16  # precise batch norm on unaugmented images at each epoch end
    compile_mode: str = "auto"
    precision: str = "auto"
    seed: int = 0

    def __post_init__(self):
        check_at_least(self, 1, "epochs")
        check(self.batch_size >= 2, "batch_size", "must be at least 2 (negatives come from the batch)",
              self.batch_size)
        check(self.learning_rate > 0, "learning_rate", "must be positive", self.learning_rate)
        check(self.warmup_epochs >= 0, "warmup_epochs", "must not be negative", self.warmup_epochs)


@dataclass(frozen=True)
class LinearProbe:
    enabled: bool = True  # score the encoder with a logistic regression on frozen features after training
    compare_random: bool = True  # and the same probe on a randomly initialised encoder, for reference
    max_images: int = 2000  # per subset, so the probe stays quick on large datasets


@dataclass(frozen=True)
class SimCLRConfig:
    data: SimCLRData = field(default_factory=SimCLRData)
    model: SimCLRModelConfig = field(default_factory=SimCLRModelConfig)
    training: SimCLRTraining = field(default_factory=SimCLRTraining)
    probe: LinearProbe = field(default_factory=LinearProbe)
    augmentation: ViewAugment = field(default_factory=ViewAugment)

    def to_dict(self):
        return dataclasses.asdict(self)
