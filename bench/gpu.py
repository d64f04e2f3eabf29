"""kerasbrain (Keras 3 on JAX) against MONAI (PyTorch) on one GPU, same batch, patch and volume.

    python bench/gpu.py [--small] [--steps 10] [--only keras|monai] [--networks NAME,...] [--json OUT]

Rows: training patches/s at batch 2 x 4 x 128^3 (fp32 and bf16: Keras `mixed_bfloat16`, torch
autocast) for kerasbrain's default U-Net (pixel-shuffle upsampling; one row with the old
transposed convolutions), kerasbrain's U-Net widened past BasicUNet's forward FLOPs (712 vs 609
GFLOP), and MONAI's BasicUNet; then
one whole 4 x 240 x 240 x 155 volume, window 128^3, overlap 0.5 (18 windows), 4 windows per
batch, Gaussian blending, host array in and host array out (kerasbrain's device sliding window
against `monai.inferers.sliding_window_inference`), plain and with mirror test-time augmentation
(8 flips: kerasbrain's `mirror`; MONAI's inferer over the same flips, averaged; in bf16 MONAI's volumes
also with `torch.compile` and channels-last 3-D, as a MONAI expert would serve). GFLOP per window
(forward, XLA's and torch's own counts) say how much work each network does; a bf16 row for
nnU-Net's ResEnc-M (32 base filters) goes beside them. `--networks` picks kerasbrain's rows (default,
transposed, wider, resenc: all by default; `default` alone has the whole volume with mirror TTA, issue
31's 0.3 s goal). The JSON file is rewritten after every row, so a call cut off at its time limit keeps
what it measured. `--small` shrinks everything to run on a CPU.
Run it where JAX sees the GPU and `KERAS_BACKEND=jax`; torch and MONAI are optional.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from common import RowLog, comma_choices, optional_rows, timed  # noqa: E402

ROWS = RowLog()  # rewritten to --json after every row


def row(system, network, what, precision, seconds, per_call, unit, gflop=None, note=""):
    med = statistics.median(seconds)
    entry = {"system": system, "network": network, "what": what, "precision": precision, "median_s": med,
             "rate": per_call / med, "unit": unit, "gflop_per_window": gflop, "calls": len(seconds), "note": note}
    ROWS.append(entry)
    flop = f" {gflop:.0f} GFLOP/window" if gflop else ""
    print(f"{system:10s} {network:28s} {what:8s} {precision:5s} median {med * 1e3:8.1f} ms  "
          f"{per_call / med:7.2f} {unit}{flop} {note}", flush=True)


# ---- kerasbrain (Keras 3, JAX) ------------------------------------------------------------------

NETWORKS = {  # --networks' names: (row name, constructor arguments, precisions)
    "default": ("default", {}, ("fp32", "bf16")),
    "transposed": ("default, transposed conv", {"upsample": "transpose"}, ("bf16",)),
    "wider": ("wider (28..224)", {"base_filters": 28, "max_filters": 224}, ("fp32", "bf16")),
    # nnU-Net's ResEnc-M as its authors ship it (32 base filters), issue 29's second network
    "resenc": ("ResEnc-M (32..320)", {"architecture": "resenc", "base_filters": 32}, ("bf16",)),
}


def keras_rows(args, patch, batch, volume_shape, window):
    import jax
    import keras

    from kerasbrain.inference.device_window import DeviceSlidingWindow
    from kerasbrain.intensity import head_statistics
    from kerasbrain.losses import DiceCELoss
    from kerasbrain.models.resenc_unet import ResEncUNet
    from kerasbrain.models.unet import UNet
    from kerasbrain.runtime import precision_policy

    print(f"keras {keras.__version__} backend={keras.backend.backend()} jax {jax.__version__} "
          f"devices={jax.devices()}", flush=True)
    rng = np.random.default_rng(0)
    shape = (batch,) + (patch,) * 3
    x = jax.device_put(rng.normal(size=shape + (4,)).astype("float32"))
    y = jax.device_put((rng.uniform(size=shape + (3,)) > 0.9).astype("float32"))
    networks = [(name, kwargs, precisions) for key, (name, kwargs, precisions) in NETWORKS.items()
                if key in args.networks]
    for name, kwargs, precisions in networks:
        for precision in precisions:
            kwargs = dict(kwargs)
            network = ResEncUNet if kwargs.pop("architecture", "unet") == "resenc" else UNet
            with precision_policy(precision):
                model = network(**kwargs)
            gflop = forward_gflop(model, window)
            model.compile(optimizer=keras.optimizers.AdamW(3e-4), loss=DiceCELoss(), jit_compile=True)
            steps = max(2, args.steps // 3) if "transpose" in kwargs.get("upsample", "") else args.steps
            seconds = timed(lambda: model.train_on_batch(x, y), steps, warmup=2)
            row("kerasbrain", name, "train", precision, seconds, batch, "patches/s", gflop,
                f"params={model.count_params():,}")
            if "transpose" not in kwargs.get("upsample", ""):
                volume = rng.normal(300, 80, size=volume_shape + (4,)).astype("float32")
                mean, std = head_statistics(volume)
                for mirror in (False, True) if name == "default" else (False,):
                    sw = DeviceSlidingWindow(model, (window,) * 3, 0.5, 4, mirror)
                    seconds = timed(lambda: sw(volume, mean, std), args.volume_repeats, warmup=2)
                    row("kerasbrain", name, "volume, mirror TTA" if mirror else "volume", precision, seconds, 1,
                        "volumes/s", gflop, "device blending, host in/out" + (", 8 flips" if mirror else ""))
            keras.backend.clear_session()


def forward_gflop(model, window):
    """Forward GFLOP for one 4 x window^3 input, counted on the lowered (pre-compilation) XLA graph.

    The compiled graph's count misses convolutions that the GPU compiler hands to cuDNN.
    """
    import jax

    def fwd(tv, ntv, x):
        return model.stateless_call(tv, ntv, x, training=False)[0]

    x = jax.ShapeDtypeStruct((1, window, window, window, 4), "float32")
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    cost = jax.jit(fwd).lower(tv, ntv, x).cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return cost["flops"] / 1e9


# ---- MONAI (PyTorch) ----------------------------------------------------------------------------

def monai_rows(args, patch, batch, volume_shape, window):
    import monai
    import torch
    from monai.losses import DiceCELoss
    from monai.networks.nets import BasicUNet
    from torch.utils.flop_counter import FlopCounterMode

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark = True
    print(f"torch {torch.__version__} monai {monai.__version__} device={device}", flush=True)
    rng = np.random.default_rng(0)
    shape = (batch, 4) + (patch,) * 3
    x = torch.as_tensor(rng.normal(size=shape).astype("float32"), device=device)
    y = torch.as_tensor((rng.uniform(size=(batch, 3) + (patch,) * 3) > 0.9).astype("float32"), device=device)
    for precision in ("fp32", "bf16"):
        net = BasicUNet(spatial_dims=3, in_channels=4, out_channels=3).to(device)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(torch.zeros((1, 4) + (window,) * 3, device=device))
        gflop = counter.get_total_flops() / 1e9
        opt = torch.optim.AdamW(net.parameters(), 3e-4)
        loss_fn = DiceCELoss(sigmoid=True)
        autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16")

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            if device == "cuda":
                torch.cuda.synchronize()

        row("monai", "BasicUNet", "train", precision, timed(step, args.steps, warmup=2), batch, "patches/s", gflop,
            f"params={sum(p.numel() for p in net.parameters()):,}")
        net.eval()
        volume = rng.normal(300, 80, size=(1, 4) + volume_shape).astype("float32")
        # eager as before; in bf16 also as a MONAI expert would serve it: torch.compile, channels-last 3-D
        predictors = [("BasicUNet", net)]
        if precision == "bf16":
            fast = torch.compile(net.to(memory_format=torch.channels_last_3d))
            channels_last = torch.channels_last_3d
            predictors.append(("BasicUNet, compiled", lambda t: fast(t.contiguous(memory_format=channels_last))))
        for name, predict in predictors:
            monai_volume_rows(args, name, predict, volume, window, precision, autocast, device, gflop)


def monai_volume_rows(args, name, predict, volume, window, precision, autocast, device, gflop):
    """MONAI's sliding-window inference of one whole volume with `predict`, plain and over the 8 flips."""
    import torch
    from monai.inferers import sliding_window_inference

    from kerasbrain.inference.sliding_window import flips

    def infer():
        with torch.no_grad(), autocast:
            out = sliding_window_inference(torch.as_tensor(volume, device=device), (window,) * 3, 4,
                                           lambda t: torch.sigmoid(predict(t)), overlap=0.5, mode="gaussian")
        return out.float().cpu().numpy()

    row("monai", name, "volume", precision, timed(infer, args.volume_repeats, warmup=2), 1, "volumes/s", gflop,
        "gaussian, host in/out")

    def infer_mirrored():  # the same 8 flips as kerasbrain's mirror TTA, averaged on the GPU
        mirror_flips = flips(3, True)
        image = torch.as_tensor(volume, device=device)
        total = 0
        with torch.no_grad(), autocast:
            for axes in mirror_flips:
                dims = [2 + a for a in axes]
                out = sliding_window_inference(torch.flip(image, dims) if dims else image, (window,) * 3, 4,
                                               lambda t: torch.sigmoid(predict(t)), overlap=0.5, mode="gaussian")
                total = total + (torch.flip(out, dims) if dims else out).float()
        return (total / len(mirror_flips)).cpu().numpy()

    row("monai", name, "volume, mirror TTA", precision, timed(infer_mirrored, args.volume_repeats, warmup=1), 1,
        "volumes/s", gflop, "gaussian, host in/out, 8 flips")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="Tiny sizes, for checking the script on a CPU.")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--volume-repeats", type=int, default=5)
    parser.add_argument("--only", choices=["keras", "monai"])
    parser.add_argument("--networks", default=",".join(NETWORKS),
                        help=f"kerasbrain's networks, comma-separated (from {', '.join(NETWORKS)}).")
    parser.add_argument("--json", help="Also write the rows to this JSON file.")
    args = parser.parse_args()
    args.networks = comma_choices(parser, "--networks", args.networks, NETWORKS)
    ROWS.path = args.json
    if args.small:
        patch, batch, volume_shape, window = 32, 2, (60, 56, 40), 32
        args.steps, args.volume_repeats = min(args.steps, 2), min(args.volume_repeats, 2)
    else:
        patch, batch, volume_shape, window = 128, 2, (240, 240, 155), 128
    if args.only != "monai":
        keras_rows(args, patch, batch, volume_shape, window)
    if args.only != "keras":
        optional_rows("monai", monai_rows, args, patch, batch, volume_shape, window)


if __name__ == "__main__":
    main()
