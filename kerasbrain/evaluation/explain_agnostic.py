"""SHAP and LIME explanations of a class (seed 001), through the optional `shap` and `lime` packages.

Both treat the model as a black box `images (N, H, W, 3) in 0-255 -> class probabilities (N, C)`,
so they work on any backend. LIME fits a sparse linear model on superpixels switched on and off
(quickshift segments, hidden pixels set to 0); SHAP's partition explainer attributes the class
probability to image regions hidden by blurring. Each returns a heat map (H, W) in [0, 1] of the
positive evidence for the class. Install with `pip install -e ".[explain]"`.
"""

from __future__ import annotations

import numpy as np

#: Model evaluations per explanation (LIME's perturbed images, SHAP's partition evaluations): the
#: libraries' usual order of magnitude; fewer is faster and noisier (`kerasbrain explain --samples`).
DEFAULT_SAMPLES = 300
#: Below this the maps are noise (SHAP's partition splits the image only a few times, LIME fits its
#: superpixel weights to a handful of samples), so the CLI refuses it.
MIN_SAMPLES = 10


def _positive_normalised(values: np.ndarray) -> np.ndarray:
    heat = np.maximum(values, 0.0)
    peak = heat.max()
    return (heat / peak if peak > 0 else heat).astype(np.float32)


def _require(package: str):
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise ValueError(f"the {package} explanation needs the {package!r} package: "
                         "pip install -e \".[explain]\"") from exc


def lime_map(predict, image: np.ndarray, class_index: int, num_samples: int = DEFAULT_SAMPLES,
             seed: int = 0) -> np.ndarray:
    """LIME heat map of `class_index` for one uint8 RGB image."""
    lime_image = _require("lime.lime_image")
    explainer = lime_image.LimeImageExplainer(random_state=seed)
    explanation = explainer.explain_instance(image.astype(np.float64), lambda batch: predict(batch),
                                             labels=(class_index,), top_labels=None, hide_color=0,
                                             num_samples=num_samples, random_seed=seed)
    weights = dict(explanation.local_exp[class_index])
    segments = explanation.segments
    values = np.zeros(segments.shape, np.float64)
    for segment, weight in weights.items():
        values[segments == segment] = weight
    return _positive_normalised(values)


def shap_map(predict, image: np.ndarray, class_index: int, max_evals: int = DEFAULT_SAMPLES) -> np.ndarray:
    """SHAP (partition explainer, blur masker) heat map of `class_index` for one uint8 RGB image."""
    shap = _require("shap")
    masker = shap.maskers.Image("blur(16,16)", image.shape)
    explainer = shap.Explainer(lambda batch: predict(batch), masker)
    values = explainer(image[None].astype(np.float64), max_evals=max_evals, batch_size=50,
                       outputs=[class_index], silent=True).values
    return _positive_normalised(np.asarray(values)[0, ..., 0].sum(axis=-1))
