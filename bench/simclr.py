"""SimCLR pretraining speed: images per second of a training step (two views each) and of the view pipeline.

    python bench/simclr.py [--batch 32] [--size 128 224] [--steps 3] [--encoder resnet18]

The model step is `SimCLRNet.train_on_batch` on 2 x batch views (NT-Xent, AdamW); the pipeline
figure is how fast `data/contrastive.two_view_dataset` makes augmented view pairs on the CPU,
which bounds training speed on a fast accelerator. Random weights and images: speed does not
depend on them.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from common import peak_rss_gb, report, timed  # noqa: E402

from kerasbrain.data.contrastive import two_view_dataset  # noqa: E402
from kerasbrain.models.simclr import SimCLRNet  # noqa: E402
from kerasbrain.runtime import resolve_jit_compile  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32, help="images per step (2x views)")
    parser.add_argument("--size", type=int, nargs="+", default=[128, 224])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--compile-mode", default="auto", choices=["auto", "graph", "xla"])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    jit = resolve_jit_compile(args.compile_mode)
    print(f"backend={keras.backend.backend()} jit_compile={jit} batch={args.batch} images ({2 * args.batch} views)")
    for size in args.size:
        images = (rng.uniform(size=(4 * args.batch, size, size, 3)) * 255).astype("uint8")
        dataset, _ = two_view_dataset(images, args.batch)
        iterator = iter(dataset)
        next(iterator)
        start = time.perf_counter()
        for _ in range(args.steps):
            batch = next(iterator)
        pipeline = (time.perf_counter() - start) / args.steps
        print(f"{size}x{size}: view pipeline {args.batch / pipeline:.1f} images/s")
        model = SimCLRNet(args.encoder)
        model.compile(optimizer=keras.optimizers.AdamW(1e-3), jit_compile=jit)
        x = np.asarray(batch)
        print(f"  {args.encoder}: {model.count_params():,} parameters")
        report("  train step", timed(lambda: model.train_on_batch(x), args.steps), args.batch, "images")
    print(f"peak memory: {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
