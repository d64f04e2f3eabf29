"""2-D slice models: training and inference images per second at 256 x 256.

    python bench/slices.py [--batch 8] [--steps 3] [--models scratch resnet50 efficientnet_b0] [--precision fp32|bf16|auto]

Scratch is seed 002's U-Net (32 base filters, depth 4); resnet50 / efficientnet_b0 are seed 004's
encoder U-Nets. Random weights: speed does not depend on them.
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

from kerasbrain.losses import DiceCELoss  # noqa: E402
from kerasbrain.models.encoder_unet import EncoderUNet  # noqa: E402
from kerasbrain.models.unet import UNet  # noqa: E402
from kerasbrain.runtime import precision_policy, resolve_jit_compile  # noqa: E402


def build(name):
    if name == "scratch":
        return UNet(spatial_dims=2, in_channels=3, out_channels=1, base_filters=32, depth=4, norm="batch",
                    activation="relu")
    return EncoderUNet(name)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["scratch", "resnet50", "efficientnet_b0"])
    parser.add_argument("--compile-mode", default="auto", choices=["auto", "graph", "xla"])
    add_precision_option(parser)
    add_json_option(parser)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.batch, 256, 256, 3)).astype("float32")
    y = (rng.uniform(size=(args.batch, 256, 256, 1)) > 0.95).astype("float32")
    jit = resolve_jit_compile(args.compile_mode)
    print(f"backend={keras.backend.backend()} jit_compile={jit} batch={args.batch} 256x256x3")
    for name in args.models:
        with precision_policy(args.precision, training=True):
            model = build(name)
        model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss=DiceCELoss(batch_dice=True), jit_compile=jit)
        print(f"{name}: {model.count_params():,} parameters")
        train = timed(lambda: model.train_on_batch(x, y), args.steps)
        infer = timed(lambda: model.predict_on_batch(x), args.steps)
        report("  train step", train, args.batch, "images")
        report("  inference", infer, args.batch, "images")
        record(args.json, "slices", model=name, params=model.count_params(), batch=args.batch, size=256,
               jit_compile=bool(jit), precision=model.dtype_policy.name, train_images_per_second=args.batch / statistics.median(train),
               inference_images_per_second=args.batch / statistics.median(infer), steps=args.steps)
    print(f"peak memory: {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
