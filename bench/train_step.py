"""Training speed of the default 3-D U-Net: seconds per step at batch 1 on 4 x 128^3 patches.

    python bench/train_step.py [--compile-mode auto|graph|xla] [--steps 5] [--patch 128] [--batch 1]
                               [--architecture unet|resenc] [--precision fp32|bf16|auto] [--ema-momentum M]

Prints the backend, the compile mode that was used, the parameter count, the forward FLOPs of one
patch (TensorFlow) and the median step time. `--architecture resenc` measures nnU-Net's
residual-encoder U-Net (ResEnc-M blocks) at the same width as the default U-Net. `--precision`
(default fp32, the earlier rows' precision; `auto` resolves as training does) builds the network
under that dtype policy. `--ema-momentum` (0: off) has the optimizer keep the moving average of the
weights, as `[training] ema_momentum` does: what the average costs per step.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from common import add_json_option, add_precision_option, forward_flops, peak_rss_gb, record, report, timed  # noqa: E402

from kerasbrain.losses import DiceCELoss  # noqa: E402
from kerasbrain.models.resenc_unet import ResEncUNet  # noqa: E402
from kerasbrain.models.unet import UNet  # noqa: E402
from kerasbrain.runtime import precision_policy, resolve_jit_compile  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compile-mode", default="auto", choices=["auto", "graph", "xla"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--architecture", choices=["unet", "resenc"], default="unet")
    parser.add_argument("--ema-momentum", type=float, default=0.0)
    add_precision_option(parser)
    add_json_option(parser)
    args = parser.parse_args()
    jit = resolve_jit_compile(args.compile_mode)
    with precision_policy(args.precision, training=True):
        model = UNet() if args.architecture == "unet" else ResEncUNet(base_filters=16)
    flops = forward_flops(model, (1,) + (args.patch,) * 3 + (4,))
    averaging = {"use_ema": True, "ema_momentum": args.ema_momentum} if args.ema_momentum else {}
    model.compile(optimizer=keras.optimizers.AdamW(3e-4, **averaging), loss=DiceCELoss(), jit_compile=jit)
    rng = np.random.default_rng(0)
    shape = (args.batch,) + (args.patch,) * 3
    x = rng.normal(size=shape + (4,)).astype("float32")
    y = (rng.uniform(size=shape + (3,)) > 0.9).astype("float32")
    print(f"backend={keras.backend.backend()} jit_compile={jit} architecture={args.architecture} "
          f"params={model.count_params():,} forward GFLOPs per patch={flops / 1e9 if flops else float('nan'):.1f} "
          f"input={x.shape} policy={model.dtype_policy.name} ema_momentum={args.ema_momentum:g}")
    times = timed(lambda: model.train_on_batch(x, y), args.steps, warmup=1)
    report("train step", times, args.batch, "patches")
    print(f"peak memory: {peak_rss_gb():.2f} GB")
    import statistics

    record(args.json, "train_step", architecture=args.architecture, forward_flops_per_patch=flops,
           jit_compile=bool(jit), params=model.count_params(), batch=args.batch,
           patch=args.patch, precision=model.dtype_policy.name, ema_momentum=args.ema_momentum, seconds_per_step=statistics.median(times), steps=len(times), peak_gb=peak_rss_gb())


if __name__ == "__main__":
    main()
