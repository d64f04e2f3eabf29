"""Classification families: training and inference images per second at 224 x 224.

    python bench/multitask.py [--batch 16] [--steps 3] [--encoders resnet18 resnet50] [--tasks both class]
                              [--precision fp32|bf16|auto]

`both` is the multi-task network (class head + mask decoder, seeds 000 / 001), `class` the
single-task classifier. Training steps use the real losses with per-task sample weights (every
image weighted for both tasks: the costlier case). Random weights: speed does not depend on them.
"""

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from common import add_json_option, add_precision_option, peak_rss_gb, record, report, timed  # noqa: E402

from kerasbrain.models.multitask import MultiTaskNet  # noqa: E402
from kerasbrain.runtime import precision_policy, resolve_jit_compile  # noqa: E402
from kerasbrain.training.config_multitask import MultiTaskConfig  # noqa: E402
from kerasbrain.training.train_multitask import multitask_losses  # noqa: E402

TASKS = {"both": ("class", "mask"), "class": ("class",)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--encoders", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--tasks", nargs="+", default=["both", "class"], choices=sorted(TASKS))
    parser.add_argument("--compile-mode", default="auto", choices=["auto", "graph", "xla"])
    add_precision_option(parser)
    add_json_option(parser)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.batch, args.size, args.size, 3)).astype("float32")
    labels = rng.integers(0, 4, args.batch)
    mask = (rng.uniform(size=(args.batch, args.size, args.size, 1)) > 0.95).astype("float32")
    jit = resolve_jit_compile(args.compile_mode)
    print(f"backend={keras.backend.backend()} jit_compile={jit} batch={args.batch} {args.size}x{args.size}x3")
    for encoder in args.encoders:
        for kind in args.tasks:
            tasks = TASKS[kind]
            with precision_policy(args.precision, training=True):
                model = MultiTaskNet(encoder, tasks=tasks)
            losses, weights, metrics = multitask_losses(MultiTaskConfig(), tasks)
            model.compile(optimizer=keras.optimizers.AdamW(3e-4), loss=losses, loss_weights=weights, jit_compile=jit)
            y = {"class": labels, "mask": mask}
            y = {k: y[k] for k in tasks}
            sw = {k: np.ones(args.batch, "float32") for k in tasks}
            print(f"{encoder} {'+'.join(tasks)}: {model.count_params():,} parameters")
            train = timed(lambda: model.train_on_batch(x, y, sample_weight=sw), args.steps)
            infer = timed(lambda: model.predict_on_batch(x), args.steps)
            report("  train step", train, args.batch, "images")
            report("  inference", infer, args.batch, "images")
            record(args.json, "multitask", encoder=encoder, tasks="+".join(tasks), params=model.count_params(),
                   batch=args.batch, size=args.size, jit_compile=bool(jit), precision=model.dtype_policy.name,
                   train_images_per_second=args.batch / statistics.median(train),
                   inference_images_per_second=args.batch / statistics.median(infer), steps=args.steps)
    print(f"peak memory: {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
