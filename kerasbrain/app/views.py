"""What the web app draws: a volume's planes with its labels painted in, a picture's mask, tables.

Volumes arrive canonical (RAS+) and are shown radiologically (anterior up, the patient's right on
the left) at their true aspect ratio, as `evaluation.figures` draws them.
"""

from __future__ import annotations

import numpy as np

PLANES = ("axial", "coronal", "sagittal")
#: Internal label -> (name, RGB colour) drawn in the viewer and the report.
LABEL_STYLE = {1: ("necrotic core", (230, 60, 60)), 2: ("edema", (60, 200, 90)), 3: ("enhancing", (250, 210, 40))}


def slice_count(shape, plane: str) -> int:
    """Number of slices of a (X, Y, Z, ...) volume in a plane."""
    return int(shape[{"axial": 2, "coronal": 1, "sagittal": 0}[plane]])


def tumour_centre(labels: np.ndarray) -> tuple[int, int, int]:
    """The (x, y, z) slices with the most labelled voxels (the middle ones when there are none),
    so the viewer opens on the axial slice the result figure shows."""
    from kerasbrain.evaluation.figures import tumour_slice

    return tuple(tumour_slice(labels, axis) for axis in range(3))


def _plane(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    """A 2-D view of a canonical RAS volume, radiological convention (patient's right on the left)."""
    if plane == "axial":  # rows anterior -> posterior, columns right -> left
        return volume[:, :, index].T[::-1, ::-1]
    if plane == "coronal":  # rows superior -> inferior
        return volume[:, index, :].T[::-1, ::-1]
    return volume[index, :, :].T[::-1, :]  # sagittal: rows superior -> inferior, columns posterior -> anterior


def _plane_spacing(spacing, plane: str) -> tuple[float, float]:
    """(row, column) voxel size of a plane's view."""
    sx, sy, sz = (tuple(spacing) + (1.0, 1.0, 1.0))[:3] if spacing else (1.0, 1.0, 1.0)
    return {"axial": (sy, sx), "coronal": (sz, sx), "sagittal": (sz, sy)}[plane]


def to_grey(values: np.ndarray) -> np.ndarray:
    """An image as uint8 grey, scaled between its 0.5th and 99.5th percentile (non-zero voxels)."""
    values = np.asarray(values, np.float32)
    inside = values[values != 0]
    lo, hi = np.percentile(inside, (0.5, 99.5)) if inside.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    return (np.clip((values - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def blend(grey: np.ndarray, labels: np.ndarray, shown=(1, 2, 3), opacity: float = 0.5) -> np.ndarray:
    """An RGB uint8 picture: `grey` (H, W) or RGB (H, W, 3) with each shown label painted in its colour."""
    rgb = np.repeat(grey[..., None], 3, axis=-1) if grey.ndim == 2 else grey.copy()
    rgb = rgb.astype(np.float32)
    for label in shown:
        colour = LABEL_STYLE.get(int(label), ("tumour", (230, 60, 60)))[1]
        where = labels == label
        rgb[where] = (1 - opacity) * rgb[where] + opacity * np.asarray(colour, np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def render_view(image: np.ndarray, labels: np.ndarray, plane: str = "axial", index: int | None = None,
                channel: int = 0, shown=(1, 2, 3), opacity: float = 0.5, spacing=None,
                height: int = 384) -> np.ndarray:
    """One slice of a canonical volume with its labels painted in, at true aspect ratio, RGB uint8."""
    import cv2

    if plane not in PLANES:
        raise ValueError(f"plane must be one of {', '.join(PLANES)}. Received: {plane!r}")
    count = slice_count(image.shape, plane)
    index = count // 2 if index is None else int(np.clip(index, 0, count - 1))
    volume = image[..., channel] if image.ndim == 4 else image
    grey = to_grey(_plane(volume, plane, index))
    picture = blend(grey, _plane(labels, plane, index), shown, opacity)
    row_mm, col_mm = _plane_spacing(spacing, plane)
    rows, cols = picture.shape[:2]
    width = max(1, int(round(height * (cols * col_mm) / (rows * row_mm))))
    return cv2.resize(picture, (width, height), interpolation=cv2.INTER_NEAREST)


def overlay_picture(prediction, opacity: float = 0.5) -> np.ndarray | None:
    """A picture's predicted mask painted on it (RGB uint8), or None without a mask."""
    if prediction.labels is None or prediction.image is None:
        return None
    image = np.asarray(prediction.image)
    grey = image if image.ndim == 3 else to_grey(image)
    return blend(grey.astype(np.uint8), prediction.labels, (1,), opacity)


def volumes_table(volumes: dict[str, float] | None) -> str:
    """Markdown table of region volumes in mL."""
    if not volumes:
        return ""
    names = {"WT": "whole tumour", "TC": "tumour core", "ET": "enhancing tumour"}
    rows = [f"| {names.get(r, r)} ({r}) | {v:.2f} |" for r, v in volumes.items()]
    return "| region | volume (mL) |\n|---|---|\n" + "\n".join(rows)


def lesion_label(lesion: dict) -> str:
    """One line naming a lesion of a case report: region, number, volume, RANO diameters, confidence."""
    text = f"{lesion['region']} {lesion['lesion']}: {lesion['volume_ml']:.2f} mL"
    if "rano" in lesion:
        r = lesion["rano"]
        text += f", {r['longest_mm']:.0f} x {r['perpendicular_mm']:.0f} mm" + ("" if r["measurable"] else
                                                                               " (not measurable)")
    if "mean_probability" in lesion:
        text += f", p {lesion['mean_probability']:.2f}"
    return text


def lesion_choices(report: dict | None) -> list[str]:
    """The lesions of a volume's report, enhancing ones first (those RANO measures), as lines to pick from
    (none for a slice's report, which holds only its confidence)."""
    if not report or "lesions" not in report:
        return []
    order = {"ET": 0, "TC": 1, "WT": 2}
    return [lesion_label(x) for x in sorted(report["lesions"], key=lambda x: (order[x["region"]], x["lesion"]))]


def lesion_slice(report: dict | None, choice: str | None) -> int | None:
    """The axial slice to show for a chosen lesion: its RANO slice if measured, else its centre's."""
    for lesion in (report or {}).get("lesions", []):
        if lesion_label(lesion) == choice:
            return int(lesion["rano"]["slice"]) if lesion.get("rano", {}).get("slice", -1) >= 0 \
                else int(round(lesion["centre_voxel"][2]))
    return None


def lesion_lines(report: dict | None, limit: int = 8) -> list[str]:
    """The report's lesion table as text lines (the one-page report shows the first `limit`)."""
    if not report or "lesions" not in report:
        return []
    choices = lesion_choices(report)
    lines = ["Lesions (" + ", ".join(f"{r} {n}" for r, n in report["lesion_counts"].items()) + ")"]
    lines += [f"  {c}" for c in choices[:limit]] + ([f"  ... {len(choices) - limit} more"] if len(choices) > limit
                                                    else [])
    lines.append(f"  RANO sum of products: {report['rano_sum_of_products_mm2']:.0f} mm^2 "
                 f"({report['measurable_enhancing_lesions']} measurable enhancing lesions)")
    return lines
