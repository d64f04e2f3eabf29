"""MONAI's BasicUNet trained for a wall-clock budget on the races' phantoms: the reference row.

Runs in its own environment beside the project (torch + MONAI, not kerasbrain dependencies):

    python -m venv /tmp/monai-env
    /tmp/monai-env/bin/pip install torch==2.13.0 monai nibabel pillow   # the CPU torch build this machine has on disk
    python bench/race3d.py ... --monai /tmp/monai-env/bin/python        # or race2d.py; they call this file

`3d`: an MSD-layout training folder and held-out folder (race3d's), the training cases of
race3d's split only; volumes reoriented to RAS with nibabel (MONAI's tutorials use Orientationd),
channel-wise z-score over the brain, random 64^3 crops (foreground 1 in 3, as kerasbrain's
`fg_fraction`), random flips on the three axes, BasicUNet (MONAI's default features, instance norm)
with three sigmoid region outputs (WT, TC, ET), DiceCELoss, Adam; prediction with MONAI's
sliding window (Gaussian blending, overlap 0.5), regions > 0.5, nested back to labels, written in
each input's own voxel grid. `2d`: kaggle_3m slices (race2d's), the same patients for training,
BasicUNet 2-D (instance norm) with one sigmoid output, DiceCELoss, flips, masks written as PNG.

Both train until `--minutes` of wall-clock time have passed (data loading included, as kerasbrain's
`--time-budget`), keep the last weights, and print one JSON line of what they did. The races score
the written predictions with kerasbrain's own metrics, so both rows are scored the same way.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.networks.nets import BasicUNet

MSD_REGIONS = ((1, 2, 3), (2, 3), (3,))  # WT, TC, ET in MSD numbering (1 edema, 2 non-enhancing, 3 enhancing)


def canonical(path):
    image = nib.load(str(path))
    return nib.as_closest_canonical(image), image


def zscore(volume):
    """Channel-wise z-score over the brain (non-zero voxels), 0 outside: MONAI's NormalizeIntensity(nonzero)."""
    out = np.zeros_like(volume, dtype=np.float32)
    brain = np.any(volume != 0, axis=-1)
    for c in range(volume.shape[-1]):
        values = volume[..., c][brain]
        out[..., c][brain] = (values - values.mean()) / (values.std() + 1e-8)
    return out


def regions(labels):
    return np.stack([np.isin(labels, r) for r in MSD_REGIONS]).astype(np.float32)


