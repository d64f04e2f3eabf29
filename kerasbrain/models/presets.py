"""Pretrained encoder weights: a keras-hub preset by name, a local preset folder, or a weights file.

    encoder_weights = "imagenet"            # keras-hub's ImageNet preset: downloaded once, then cached
    encoder_weights = "encoders/resnet50"   # a folder `kerasbrain encoders fetch resnet50 --out ...` wrote
    encoder_weights = "r50.weights.h5"      # the backbone's weights alone (keras-hub's architecture)

Offline, a preset that is not in the cache fails at once in one line that says what to do, never
after a hang or a retry loop: reachability of Kaggle (where keras-hub keeps its presets) is tried
once with a short timeout before keras-hub is asked. A folder or file is checked to be the named
encoder's architecture before its weights are used.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from kerasbrain.files import staged_folder
from kerasbrain.models.backbones import IMAGENET_PRESETS, hub_backbone, same_architecture

PRESET_HOST = ("www.kaggle.com", 443)


class PresetUnavailable(ValueError):
    """A pretrained preset could not be had here (offline and not cached, or not the named encoder)."""


def _kaggle_handle(preset: str) -> str:
    from keras_hub.src.models.backbone import Backbone

    for cls in Backbone.__subclasses__():
        handle = getattr(cls, "presets", {}).get(preset, {}).get("kaggle_handle")
        if handle:
            return handle.removeprefix("kaggle://")
    raise PresetUnavailable(f"keras-hub knows no preset {preset!r}")


PRESET_FILES = ("config.json", "model.weights.h5")


def cached(preset: str) -> bool:
    """Whether kagglehub's cache holds `preset`'s files, complete (what it serves without a network)."""
    from kagglehub.cache import Cache
    from kagglehub.handle import parse_model_handle

    handle = parse_model_handle(_kaggle_handle(preset))
    return all(Cache().load_from_cache(handle, name) is not None for name in PRESET_FILES)


def reachable(host=PRESET_HOST, timeout: float = 3.0) -> bool:
    """Whether `host` answers within `timeout` seconds, name lookup included (which a socket timeout does
    not bound, so the attempt runs in a thread that is abandoned if it takes longer)."""
    import threading

    answered = threading.Event()

    def attempt():
        try:
            with socket.create_connection(host, timeout=timeout):
                answered.set()
        except OSError:
            pass

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    return answered.is_set()


def download_preset(encoder: str):
    """The keras-hub ImageNet backbone of `encoder` (from the cache, or downloaded once)."""
    import keras_hub

    if encoder not in IMAGENET_PRESETS:
        raise PresetUnavailable(f"encoder_weights='imagenet': keras-hub has no ImageNet preset for {encoder!r}; "
                                f"pretrained encoders: {', '.join(sorted(IMAGENET_PRESETS))}")
    preset = IMAGENET_PRESETS[encoder]
    if not cached(preset) and not reachable():
        raise PresetUnavailable(
            f"encoder_weights='imagenet': keras-hub preset {preset} is not cached and {PRESET_HOST[0]} cannot be "
            f"reached; on a machine with a network run `kerasbrain encoders fetch {encoder} --out DIR`, copy DIR "
            f"here and set encoder_weights = \"DIR\"")
    return keras_hub.models.Backbone.from_preset(preset)


def local_backbone(encoder: str, path: str | os.PathLike):
    """The keras-hub backbone in a local preset folder, or the named architecture with a weights file."""
    import keras_hub

    path = Path(path)
    if path.is_dir():
        if not (path / "config.json").exists():
            raise PresetUnavailable(f"{path}: not a keras-hub preset folder (no config.json)")
        try:
            backbone = keras_hub.models.Backbone.from_preset(str(path))
        except Exception as exc:  # noqa: BLE001 - a broken folder is one clear line
            raise PresetUnavailable(f"{path}: cannot be read as a keras-hub preset ({type(exc).__name__}: {exc})") from exc
    elif path.name.endswith(".weights.h5") and path.is_file():
        backbone = hub_backbone(encoder)
        try:
            backbone.load_weights(str(path))
        except Exception as exc:  # noqa: BLE001
            raise PresetUnavailable(f"{path}: not the weights of a keras-hub {encoder} backbone ({exc})") from exc
    else:
        raise PresetUnavailable(f"{path}: encoder_weights must be 'imagenet', a keras-hub preset folder, a "
                                ".weights.h5 file or a saved .keras encoder")
    if not same_architecture(backbone, encoder):
        raise PresetUnavailable(f"{path}: holds a {type(backbone).__name__} that is not a {encoder} encoder")
    return backbone


def is_pretrained_source(weights: str) -> bool:
    """Whether `encoder_weights` names keras-hub weights (else: empty, or a saved .keras encoder)."""
    return bool(weights) and (weights == "imagenet" or not str(weights).endswith(".keras"))


def pretrained_backbone(encoder: str, weights: str):
    """The keras-hub backbone `encoder_weights` names: "imagenet", a preset folder or a weights file."""
    return download_preset(encoder) if weights == "imagenet" else local_backbone(encoder, weights)


def fetch(encoder: str, out: str | os.PathLike) -> Path:
    """Download `encoder`'s ImageNet preset and write it to `out` in keras-hub's preset format."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise PresetUnavailable(f"{out}: exists and is not empty")
    backbone = download_preset(encoder)
    with staged_folder(out) as staged:  # a write that fails half-way (a full disk) leaves no half preset
        backbone.save_to_preset(str(staged))
    return out


def with_pretrained_encoder(cls, encoder: str, weights: str, **kwargs):
    """`cls(encoder=..., **kwargs)` (an encoder network) with its encoder from keras-hub weights and its input
    ImageNet-normalised, as those weights expect."""
    from kerasbrain.models.backbones import copy_hub_weights, serialize_hub_backbone

    backbone = pretrained_backbone(encoder, weights)
    model = cls(encoder=encoder, hub_backbone=serialize_hub_backbone(backbone), input_normalization="imagenet",
                **kwargs)
    copy_hub_weights(backbone, model.encoder)
    return model


def build_with_encoder_weights(cls, encoder: str, weights: str, **kwargs):
    """The network `[model] encoder_weights` asks for: random (""), keras-hub weights ("imagenet", a preset
    folder, a .weights.h5), or a saved .keras encoder (SimCLR's, or any kerasbrain model's)."""
    if is_pretrained_source(weights):
        return with_pretrained_encoder(cls, encoder, weights, **kwargs)
    model = cls(encoder=encoder, **kwargs)
    if weights:
        model.load_encoder_weights(weights)
    return model

