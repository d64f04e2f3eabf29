"""Two time points of one patient: lesions matched across time, what is new, what vanished, what changed.

Both label maps are brought onto the earlier scan's canonical grid through their world (scanner)
coordinates, nearest neighbour, so scans of different sizes, voxel spacings and orientations compare
directly. Scans from different sessions (another position in the scanner, another frame of
reference) are rigidly registered first with `register=True` (the later scan's first channel onto
the earlier one's, Mattes mutual information: `data/registration.py`), which needs the images.
Lesions are 26-connected whole-tumour components. A later lesion is matched
with the earlier lesion it overlaps most, else with the nearest unmatched earlier lesion whose centre
lies within `match_mm`; earlier lesions left unmatched vanished, later ones are new. For each match:
whole-tumour, core and enhancing volumes before and after, and RANO's bidimensional product of its
enhancing part (`metrics/measurements.py`). Measurements only: no response category is implied.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kerasbrain.metrics.measurements import REGIONS, lesion_bidimensional


@dataclasses.dataclass
class TimePoint:
    """One scan's internal label map on its canonical grid, with that grid's voxel -> world affine."""

    name: str
    labels: np.ndarray  # internal labels (X, Y, Z)
    affine: np.ndarray  # canonical voxel -> world mm
    image: np.ndarray | None = None  # canonical (X, Y, Z, C), for the figure
    frame_of_reference: str = ""  # DICOM FrameOfReferenceUID of the scan, where it has one

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(np.linalg.norm(np.asarray(self.affine)[:3, :3], axis=0).tolist())


def onto(moving: TimePoint, fixed: TimePoint) -> TimePoint:
    """`moving` resampled onto `fixed`'s grid through world coordinates (nearest neighbour, 0 outside)."""
    from scipy import ndimage

    voxel_to_voxel = np.linalg.inv(np.asarray(moving.affine, float)) @ np.asarray(fixed.affine, float)
    if np.allclose(voxel_to_voxel, np.eye(4), atol=1e-6) and moving.labels.shape == fixed.labels.shape:
        return moving
    labels = ndimage.affine_transform(moving.labels, voxel_to_voxel[:3, :3], voxel_to_voxel[:3, 3],
                                      output_shape=fixed.labels.shape, order=0, mode="constant", cval=0)
    image = None
    if moving.image is not None:
        image = np.stack([ndimage.affine_transform(moving.image[..., c], voxel_to_voxel[:3, :3], voxel_to_voxel[:3, 3],
                                                   output_shape=fixed.labels.shape, order=1, mode="constant")
                          for c in range(moving.image.shape[-1])], axis=-1)
    return TimePoint(moving.name, labels.astype(moving.labels.dtype), fixed.affine, image)


def register_onto(moving: TimePoint, fixed: TimePoint) -> TimePoint:
    """`moving` rigidly registered onto `fixed` (both with images) and resampled onto its grid: labels by
    nearest neighbour, the image linearly."""
    from kerasbrain.data.registration import resample_onto, rigid_transform, to_itk

    if moving.image is None or fixed.image is None:
        raise ValueError("registering two time points needs their images (give the scans and --model)")
    fixed_image = to_itk(fixed.image[..., 0].astype(np.float32), fixed.affine)
    moving_image = to_itk(moving.image[..., 0].astype(np.float32), moving.affine)
    transform = rigid_transform(fixed_image, moving_image)
    labels = resample_onto(to_itk(moving.labels, moving.affine), fixed_image, transform, labels=True)
    image = np.stack([resample_onto(to_itk(moving.image[..., c].astype(np.float32), moving.affine), fixed_image,
                                    transform) for c in range(moving.image.shape[-1])], axis=-1)
    return TimePoint(moving.name, labels.astype(moving.labels.dtype), fixed.affine, image)


def _lesions(labels: np.ndarray):
    from scipy import ndimage

    from kerasbrain.data.labels import labels_to_regions

    regions = labels_to_regions(labels).astype(bool)
    components, n = ndimage.label(regions[..., 0], np.ones((3, 3, 3), bool))
    return regions, components, n


def _measure(regions, component_mask, spacing) -> dict:
    voxel_ml = float(np.prod(spacing)) / 1000.0
    out = {f"{r}_ml": round(float((regions[..., i] & component_mask).sum()) * voxel_ml, 4) for i, r in enumerate(REGIONS)}
    enhancing = regions[..., 2] & component_mask
    out["rano_product_mm2"] = lesion_bidimensional(enhancing, spacing)["product_mm2"] if enhancing.any() else 0.0
    return out


