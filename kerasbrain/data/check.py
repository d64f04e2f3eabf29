"""`kerasbrain data check`: is a dataset what training expects, before hours go into it?

Like nnU-Net's `--verify_dataset_integrity` and seed 004's exploratory analysis, for every layout
kerasbrain reads: volumes (any registered volumetric format: MSD, BraTS, DICOM studies), LGG slices
(kaggle_3m) and tumour-class pictures (BRISC 2025, the Kaggle 4-class folders). Every item is read
the way training reads it; what would break training or silently bias it is a **problem** (an
unreadable file, a mask that does not fit its image, a case with another number of modalities,
the same image twice, above all in two splits: public brain-MRI classification sets are known to
carry such duplicates between train and test); what is merely worth knowing is a **note**.
Duplicates are found by a hash of the decoded pixels, so a copy saved in another lossless format
counts too; near copies of 2-D pictures (a JPEG re-encoding, a slight brightness change: what
the hash cannot see) by the correlation of 64 x 64 grey thumbnails (`data/near_copies.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from kerasbrain.data.errors import DataError
from kerasbrain.data.near_copies import near_copy_findings, thumbnail


@dataclasses.dataclass
class CheckReport:
    """What `check_dataset` found: the layout, counts, problems (each one line), notes and statistics."""

    folder: str
    layout: str
    counts: dict
    problems: list[str]
    notes: list[str]
    stats: dict  # per-item values for the report's figures

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def pixel_hash(array: np.ndarray) -> str:
    """A content hash of decoded pixels (shape and dtype included)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha1(f"{array.shape}{array.dtype}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def _duplicates(hashes: dict[str, str], split_of: dict[str, str], what: str, groups_are: str = "") -> list[str]:
    """Problems for the same content in two splits (or patients: `groups_are`), or twice in one, one line each."""
    groups = defaultdict(list)
    for name, digest in hashes.items():
        groups[digest].append(name)
    problems = []
    for names in groups.values():
        if len(names) > 1:
            splits = sorted({split_of.get(n, "") for n in names})
            where = (f"in {groups_are + ' ' if groups_are else ''}{' and '.join(splits)}" if len(splits) > 1
                     else f"twice in {splits[0] or 'the data'}")
            problems.append(f"the same {what} {where}: {', '.join(sorted(names))}")
    return problems


def check_volumes(folder: Path, progress=print) -> CheckReport:
    """Every case of the first volumetric format that finds any: read, measured, compared."""
    import nibabel as nib

    from kerasbrain.data.io import labelled_cases, list_cases
    from kerasbrain.data.labels import labels_to_regions

    cases = list_cases(folder, "volume")
    try:  # labelled cases load with their labels (the way evaluate and training read them)
        with_labels = {name: load for name, load, _ in labelled_cases(folder, "volume")}
    except DataError:
        with_labels = {}
    problems, notes = [], []
    hashes, split_of, rows = {}, {}, []
    for i, (name, inputs, fmt) in enumerate(cases, 1):
        split = Path(inputs[0]).parent.name if Path(inputs[0]).parent != folder else ""
        split_of[name] = split
        try:
            case = with_labels[name]() if name in with_labels else fmt.load(inputs)
        except (DataError, ValueError, OSError) as exc:
            problems.append(str(exc).splitlines()[0])
            continue
        head = np.any(case.image != 0, axis=-1)
        row = {"case": name, "split": split, "format": fmt.name, "modalities": int(case.image.shape[-1]),
               "shape": list(case.image.shape[:3]), "spacing": [round(s, 3) for s in case.grid.spacing],
               "orientation": "".join(nib.aff2axcodes(case.grid.affine)), "labelled": case.labels is not None,
               "intensity_mean": [float(case.image[..., c][head].mean()) if head.any() else 0.0
                                  for c in range(case.image.shape[-1])]}
        if case.labels is not None:
            voxel_ml = float(np.prod(case.grid.spacing)) / 1000.0
            regions = labels_to_regions(case.labels)
            row["volume_ml"] = {r: round(float(regions[..., k].sum()) * voxel_ml, 3) for k, r in
                                enumerate(("WT", "TC", "ET"))}
            row["label_counts"] = {int(k): int(v) for k, v in zip(*np.unique(case.labels, return_counts=True))}
            if not regions[..., 0].any():
                notes.append(f"{name}: labelled, but no tumour")
            else:
                centre = np.argwhere(regions[..., 0]).mean(0) / np.asarray(case.labels.shape)
                row["tumour_centre_fraction"] = [round(float(c), 3) for c in centre]
        hashes[name] = pixel_hash(case.image)
        rows.append(row)
        if progress:
            progress(f"[{i}/{len(cases)}] {name}: {row['modalities']} modalities, {row['shape']}, {row['orientation']}")
    problems += _duplicates(hashes, split_of, "image")
    modalities = Counter(r["modalities"] for r in rows)
    if len(modalities) > 1:
        usual = modalities.most_common(1)[0][0]
        problems += [f"{r['case']}: {r['modalities']} modalities where the others have {usual}" for r in rows
                     if r["modalities"] != usual]
    for key, what in (("spacing", "voxel spacings"), ("orientation", "orientations"), ("shape", "shapes")):
        kinds = Counter(str(r[key]) for r in rows)
        if len(kinds) > 1:
            notes.append(f"{len(kinds)} {what}: " + ", ".join(f"{k} ({n})" for k, n in kinds.most_common(4)))
    counts = {"cases": len(cases), "read": len(rows), "labelled": sum(r["labelled"] for r in rows),
              "by_split": dict(Counter(r["split"] or "-" for r in rows))}
    return CheckReport(str(folder), f"volumes ({cases[0][2].name})", counts, problems, notes, {"cases": rows})


def check_slices(folder: Path, progress=print) -> CheckReport:
    """LGG (kaggle_3m) slices: every image and mask read, masks fitting images, duplicates across patients."""
    from kerasbrain.data.lgg import discover_lgg, read_slice

    slices = discover_lgg(folder, require_masks=False)
    problems, notes, hashes, split_of, areas, thumbnails = [], [], {}, {}, [], {}
    for files in slices:
        name = f"{files.patient}/{files.image.name}"
        split_of[name] = files.patient
        if files.mask is None:
            problems.append(f"{files.image}: has no mask {files.image.name[:-4]}_mask.tif")
            continue
        try:
            image, mask = read_slice(files)
        except (DataError, ValueError, OSError) as exc:
            problems.append(str(exc).splitlines()[0])
            continue
        hashes[name] = pixel_hash(image)
        thumbnails[name] = thumbnail(image)
        areas.append(float((mask > 0).mean()))
    problems += _duplicates(hashes, split_of, "slice", groups_are="patients")
    near, _ = near_copy_findings(thumbnails, hashes, split_of, "slice", groups_are="patients")
    problems += near  # within a patient, neighbouring slices may look alike
    patients = Counter(s.patient for s in slices)
    tumour = sum(a > 0 for a in areas)
    counts = {"patients": len(patients), "slices": len(slices), "with_tumour": tumour,
              "without_tumour": len(areas) - tumour}
    if areas and tumour / len(areas) < 0.05:
        notes.append(f"only {tumour} of {len(areas)} slices show tumour")
    if progress:
        progress(f"{len(slices)} slices of {len(patients)} patients read")
    return CheckReport(str(folder), "LGG slices (kaggle_3m)", counts, problems, notes, {"tumour_area_fraction": areas})


def check_images(folder: Path, progress=print) -> CheckReport:
    """Tumour-class pictures: counts per split and class, unreadable files, masks, duplicates across splits."""
    from kerasbrain.data.classes import CLASSES
    from kerasbrain.data.pictures import read_rgb
    from kerasbrain.data.tumour_images import discover_tumour_images, read_binary_mask

    samples = discover_tumour_images(folder)
    problems, notes, hashes, split_of, thumbnails = [], [], {}, {}, {}
    counts = defaultdict(Counter)
    for sample in samples:
        key = f"{sample.subset}/{sample.image.name}"
        split_of[key] = sample.subset
        try:
            image = read_rgb(sample.image)
            if sample.mask is not None:
                read_binary_mask(sample.mask, image.shape[:2])
        except (DataError, ValueError, OSError) as exc:
            problems.append(str(exc).splitlines()[0])
            continue
        counts[sample.subset][CLASSES[sample.label] if sample.label is not None else "unlabelled"] += 1
        hashes[key] = pixel_hash(image)
        thumbnails[key] = thumbnail(image)
    problems += _duplicates(hashes, split_of, "picture")
    near_problems, near_notes = near_copy_findings(thumbnails, hashes, split_of, "picture")
    problems += near_problems
    notes += near_notes
    for subset, by_class in counts.items():
        if by_class and max(by_class.values()) > 3 * max(min(by_class.values()), 1):
            notes.append(f"{subset}: classes out of balance, " + ", ".join(f"{c} {n}" for c, n in sorted(by_class.items())))
    if progress:
        progress(f"{len(samples)} pictures read")
    return CheckReport(str(folder), "tumour-class pictures", {s: dict(c) for s, c in counts.items()}, problems,
                       notes, {})


def check_dataset(folder, progress=print) -> CheckReport:
    """Check `folder` as the first layout that recognises it (volumes, LGG slices, class pictures)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    from kerasbrain.data.lgg import find_root
    from kerasbrain.data.tumour_images import discover_tumour_images

    try:
        return check_volumes(folder, progress)
    except DataError:
        pass
    root = find_root(folder)
    if any(p.is_dir() and any(p.glob(f"{p.name}_*.tif")) for p in root.iterdir()):
        return check_slices(folder, progress)
    try:
        if discover_tumour_images(folder):
            return check_images(folder, progress)
    except DataError:  # its own message names only the picture layouts
        pass
    raise DataError(f"{folder}: no dataset kerasbrain reads (MSD / BraTS / DICOM volumes, LGG kaggle_3m slices, "
                    "BRISC 2025 or class folders of pictures)")


def write_check_report(report: CheckReport, out) -> list[Path]:
    """report.json, report.md (counts, problems, notes) and report.png (the statistics' histograms)."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasbrain.files import atomic_write, write_text

    out = Path(out)
    lines = [f"# Dataset check: {report.folder}", "", f"Layout: {report.layout}", "", "## Counts", "",
             "```", json.dumps(report.counts, indent=2), "```", "",
             f"## Problems ({len(report.problems)})", ""] + [f"- {p}" for p in report.problems] + [
             "", f"## Notes ({len(report.notes)})", ""] + [f"- {n}" for n in report.notes]
    written = [write_text(out / "report.md", "\n".join(lines) + "\n"),
               write_text(out / "report.json", json.dumps(report.to_dict(), indent=1, default=str) + "\n")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if "cases" in report.stats:
        rows = report.stats["cases"]
        volumes = [r["volume_ml"]["WT"] for r in rows if "volume_ml" in r]
        axes[0].hist(volumes or [0], bins=20)
        axes[0].set_title("whole-tumour volume per case (mL)")
        means = np.array([r["intensity_mean"] for r in rows if len(r["intensity_mean"]) == len(rows[0]["intensity_mean"])])
        if means.size:
            axes[1].boxplot(means, tick_labels=[f"channel {c}" for c in range(means.shape[1])])
        axes[1].set_title("mean intensity in the head, per modality")
    elif "tumour_area_fraction" in report.stats:
        areas = [a for a in report.stats["tumour_area_fraction"] if a > 0]
        axes[0].hist(areas or [0], bins=20)
        axes[0].set_title("tumour area per tumour slice (fraction of the slice)")
        axes[1].bar(["with tumour", "without"], [report.counts["with_tumour"], report.counts["without_tumour"]])
        axes[1].set_title("slices")
    else:
        for ax, (subset, by_class) in zip(axes, sorted(report.counts.items())[:2]):
            ax.bar(list(by_class), list(by_class.values()))
            ax.set_title(f"{subset}: images per class")
            ax.tick_params(axis="x", rotation=20)
    fig.suptitle(f"{report.layout}: {len(report.problems)} problems, {len(report.notes)} notes", fontsize=10)
    fig.tight_layout()
    written.append(atomic_write(out / "report.png", lambda tmp: fig.savefig(tmp, dpi=100)))
    plt.close(fig)
    return written
