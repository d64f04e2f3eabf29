"""An ensemble file (`kerasbrain crossval`'s ensemble.json) used like a model: weighted mean of its members.

    {"kind": "kerasbrain-ensemble", "family": "unet3d",
     "members": [{"model": "/runs/cv_a/fold_0/best.keras", "weight": 0.1, "configuration": "cv_a"}, ...],
     "postprocessing": {"min_component_ml": 0.5, "min_enhancing_ml": 0}}

Each batch of windows goes through every member and the weighted mean of their probabilities is
what the sliding window blends; blending is linear, so this equals averaging each member's
blended volume, in one pass over the windows. The `config.json` beside the file carries the
inference settings and the chosen post-processing, so predict and evaluate read it as a run's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ENSEMBLE_KIND = "kerasbrain-ensemble"


def is_ensemble(path) -> bool:
    return str(path).endswith(".json")


def read_ensemble(path) -> dict:
    """The ensemble file, checked: members exist and weights are positive and sum to 1."""
    path = Path(path)
    try:
        ensemble = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable ensemble file ({exc})") from exc
    if ensemble.get("kind") != ENSEMBLE_KIND or not ensemble.get("members"):
        raise ValueError(f"{path}: not a kerasbrain ensemble file (kind {ENSEMBLE_KIND!r} with members)")
    weights = [float(m["weight"]) for m in ensemble["members"]]
    if min(weights) <= 0 or abs(sum(weights) - 1) > 1e-6:
        raise ValueError(f"{path}: member weights must be positive and sum to 1; they sum to {sum(weights):g}")
    for member in ensemble["members"]:
        if not Path(member["model"]).exists():
            raise ValueError(f"{path}: member {member['model']} does not exist")
    return ensemble


class EnsemblePredictor:
    """`(raw windows, mean, std) -> probabilities`: the members' weighted mean (each a window predictor)."""

    def __init__(self, predictors, weights):
        self.predictors, self.weights = list(predictors), [float(w) for w in weights]

    def __call__(self, batch, mean, std):
        total = None
        for predict, weight in zip(self.predictors, self.weights):
            out = np.asarray(predict(batch, mean, std), dtype=np.float32) * weight
            total = out if total is None else total + out
        return total