def compare_time_points(before: TimePoint, after: TimePoint, match_mm: float = 10.0, register: bool = False) -> dict:
    """Matched, new and vanished lesions and the totals' change; `after` is taken onto `before`'s grid
    (through world coordinates, or by rigid registration with `register`)."""
    from scipy import ndimage

    after_here = register_onto(after, before) if register else onto(after, before)
    spacing = before.spacing
    (b_regions, b_comp, nb), (a_regions, a_comp, na) = _lesions(before.labels), _lesions(after_here.labels)
    world = np.asarray(before.affine, float)

    def centres(components, n):
        if not n:
            return np.zeros((0, 3))
        voxel = np.array(ndimage.center_of_mass(np.ones(components.shape), components, np.arange(1, n + 1)))
        return (world @ np.c_[voxel, np.ones(n)].T).T[:, :3]

    b_centres, a_centres = centres(b_comp, nb), centres(a_comp, na)
    match = {}  # after lesion -> before lesion
    for j in range(1, na + 1):
        overlap = np.bincount(b_comp[a_comp == j], minlength=nb + 1)[1:]
        if overlap.any():
            match[j] = int(overlap.argmax()) + 1
    taken = set(match.values())
    for j in range(1, na + 1):
        if j in match or not nb:
            continue
        distance = np.linalg.norm(b_centres - a_centres[j - 1], axis=1)
        for i in np.argsort(distance):
            if distance[i] <= match_mm and int(i) + 1 not in taken:
                match[j] = int(i) + 1
                taken.add(int(i) + 1)
                break
    rows = []
    for i in range(1, nb + 1):
        afters = sorted(j for j, b in match.items() if b == i)
        was = _measure(b_regions, b_comp == i, spacing)
        now = _measure(a_regions, np.isin(a_comp, afters), spacing) if afters else {k: 0.0 for k in was}
        rows.append({"status": ("matched" if len(afters) == 1 else "split") if afters else "vanished",
                     "before_lesion": i, "after_lesions": afters,
                     "centre_mm": [round(float(c), 1) for c in b_centres[i - 1]],
                     **{f"before_{k}": v for k, v in was.items()}, **{f"after_{k}": v for k, v in now.items()},
                     **{f"change_{k}": round(now[k] - was[k], 4) for k in was}})
    for j in range(1, na + 1):
        if j not in match:
            now = _measure(a_regions, a_comp == j, spacing)
            rows.append({"status": "new", "before_lesion": None, "after_lesions": [j],
                         "centre_mm": [round(float(c), 1) for c in a_centres[j - 1]],
                         **{f"before_{k}": 0.0 for k in now}, **{f"after_{k}": v for k, v in now.items()},
                         **{f"change_{k}": v for k, v in now.items()}})
    keys = [f"{r}_ml" for r in REGIONS] + ["rano_product_mm2"]
    totals = {k: {"before": round(sum(r[f"before_{k}"] for r in rows), 4),
                  "after": round(sum(r[f"after_{k}"] for r in rows), 4)} for k in keys}
    for k in keys:
        totals[k]["change"] = round(totals[k]["after"] - totals[k]["before"], 4)
        totals[k]["change_percent"] = (round(100 * totals[k]["change"] / totals[k]["before"], 1)
                                       if totals[k]["before"] else None)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("matched", "split", "new", "vanished")}
    how = "rigid registration (Mattes mutual information)" if register else "world coordinates"
    return {"before": before.name, "after": after.name, "grid": f"before's canonical grid, through {how}",
            "match_mm": match_mm, "counts": counts, "totals": totals, "lesions": rows,
            "note": "measurements only: no diagnosis or response category is implied",
            "_after_here": after_here}


def save_comparison_figure(path, before: TimePoint, after_here: TimePoint, result: dict):
    """Before | after at the axial slice through the largest lesion, outlines of WT / TC / ET, and the totals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasbrain.data.labels import labels_to_regions
    from kerasbrain.files import atomic_write

    both = (before.labels > 0) | (after_here.labels > 0)
    z = int(np.argmax(both.sum(axis=(0, 1)))) if both.any() else before.labels.shape[2] // 2
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.6))
    for ax, point, title in ((axes[0], before, result["before"]), (axes[1], after_here, result["after"])):
        grey = point.image[..., 0][:, :, z] if point.image is not None else np.zeros(point.labels.shape[:2])
        ax.imshow(np.rot90(grey), cmap="gray")
        regions = labels_to_regions(point.labels[:, :, z])
        for r, colour in zip(range(3), ("limegreen", "gold", "red")):
            if regions[..., r].any():
                ax.contour(np.rot90(regions[..., r]), levels=[0.5], colors=colour, linewidths=1.2)
        ax.set_title(f"{title} (axial slice {z})", fontsize=10)
        ax.axis("off")
    t = result["totals"]
    c = result["counts"]
    fig.suptitle(f"WT {t['WT_ml']['before']:.1f} -> {t['WT_ml']['after']:.1f} mL, ET {t['ET_ml']['before']:.1f} -> "
                 f"{t['ET_ml']['after']:.1f} mL, RANO {t['rano_product_mm2']['before']:.0f} -> "
                 f"{t['rano_product_mm2']['after']:.0f} mm^2; lesions: {c['matched'] + c['split']} matched, "
                 f"{c['new']} new, {c['vanished']} vanished\n(outlines: WT green, TC gold, ET red; measurements only)",
                 fontsize=9)
    fig.tight_layout()
    written = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
    return written
