"""Training configuration: dataclasses read from TOML (stdlib `tomllib`), with strict key checking.

A config file has the sections [data], [model], [training], [augmentation] and [inference]; any
key left out takes the default below, and an unknown key is an error that names it, so a typo
never silently trains the wrong thing.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from kerasbrain.data.augment import AugmentConfig
from kerasbrain.inference.predict_volume import InferenceConfig


@dataclass(frozen=True)
class DataConfig:
    validation_fraction: float = 0.2
    split_seed: int = 0
    target_spacing: tuple[float, ...] = ()  # () = keep the native spacing
    cache_dir: str = ""  # "" = <run>/cache


@dataclass(frozen=True)
class ModelConfig:
    base_filters: int = 16
    depth: int = 4
    max_filters: int = 320
    norm: str = "instance"
    activation: str = "leaky_relu"
    deep_supervision: int = 0


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
    lr_schedule: str = "cosine"  # "cosine" or "constant"
    fg_fraction: float = 0.33
    compile_mode: str = "auto"  # see kerasbrain.runtime
    precision: str = "auto"  # "fp32", "bf16" or "auto" (bf16 on a GPU that has it); see kerasbrain.runtime
    seed: int = 0
    workers: int = 0  # parallel patch draws; 0 = tf.data AUTOTUNE


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    augmentation: AugmentConfig = field(default_factory=AugmentConfig)
    augment: bool = True
    inference: InferenceConfig = field(default_factory=InferenceConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    """A config file is unreadable or holds an unknown key or a value of the wrong type."""


def _build(cls, values: dict, where: str):
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if isinstance(default, tuple):
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where}.{name}: expected a list. Received: {value!r}")
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}.{name}: expected true/false. Received: {value!r}")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"{where}.{name}: expected a number. Received: {value!r}")
            value = type(default)(value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{where}.{name}: expected a string. Received: {value!r}")
        kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(raw: dict, source: str = "config") -> Config:
    sections = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig,
                "augmentation": AugmentConfig, "inference": InferenceConfig}
    unknown = sorted(set(raw) - set(sections) - {"augment"})
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {unknown}; allowed: {sorted(sections) + ['augment']}")
    kwargs = {name: _build(cls, raw.get(name, {}), f"{source}: [{name}]") for name, cls in sections.items()}
    if "augment" in raw:
        if not isinstance(raw["augment"], bool):
            raise ConfigError(f"{source}: augment must be true or false")
        kwargs["augment"] = raw["augment"]
    return Config(**kwargs)


SHIPPED_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def shipped_configs() -> list[str]:
    """Names of the configs that come with kerasbrain (usable as `--config NAME`)."""
    return sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.toml"))


def read_toml(path: str | Path) -> tuple[dict, str]:
    """The table in a TOML file, or in a shipped config named `path`; returns it and its source name."""
    path = Path(path)
    if not path.exists() and str(path) in shipped_configs():
        path = SHIPPED_CONFIGS / f"{path}.toml"
    try:
        return tomllib.loads(path.read_text()), str(path)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found (shipped configs: {', '.join(shipped_configs())})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc


def load_config(path: str | Path | None) -> Config:
    """Read a TOML config file, or a shipped one by name (None = all defaults)."""
    return Config() if path is None else config_from_dict(*read_toml(path))


def save_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(json.dumps(config.to_dict(), indent=2))


def config_from_json(path: str | Path) -> Config:
    return config_from_dict(json.loads(Path(path).read_text()), str(path))
