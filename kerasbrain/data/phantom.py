"""Deterministic synthetic brain-tumour MRI phantoms written in the real public layouts.

No real data can be downloaded where kerasbrain is tested, so tests and the demo run on phantoms
that exercise the same readers as real data: a head with skull, CSF (outer layer and ventricles),
grey and white matter with distinct FLAIR / T1 / T1Gd / T2 contrasts, and a tumour made of a
necrotic or non-enhancing core, an enhancing rim and surrounding edema, varied in size, shape and
place, with a smooth bias field and Rician noise. Files use a BraTS-like LPS affine (not RAS) so
that the reorientation path is exercised too.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from kerasbrain.data.labels import BACKGROUND, EDEMA, ENHANCING, NECROTIC_CORE, from_internal
from kerasbrain.data.layouts import BRATS_SUFFIXES, NII
from kerasbrain.data.phantom_anatomy import make_anatomical_phantom
from kerasbrain.files import atomic_write, write_image

# Tissue classes of the phantom (internal; tumour tissues reuse the label numbers 1..3).
_SKULL, _CSF, _GM, _WM = 10, 11, 12, 13
#: Mean intensity of each tissue per modality (FLAIR, T1, T1Gd, T2), loosely after real contrasts:
#: CSF dark on FLAIR/T1 and bright on T2, edema bright on FLAIR/T2, enhancing rim bright on T1Gd.
_CONTRAST = {
    BACKGROUND: (0.0, 0.0, 0.0, 0.0),
    _SKULL: (0.35, 0.9, 0.9, 0.3),
    _CSF: (0.1, 0.2, 0.2, 1.4),
    _GM: (0.75, 0.65, 0.65, 0.75),
    _WM: (0.6, 0.95, 0.95, 0.55),
    EDEMA: (1.25, 0.5, 0.5, 1.2),
    NECROTIC_CORE: (0.55, 0.3, 0.35, 1.3),
    ENHANCING: (1.0, 0.55, 1.6, 0.9),
}
LPS_AFFINE = np.array([[-1.0, 0, 0, 0], [0, -1.0, 0, 239.0], [0, 0, 1.0, 0], [0, 0, 0, 1]])


def _smooth_field(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    field -= field.mean()
    return field / (field.std() + 1e-8)


def _ellipsoid(grid, center, radii, wobble=None) -> np.ndarray:
    r = sum(((g - c) / rad) ** 2 for g, c, rad in zip(grid, center, radii))
    if wobble is not None:
        r = r + wobble
    return r <= 1.0


DIFFICULTIES = ("easy", "hard")


def _lesion(rng, grid, tc, size, shape, brain) -> np.ndarray:
    """Internal labels of one tumour (edema, enhancing rim or not, necrotic / non-enhancing core)."""
    labels = np.zeros(shape, dtype=np.uint8)
    aspect = rng.uniform(0.75, 1.3, 3)
    shape_noise = 0.2 * _smooth_field(rng, shape, sigma=max(2.0, size / 2))
    edema = _ellipsoid(grid, tc, size * 1.8 * aspect, shape_noise) & brain
    core = _ellipsoid(grid, tc, size * aspect, shape_noise * 0.5)
    inner = _ellipsoid(grid, tc, size * aspect * rng.uniform(0.45, 0.7), shape_noise * 0.5)
    labels[edema] = EDEMA
    if rng.uniform() < 0.8:  # most glioblastomas enhance around a necrotic centre
        labels[core] = ENHANCING
        labels[inner] = NECROTIC_CORE
    else:  # a non-enhancing lower-grade core
        labels[core] = NECROTIC_CORE
    return labels


def _centre_in(rng, brain, centre, head, shape) -> np.ndarray:
    for _ in range(100):  # a centre deep enough in the brain for the edema to fit
        tc = centre + rng.uniform(-0.5, 0.5, 3) * head
        idx = tuple(np.clip(tc.astype(int), 0, np.array(shape) - 1))
        if brain[idx]:
            break
    return tc


def _render(tissue, shape, texture) -> np.ndarray:
    image = np.zeros(shape + (4,), dtype=np.float32)
    for t, means in _CONTRAST.items():
        mask = tissue == t
        if mask.any():
            image[mask] = np.asarray(means, dtype=np.float32) * (1.0 + texture[mask, None])
    return image


def make_phantom(shape=(96, 96, 64), seed: int = 0, tumour: bool = True, difficulty: str = "easy"):
    """Return (image (X, Y, Z, 4) float32, internal labels (X, Y, Z) uint8) in RAS+ voxel order.

    `difficulty="hard"` adds what makes real BraTS cases hard (issue 14): smaller and sometimes
    multi-focal lesions, tumour borders that blur into the tissue around them, heterogeneous tumour
    signal, edema that keeps part of the underlying tissue's signal, white-matter hyperintensities
    that look like edema but are labelled background, and per-case scanner differences (a gamma
    per modality, a stronger bias field, twice the noise). "easy" phantoms are unchanged by it.
    """
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}. Received: {difficulty!r}")
    hard = difficulty == "hard"
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng([seed, 14]) if hard else None  # its own stream: easy cases stay as they were
    shape = tuple(int(s) for s in shape)
    grid = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij")
    centre = np.array(shape, dtype=np.float32) / 2 + rng.uniform(-2, 2, 3)
    # radii as fractions of the grid, matching the head extent in a 240 x 240 x 155 BraTS volume
    head = np.array(shape, dtype=np.float32) * (np.array([0.30, 0.36, 0.44]) + rng.uniform(-0.02, 0.02, 3))
    wobble = 0.08 * _smooth_field(rng, shape, sigma=max(shape) / 8)

    tissue = np.full(shape, BACKGROUND, dtype=np.uint8)
    tissue[_ellipsoid(grid, centre, head, wobble)] = _SKULL
    tissue[_ellipsoid(grid, centre, head * 0.90, wobble)] = _CSF
    tissue[_ellipsoid(grid, centre, head * 0.85, wobble)] = _GM
    tissue[_ellipsoid(grid, centre, head * 0.68, wobble * 1.5)] = _WM
    for side in (-1, 1):  # lateral ventricles
        vc = centre + np.array([side * head[0] * 0.18, head[1] * 0.05, head[2] * 0.05])
        tissue[_ellipsoid(grid, vc, head * np.array([0.08, 0.3, 0.15]))] = _CSF
    healthy = tissue.copy()

    labels = np.zeros(shape, dtype=np.uint8)
    if tumour:
        brain = np.isin(tissue, (_GM, _WM))
        size = rng.uniform(0.16, 0.30) * min(head)
        tc = _centre_in(rng, brain, centre, head, shape)
        if hard:
            size *= extra.uniform(0.45, 0.8)
        labels = _lesion(rng, grid, tc, size, shape, brain)
        if hard and extra.uniform() < 0.4:  # a second, smaller focus
            second = _lesion(extra, grid, _centre_in(extra, brain, centre, head, shape),
                             size * extra.uniform(0.5, 0.8), shape, brain)
            labels = np.maximum(labels, second)  # EDEMA < NECROTIC_CORE < ENHANCING: the core wins
        labels[tissue == BACKGROUND] = 0
        tissue = np.where(labels > 0, labels, tissue)

    bias = np.exp((0.35 if hard else 0.15) * _smooth_field(rng, shape, sigma=max(shape) / 3))
    texture = 0.05 * _smooth_field(rng, shape, sigma=1.5)
    image = _render(tissue, shape, texture)
    if hard:
        image = _harden(image, healthy, labels, grid, texture, extra)
    image = ndimage.gaussian_filter(image, sigma=(0.6, 0.6, 0.6, 0))
    image *= bias[..., None]
    sigma = 0.06 if hard else 0.03
    noisy = np.sqrt((image + sigma * rng.standard_normal(image.shape)) ** 2 + (sigma * rng.standard_normal(image.shape)) ** 2)
    head_mask = tissue != BACKGROUND
    image = np.where(head_mask[..., None], noisy, 0.0).astype(np.float32) * 1000.0
    return image, labels


def _harden(image, healthy, labels, grid, texture, rng) -> np.ndarray:
    """The hard phantom's signal: see `make_phantom`. `healthy` is the tissue map without the tumour."""
    shape = healthy.shape
    under = _render(healthy, shape, texture)
    tumour = labels > 0
    # heterogeneous tumour signal: a stronger, finer texture inside the lesion
    image = np.where(tumour[..., None], image * (1.0 + 0.15 * _smooth_field(rng, shape, sigma=1.0))[..., None], image)
    # edema keeps part of the tissue it infiltrates
    keep = rng.uniform(0.3, 0.6)
    edema = (labels == EDEMA)[..., None]
    image = np.where(edema, (1 - keep) * image + keep * under, image)
    # borders that blur into the tissue around them (labels stay sharp, as a rater draws them)
    blur = rng.uniform(1.0, 2.5)
    weight = np.clip(ndimage.gaussian_filter(tumour.astype(np.float32), blur) * 2.0, 0, 1)[..., None]
    image = weight * image + (1 - weight) * under
    # white-matter hyperintensities: small FLAIR/T2-bright spots that are not tumour
    white = np.argwhere((healthy == _WM) & ~ndimage.binary_dilation(tumour, iterations=3))
    for _ in range(rng.integers(2, 7) if len(white) else 0):
        spot = _ellipsoid(grid, white[rng.integers(len(white))], rng.uniform(1.0, 3.0, 3))
        spot &= healthy == _WM
        spot &= ~tumour
        image[spot] = 0.3 * image[spot] + 0.7 * np.asarray(_CONTRAST[EDEMA], np.float32)
    # the scanner: a gamma per modality
    gamma = rng.uniform(0.7, 1.4, 4).astype(np.float32)
    return np.power(np.maximum(image, 0), gamma)


