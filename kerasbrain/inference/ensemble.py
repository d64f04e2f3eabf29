"""An ensemble file (`kerasbrain crossval`'s ensemble.json) used like a model: weighted mean of its members.

    {"kind": "kerasbrain-ensemble", "family": "unet3d",
     "members": [{"model": "/runs/cv_a/fold_0/best.keras", "weight": 0.1, "configuration": "cv_a"}, ...],
     "postprocessing": {"min_component_ml": 0.5, "min_enhancing_ml": 0}}

The members are loaded into one `EnsembleNet` (`models/ensemble.py`): each batch of windows goes
through every member on the device and only the weighted mean comes back, which the sliding window
blends (blending is linear, so this equals averaging each member's blended volume). The
`config.json` beside the file carries the inference settings and the chosen post-processing, so
predict, evaluate and export read it as a run's.
"""

from __future__ import annotations

import json
from pathlib import Path

ENSEMBLE_KIND = "kerasbrain-ensemble"


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


def load_ensemble_model(path):
    """The ensemble file's members (each loaded as `load_model` does) as one `EnsembleNet`."""
    from kerasbrain.inference.model_io import load_model
    from kerasbrain.models.ensemble import EnsembleNet

    ensemble = read_ensemble(path)
    members = [load_model(m["model"]) for m in ensemble["members"]]
    try:
        return EnsembleNet(members, [m["weight"] for m in ensemble["members"]])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
