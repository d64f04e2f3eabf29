"""End-to-end 3-D training on one GPU: cached cases in, augmented patches through the step (issue 31).

    KERAS_BACKEND=jax python bench/gpu_training.py [--small] [--seconds 40] [--batches 1,2,4]
                                                  [--workers N] [--rows KIND,...] [--json OUT]

Not random tensors: `--cases` phantoms are written as MSD NIfTI and preprocessed into kerasbrain's
cache (`cached_preprocess`), which every row reads; patches of 128^3 (foreground 1 in 3) with
nnU-Net's augmentation (`AugmentConfig` plus blur, contrast, low resolution and bias field on).
Rows, at each batch size, bf16 on a GPU (fp32 on a CPU):

- `kerasbrain host aug`: the `PatchSampler` in `--workers` spawned processes, the step on the device;
- `kerasbrain device aug`: what `kerasbrain train unet3d` runs on a GPU machine without TensorFlow:
  Keras's PyDataset (`data/patch_batches.py`, `--workers` threads) only crops and draws, and
  `DeviceAugmentedTraining` resamples and transforms inside the compiled step (`[training]
  augment_on = "device"`);
- `monai compiled`: MONAI's fast-training recipe as its tutorial runs it: the cached volumes moved
  to the GPU once (`CacheDataset` after `EnsureTyped(device=...)`), meta tracking off, crops and the
  same augmentations on the GPU, `ThreadDataLoader`, `torch.compile`, channels-last 3-D, bf16
  autocast; `monai eager` without
  compile and channels-last, kept for continuity with bench/gpu.py.

`--rows` picks the kinds and their order (all four by default, issue 31's pair first: kerasbrain's
device rows, then MONAI compiled, so a call cut off at its time limit has measured the goal first);
the JSON file is rewritten after every row for the same reason.

Each row: patches/s over `--seconds` after a warm-up, the GPU's mean utilisation (nvidia-smi,
sampled), and host cores used (CPU seconds of this process and its workers / wall seconds).
`--small` shrinks cases, patches and time to check the script on a CPU. TensorFlow is not needed.
One file past 300 lines on purpose: its parts (measuring, the cached cases, each system's rows)
serve this benchmark alone, and a GPU session runs it as one prepared command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from common import FitBatches, RowLog, comma_choices, optional_rows  # noqa: E402

from kerasbrain.data.augment import AugmentConfig  # noqa: E402

ROWS = RowLog()  # rewritten to --json after every row
ROW_KINDS = ("keras-device", "monai-compiled", "keras-host", "monai-eager")
AUGMENT = AugmentConfig(blur_prob=0.2, contrast_prob=0.15, low_resolution_prob=0.25, bias_field_prob=0.3)


# ---- measuring ---------------------------------------------------------------------------------


def cpu_seconds_of_tree(pid: int | None = None) -> float:
    """User + system CPU seconds of a process and all its live descendants (Linux /proc)."""
    pid = pid or os.getpid()
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    tree, frontier = {pid}, [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier and p not in tree]
        tree.update(children)
        frontier = children
    return sum(times.get(p, 0.0) for p in tree)


class GpuUtilisation:
    """Mean `utilization.gpu` sampled by nvidia-smi every half second while in the `with` block."""

    def __enter__(self):
        self.samples, self._stop = [], threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.5):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout
                self.samples.append(float(out.split()[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                return

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def mean(self):
        return round(statistics.mean(self.samples), 1) if self.samples else None


def measure(name, batch, step, seconds, warmup_steps, note=""):
    """Run `step()` (one batch, returns once the device is done) for `seconds` after warm-up."""
    for _ in range(warmup_steps):
        step()
    steps, start, cpu = 0, time.perf_counter(), cpu_seconds_of_tree()
    with GpuUtilisation() as gpu:
        while time.perf_counter() - start < seconds:
            step()
            steps += 1
    wall = time.perf_counter() - start
    entry = {"system": name.split()[0], "row": name, "batch": batch, "patches_per_s": round(steps * batch / wall, 2),
             "steps": steps, "seconds": round(wall, 1), "gpu_util_percent": gpu.mean,
             "host_cores_used": round((cpu_seconds_of_tree() - cpu) / wall, 2), "note": note}
    ROWS.append(entry)
    print(json.dumps(entry), flush=True)


# ---- the data: kerasbrain's preprocessing cache --------------------------------------------------


def _write_case(args):
    from kerasbrain.data.phantom import write_dataset

    out, seed, shape = args
    return write_dataset(out, "msd", cases=1, shape=shape, seed=seed, difficulty="hard")


def cached_cases(root: Path, cases: int, shape, workers: int) -> list[Path]:
    """Write `cases` phantoms (in parallel) and preprocess them into kerasbrain's cache."""
    from kerasbrain.data.layouts import discover
    from kerasbrain.data.preprocess import cached_preprocess

    with ProcessPoolExecutor(max(1, min(workers, cases)), mp_context=get_context("spawn")) as pool:
        datasets = list(pool.map(_write_case, [(root / f"data{i}", 100 + i, shape) for i in range(cases)]))
    return [cached_preprocess(c, root / "cache") for d in datasets for c in discover(d).labelled()]


