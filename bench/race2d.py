"""A 2-D model trained for a fixed number of wall-clock minutes, scored on held-out phantom patients.

    python bench/race2d.py [--minutes 10] [--model scratch|resnet18|resnet34|resnet50|efficientnet_b0]
                           [--norm auto|batch|instance|group] [--recalibration-batches 16]
                           [--no-stem-skip] [--image-skip-filters 32] [--output-prior P] [--patients 12]
                           [--slices 24] [--batch 16] [--lr 1e-3] [--out DIR] [--monai PYTHON]
    python bench/race2d.py --config seed002_unet2d|seed004_resnet50|FILE [--model M] [--minutes 0]

Writes LGG-layout phantoms (`kerasbrain synth lgg`), holds out the last 3 patients by name, trains
with `train_unet2d` (Dice + BCE, flips, constant learning rate, one stage; 1 of 5 patient folds of
the rest for validation) under `--minutes` of time budget, then scores `best.keras` on the held-out
patients exactly as `kerasbrain evaluate` does and prints global (all-pixel) Dice, IoU, precision
and recall with the training and validation Dice of the last epoch. What it compares: whether a
model predicts at inference as well as it trains after a short run.

`--monai PYTHON` races MONAI's 2-D BasicUNet (instance norm) instead: `bench/monai_reference.py`
under PYTHON (an environment with torch and MONAI beside the project; that file says how to make
one) trains it on the same patients of the same split with the same batch size, loss, flips,
learning rate and minutes; its masks are scored here exactly as kerasbrain's.

`--config` runs a whole training config instead (a shipped one by name, e.g. seed 002's or seed
004's full schedule, or a TOML file): its model, batch, loss, stages and augmentation on this
race's split, `--model` replacing its encoder; `--minutes 0` (its default then) trains every epoch.
With `--monai`, a one-stage scratch config gives MONAI its batch, learning rate, epochs and rotations
(`monai_reference.py 2d --epochs N --rotation D`, on a GPU if torch sees one). MONAI's masks
written elsewhere (a GPU machine) are scored here when `<out>/monai/` holds them with their
`reference.json` (the JSON line monai_reference.py printed last) and `<out>/data` the same phantoms.
"""

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from common import print_result, run_monai_reference  # noqa: E402

from kerasbrain.data.lgg import discover_lgg  # noqa: E402
from kerasbrain.data.phantom import write_lgg  # noqa: E402
from kerasbrain.data.slices import SliceAugment  # noqa: E402
from kerasbrain.evaluation.slices import evaluate_slices  # noqa: E402
from kerasbrain.inference.model_io import load_model  # noqa: E402
from kerasbrain.training.config2d import (SliceConfig, SliceData, SliceModel, SliceTraining, Stage,  # noqa: E402
                                          load_slice_config)
from kerasbrain.data.slices import load_slices  # noqa: E402
from kerasbrain.metrics.binary import dataset_scores  # noqa: E402
from kerasbrain.training.train_unet2d import split_slices, train_unet2d  # noqa: E402


def phantoms(root: Path, patients: int, slices: int, held_out: int = 3):
    """(training folder, held-out folder): the last `held_out` patients by name go to the second.

    Written once: a second race with the same `--out` (or its `data` linked there) reuses them.
    """
    test = root / "heldout" / "kaggle_3m"
    if test.is_dir():
        return root / "all" / "kaggle_3m", test
    data = write_lgg(root / "all", patients, slices, seed=0)
    names = sorted(p.name for p in data.iterdir())
    test.mkdir(parents=True)
    for name in names[-held_out:]:
        shutil.move(str(data / name), str(test / name))
    return data, test


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, help="Training budget (default 10; with --config 0 = no limit).")
    parser.add_argument("--model", help="scratch, resnet18/34/50 or efficientnet_b0 (default: scratch, or the "
                                            "config's).")
    parser.add_argument("--config", help="Train this slice config (shipped name or TOML file) on the race's split.")
    parser.add_argument("--encoder-weights", help="With --config: override its encoder_weights ('' random; seed "
                        "004's is 'imagenet', which needs a network or `kerasbrain encoders fetch`).")
    parser.add_argument("--norm", default="auto")
    parser.add_argument("--recalibration-batches", type=int, default=16)
    parser.add_argument("--patients", type=int, default=12)
    parser.add_argument("--slices", type=int, default=24)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--no-stem-skip", action="store_true",
                        help="Encoder U-Nets without the stride-2 skip from the encoder's stem (before 2026-11-27).")
    parser.add_argument("--image-skip-filters", type=int, default=SliceModel().image_skip_filters,
                        help="Encoder U-Nets' full-resolution skip block width (0: the raw image, before 2026-11-27).")
    parser.add_argument("--output-prior", type=float, default=SliceModel().output_prior,
                        help="Foreground probability the output starts at (0: a zero bias).")
    parser.add_argument("--out", help="Keep the run and data here (default: a temporary folder).")
    parser.add_argument("--json", help="Append the result as one JSON line to this file.")
    parser.add_argument("--monai", metavar="PYTHON", help="Race MONAI's BasicUNet with this interpreter instead.")
    args = parser.parse_args()

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="race2d_"))
    train_dir, test_dir = phantoms(root / "data", args.patients, args.slices)
    config, args.minutes = race_config(args)
    args.model = "scratch" if config.model.encoder == "none" else config.model.encoder
    if args.monai:
        return race_monai(args, config, root, train_dir, test_dir)
    start = time.monotonic()
    result = train_unet2d(train_dir, root / "run", config, verbose=2, progress=print,
                          time_budget=args.minutes or None)
    minutes = (time.monotonic() - start) / 60
    history = list(csv.DictReader(open(root / "run" / "history.csv")))
    scores = evaluate_slices(load_model(result["best"]), discover_lgg(test_dir), root / "eval", progress=print)
    pixels = scores["summary"]["pixels"]
    m, t = config.model, config.training
    line = {"backend": keras.backend.backend(), "model": args.model, "config": args.config, "norm": m.norm,
            "stem_skip": m.stem_skip and args.model != "scratch",
            "image_skip_filters": 0 if args.model == "scratch" else m.image_skip_filters,
            "output_prior": m.output_prior,
            "lr": [s.learning_rate for s in config.stages] if args.config else args.lr, "batch": t.batch_size,
            "recalibration_batches": t.bn_recalibration_batches, "minutes": round(minutes, 2),
            "epochs": len(history), "train_dice_last": float(history[-1]["dice"]),
            "val_dice_by_epoch": [round(float(h["val_dice"]), 3) for h in history],
            **{f"heldout_{k}": round(v, 4) for k, v in pixels.items()}}
    print_result(line, f"held-out global Dice {pixels['dice']:.3f}, IoU {pixels['iou']:.3f}, "
                       f"precision {pixels['precision']:.3f}, recall {pixels['recall']:.3f} after {minutes:.1f} min, "
                       f"{len(history)} epochs ({args.model}, {args.config or 'race config'}, norm {m.norm})",
                 args.json)


