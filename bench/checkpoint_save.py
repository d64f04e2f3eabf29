"""What `last.keras` costs in an epoch where `best.keras` was saved: `model.save` again, or a file copy.

    python bench/checkpoint_save.py [--repeats 3] [--json FILE]

For the shipped seed configs' networks (seed 003's 3-D U-Net, seed 004's ResNet50 U-Net and seed
001's multi-task ResNet; random weights, so nothing is downloaded) with their optimizer's slots
built, as a checkpoint during training holds them: the median time of `model.save` to a `.keras`
file and of copying that file (`training/callbacks.AtomicCheckpoint(copy_of=)`), and the file's size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
from common import add_json_option, record, timed  # noqa: E402


def networks():
    """(name, network) for each seed config, random weights."""
    from kerasbrain.families import get_family
    from kerasbrain.training.train_multitask import build_multitask_model
    from kerasbrain.training.train_unet2d import build_slice_model
    from kerasbrain.training.train_unet3d import build_model

    unet3d = get_family("unet3d").load_config("seed003_unet3d")
    yield "seed003 3-D U-Net", build_model(unet3d)
    slices = get_family("unet2d").load_config("seed004_resnet50")
    yield "seed004 ResNet50 U-Net", build_slice_model(replace(slices, model=replace(slices.model, encoder_weights="")))
    multitask = get_family("multitask").load_config("seed001_multitask")
    yield "seed001 multi-task ResNet", build_multitask_model(
        replace(multitask, model=replace(multitask.model, encoder_weights="")), ("class", "mask"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    add_json_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        best, last = Path(folder) / "best.keras", Path(folder) / "last.keras"
        for name, model in networks():
            model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss="mse")
            model.optimizer.build(model.trainable_variables)  # the slots a checkpoint during training holds
            saves = timed(lambda: model.save(best), args.repeats)
            copies = timed(lambda: shutil.copyfile(best, last), args.repeats)
            line = record(args.json, "checkpoint_save", network=name, parameters=model.count_params(),
                          file_mb=round(best.stat().st_size / 1e6, 1), repeats=args.repeats,
                          save_s=round(statistics.median(saves), 3), copy_s=round(statistics.median(copies), 4))
            print(f"{name}: {line['parameters']:,} parameters, {line['file_mb']} MB; model.save "
                  f"{line['save_s']:.3f} s, copy {line['copy_s']:.4f} s (medians of {args.repeats})")


if __name__ == "__main__":
    main()
