"""What a model family brings, and the option records the command line hands it.

A family is one unit: its config dataclass (read by `kerasbrain.config`), its trainer, its
evaluation, its prediction and its serving signature. The CLI and other verbs talk to a family
only through the methods below and through a run's `run.json`, so adding a family never edits
another family or a CLI function. A family that cannot do something (e.g. serve) says so in one
clear line instead of failing halfway.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np


class NotSupported(ValueError):
    """A family was asked for a verb it does not offer (a one-line error on the command line)."""


#: What a family can declare in `ModelFamily.capabilities`; callers ask `family.can(name)` or
#: `family.require(name, subject)` instead of probing for methods.
CAPABILITIES = {
    "predict": "predict a case with a local model",
    "predict_folder": "predict a folder of cases",
    "predict_server": "predict through a served model (--server)",
    "evaluate": "be evaluated",
    "explain": "explain a prediction",
    "export": "be exported for serving",
    "image_analysis": "be loaded at its run's image size for pseudo-masks, calibration and robustness",
    "lesion_wise": "be scored lesion by lesion (BraTS 2023; evaluate takes `scoring`)",
    "uncertainty": "give per-voxel uncertainty (--uncertainty: the mirror members' spread, per lesion)",
    "region_calibration": "be calibrated region by region (a temperature per WT / TC / ET on validation voxels)",
}


@dataclass(frozen=True)
class ScoringOptions:
    """How `evaluate` scores volumetric cases: BraTS 2023's lesion-wise settings, the post-processing target."""

    lesion_preset: str = "GLI"  # GLI, MET, PED, MEN, SSA (kerasbrain.metrics.lesion_wise.PRESETS)
    lesion_dilation: int | None = None  # None: the preset's
    lesion_min_volume: float | None = None  # mm^3; None: the preset's
    postprocess_target: str = "legacy"  # "legacy" (whole-region Dice) or "lesion" (lesion-wise Dice)
    uncertainty: bool = False  # also score the mirror members' uncertainty as QU-BraTS does (mirror TTA on)
    # (name, value) pairs of the input-format flags the cases are read with (DICOM's --series, --reference,
    # --register), as `predict` reads one case
    input_options: tuple = ()

    def given(self) -> list[str]:
        default = ScoringOptions()
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)]

    def lesion_settings(self):
        from kerasbrain.metrics.lesion_wise import LesionSettings

        return LesionSettings.of(self.lesion_preset, self.lesion_dilation, self.lesion_min_volume)


@dataclass(frozen=True)
class TrainOption:
    """A family-specific `kerasbrain train FAMILY` flag, declared without importing click."""

    name: str  # the keyword `train` receives; the flag is --name-with-dashes
    type: type  # int, float or str
    help: str
    minimum: float | None = None  # smallest accepted value (ints: inclusive; floats: exclusive)


#: The flag of every family whose networks have a 2-D encoder (SimCLR's `encoder.keras` goes here).
ENCODER_WEIGHTS = TrainOption("encoder_weights", str, "The encoder's start: 'imagenet' (a keras-hub preset), a preset "
                              "folder or .weights.h5 (`kerasbrain encoders fetch`), or a saved encoder (a SimCLR run's "
                              "encoder.keras, or any kerasbrain model with the same encoder); overrides "
                              "[model].encoder_weights.")


def with_encoder_weights(config, encoder_weights: str | None):
    """`config` with `[model] encoder_weights` replaced when the flag was given."""
    if not encoder_weights:
        return config
    if encoder_weights != "imagenet" and not Path(encoder_weights).exists():
        raise ValueError(f"{encoder_weights}: --encoder-weights not found (give 'imagenet', a keras-hub preset folder, "
                         "a .weights.h5 or a .keras encoder)")
    return replace(config, model=replace(config.model, encoder_weights=str(encoder_weights)))