def random_crop(image, target, patch, rng, foreground):
    """A patch centred on a random foreground voxel (with probability `foreground`) or anywhere."""
    shape = np.array(image.shape[1:])
    patch = np.minimum(patch, shape)
    if rng.random() < foreground and target[0].any():
        centre = np.argwhere(target[0] > 0)[rng.integers(len(np.argwhere(target[0] > 0)))]
        start = np.clip(centre - patch // 2, 0, shape - patch)
    else:
        start = np.array([rng.integers(0, s - p + 1) for s, p in zip(shape, patch)])
    box = tuple(slice(a, a + p) for a, p in zip(start, patch))
    image, target = image[(slice(None),) + box], target[(slice(None),) + box]
    for axis in range(1, image.ndim):
        if rng.random() < 0.5:
            image, target = np.flip(image, axis), np.flip(target, axis)
    return np.ascontiguousarray(image), np.ascontiguousarray(target)


def train(net, batches, minutes, lr, steps_limit=None, device="cpu", progress_every=25):
    """Adam on DiceCELoss until `minutes` of wall-clock time have passed, or `steps_limit` steps if given."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = DiceCELoss(sigmoid=True)
    start, steps, losses = time.monotonic(), 0, []
    net.train()
    while (steps < steps_limit) if steps_limit else (time.monotonic() - start < minutes * 60):
        x, y = (torch.from_numpy(a).to(device) for a in next(batches))
        optimizer.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        steps += 1
        losses.append(loss.item())
        if steps % progress_every == 0:
            print(f"step {steps}: loss {np.mean(losses[-progress_every:]):.4f} "
                  f"({(time.monotonic() - start) / 60:.1f} min)", flush=True)
    return steps, (time.monotonic() - start) / 60, losses


def run_3d(args):
    rng = np.random.default_rng(args.seed)
    ids = json.loads(Path(args.split).read_text())["train"]
    cases = []
    for case_id in ids:
        image, _ = canonical(Path(args.data) / "imagesTr" / f"{case_id}.nii.gz")
        label, _ = canonical(Path(args.data) / "labelsTr" / f"{case_id}.nii.gz")
        volume = np.asarray(image.dataobj, dtype=np.float32)
        cases.append((np.moveaxis(zscore(volume), -1, 0), regions(np.asarray(label.dataobj))))
    print(f"{len(cases)} training cases loaded", flush=True)
    patch = np.array(args.patch)

    def batches():
        while True:
            picks = [random_crop(*cases[rng.integers(len(cases))], patch, rng, 1 / 3) for _ in range(args.batch)]
            yield np.stack([p[0] for p in picks]), np.stack([p[1] for p in picks])

    net = BasicUNet(spatial_dims=3, in_channels=4, out_channels=3)
    steps, minutes, losses = train(net, batches(), args.minutes, args.lr)
    net.eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for path in sorted((Path(args.heldout) / "imagesTr").glob("*.nii.gz")):
        image, original = canonical(path)
        x = np.moveaxis(zscore(np.asarray(image.dataobj, dtype=np.float32)), -1, 0)[None]
        with torch.no_grad():
            probs = torch.sigmoid(sliding_window_inference(torch.from_numpy(x), tuple(args.patch), 2, net,
                                                           overlap=0.5, mode="gaussian"))[0].numpy()
        wt, tc, et = probs > 0.5
        labels = np.where(et, 3, np.where(tc, 2, np.where(wt, 1, 0))).astype(np.uint8)  # MSD numbering
        # back to the input's voxel grid
        transform = nib.orientations.ornt_transform(nib.io_orientation(image.affine), nib.io_orientation(original.affine))
        labels = nib.orientations.apply_orientation(labels, transform)
        nib.save(nib.Nifti1Image(labels, original.affine), str(out / path.name))
    print(json.dumps({"reference": "monai BasicUNet 3d", "steps": steps, "minutes": round(minutes, 2),
                      "patch": list(args.patch), "batch": args.batch, "lr": args.lr, "cases": len(cases),
                      "last_loss": round(float(np.mean(losses[-25:])), 4),
                      "predict_minutes": round((time.monotonic() - started) / 60, 2),
                      "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)


def read_slice(path):
    from PIL import Image

    return np.asarray(Image.open(path))


def run_2d(args):
    from PIL import Image

    rng = np.random.default_rng(args.seed)
    patients = json.loads(Path(args.split).read_text())["train"]
    root = Path(args.data)
    images, masks = [], []
    for patient in patients:
        for mask_path in sorted((root / patient).glob("*_mask.tif")):
            image = read_slice(mask_path.with_name(mask_path.name.replace("_mask", ""))).astype(np.float32) / 255.0
            images.append(np.moveaxis(image, -1, 0))
            masks.append((read_slice(mask_path) > 127).astype(np.float32)[None])
    images, masks = np.stack(images), np.stack(masks)
    print(f"{len(images)} training slices from {len(patients)} patients", flush=True)

    rotate = None
    if args.rotation:  # seed 002's +-35 degrees: image bilinear, mask nearest, zeros outside (MONAI's RandRotate)
        from monai.transforms import RandRotate

        rotate = (RandRotate(range_x=np.deg2rad(args.rotation), prob=1.0, mode="bilinear", padding_mode="zeros"),
                  RandRotate(range_x=np.deg2rad(args.rotation), prob=1.0, mode="nearest", padding_mode="zeros"))

    def batches():
        while True:
            order = rng.permutation(len(images))
            for i in range(0, len(order) - args.batch + 1, args.batch):
                x, y = images[order[i:i + args.batch]].copy(), masks[order[i:i + args.batch]].copy()
                for axis in (2, 3):
                    flip = rng.random(len(x)) < 0.5
                    x[flip], y[flip] = np.flip(x[flip], axis), np.flip(y[flip], axis)
                if rotate:
                    for j in range(len(x)):
                        seed = int(rng.integers(2**31))
                        x[j] = np.asarray(rotate[0].set_random_state(seed)(x[j]))
                        y[j] = np.asarray(rotate[1].set_random_state(seed)(y[j]))  # the same angle
                yield np.ascontiguousarray(x), np.ascontiguousarray(y)

    device = args.device if args.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu"
    net = BasicUNet(spatial_dims=2, in_channels=3, out_channels=1).to(device)
    steps_per_epoch = len(images) // args.batch  # whole batches, as the batches above
    steps, minutes, losses = train(net, batches(), args.minutes, args.lr, device=device,
                                   steps_limit=args.epochs * steps_per_epoch if args.epochs else None)
    net.eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for image_path in sorted(Path(args.heldout).glob("*/*.tif")):
        if image_path.name.endswith("_mask.tif"):
            continue
        x = np.moveaxis(read_slice(image_path).astype(np.float32) / 255.0, -1, 0)[None]
        with torch.no_grad():
            probability = torch.sigmoid(net(torch.from_numpy(x).to(device)))[0, 0].cpu().numpy()
        Image.fromarray(((probability > 0.5) * 255).astype(np.uint8)).save(out / f"{image_path.stem}_mask.png")
        written += 1
    print(json.dumps({"reference": "monai BasicUNet 2d", "steps": steps, "minutes": round(minutes, 2),
                      "epochs": round(steps / steps_per_epoch, 2), "rotation": args.rotation, "device": device,
                      "batch": args.batch, "lr": args.lr, "slices": len(images), "predicted": written,
                      "last_loss": round(float(np.mean(losses[-25:])), 4), "torch": torch.__version__,
                      "threads": torch.get_num_threads()}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["3d", "2d"])
    parser.add_argument("--data", required=True, help="Training data: an MSD folder (3d) or a kaggle_3m folder (2d).")
    parser.add_argument("--heldout", required=True, help="Held-out data in the same layout.")
    parser.add_argument("--split", required=True, help="kerasbrain's split.json: its `train` cases are used.")
    parser.add_argument("--out", required=True, help="Folder for the predictions.")
    parser.add_argument("--minutes", type=float, default=25.0)
    parser.add_argument("--patch", type=int, nargs=3, default=(64, 64, 64))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="2d: train this many passes over the slices instead of --minutes.")
    parser.add_argument("--rotation", type=float, default=0.0, help="2d: random rotations within +-this many degrees.")
    parser.add_argument("--device", default="auto", help="2d: auto (a GPU if torch sees one), cpu or cuda.")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    (run_3d if args.kind == "3d" else run_2d)(args)


if __name__ == "__main__":
    main()