def race_config(args) -> tuple[SliceConfig, float]:
    """(config, minutes): the race's one-stage config for 10 minutes, or `--config`'s schedule on the
    race's split (the held-out patients apart) with no time limit; `--minutes` overrides either."""
    split = SliceData(n_splits=5, fold=0, test_fold=-1)
    if args.config:
        config = load_slice_config(args.config)
        model = config.model if args.model is None else replace(
            config.model, encoder="none" if args.model == "scratch" else args.model)
        if args.encoder_weights is not None:
            model = replace(model, encoder_weights=args.encoder_weights)
        return replace(config, data=replace(split, enhance=config.data.enhance), model=model), args.minutes or 0.0
    model = args.model or "scratch"
    return SliceConfig(
        data=split,
        model=replace(SliceModel(), encoder="none" if model == "scratch" else model, norm=args.norm,
                      stem_skip=not args.no_stem_skip, image_skip_filters=args.image_skip_filters,
                      output_prior=args.output_prior),
        training=replace(SliceTraining(), batch_size=args.batch, loss="dice_bce",
                         bn_recalibration_batches=args.recalibration_batches),
        stages=(Stage(epochs=1000, learning_rate=args.lr),),
        augmentation=SliceAugment(flip=True, rotation_degrees=0.0, elastic=False),
    ), 10.0 if args.minutes is None else args.minutes


def race_monai(args, config, root, train_dir, test_dir):
    """The reference row: MONAI trains on this race's split and writes masks; they are scored here."""
    import cv2

    schedule = {"minutes": args.minutes, "batch": args.batch, "lr": args.lr}
    if args.config:  # the config's schedule: its batch, learning rate, epochs (unless --minutes) and rotations
        if len(config.stages) != 1 or config.model.encoder != "none":
            sys.exit("--monai with --config needs a one-stage config of a scratch U-Net (MONAI has no encoders)")
        schedule.update(batch=config.training.batch_size, lr=config.stages[0].learning_rate,
                        rotation=config.augmentation.rotation_degrees)
        if not args.minutes:
            schedule["epochs"] = config.stages[0].epochs
    split_slices(train_dir, config, root / "monai")
    monai = run_monai_reference(args.monai, "2d", root / "monai", data=train_dir, heldout=test_dir,
                                split=root / "monai" / "split.json", **schedule)
    slices = discover_lgg(test_dir)
    _, masks = load_slices(slices)
    predictions = root / "monai" / "predictions"
    preds = np.stack([cv2.imread(str(predictions / f"{s.image.stem}_mask.png"), cv2.IMREAD_GRAYSCALE) > 127
                      for s in slices])
    pixels = dataset_scores(preds, masks[..., 0] > 0.5)["pixels"]
    line = {"model": "monai BasicUNet", "config": args.config, "norm": "instance", "lr": schedule["lr"],
            "batch": schedule["batch"], "minutes": monai["minutes"], "steps": monai["steps"], "reference": monai,
            **{f"heldout_{k}": round(v, 4) for k, v in pixels.items()}}
    print_result(line, f"MONAI BasicUNet: held-out global Dice {pixels['dice']:.3f}, IoU {pixels['iou']:.3f}, "
                       f"precision {pixels['precision']:.3f}, recall {pixels['recall']:.3f} after "
                       f"{monai['minutes']:.1f} min, {monai['steps']} steps", args.json)


if __name__ == "__main__":
    main()
