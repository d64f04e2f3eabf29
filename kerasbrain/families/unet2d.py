"""The slice family: 2-D U-Nets on LGG kaggle_3m slices, from scratch (seed 002) or with an encoder (seed 004).

Config: `kerasbrain.training.config2d.SliceConfig`; trainer: `training/train_unet2d.py`;
evaluation: `evaluation/slices.py`; prediction: `inference/predict_slices.py`; serving signature:
`export/signatures.slice_segmentation_endpoint`. A run trained on median + CLAHE enhanced slices
(`[data] enhance`) enhances at evaluation and prediction too, and its export says so.
"""

from __future__ import annotations

from pathlib import Path

from kerasbrain.data.pictures import PICTURE_SUFFIXES
from kerasbrain.families.base import (ENCODER_WEIGHTS, InferenceOverrides, ModelFamily, Prediction, PredictRequest,
                                      with_encoder_weights)
from kerasbrain.runs import run_dir_of

#: The LGG slice size, used for warm-up requests.
SLICE_SIZE = (256, 256)


class SliceFamily(ModelFamily):
    name = "unet2d"
    description = "2-D slice U-Net (scratch or ResNet/EfficientNet encoder) on LGG kaggle_3m, patient-level splits."
    serving_kind = "slice_segmentation"
    input_kind = "image"
    capabilities = frozenset({"predict", "predict_folder", "evaluate", "export"})  # served slices: not yet
    config_class = "kerasbrain.training.config2d:SliceConfig"
    budget_config = "cpu_budget_unet2d"  # README: "Ten CPU-minutes, held-out patients"
    train_options = (ENCODER_WEIGHTS,)

    def owns_legacy_config(self, raw: dict) -> bool:
        return "stages" in raw

    def owns_model(self, model) -> bool:
        from kerasbrain.models.encoder_unet import EncoderUNet
        from kerasbrain.models.unet import UNet

        return isinstance(model, (UNet, EncoderUNet)) and model.spatial_dims == 2

    def train(self, data, out, config, time_budget=None, progress=print, encoder_weights=None):
        from kerasbrain.training.train_unet2d import train_unet2d

        config = with_encoder_weights(config, encoder_weights)
        return train_unet2d(data, out, config, progress=progress, time_budget=time_budget)

    def enhance(self, model_path) -> bool:
        """Whether the run trained on median + CLAHE enhanced slices (so inference must enhance too)."""
        config = self.run_config(run_dir_of(model_path))
        return bool(config and config.data.enhance)

    def evaluate(self, model_path, data, out, case_ids=None, overrides=InferenceOverrides(),
                 save_predictions=False, progress=print) -> dict:
        from kerasbrain.data.lgg import discover_lgg
        from kerasbrain.evaluation.slices import evaluate_slices

        if save_predictions:
            raise ValueError("--save-predictions is for volumetric models; use `kerasbrain predict` on a slice")
        model = self.load_whole_image_model(model_path, overrides)
        patients = None if case_ids is None else set(case_ids)
        slices = [s for s in discover_lgg(data) if patients is None or s.patient in patients]
        result = evaluate_slices(model, slices, out, self.enhance(model_path), progress=progress)
        return {"text": result["table"] + "\n\n" + result["report"],
                "files": [Path(out) / "slices.csv", Path(out) / "summary.json"], "failed": result["failed"]}

    def predict(self, request: PredictRequest, progress=print) -> Prediction:
        from kerasbrain.data.lgg import read_mask
        from kerasbrain.evaluation.figures import save_slice_figure
        from kerasbrain.inference.predict_slices import predict_slice_image
        from kerasbrain.metrics.case_confidence import expected_dice

        if request.server:
            raise ValueError("--server serves volumetric models; send slices to a served 2-D model with "
                             "kerasbrain.serving.client (signature inputs: image, 0-255 pixels)")
        if len(request.inputs) != 1 or request.inputs[0].suffix.lower() not in PICTURE_SUFFIXES:
            raise ValueError(f"a 2-D slice model takes one TIFF/PNG/JPEG slice. Received: "
                             f"{', '.join(str(p) for p in request.inputs)}")
        if request.out.suffix.lower() != ".png":
            raise ValueError(f"--out must be a .png mask for a slice input. Received: {request.out}")
        from kerasbrain.data.pictures import read_rgb

        image = read_rgb(request.inputs[0])
        truth = read_mask(request.truth, image.shape[:2]) if request.truth else None  # checked before writing
        model = self.load_whole_image_model(request.model, request.overrides)
        prob, mask_path = predict_slice_image(model, image, request.out, self.enhance(request.model))
        figure = request.overlay or request.out.with_name(request.out.stem + "_figure.png")
        figure = save_slice_figure(figure, image, prob, truth)
        mask = prob >= 0.5
        estimate = round(expected_dice(prob, mask), 4)
        return Prediction([mask_path, figure], mask=mask_path, figure=figure, image=image, labels=mask.astype("uint8"),
                          lines=[f"tumour pixels: {int(mask.sum())} of {mask.size}",
                                 f"estimated Dice {estimate:.2f} (from its own probabilities; not a measurement)"],
                          report={"confidence": {"expected_dice": {"tumour": estimate}},
                                  "tumour_pixels": int(mask.sum())})

    def export(self, model_path, name, root, version, warmup) -> Path:
        from kerasbrain.export.saved_model import export_version
        from kerasbrain.inference.model_io import load_model

        model = load_model(model_path)
        enhance = self.enhance(model_path)
        return export_version(model, name, root, version, SLICE_SIZE if warmup else None, requires_clahe=enhance,
                              manifest_extra={"family": self.name}, run_dir=run_dir_of(model_path))


FAMILY = SliceFamily()