@dataclass(frozen=True)
class InferenceOverrides:
    """Settings given on the command line; None keeps the run's own setting."""

    window: tuple[int, ...] | None = None
    overlap: float | None = None
    batch_size: int | None = None
    mirror: bool | None = None
    compile_mode: str | None = None
    precision: str | None = None
    min_component_ml: float | None = None
    min_enhancing_ml: float | None = None
    min_part_ml: float | None = None

    def apply(self, cfg):
        """`cfg` (a dataclass with the same field names) with every given override applied."""
        names = {f.name for f in fields(cfg)}
        given = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        unknown = sorted(set(given) - names)
        if unknown:
            raise ValueError(f"this model takes no {', '.join('--' + u.replace('_', '-') for u in unknown)}")
        if "window" in given:
            given["window"] = tuple(given["window"])
        return replace(cfg, **given)

    def given(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


@dataclass(frozen=True)
class PredictRequest:
    """One `kerasbrain predict` call: model (a path, or a served name with `server`), inputs, outputs."""

    model: str
    inputs: tuple[Path, ...]
    out: Path
    overrides: InferenceOverrides = InferenceOverrides()
    server: str | None = None  # http://HOST:8501 or grpc://HOST:8500
    model_version: int | None = None
    model_label: str | None = None
    saved_models: Path = Path("saved_models")  # where the served model's manifest can be read
    truth: Path | None = None
    label_layout: str | None = None
    probabilities: bool = False
    overlay: Path | None = None
    input_options: dict = field(default_factory=dict)  # the input format's flags (DICOM: series, register ...)
    uncertainty: bool = False  # also write the mirror members' entropy and variance, and per-lesion confidence


@dataclass
class Prediction:
    """What one `predict` wrote and found: the CLI prints it, the web app shows it.

    `image` and `labels` are what was predicted, for viewers: a volume's canonical (RAS) image
    (X, Y, Z, C) with its internal label map (X, Y, Z), or a picture (H, W[, 3]) with its 0/1 mask.
    """

    files: list[Path]  # everything written, in order
    mask: Path | None = None  # the label map or mask a user downloads
    figure: Path | None = None  # the picture of the result
    lines: list[str] = field(default_factory=list)  # one-line summaries for the terminal
    class_probabilities: dict[str, float] | None = None  # class title -> probability
    region_volumes_ml: dict[str, float] | None = None  # WT / TC / ET volumes of a label map
    image: np.ndarray | None = None
    labels: np.ndarray | None = None
    spacing: tuple[float, ...] | None = None  # mm per voxel along the image's axes
    # a volume's measurements (volumes, lesions, RANO diameters) and confidence; a slice's confidence alone
    report: dict | None = None


class ModelFamily:
    """Base class of every model family; subclasses set the attributes and override the verbs."""

    name: str = ""  # the registry name, also `kerasbrain train NAME`
    description: str = ""  # one line for `kerasbrain train --help`
    serving_kind: str | None = None  # the manifest "kind" of its SavedModels; None: not exportable
    train_options: tuple[TrainOption, ...] = ()
    stage: str = "train"  # the verb that trains it: "train", or "pretrain" for representation learning
    input_kind: str | None = None  # what `predict` takes: "volume" or "image" (any input format of that
    # kind in `kerasbrain.data.io`: NIfTI or DICOM volumes, pictures), or None
    config_class: str = ""  # "module:Class" of the config dataclass, imported only when a config is read
    budget_config: str = ""  # shipped config for a --time-budget run on a CPU without --config ("": defaults)
    capabilities: frozenset[str] = frozenset()  # names from CAPABILITIES

    def can(self, capability: str) -> bool:
        """Whether the family declares `capability` (a name from CAPABILITIES)."""
        if capability not in CAPABILITIES:
            raise KeyError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
        return capability in self.capabilities

    def require(self, capability: str, subject) -> None:
        """Raise `NotSupported` in one line when the family cannot do `capability`, with its reason if it has one."""
        if not self.can(capability):
            why = self.why_not(capability)
            raise NotSupported(f"{subject}: a {self.name} model cannot {CAPABILITIES[capability]}"
                               + (f" ({why})" if why else ""))

    def why_not(self, capability: str) -> str:
        """Why the family lacks `capability`, for the refusal ("" when there is nothing to add)."""
        return ""

    # --- configuration -------------------------------------------------------------------------
    def _config_cls(self):
        import importlib

        if not self.config_class:
            raise NotSupported(f"the {self.name} family reads no config")
        module, name = self.config_class.split(":")
        return getattr(importlib.import_module(module), name)

    def load_config(self, path, changes=()):
        """The family's config from a TOML file or shipped name (None: all defaults), plus `changes`."""
        from kerasbrain.config import load_config_file

        return load_config_file(self._config_cls(), path, tuple(changes))

    def default_config_name(self, time_budget: float | None) -> str | None:
        """The shipped config a run given no config starts from (None: the config class's defaults).

        A time-budgeted run on a CPU starts from `budget_config`, the recipe measured best there
        (the defaults are for long runs on a GPU).
        """
        if not self.budget_config or time_budget is None:
            return None
        from kerasbrain.runtime import has_gpu

        return None if has_gpu() else self.budget_config

    def run_config(self, run_dir):
        """The config saved in a run folder (None when the folder has none)."""
        from kerasbrain.config import config_from_json_file
        from kerasbrain.runs import CONFIG_FILE

        path = Path(run_dir) / CONFIG_FILE
        return config_from_json_file(self._config_cls(), path) if path.exists() else None

    def owns_legacy_config(self, raw: dict) -> bool:
        """Whether a `config.json` written before `run.json` existed is this family's."""
        return False

    def owns_model(self, model) -> bool:
        """Whether a loaded bare model (no run folder) is this family's."""
        return False

    # --- verbs ---------------------------------------------------------------------------------
    def train(self, data: Path, out: Path, config, time_budget: float | None = None, progress=print,
              **options) -> dict:
        raise NotSupported(f"the {self.name} family cannot be trained from the command line yet")

    def evaluate(self, model_path: Path, data: Path, out: Path, case_ids=None,
                 overrides: InferenceOverrides = InferenceOverrides(), save_predictions: bool = False,
                 progress=print) -> dict:
        """Score a model; returns {"text": what to print, "files": [paths written]}."""
        raise NotSupported(f"the {self.name} family has no evaluation yet")

    def predict(self, request: PredictRequest, progress=print) -> Prediction:
        """Run one prediction; returns what was written and found."""
        raise NotSupported(f"the {self.name} family has no prediction yet")

    def list_inputs(self, folder: Path) -> list[tuple[str, tuple[Path, ...], str]]:
        """The cases in a folder, as (name, input paths, result file name), for `predict --input DIR`.

        Any registered input format of the family's kind lists them (`kerasbrain.data.io`).
        """
        self.require("predict_folder", folder)
        from kerasbrain.data.io import list_cases

        return [(name, inputs, fmt.output_name(name)) for name, inputs, fmt in list_cases(folder, self.input_kind)]

    def predict_many(self, requests, progress=print):
        """Predict several cases with one model, loaded once; yields (request, Prediction or the error).

        A case that fails is reported and skipped, so one unreadable file does not lose the others.
        """
        from kerasbrain.inference.model_io import reuse_loaded_models

        with reuse_loaded_models():
            for request in requests:
                try:
                    yield request, self.predict(request, progress=progress)
                except (ValueError, OSError) as exc:  # DataError, a bad image, a full disk: this case only
                    yield request, exc

    def explain(self, model_path: Path, image: Path, out: Path, method: str = "gradcam", layer: str | None = None,
                target: str | None = None, samples: int | None = None, loaded=None) -> list:
        """Draw an explanation of one prediction to `out`; returns lines to print and files written.
        `samples`: model evaluations of the sampling methods (SHAP, LIME); None: their default.
        `loaded`: `load_with_size(model_path, ...)`'s answer, to explain many images with one load."""
        raise NotSupported(f"the {self.name} family has no explanations yet")

    def export(self, model_path: Path, name: str, root: Path, version: int | None, warmup: bool) -> Path:
        """Write `root/name/version` as a SavedModel with the family's serving signature."""
        raise NotSupported(f"the {self.name} family has no serving signature yet")

    def load_whole_image_model(self, model_path, overrides: InferenceOverrides):
        """Load a model that predicts whole images: of the inference flags only --precision applies."""
        from kerasbrain.inference.model_io import load_model
        from kerasbrain.runtime import precision_policy

        unused = [g for g in overrides.given() if g != "precision"]
        if unused:
            raise ValueError(f"--{unused[0].replace('_', '-')} applies to volumetric models; "
                             f"{model_path} is a {self.name} model")
        with precision_policy(overrides.precision or "auto"):
            return load_model(model_path)

    def __repr__(self):
        return f"<model family {self.name!r}>"