class Batches:
    """Batches of `sampler.sample` drawn by spawned worker processes, `prefetch` batches ahead (the host
    augmentation rows; the device rows read kerasbrain's own PyDataset)."""

    def __init__(self, sampler, batch, workers, prefetch=4):
        self.sampler, self.batch = sampler, batch
        self.pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
        self.pending, self.next_index = [], 0
        for _ in range(prefetch):
            self._submit()

    def _submit(self):
        start = self.next_index
        self.pending.append([self.pool.submit(self.sampler.sample, start + j) for j in range(self.batch)])
        self.next_index += self.batch

    def __next__(self):
        items = [f.result() for f in self.pending.pop(0)]
        self._submit()
        return np.stack([i[0] for i in items]), np.stack([i[1] for i in items])

    def close(self):
        self.pool.shutdown(cancel_futures=True)


# ---- kerasbrain ---------------------------------------------------------------------------------


def keras_rows(args, folders, patch, on_device):
    import keras

    from kerasbrain.data.patch_batches import PatchBatches
    from kerasbrain.data.pipeline import PatchSampler
    from kerasbrain.losses import DiceCELoss
    from kerasbrain.models.unet import UNet
    from kerasbrain.runtime import has_gpu, precision_policy
    from kerasbrain.training.device_augment import DeviceAugmentedTraining

    precision = "bf16" if has_gpu() else "fp32"
    print(f"keras {keras.__version__} backend={keras.backend.backend()} gpu={has_gpu()} {precision}", flush=True)
    for batch in args.batches:
        sampler = PatchSampler(folders, (patch,) * 3, 0.33, AUGMENT, seed=batch, augment_on_device=on_device)
        with precision_policy(precision):
            network = UNet(base_filters=args.base_filters)
        model = DeviceAugmentedTraining(network) if on_device else network
        model.compile(optimizer=keras.optimizers.AdamW(3e-4), loss=DiceCELoss(), jit_compile=True)
        batches = (FitBatches(PatchBatches(sampler, batch, workers=args.workers)) if on_device
                   else Batches(sampler, batch, args.workers))

        def step():
            x, y = next(batches)
            logs = model.train_on_batch(x, y, return_dict=True)
            float(logs["loss"])  # waits for the device

        feeder = "PyDataset threads" if on_device else "processes"
        try:
            measure(f"kerasbrain {'device' if on_device else 'host'} aug", batch, step, args.seconds,
                    args.warmup, f"{precision}, {args.workers} {feeder}, params={network.count_params():,}")
        finally:
            batches.close()
        keras.backend.clear_session()


# ---- MONAI --------------------------------------------------------------------------------------