def _to_file_order(array: np.ndarray) -> np.ndarray:
    """RAS+ voxel order -> the LPS order that `LPS_AFFINE` describes (flip x and y)."""
    return np.ascontiguousarray(array[::-1, ::-1])


def _save(path: Path, data: np.ndarray, dtype, affine=LPS_AFFINE) -> None:
    image = nib.Nifti1Image(data.astype(dtype), affine)
    image.header.set_xyzt_units("mm", "sec")
    atomic_write(path, lambda tmp: nib.save(image, tmp))


#: Volumetric phantom generators by name: "shapes" (`make_phantom`, the default) and "anatomy", an
#: independently written one (`phantom_anatomy.py`) to check figures on data they were not tuned on.
GENERATORS = {"shapes": make_phantom, "anatomy": make_anatomical_phantom}


def write_dataset(out: str | Path, layout: str = "msd", cases: int = 4, shape=(96, 96, 64), seed: int = 0,
                  test_cases: int = 0, progress=None, difficulty: str = "easy", spacings=None,
                  generator: str = "shapes") -> Path:
    """Write `cases` labelled phantoms (and, for MSD, `test_cases` unlabelled ones) in `layout`.

    `spacings`: voxel sizes in mm, (x, y, z) per case, repeated when shorter than the cases (default
    1 mm): the same voxels under another scanner's protocol (thick slices, fine in-plane pixels).
    `generator`: a name in `GENERATORS`."""
    out = Path(out)
    if layout not in ("msd", "brats2021", "brats2023"):
        raise ValueError(f"layout must be msd, brats2021 or brats2023. Received: layout={layout!r}")
    if generator not in GENERATORS:
        raise ValueError(f"generator must be one of {', '.join(GENERATORS)}. Received: {generator!r}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}. Received: {difficulty!r}")
    out.mkdir(parents=True, exist_ok=True)
    training, testing = [], []
    for i in range(cases + (test_cases if layout == "msd" else 0)):
        image, labels = GENERATORS[generator](shape, seed=seed * 100003 + i, difficulty=difficulty)
        image, labels = _to_file_order(image), _to_file_order(from_internal(labels, layout))
        affine = LPS_AFFINE if not spacings else LPS_AFFINE @ np.diag(list(spacings[i % len(spacings)]) + [1.0])
        save = functools.partial(_save, affine=affine)
        labelled = i < cases
        if layout == "msd":
            cid = f"BRATS_{i + 1:03d}"
            sub = "imagesTr" if labelled else "imagesTs"
            save(out / sub / f"{cid}{NII}", image, np.float32)
            if labelled:
                save(out / "labelsTr" / f"{cid}{NII}", labels, np.uint8)
                training.append({"image": f"./imagesTr/{cid}{NII}", "label": f"./labelsTr/{cid}{NII}"})
            else:
                testing.append(f"./imagesTs/{cid}{NII}")
        else:
            suffixes, seg = BRATS_SUFFIXES[layout]
            cid = f"BraTS2021_{i:05d}" if layout == "brats2021" else f"BraTS-GLI-{i:05d}-000"
            for m, suffix in enumerate(suffixes):
                save(out / cid / f"{cid}{suffix}{NII}", image[..., m], np.float32)
            save(out / cid / f"{cid}{seg}{NII}", labels, np.uint8)
        if progress:
            progress(i + 1, cid)
    if layout == "msd":
        manifest = {
            "name": "BRATS", "description": "kerasbrain synthetic phantoms in MSD Task01 layout",
            "tensorImageSize": "4D", "reference": "synthetic", "licence": "CC-BY-SA 4.0", "release": "phantom",
            "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
            "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
            "numTraining": len(training), "numTest": len(testing), "training": training, "test": testing,
        }
        atomic_write(out / "dataset.json", lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=4)))
    return out


