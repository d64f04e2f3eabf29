"""A segmenter's operating point chosen on validation images, folded into its mask logits.

A network trained with a Dice loss on noisy masks (pseudo-masks whose edges wander) spreads its
probability beyond the object: on the phantoms the label-efficient chain's segmenter marked 2.4x
the drawn area at 0.5 (README, "Pseudo-masks that follow the tumour"). Its threshold is therefore
chosen like any other setting, on the validation images (never trained on) against the reference
masks they have: a user's drawn masks where there are any, else the pseudo-masks of those images,
which are noisy but held out. The threshold t with the highest pooled Dice over `THRESHOLDS` is
folded into the `mask_logits` layer's bias (b - logit(t)), so that the saved model's 0.5 is t and
predict, evaluate, export, serving and the app take it as it is (the region temperatures of
`region_calibration.py` are folded the same way).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
RECORD = "mask_threshold.json"  # in the run folder: the choice, its curve and what it was chosen against
UNFOLDED = "best_before_threshold.keras"  # the training's own best model, kept beside the folded one


def choose_threshold(probabilities: np.ndarray, reference: np.ndarray, thresholds=THRESHOLDS) -> tuple[float, list]:
    """(the threshold of highest pooled Dice against `reference`, the Dice at every threshold); ties go
    to the threshold nearest 0.5."""
    from kerasbrain.evaluation.pseudomask import dice

    reference = np.asarray(reference).astype(bool)
    curve = [dice(reference, np.asarray(probabilities) >= t) for t in thresholds]
    best = max(range(len(thresholds)), key=lambda i: (round(curve[i], 6), -abs(thresholds[i] - 0.5)))
    return float(thresholds[best]), curve


def fold_threshold(model, threshold: float, layer: str = "mask_logits") -> None:
    """Shift the sigmoid head's logits by -logit(threshold) in place: p' >= 0.5 exactly where p >= threshold."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1). Received: {threshold}")
    head = model.get_layer(layer)
    if head.bias is None:
        raise ValueError(f"layer {layer!r} has no bias to fold a threshold into")
    head.bias.assign(np.asarray(head.bias.numpy()) - math.log(threshold / (1 - threshold)))


def set_operating_point(run_dir, images: np.ndarray, reference: np.ndarray, against: str, progress=print) -> dict:
    """Choose the threshold of `run_dir`'s best model on validation `images` (uint8 RGB) against their
    `reference` masks (described by `against`), fold it into best.keras (the unfolded model kept as
    `UNFOLDED`) and record it in `RECORD`. Done once per model: a run whose best.keras is the one the
    record folded is left as it is; one that trained on and saved a new best is chosen again."""
    import json
    import os

    from kerasbrain.evaluation.classification import predict_images
    from kerasbrain.files import write_json
    from kerasbrain.inference.model_io import load_model
    from kerasbrain.runs import BEST_MODEL, model_digest

    run_dir = Path(run_dir)
    if (run_dir / RECORD).exists():
        record = json.loads((run_dir / RECORD).read_text())
        if record.get("model_sha256") == model_digest(run_dir / BEST_MODEL):
            return record
        (run_dir / UNFOLDED).unlink(missing_ok=True)  # training went on: its new best.keras is unfolded
        (run_dir / RECORD).unlink()
    # an earlier attempt that stopped between the two renames below left the training's model here
    model = load_model(run_dir / (UNFOLDED if (run_dir / UNFOLDED).exists() else BEST_MODEL))
    probabilities = predict_images(model, images)["mask"]
    threshold, curve = choose_threshold(probabilities, reference)
    record = {"threshold": threshold, "against": against, "images": int(len(images)),
              "curve": {"threshold": list(THRESHOLDS), "dice": [round(d, 4) for d in curve]}}
    progress(f"mask threshold {threshold:g} (pooled Dice {max(curve):.4f} against the {len(images)} validation "
             f"images' {against} masks; {curve[THRESHOLDS.index(0.5)]:.4f} at 0.5), folded into {BEST_MODEL}")
    if threshold != 0.5:
        fold_threshold(model, threshold)
        folding = run_dir / "best.folding.keras"
        model.save(folding)
        if not (run_dir / UNFOLDED).exists():
            os.replace(run_dir / BEST_MODEL, run_dir / UNFOLDED)
        os.replace(folding, run_dir / BEST_MODEL)
    record["model_sha256"] = model_digest(run_dir / BEST_MODEL)
    write_json(run_dir / RECORD, record)
    return record

