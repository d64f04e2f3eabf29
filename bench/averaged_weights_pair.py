"""Within one run trained with `[training] ema_momentum`: the trained weights at the end against their
moving average, on the same held-out cases, so the comparison is free of the run-to-run spread.

    python bench/averaged_weights_pair.py --out KEPT_RACE_DIR [--json FILE]

KEPT_RACE_DIR is what `bench/race3d_folds.py --arms single --set training.ema_momentum=M --out DIR`
kept. Three models of its `single` run are scored, each with post-processing chosen for it on the
run's own cases, as `train` chooses it: `best.keras` (the checkpoint chosen on the average's
validation loss: what a user gets), `last.keras` (the average at the end) and the trained weights at
the end (the model of the run's backup, the optimizer's weights without the average).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import keras  # noqa: E402

from common import print_result  # noqa: E402
from race3d import region_lines  # noqa: E402
from race3d_folds import score  # noqa: E402

from kerasbrain.families import get_family  # noqa: E402
from kerasbrain.training.config import config_from_dict  # noqa: E402
from kerasbrain.training.train_unet3d import build_optimizer  # noqa: E402


def save_trained_weights_model(run: Path, config, out: Path) -> None:
    """The run's network with the weights its backup holds (the trained ones, not the average)."""
    backup = run / "backup"
    named = json.loads((backup / "training_metadata.json").read_text())["weights"]
    model = keras.saving.load_model(run / "last.keras", compile=False)
    model.compile(optimizer=build_optimizer(config.training, 1))
    model.optimizer.build(model.trainable_variables)
    model.load_weights(backup / named)
    model.save(out)


def variant_run(run: Path, name: str, model: Path) -> Path:
    """A copy of the run's records with `model` as its best.keras, so post-processing is chosen for it."""
    folder = run.parent / f"single_{name}"
    folder.mkdir(exist_ok=True)
    for item in run.iterdir():
        if item.is_file() and item.suffix == ".json" and not item.name.startswith("best"):
            shutil.copy2(item, folder / item.name)
    shutil.copy2(model, folder / "best.keras")
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="A kept bench/race3d_folds.py folder.")
    parser.add_argument("--json", help="Append each result as one JSON line to this file.")
    parser.add_argument("--variants", default="best,last,trained",
                        help="Which to score: best (what race3d_folds already scored), last, trained.")
    args = parser.parse_args()
    root = Path(args.out)
    run, train_dir, test_dir = root / "single", root / "data" / "train", root / "data" / "heldout"
    family = get_family("unet3d")
    config = config_from_dict(json.loads((run / "config.json").read_text()))
    momentum = config.training.ema_momentum
    if not momentum:
        raise SystemExit(f"{run}: trained without [training] ema_momentum; nothing to compare")
    wanted = args.variants.split(",")
    choices = {"best": ("average, best", run / "best.keras"), "last": ("average, last", run / "last.keras"),
               "trained": ("trained, last", root / "trained_last.keras")}
    variants = dict(choices[key] for key in wanted)
    if "trained" in wanted:
        save_trained_weights_model(run, config, choices["trained"][1])
    facts = {"bench": "averaged_weights_pair", "backend": keras.backend.backend(), "race": str(root),
             "ema_momentum": momentum, "date": time.strftime("%Y-%m-%d")}
    for name, model in variants.items():
        folder = variant_run(run, name.replace(", ", "_"), model)
        family.choose_postprocessing(folder, train_dir, config)
        inference = json.loads((folder / "config.json").read_text())["inference"]
        post = {key: inference[key] for key in ("min_component_ml", "min_enhancing_ml")}
        summary, rows, per_case = score(family, folder / "best.keras", test_dir, root / f"heldout_{folder.name}", post)
        line = {**facts, "weights": name, **post, **region_lines(summary, rows)}
        print_result(line, f"{name}: held-out Dice WT/TC/ET {line['dice_WT']:.3f} / {line['dice_TC']:.3f} / "
                           f"{line['dice_ET']:.3f}, lesion-wise {line['lesion_dice_WT']:.3f} / "
                           f"{line['lesion_dice_TC']:.3f} / {line['lesion_dice_ET']:.3f}", args.json)


if __name__ == "__main__":
    main()