_LGG_VOLUME = (96, 96, 48)


def write_lgg(out: str | Path, patients: int = 6, slices: int = 12, shape=(256, 256), seed: int = 0,
              progress=None, difficulty: str = "easy") -> Path:
    """Write phantom slices in Buda's kaggle_3m layout: `<out>/kaggle_3m/<PATIENT>/<PATIENT>_<k>[_mask].tif`.

    Each patient is a volumetric phantom cut into `slices` axial slices; channels are T1
    (pre-contrast), FLAIR and T1Gd (post-contrast) scaled to uint8 like the real TIFFs, and the
    mask is the FLAIR abnormality (whole tumour) as 0/255. Slices above and below the tumour give
    the tumour-free slices the real dataset also has.
    """
    import cv2

    root = Path(out) / "kaggle_3m"
    for p in range(patients):
        # a coarse head volume, cut into evenly spaced axial slices and resized to `shape`
        image, labels = make_phantom(_LGG_VOLUME, seed=seed * 100003 + 50_000 + p, difficulty=difficulty)
        lgg = image[..., [1, 0, 2]]  # pre-contrast (T1), FLAIR, post-contrast (T1Gd)
        scale = np.percentile(lgg[lgg > 0], 99.5) if (lgg > 0).any() else 1.0
        lgg = np.clip(lgg / scale * 255.0, 0, 255).astype(np.uint8)
        depth = _LGG_VOLUME[2]
        zs = np.linspace(0.15 * depth, 0.85 * depth, slices).round().astype(int)
        pid = f"TCGA_KB_{p:04d}_{19900101 + p}"
        size = (int(shape[1]), int(shape[0]))
        for k, z in enumerate(zs):
            rgb = cv2.resize(np.ascontiguousarray(np.rot90(lgg[:, :, z])), size, interpolation=cv2.INTER_LINEAR)
            mask = cv2.resize(np.rot90(labels[:, :, z] > 0).astype(np.uint8) * 255, size,
                              interpolation=cv2.INTER_NEAREST)
            for path, data in ((root / pid / f"{pid}_{k + 1}.tif", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)),
                               (root / pid / f"{pid}_{k + 1}_mask.tif", mask)):
                write_image(path, data)
        if progress:
            progress(p + 1, pid)
    return root