def monai_dataset(folders, patch, device):
    """MONAI's fast-training data: the cached cases on `device` once, crops and augmentation there."""
    import torch
    from monai import transforms as T
    from monai.data import CacheDataset, set_track_meta

    keys = ("image", "label")
    items = [{"image": str(f / "image.npy"), "label": str(f / "labels.npy")} for f in folders]

    def load(d):  # kerasbrain's cache, (x, y, z, C) float32 and (x, y, z) labels, as channel-first arrays
        image = np.moveaxis(np.load(d["image"]), -1, 0)
        return {"image": image, "label": np.load(d["label"])[None].astype(np.float32)}

    def regions(labels):  # after the crop and the nearest-neighbour resampling: the three BraTS regions
        return torch.cat([labels > 0, (labels == 1) | (labels == 3), labels == 3]).float()

    size = (patch,) * 3
    rad = np.deg2rad(AUGMENT.rotate_degrees)
    transform = T.Compose([
        T.Lambda(load),
        T.EnsureTyped(keys=keys, device=device, track_meta=False),  # cached on the GPU once
        T.SpatialPadd(keys=keys, spatial_size=size),  # a brain's box narrower than a patch (the sampler pads too)
        T.RandCropByPosNegLabeld(keys=keys, label_key="label", spatial_size=size, pos=1, neg=2,
                                 num_samples=1),
        T.RandAffined(keys=keys, prob=AUGMENT.rotate_prob, rotate_range=(rad,) * 3,
                      scale_range=(0.15,) * 3, mode=("bilinear", "nearest"), padding_mode="zeros"),
        *[T.RandFlipd(keys=keys, prob=AUGMENT.flip_prob, spatial_axis=a) for a in range(3)],
        T.RandScaleIntensityd(keys="image", factors=AUGMENT.intensity_scale, prob=AUGMENT.intensity_prob),
        T.RandShiftIntensityd(keys="image", offsets=AUGMENT.intensity_shift, prob=AUGMENT.intensity_prob),
        T.RandAdjustContrastd(keys="image", gamma=AUGMENT.gamma_range, prob=AUGMENT.gamma_prob),
        T.RandGaussianNoised(keys="image", std=AUGMENT.noise_std, prob=AUGMENT.noise_prob),
        T.RandGaussianSmoothd(keys="image", sigma_x=AUGMENT.blur_sigma, sigma_y=AUGMENT.blur_sigma,
                              sigma_z=AUGMENT.blur_sigma, prob=AUGMENT.blur_prob),
        T.RandBiasFieldd(keys="image", prob=AUGMENT.bias_field_prob),
        T.RandSimulateLowResolutiond(keys="image", zoom_range=AUGMENT.low_resolution_zoom,
                                     prob=AUGMENT.low_resolution_prob),
        T.Lambdad(keys="label", func=regions),
    ])
    # the deterministic part (load, move to the GPU) is cached; everything from the crop on is random
    dataset = CacheDataset(items, transform=transform, cache_rate=1.0, num_workers=None, copy_cache=False)
    # as the tutorial: the random transforms give plain tensors, not MetaTensors (torch.compile fails on
    # a MetaTensor's detach, and tracking costs time on every patch)
    set_track_meta(False)
    return dataset


def monai_rows(args, folders, patch, compiled):
    import monai
    import torch
    from monai.data import ThreadDataLoader
    from monai.losses import DiceCELoss
    from monai.networks.nets import BasicUNet

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"torch {torch.__version__} monai {monai.__version__} device={device}", flush=True)
    torch.backends.cudnn.benchmark = True
    dataset = monai_dataset(folders, patch, device)
    for batch in args.batches:
        loader = ThreadDataLoader(dataset, batch_size=batch, shuffle=True, num_workers=0)
        net = BasicUNet(spatial_dims=3, in_channels=4, out_channels=3).to(device)
        fmt = torch.channels_last_3d if compiled else torch.contiguous_format
        net = net.to(memory_format=fmt)
        model = torch.compile(net) if compiled else net
        opt = torch.optim.AdamW(net.parameters(), 3e-4)
        loss_fn = DiceCELoss(sigmoid=True)
        use_bf16 = device == "cuda"
        stream = iter(())

        def step():
            nonlocal stream
            try:
                data = next(stream)
            except StopIteration:
                stream = iter(loader)
                data = next(stream)
            x = data["image"].to(device, memory_format=fmt)
            y = data["label"].to(device)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=use_bf16):
                loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            loss.item()  # waits for the device

        measure(f"monai {'compiled' if compiled else 'eager'}", batch, step, args.seconds, args.warmup,
                f"{'bf16' if use_bf16 else 'fp32'}, BasicUNet, GPU transforms, ThreadDataLoader")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="Small cases and patches, to check on a CPU.")
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=40.0, help="Timed seconds per row (after warm-up).")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed steps per row (compilation).")
    parser.add_argument("--batches", default="1,2,4")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--base-filters", type=int, default=16, help="UNet()'s default, as bench/gpu.py.")
    parser.add_argument("--rows", default=",".join(ROW_KINDS),
                        help=f"Comma-separated row kinds, run in this order (from {', '.join(ROW_KINDS)}).")
    parser.add_argument("--json", help="Also write the rows to this JSON file.")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    args.rows = comma_choices(parser, "--rows", args.rows, ROW_KINDS)
    ROWS.path = args.json
    shape, patch = ((48, 48, 40), 32) if args.small else ((240, 240, 155), 128)
    if args.small:
        args.base_filters = min(args.base_filters, 4)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folders = cached_cases(Path(tmp), args.cases, shape, args.workers)
        print(f"{len(folders)} cases of {shape} written and cached in {time.perf_counter() - start:.0f} s", flush=True)
        for kind in args.rows:
            system, variant = kind.split("-")
            if system == "keras":
                keras_rows(args, folders, patch, on_device=variant == "device")
            else:
                optional_rows("monai", monai_rows, args, folders, patch, variant == "compiled")


if __name__ == "__main__":
    main()
