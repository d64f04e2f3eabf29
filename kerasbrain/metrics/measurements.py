"""What a clinician measures on a label map: volumes, lesions, and RANO's bidimensional diameters.

RANO (Wen et al. 2010; RANO 2.0, 2023) measures each enhancing lesion on the axial slice where it
is largest: its longest diameter, and the longest diameter perpendicular to it; their product is
the lesion's size, the sum of products the tumour burden; a lesion is measurable when both are at
least 10 mm. Here, on the canonical RAS+ grid (axial slices are [:, :, z]):

- longest diameter: the largest distance between two of the lesion's pixels in the slice (on its
  convex hull), edge to edge (the centres' distance plus one pixel's extent along that line);
- perpendicular diameter: the longest chord of the lesion perpendicular to it (pixels binned along
  the first diameter, the widest bin's extent across it, edge to edge);
- the slice: the one with the largest product.

Distances are in millimetres with the grid's spacing, so anisotropic voxels measure right. These
are measurements only; they imply no response category.
"""

from __future__ import annotations

import numpy as np

REGIONS = ("WT", "TC", "ET")
MEASURABLE_MM = 10.0  # RANO: both diameters at least 10 mm


def bidimensional(mask: np.ndarray, spacing) -> tuple[float, float]:
    """(longest, perpendicular) diameters in mm of one 2-D lesion mask at `spacing` (mm per pixel, 2 axes)."""
    sx, sy = float(spacing[0]), float(spacing[1])
    points = np.argwhere(np.asarray(mask, bool)).astype(np.float64) * (sx, sy)
    if len(points) == 0:
        return 0.0, 0.0
    if len(points) == 1:
        return sx, sy
    hull = points
    if len(points) >= 3:
        from scipy.spatial import ConvexHull, QhullError

        try:
            hull = points[ConvexHull(points).vertices]
        except QhullError:  # all on one line
            hull = points
    gaps = hull[:, None, :] - hull[None, :, :]
    distance = np.sqrt((gaps ** 2).sum(-1))
    i, j = np.unravel_index(int(distance.argmax()), distance.shape)
    d = (hull[j] - hull[i]) / distance[i, j]
    longest = distance[i, j] + abs(d[0]) * sx + abs(d[1]) * sy
    u = np.array([-d[1], d[0]])
    along, across = points @ d, points @ u
    step = min(sx, sy)
    bins = np.floor((along - along.min()) / step + 0.5).astype(int)
    order = np.argsort(bins, kind="stable")
    bins, across = bins[order], across[order]
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    widest = float((np.maximum.reduceat(across, starts) - np.minimum.reduceat(across, starts)).max())
    return float(longest), widest + abs(u[0]) * sx + abs(u[1]) * sy


def lesion_bidimensional(lesion: np.ndarray, spacing) -> dict:
    """RANO's measurement of one 3-D lesion mask: the axial slice with the largest product and its diameters."""
    best = {"longest_mm": 0.0, "perpendicular_mm": 0.0, "product_mm2": 0.0, "slice": -1}
    for z in np.flatnonzero(lesion.any(axis=(0, 1))):
        longest, perpendicular = bidimensional(lesion[:, :, z], spacing[:2])
        if longest * perpendicular > best["product_mm2"]:
            best = {"longest_mm": round(longest, 2), "perpendicular_mm": round(perpendicular, 2),
                    "product_mm2": round(longest * perpendicular, 2), "slice": int(z)}
    best["measurable"] = bool(min(best["longest_mm"], best["perpendicular_mm"]) >= MEASURABLE_MM)
    return best


def case_measurements(regions: np.ndarray, spacing, affine=None, min_volume_ml: float = 0.0,
                      per_lesion_means: dict | None = None) -> dict:
    """Volumes, lesions and RANO diameters of one case.

    `regions` is the (X, Y, Z, 3) boolean WT / TC / ET mask on the canonical grid; `affine` maps its
    voxels to world mm (positions are given in both). Lesions are 26-connected components of each
    region; each enhancing (ET) lesion is measured bidimensionally. `per_lesion_means` ({name:
    (X, Y, Z, 3) map}, for example probabilities and uncertainty) adds each map's mean inside the
    lesion, in the lesion's region, under that name.
    """
    from scipy import ndimage

    voxel_ml = float(np.prod(spacing)) / 1000.0
    out = {"spacing_mm": [round(float(s), 4) for s in spacing], "volumes_ml": {}, "lesion_counts": {}, "lesions": []}
    for r, region in enumerate(REGIONS):
        mask = np.asarray(regions[..., r], bool)
        out["volumes_ml"][region] = round(float(mask.sum()) * voxel_ml, 3)
        components, n = ndimage.label(mask, np.ones((3, 3, 3), bool))
        objects = ndimage.find_objects(components)
        count = 0
        for i, box in enumerate(objects, 1):
            lesion = components[box] == i
            volume = float(lesion.sum()) * voxel_ml
            if volume <= min_volume_ml:
                continue
            count += 1
            centre = np.array([s.start for s in box]) + np.array(ndimage.center_of_mass(lesion))
            row = {"region": region, "lesion": count, "voxels": int(lesion.sum()), "volume_ml": round(volume, 4),
                   "centre_voxel": [round(float(c), 1) for c in centre],
                   "box_voxels": [[int(s.start), int(s.stop)] for s in box]}
            if affine is not None:
                row["centre_mm"] = [round(float(c), 1) for c in (np.asarray(affine) @ np.append(centre, 1.0))[:3]]
            for name, values in (per_lesion_means or {}).items():
                row[name] = round(float(np.asarray(values)[box][..., r][lesion].mean()), 5)
            if region == "ET":
                rano = lesion_bidimensional(lesion, spacing)
                if rano["slice"] >= 0:
                    rano["slice"] += int(box[2].start)
                row["rano"] = rano
            out["lesions"].append(row)
        out["lesion_counts"][region] = count
    enhancing = [x["rano"] for x in out["lesions"] if x["region"] == "ET"]
    out["rano_sum_of_products_mm2"] = round(sum(x["product_mm2"] for x in enhancing if x["measurable"]), 2)
    out["measurable_enhancing_lesions"] = sum(x["measurable"] for x in enhancing)
    return out
