"""The config of the classification families (multitask, classifier; seeds 000 / 001), read by `kerasbrain.config`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from kerasbrain.config import check, check_at_least, load_config_file


@dataclass(frozen=True)
class ImageData:
    image_size: int = 224  # square side every image is resized to (a multiple of 32)
    validation_fraction: float = 0.15  # of the shipped training images, stratified by class and mask
    split_seed: int = 0
    max_images: int = 0  # 0 = all; a cap per subset for quick runs

    def __post_init__(self):
        check(self.image_size >= 32 and self.image_size % 32 == 0, "image_size", "a positive multiple of 32",
              self.image_size)
        check(0.0 <= self.validation_fraction < 1.0, "validation_fraction", "must be in [0, 1)",
              self.validation_fraction)


@dataclass(frozen=True)
class MultiTaskModelConfig:
    encoder: str = "resnet18"  # resnet18/34/50 or efficientnet_b0, random weights or encoder_weights
    dropout: float = 0.3
    norm: str = "batch"  # decoder normalisation
    decoder_filters: tuple[int, int, int, int, int] = (256, 128, 64, 32, 16)
    encoder_weights: str = ""  # "" random; "imagenet", a keras-hub preset folder or .weights.h5; or a .keras encoder


@dataclass(frozen=True)
class MultiTaskTraining:
    batch_size: int = 16
    epochs: int = 20
    learning_rate: float = 3e-4
    weight_decay: float = 1e-4
    schedule: str = "alternate"  # seed 001's balanced alternation of task batches, or "joint"
    class_weight: float = 1.0  # task weights of the total loss
    mask_weight: float = 1.0
    plateau_patience: int = 3
    plateau_factor: float = 0.1
    bn_recalibration_batches: int = 16  # precise batch norm before each validation (0 = off)
    compile_mode: str = "auto"
    precision: str = "auto"
    seed: int = 0

    def __post_init__(self):
        check_at_least(self, 1, "batch_size", "epochs")
        check(self.learning_rate > 0, "learning_rate", "must be positive", self.learning_rate)
        check(self.schedule in ("alternate", "joint"), "schedule", "alternate or joint", self.schedule)
        check(self.class_weight >= 0 and self.mask_weight >= 0, "class_weight / mask_weight",
              "must not be negative", (self.class_weight, self.mask_weight))


@dataclass(frozen=True)
class ImageAugment:
    horizontal_flip: bool = True  # left-right only: a vertical flip would move the sella
    rotation_degrees: float = 10.0


@dataclass(frozen=True)
class MultiTaskConfig:
    data: ImageData = field(default_factory=ImageData)
    model: MultiTaskModelConfig = field(default_factory=MultiTaskModelConfig)
    training: MultiTaskTraining = field(default_factory=MultiTaskTraining)
    augmentation: ImageAugment = field(default_factory=ImageAugment)
    augment: bool = True

    def to_dict(self):
        return dataclasses.asdict(self)


def load_multitask_config(path) -> MultiTaskConfig:
    return load_config_file(MultiTaskConfig, path)

