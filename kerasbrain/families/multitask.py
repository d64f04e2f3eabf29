"""The multi-task family: ResNet encoder, 4-class head and U-Net mask decoder (seeds 000 / 001).

Config: `training/config_multitask.MultiTaskConfig`; data: BRISC 2025 or Kaggle class folders
(`data/tumour_images.py`); trainer: `training/train_multitask.py`; evaluation:
`evaluation/classification.py`. The `classifier` family (`families/classifier.py`) is the same
code with the class head only, seed 000's single-task baseline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasbrain.data.pictures import PICTURE_SUFFIXES
from kerasbrain.families.base import (ENCODER_WEIGHTS, InferenceOverrides, ModelFamily, NotSupported, Prediction,
                                      PredictRequest, with_encoder_weights)
from kerasbrain.runs import run_dir_of



class MultiTaskFamily(ModelFamily):
    serving_kind = "image_classification"
    input_kind = "image"
    config_class = "kerasbrain.training.config_multitask:MultiTaskConfig"
    train_options = (ENCODER_WEIGHTS,)

    def __init__(self, name: str, tasks: tuple[str, ...], description: str):
        self.name, self.tasks, self.description = name, tasks, description
        explained = {"explain"} if "class" in tasks else set()  # explanations are of a class
        self.capabilities = frozenset({"predict", "predict_folder", "predict_server", "evaluate", "export",
                                       "image_analysis"} | explained)

    def why_not(self, capability: str) -> str:
        if capability == "explain" and "class" not in self.tasks:
            return "it has no class head; explanations are of a class"
        return ""

    def owns_model(self, model) -> bool:
        return tuple(getattr(model, "tasks", ())) == self.tasks

    def train(self, data, out, config, time_budget=None, progress=print, encoder_weights=None):
        from kerasbrain.training.train_multitask import train_multitask

        config = with_encoder_weights(config, encoder_weights)
        return train_multitask(data, out, config, self.name, self.tasks, progress=progress, time_budget=time_budget)

    def load_with_size(self, model_path, overrides: InferenceOverrides):
        """The model and the image size its run trained at (224 for a bare model)."""
        model = self.load_whole_image_model(model_path, overrides)
        config = self.run_config(run_dir_of(model_path))
        return model, (config.data.image_size if config else 224)

    def evaluate(self, model_path, data, out, case_ids=None, overrides=InferenceOverrides(),
                 save_predictions=False, progress=print) -> dict:
        from kerasbrain.data.tumour_images import discover_tumour_images
        from kerasbrain.evaluation.classification import evaluate_images

        if save_predictions:
            raise ValueError("--save-predictions is for volumetric models; use `kerasbrain predict` on an image")
        model, size = self.load_with_size(model_path, overrides)
        wanted = None if case_ids is None else set(case_ids)
        samples = [s for s in discover_tumour_images(data) if wanted is None or s.id in wanted]
        if not samples:
            raise ValueError(f"{data}: none of the run's images were found")
        result = evaluate_images(model, samples, size, out, progress)
        return {"text": result["table"], "files": result["files"], "failed": result["failed"]}

    def predict(self, request: PredictRequest, progress=print) -> Prediction:
        """`--out` is the figure; a mask head also writes `<out>_mask.png` (0/255) at the image's own size."""
        import cv2

        from kerasbrain.data.classes import CLASS_TITLES
        from kerasbrain.data.pictures import read_rgb
        from kerasbrain.data.tumour_images import prepare_image
        from kerasbrain.evaluation.classification import predict_images
        from kerasbrain.evaluation.figures import save_class_figure
        from kerasbrain.files import write_image

        if len(request.inputs) != 1 or request.inputs[0].suffix.lower() not in PICTURE_SUFFIXES:
            raise ValueError(f"a {self.name} model takes one JPEG/PNG/TIFF image")
        if request.out.suffix.lower() != ".png":
            raise ValueError(f"--out must be a .png picture. Received: {request.out}")
        rgb = read_rgb(request.inputs[0])
        if request.server:
            predicted = self._predict_remote(request, rgb)
            size = predicted.pop("size")
        else:
            model, size = self.load_with_size(request.model, request.overrides)
            predicted = {k: v[0] for k, v in predict_images(model, prepare_image(rgb, size)[None]).items()}
        image = prepare_image(rgb, size)
        result = Prediction([], image=rgb)
        if "class" in predicted:
            probabilities = predicted["class"]
            result.class_probabilities = {CLASS_TITLES[c]: float(p) for c, p in enumerate(probabilities)}
            order = probabilities.argsort()[::-1]
            result.lines.append("class: " + ", ".join(f"{CLASS_TITLES[c]} {probabilities[c]:.3f}" for c in order))
        result.figure = save_class_figure(request.out, image, predicted.get("class"), predicted.get("mask"))
        if "mask" in predicted:
            h, w = rgb.shape[:2]
            full = cv2.resize(np.asarray(predicted["mask"], "float32").reshape(size, size), (w, h),
                              interpolation=cv2.INTER_LINEAR)
            result.labels = (full >= 0.5).astype(np.uint8)
            result.mask = write_image(request.out.with_name(request.out.stem + "_mask.png"), result.labels * 255)
            result.lines.append(f"tumour pixels: {int(result.labels.sum())} of {result.labels.size}")
        result.files = [p for p in (result.mask, result.figure) if p is not None]
        return result

    def explain(self, model_path, image, out, method="gradcam", layer=None, target=None, samples=None,
                loaded=None) -> list:
        from kerasbrain.data.classes import CLASS_TITLES, CLASSES, class_index
        from kerasbrain.data.pictures import read_rgb
        from kerasbrain.data.tumour_images import prepare_image
        from kerasbrain.evaluation.explain import explain_classes, integrated_gradients, occlusion_sensitivity
        from kerasbrain.evaluation.figures import save_explanation_figure

        if "class" not in self.tasks:
            raise NotSupported(f"the {self.name} family has no class head to explain; explanations are of a class")
        if layer and not method.startswith("gradcam"):
            raise ValueError(f"--layer applies to Grad-CAM; {method} explains image regions")
        if samples is not None and method not in ("shap", "lime"):
            raise ValueError(f"--samples applies to shap and lime; {method} does not sample")

        if Path(out).suffix.lower() != ".png":
            raise ValueError(f"--out must be a .png picture. Received: {out}")
        index = None
        if target is not None:
            index = class_index(target)
            if index is None:
                raise ValueError(f"--class must be one of {', '.join(CLASSES)}. Received: {target!r}")
        model, size = loaded or self.load_with_size(model_path, InferenceOverrides())
        rgb = prepare_image(read_rgb(image), size)
        x = rgb[None].astype("float32") / 255.0
        outputs = model.predict_on_batch(x)
        probabilities, mask = outputs["class"], outputs.get("mask")
        explained = int(probabilities[0].argmax()) if index is None else index
        if method in ("shap", "lime"):
            from kerasbrain.evaluation.explain_agnostic import DEFAULT_SAMPLES, lime_map, shap_map

            def predict(batch):  # 0-255 images, any batch size -> class probabilities
                return np.concatenate([model.predict_on_batch(np.asarray(batch[i:i + 32], "float32") / 255.0)["class"]
                                       for i in range(0, len(batch), 32)])

            heat = (shap_map if method == "shap" else lime_map)(predict, rgb, explained, samples or DEFAULT_SAMPLES)
        elif method == "occlusion":
            heat = occlusion_sensitivity(model, x, explained)[0]
        elif method == "integrated-gradients":
            heat = integrated_gradients(model, x, explained)[0]
        else:
            heat = explain_classes(model, x, explained, method, layer)[0][0]
        figure = save_explanation_figure(out, rgb, heat, None if mask is None else mask[0, ..., 0],
                                         probabilities[0], explained, method)
        return [f"class: {CLASS_TITLES[int(probabilities[0].argmax())]} {probabilities[0].max():.3f}; "
                f"{method} explains {CLASS_TITLES[explained]}", figure]

    def _predict_remote(self, request: PredictRequest, rgb) -> dict:
        """Class and mask probabilities from TF Serving, at the served version's exported image size."""
        from kerasbrain.data.tumour_images import prepare_image
        from kerasbrain.export.layout import read_manifest
        from kerasbrain.serving.client import ServingClientError, connect

        if request.overrides.given():
            raise ValueError(f"--{request.overrides.given()[0].replace('_', '-')} applies to local prediction only")
        client = connect(request.server, request.model, request.model_version, request.model_label)
        try:
            versions = client.available_versions()
            manifest = read_manifest(Path(request.saved_models) / request.model / str(versions[-1])) if versions else {}
            size = int(manifest.get("image_size", 224))
            outputs = client.predict({"image": prepare_image(rgb, size)[None].astype("float32")})
        except ServingClientError as exc:
            raise ValueError(f"{request.server}: model {request.model!r} is not available ({exc.message})") from exc
        predicted = {"size": size}
        if "class_probabilities" in outputs:
            predicted["class"] = outputs["class_probabilities"][0]
        if "mask_probabilities" in outputs:
            predicted["mask"] = outputs["mask_probabilities"][0]
        return predicted

    def export(self, model_path, name, root, version, warmup) -> Path:
        from kerasbrain.export.saved_model import export_version
        from kerasbrain.inference.model_io import load_model

        model = load_model(model_path)
        config = self.run_config(run_dir_of(model_path))
        size = config.data.image_size if config else 224
        extra = {"family": self.name, "image_size": size, "tasks": list(self.tasks),
                 "calibration_temperature": getattr(model, "calibration_temperature", None)}
        return export_version(model, name, root, version, (size, size) if warmup else None, kind=self.serving_kind,
                              manifest_extra=extra, run_dir=run_dir_of(model_path))


FAMILY = MultiTaskFamily("multitask", ("class", "mask"),
                         "Multi-task ResNet: 4-class head + U-Net mask decoder (seeds 000/001), BRISC 2025 "
                         "or class folders.")
