"""How close are a classifier's pseudo-masks to the drawn masks? Every seed map and refinement, one table.

    python bench/pseudomasks.py --model RUN --data DATA [--subset train] [--max-images 0] [--json FILE]

For the tumour images of the run's `--subset` (the images the chain would train on) that have drawn
masks (BRISC 2025, phantoms), pseudo-masks are made with each setting below and scored against the
drawn masks (pooled and mean Dice), one JSON line per setting. The settings: Grad-CAM of P5 (seed
000's level) and P4 (the default), Grad-CAM++ of P4, LayerCAM of P4 and of P3+P4+P5 averaged, each
fused map against "no tumour", the healthy atlas (no classifier map; fitted on the training split's
"no tumour" images), and each with GrabCut refinement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from common import add_json_option, record  # noqa: E402

SETTINGS = [
    {"method": "gradcam", "layer": "P5"},
    {"method": "gradcam", "layer": "P4"},
    {"method": "gradcam++", "layer": "P4"},
    {"method": "layercam", "layer": "P4"},
    {"method": "layercam", "layer": "P3+P4+P5"},
    {"method": "layercam", "layer": "P3+P4+P5", "contrast": True},
    {"method": "gradcam", "layer": "P3+P4+P5", "contrast": True},
    {"method": "atlas"},  # no classifier map: the departure from the healthy atlas of "no tumour" images
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="A classifier or multitask run folder. Without one: the atlas rows "
                                         "only, on the dataset's own --subset split (train or test), at --size.")
    parser.add_argument("--size", type=int, default=128, help="Image size without --model.")
    parser.add_argument("--data", required=True)
    parser.add_argument("--subset", default="train", choices=["train", "validation", "test"])
    parser.add_argument("--max-images", type=int, default=0, help="0: every tumour image with a drawn mask.")
    add_json_option(parser)
    args = parser.parse_args()

    from kerasbrain.data.classes import NO_TUMOR
    from kerasbrain.data.tumour_images import discover_tumour_images, load_samples
    from kerasbrain.evaluation.healthy_atlas import plane_of
    from kerasbrain.evaluation.pseudomask import PseudoMaskSettings, dice, fit_atlas, pseudo_masks
    from kerasbrain.families import family_of_run
    from kerasbrain.families.base import InferenceOverrides
    from kerasbrain.runs import run_dir_of, subset_ids

    everything = discover_tumour_images(args.data)
    settings_list = SETTINGS
    if args.model:
        model, size = family_of_run(args.model).load_with_size(args.model, InferenceOverrides())
        ids = set(subset_ids(run_dir_of(args.model), args.subset))
    else:
        model, size, settings_list = None, args.size, [s for s in SETTINGS if s["method"] == "atlas"]
        ids = {s.id for s in everything if s.subset == args.subset}
    samples = [s for s in everything if s.id in ids and s.mask is not None and s.label not in (None, NO_TUMOR)]
    atlas = fit_atlas(everything, size)
    samples = samples[:args.max_images] if args.max_images else samples
    images, labels, truth, _ = load_samples(samples, size)
    truth = truth[..., 0] > 0
    print(f"{len(samples)} tumour images of the {args.subset} split with drawn masks, at {size} x {size}")
    for base in settings_list:
        for refine in ("none", "grabcut"):
            settings = PseudoMaskSettings(**base, refine=refine)
            start = time.monotonic()
            masks, _, _ = pseudo_masks(model, images, labels, settings, atlas=atlas,
                                       planes=[plane_of(s.image.name) for s in samples])
            seconds = time.monotonic() - start
            pooled = dice(truth, masks)
            mean = float(np.mean([dice(t, m) for t, m in zip(truth, masks)]))
            line = record(args.json, "pseudomasks", model=str(args.model or "none"), subset=args.subset,
                          images=len(samples),
                          size=size, **base, refine=refine, pooled_dice=round(pooled, 4), mean_dice=round(mean, 4),
                          seconds_per_image=round(seconds / max(len(samples), 1), 4))
            print(json.dumps(line))
            print(f"{base['method']} {base.get('layer', '')}{' vs no tumour' if base.get('contrast') else ''}"
                  f"{' + GrabCut' if refine == 'grabcut' else ''}: pooled Dice {pooled:.3f}, mean {mean:.3f}")


if __name__ == "__main__":
    main()
