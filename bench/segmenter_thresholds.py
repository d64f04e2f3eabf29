"""How does a label-efficient chain's segmenter score at each threshold, against drawn and pseudo-masks?

    python bench/segmenter_thresholds.py --chain RUN --data DATA [--json FILE]

For every multi-task network of a finished `kerasbrain experiment label-efficient` run (round 0's
`multitask/` and each `multitask_round<r>/`), on the tumour images of the validation and test
splits that have drawn masks: pooled Dice at each threshold of `mask_threshold.THRESHOLDS` against
the drawn masks and against the chain's first pseudo-masks, and the predicted area over the drawn
area at 0.5. A network whose threshold the chain folded in is read before the fold
(`best_before_threshold.keras`), so the thresholds are the network's own. One JSON line per
network and split. It shows whether the threshold chosen against the validation pseudo-masks (no
drawing needed) is near the one the drawn masks would choose, and what it is worth on the test images.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from common import add_json_option, record  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chain", required=True, help="A finished label-efficient run folder.")
    parser.add_argument("--data", required=True, help="Its dataset, with drawn masks.")
    add_json_option(parser)
    args = parser.parse_args()

    from kerasbrain.data.classes import NO_TUMOR
    from kerasbrain.data.tumour_images import discover_tumour_images, load_samples
    from kerasbrain.evaluation.classification import predict_images
    from kerasbrain.evaluation.mask_threshold import THRESHOLDS, UNFOLDED
    from kerasbrain.evaluation.pseudomask import dice
    from kerasbrain.experiments.self_training import dataset_masks
    from kerasbrain.inference.model_io import load_model
    from kerasbrain.runs import BEST_MODEL

    chain = Path(args.chain)
    split = json.loads((chain / "classifier" / "split.json").read_text())
    size = json.loads((chain / "multitask" / "config.json").read_text())["data"]["image_size"]
    samples = discover_tumour_images(args.data)
    subsets = {}
    for subset in ("validation", "test"):
        ids = set(split[subset])
        chosen = sorted((s for s in samples if s.id in ids and s.mask is not None and s.label not in (None, NO_TUMOR)),
                        key=lambda s: s.id)
        images, _, masks, _ = load_samples(chosen, size)
        subsets[subset] = (images, masks[..., 0] > 0, dataset_masks(chain / "pseudomasks", size, {s.id for s in chosen}))
    runs = [chain / "multitask"] + sorted(chain.glob("multitask_round*"))
    for run in runs:
        model = load_model(run / (UNFOLDED if (run / UNFOLDED).exists() else BEST_MODEL))
        for subset, (images, drawn, pseudo) in subsets.items():
            probabilities = predict_images(model, images)["mask"]
            against_drawn = [round(dice(drawn, probabilities >= t), 4) for t in THRESHOLDS]
            against_pseudo = [round(dice(pseudo, probabilities >= t), 4) for t in THRESHOLDS]
            line = record(args.json, "segmenter_thresholds", chain=str(chain), network=run.name, subset=subset,
                          images=len(images), thresholds=list(THRESHOLDS), dice_vs_drawn=against_drawn,
                          dice_vs_pseudo=against_pseudo,
                          area_over_drawn_at_half=round(float((probabilities >= 0.5).sum() / max(drawn.sum(), 1)), 3))
            print(json.dumps(line))
            best_pseudo = THRESHOLDS[max(range(len(THRESHOLDS)), key=lambda i: against_pseudo[i])]
            print(f"{run.name} {subset}: Dice vs drawn {against_drawn[THRESHOLDS.index(0.5)]:.3f} at 0.5, "
                  f"{max(against_drawn):.3f} at best; the pseudo-masks' choice {best_pseudo:g} gives "
                  f"{against_drawn[THRESHOLDS.index(best_pseudo)]:.3f}")


if __name__ == "__main__":
    main()
