"""The model-family registry: every verb finds a family here by name or from a run folder.

To add a family, write its module (a `ModelFamily` subclass instance named `FAMILY`) and add one
line to `_FAMILIES`. Modules are imported only when a family is used, so listing names (e.g. for
`kerasbrain train --help`) imports no network.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from kerasbrain.families.base import (InferenceOverrides, ModelFamily, NotSupported, Prediction, PredictRequest,
                                      TrainOption)
from kerasbrain.runs import read_run_config, read_run_info, run_dir_of

#: name -> module holding `FAMILY`. The one registration a new family needs.
_FAMILIES = {
    "unet3d": "kerasbrain.families.unet3d",  # volumetric 3-D U-Net (MSD / BraTS)
    "unet2d": "kerasbrain.families.unet2d",  # 2-D slice U-Nets (LGG kaggle_3m), scratch or encoder
    "multitask": "kerasbrain.families.multitask",  # 4-class head + mask decoder (BRISC 2025)
    "classifier": "kerasbrain.families.classifier",  # 4-class head only (seed 000's baseline)
    "segmenter": "kerasbrain.families.segmenter",  # mask decoder only (the segmentation baseline)
    "simclr": "kerasbrain.families.simclr",  # self-supervised encoder pretraining (seed 000)
}


def register_family(name: str, module: str) -> None:
    """Register a family defined outside kerasbrain (a plug-in): `module` must define `FAMILY`."""
    if name in _FAMILIES and _FAMILIES[name] != module:
        raise ValueError(f"a model family named {name!r} is already registered ({_FAMILIES[name]})")
    _FAMILIES[name] = module


def family_names(stage: str | None = None) -> list[str]:
    """Registered family names; with `stage`, those trained by that verb ("train" or "pretrain")."""
    if stage is None:
        return list(_FAMILIES)
    return [name for name in _FAMILIES if get_family(name).stage == stage]


def get_family(name: str) -> ModelFamily:
    if name not in _FAMILIES:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(_FAMILIES)}")
    family = importlib.import_module(_FAMILIES[name]).FAMILY
    if family.name != name:
        raise ValueError(f"{_FAMILIES[name]} defines family {family.name!r}, registered as {name!r}")
    return family


def all_families() -> list[ModelFamily]:
    return [get_family(name) for name in _FAMILIES]


def family_of_run(model_path) -> ModelFamily:
    """The family of a `.keras` model or run folder.

    Read from the run's `run.json`; for runs made before it existed, from which family's config
    `config.json` is; for a bare model with no run folder, from the loaded model itself.
    """
    run_dir = run_dir_of(model_path)
    name = read_run_info(run_dir).get("family")
    if name:
        return get_family(name)
    raw = read_run_config(run_dir)
    if raw is not None:
        owners = [f for f in all_families() if f.owns_legacy_config(raw)]
        if len(owners) == 1:
            return owners[0]
        raise ValueError(f"{Path(run_dir) / 'config.json'}: cannot tell which model family made this run")
    from kerasbrain.inference.model_io import load_model

    model = load_model(model_path)
    for family in all_families():
        if family.owns_model(model):
            return family
    raise ValueError(f"{model_path}: no kerasbrain model family handles a {type(model).__name__}")


def family_of_served_model(saved_models, name: str) -> ModelFamily:
    """The family of a served model, from its newest exported manifest (volumetric when none is readable)."""
    from kerasbrain.export.layout import read_manifest, versions

    root = Path(saved_models) / name
    found = versions(root) if root.is_dir() else []
    manifest = read_manifest(root / str(found[-1])) if found else {}
    if manifest.get("family") in _FAMILIES:
        return get_family(manifest["family"])
    if "kind" in manifest:
        return family_of_serving_kind(manifest["kind"])
    return get_family("unet3d")


def family_of_serving_kind(kind: str) -> ModelFamily:
    """The family whose SavedModels carry manifest kind `kind`."""
    for family in all_families():
        if family.serving_kind == kind:
            return family
    raise ValueError(f"no model family serves SavedModels of kind {kind!r}")


__all__ = ["ModelFamily", "NotSupported", "TrainOption", "InferenceOverrides", "PredictRequest", "Prediction",
           "register_family", "family_names", "get_family", "all_families", "family_of_run", "family_of_served_model",
           "family_of_serving_kind"]
