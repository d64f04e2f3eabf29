"""Grad-CAM pseudo-masks (seed 000): a classifier's evidence maps become tumour masks, with no drawing.

(`method="atlas"` seeds them instead from where a tumour image departs from the healthy heads of
the "no tumour" class, `healthy_atlas.py`; the rest of the chain is the same.)

For each image of a tumour class, the Grad-CAM (Grad-CAM++, LayerCAM; one encoder level or several
averaged; optionally against the "no tumour" class) map of that class (the image's label where it
has one, else the predicted class) is computed at the model's input size, scaled to [0, 1],
restricted to the head (the image's foreground: Otsu on the grey image, holes filled), thresholded
(Otsu over the map inside the head, or a percentile of it), reduced to its largest connected
components and, with `refine="grabcut"`, snapped to the image's edges (`pseudomask_refine.py`).
No-tumour images get an empty mask, the one pseudo-mask that is certain.

`write_pseudomask_dataset` writes them in the BRISC 2025 layout (class folders for the
classification task; images + masks, same stem, for the segmentation task), which the multitask
family trains on directly; masks are at each image's own size. Where the source dataset has drawn
masks (BRISC 2025, phantoms) each pseudo-mask is scored against them (Dice), and a figure per
sample shows original | Grad-CAM | pseudo-mask.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerasbrain.data.classes import BRISC_CODES, CLASSES, NO_TUMOR

_CODE_OF = {v: k for k, v in BRISC_CODES.items()}
ATLAS = "atlas"  # the seed map that needs no classifier: a tumour image's departure from healthy heads
SEED_MAP_TITLES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "layercam": "LayerCAM",
                   ATLAS: "departure from healthy heads"}


@dataclass(frozen=True)
class PseudoMaskSettings:
    method: str = "gradcam"  # or "gradcam++", "layercam"; or "atlas": deviation from healthy heads (healthy_atlas.py)
    layer: str = "P4"  # encoder level explained: P4 (stride 16; measured best), P5, P3, a block name, or "P3+P4+P5"
    contrast: bool = False  # explain the class against "no tumour" (evidence of normal tissue cancels)
    threshold: str = "otsu"  # "otsu" or "percentile"
    percentile: float = 90.0  # with threshold = "percentile": keep the map's top (100 - p) % inside the head
    components: int = 1  # largest connected components kept
    min_heat: float = 0.2  # never keep pixels whose normalised map is below this
    refine: str = "none"  # "grabcut": snap the mask to the image's edges (evaluation/pseudomask_refine.py)

    def __post_init__(self):
        from kerasbrain.evaluation.explain import METHODS
        from kerasbrain.evaluation.pseudomask_refine import REFINEMENTS

        if self.method not in METHODS + (ATLAS,):
            raise ValueError(f"method must be one of {', '.join(METHODS + (ATLAS,))}. Received: {self.method!r}")
        if self.refine not in REFINEMENTS:
            raise ValueError(f"refine must be one of {', '.join(REFINEMENTS)}. Received: {self.refine!r}")
        if self.threshold not in ("otsu", "percentile"):
            raise ValueError(f"threshold must be otsu or percentile. Received: {self.threshold!r}")
        if not 0 < self.percentile < 100:
            raise ValueError(f"percentile must be in (0, 100). Received: {self.percentile}")
        if self.components < 1:
            raise ValueError(f"components must be at least 1. Received: {self.components}")


def head_mask(rgb: np.ndarray) -> np.ndarray:
    """The head (non-background) of a slice: Otsu on the grey image, closed, holes filled, largest part."""
    import cv2

    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if grey.max() == grey.min():
        return np.zeros(grey.shape, bool)
    _, fg = cv2.threshold(cv2.GaussianBlur(grey, (5, 5), 0), 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    fg = largest_components(fg.astype(bool), 1)
    outside = (~fg).astype(np.uint8)  # fill holes: what the corner's flood does not reach is inside
    cv2.floodFill(outside, np.zeros((grey.shape[0] + 2, grey.shape[1] + 2), np.uint8), (0, 0), 2)
    return fg | (outside == 1)


def largest_components(mask: np.ndarray, keep: int) -> np.ndarray:
    """The `keep` largest 8-connected components of a boolean mask."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask.astype(bool)
    order = np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1][:keep] + 1
    return np.isin(labels, order)


def threshold_map(heat: np.ndarray, head: np.ndarray, settings: PseudoMaskSettings) -> np.ndarray:
    """Binary pseudo-mask from a [0, 1] heat map and the head mask."""
    import cv2

    inside = heat[head] if head.any() else heat.ravel()
    if inside.size == 0 or inside.max() <= 0:
        return np.zeros(heat.shape, bool)
    if settings.threshold == "percentile":
        cut = float(np.percentile(inside, settings.percentile))
    else:
        values = np.round(inside * 255).astype(np.uint8)[None]
        cut, _ = cv2.threshold(values, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        cut = float(cut) / 255.0
    mask = (heat > max(cut, settings.min_heat)) & (head if head.any() else True)
    return largest_components(mask, settings.components) if mask.any() else mask


def pseudo_masks(model, images: np.ndarray, labels: np.ndarray, settings: PseudoMaskSettings = PseudoMaskSettings(),
                 batch_size: int = 16, atlas=None, planes=None):
    """(pseudo-masks (N, H, W) bool, heat maps (N, H, W), explained classes (N,)) for uint8 RGB images:
    `seed_masks`, then `refine_masks`."""
    masks, heats, explained = seed_masks(model, images, labels, settings, batch_size, atlas, planes)
    return refine_masks(images, heats, masks, settings), heats, explained


def seed_masks(model, images: np.ndarray, labels: np.ndarray, settings: PseudoMaskSettings = PseudoMaskSettings(),
               batch_size: int = 16, atlas=None, planes=None):
    """(coarse masks (N, H, W) bool, seed maps (N, H, W) in [0, 1], explained classes (N,)), before refinement.

    `labels` (N,) are class indices, -1 where unknown (the predicted class is explained then).
    With `settings.method == "atlas"`, `atlas` (fitted `PlaneAtlases`) makes the maps and masks, each
    image against the atlas of its imaging plane (`planes`, one per image; unknown: all planes').
    """
    from kerasbrain.evaluation.explain import explain_classes

    if settings.method == ATLAS:
        if atlas is None:
            raise ValueError("method 'atlas' needs a healthy atlas fitted on 'no tumour' images")

        def classify(unlabelled):
            return np.asarray(model.predict_on_batch(unlabelled.astype(np.float32) / 255.0)["class"]).argmax(axis=1)

        return atlas.make_masks(images, labels, classify, planes)
    masks = np.zeros(images.shape[:3], bool)
    heats = np.zeros(images.shape[:3], np.float32)
    explained = np.zeros(len(images), np.int64)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].astype(np.float32) / 255.0
        known = labels[start:start + batch_size]
        probabilities = model.predict_on_batch(batch)["class"]
        target = np.where(known >= 0, known, np.asarray(probabilities).argmax(axis=1))
        heat, _ = explain_classes(model, batch, target, settings.method, settings.layer,
                                  NO_TUMOR if settings.contrast else None)
        for j, i in enumerate(range(start, start + len(batch))):
            explained[i], heats[i] = target[j], heat[j]
            if target[j] != NO_TUMOR:
                masks[i] = threshold_map(heat[j], head_mask(images[i]), settings)
    return masks, heats, explained


def refine_masks(images: np.ndarray, heats: np.ndarray, masks: np.ndarray, settings: PseudoMaskSettings) -> np.ndarray:
    """The coarse masks after `settings.refine` (a copy; unchanged with "none")."""
    from kerasbrain.evaluation.pseudomask_refine import grabcut_refine

    refined = masks.copy()
    if settings.refine == "grabcut":
        for i in np.flatnonzero(masks.any(axis=(1, 2))):
            refined[i] = grabcut_refine(images[i], heats[i], head_mask(images[i]), masks[i])
    return refined


def dice(truth: np.ndarray, prediction: np.ndarray) -> float:
    t, p = truth.astype(bool), prediction.astype(bool)
    total = t.sum() + p.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(t, p).sum() / total)


def brisc_stem(sample, label: int) -> str:
    """A file stem that is unique in the written dataset and carries the BRISC class code."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", sample.id.replace("/", "_"))
    match = re.search(r"_(gl|me|pi|no)(?:_|$)", stem)
    return stem if match and BRISC_CODES[match.group(1)] == label else f"{stem}_{_CODE_OF[label]}"


def healthy_training_images(samples, source="the dataset", minimum: int = 2) -> list:
    """The training split's "no tumour" images (their class known, never predicted) that a healthy atlas
    is fitted on; fewer than `minimum` is refused in one line naming `source`, before anything is
    trained or written."""
    healthy = [s for s in samples if s.label == NO_TUMOR and s.subset == "train"]
    if len(healthy) < minimum:
        raise ValueError(f"{source}: the healthy atlas needs at least {minimum} 'no tumour' training images, "
                         f"found {len(healthy)}; add some, or seed the masks with a class activation map "
                         f"(--cam / --method gradcam)")
    return healthy


def fit_atlas(samples, image_size: int, progress=print):
    """Healthy atlases (one per imaging plane) of `healthy_training_images(samples)`."""
    from kerasbrain.data.tumour_images import load_samples
    from kerasbrain.evaluation.healthy_atlas import PlaneAtlases, plane_of

    healthy = healthy_training_images(samples)
    images, _, _, _ = load_samples(healthy, image_size)
    atlas = PlaneAtlases(images, [plane_of(s.image.name) for s in healthy])
    planes = ", ".join(sorted(atlas.by_plane)) or "planes not named"
    progress(f"healthy atlas from {len(healthy)} 'no tumour' training images ({planes})")
    return atlas


def write_pseudomask_dataset(model, samples, image_size: int, out_dir, settings: PseudoMaskSettings = PseudoMaskSettings(),
                             figures: int = 4, progress=print, make_masks=None, drawn_ids=frozenset()) -> dict:
    """Pseudo-masks of every labelled image (or predicted class) written as a BRISC 2025 dataset at `out_dir`.

    `make_masks(images, labels) -> (masks, heat maps, explained classes)` replaces the class
    activation maps (a self-training round's segmenter, `experiments/self_training.py`); images
    whose id is in `drawn_ids` keep their drawn mask (a user's few drawings). Built in
    `<out_dir>.partial` and renamed when complete, so an interrupted run leaves no half-written
    dataset. Returns the summary (also in `summary.json`, `pseudomasks.csv`: each mask's source).
    """
    import cv2

    from kerasbrain.data.pictures import read_rgb
    from kerasbrain.data.tumour_images import load_samples, prepare_mask, read_binary_mask
    from kerasbrain.evaluation.figures import save_pseudomask_figure
    from kerasbrain.evaluation.healthy_atlas import plane_of
    from kerasbrain.files import write_csv, write_json

    if make_masks is None and "class" not in getattr(model, "tasks", ()):
        raise ValueError("pseudo-masks come from a class head's Grad-CAM: use a classifier or multitask model")
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ValueError(f"{out_dir}: already exists; choose a new folder for the pseudo-mask dataset")
    atlas = fit_atlas(samples, image_size, progress) if settings.method == ATLAS and make_masks is None else None
    refining = make_masks is None and settings.refine != "none"  # then the seeds are scored on their own too
    map_title = "segmenter" if make_masks is not None else SEED_MAP_TITLES.get(settings.method, settings.method)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    root = partial / "brisc2025"
    rows, scores, drawn_figures = [], [], {}
    for start in range(0, len(samples), 64):
        chunk = samples[start:start + 64]
        images, labels, _, _ = load_samples(chunk, image_size)
        planes = [plane_of(s.image.name) for s in chunk]
        if make_masks is None:
            seeds, heats, explained = seed_masks(model, images, labels, settings, atlas=atlas, planes=planes)
            masks = refine_masks(images, heats, seeds, settings)
        else:
            masks, heats, explained = make_masks(images, labels)
            seeds = masks
        for i, sample in enumerate(chunk):
            label = int(explained[i])
            stem = brisc_stem(sample, label)
            original = read_rgb(sample.image)
            drawn = sample.id in drawn_ids and sample.mask is not None
            full = (read_binary_mask(sample.mask, original.shape[:2]).astype(np.uint8) if drawn else
                    cv2.resize(masks[i].astype(np.uint8), original.shape[1::-1], interpolation=cv2.INTER_NEAREST))
            subset = sample.subset
            cls_dir = root / "classification_task" / subset / CLASSES[label]
            seg_dir = root / "segmentation_task" / subset
            for folder in (cls_dir, seg_dir / "images", seg_dir / "masks"):
                folder.mkdir(parents=True, exist_ok=True)
            suffix = sample.image.suffix.lower()
            shutil.copyfile(sample.image, cls_dir / f"{stem}{suffix}")
            shutil.copyfile(sample.image, seg_dir / "images" / f"{stem}{suffix}")
            cv2.imwrite(str(seg_dir / "masks" / f"{stem}.png"), full * 255)
            row = {"id": sample.id, "stem": stem, "subset": subset, "class": CLASSES[label],
                   "label_known": int(labels[i] >= 0), "area_fraction": round(float(masks[i].mean()), 5),
                   "mask_source": "drawn" if drawn else "pseudo", "dice_vs_drawn": ""}
            truth = None
            if sample.mask is not None and label != NO_TUMOR and not drawn:
                truth = prepare_mask(read_binary_mask(sample.mask, original.shape[:2]), image_size).astype(bool)
                row["dice_vs_drawn"] = round(dice(truth, masks[i]), 5)
                scores.append((truth, seeds[i], masks[i]))
            rows.append(row)
            if drawn_figures.get(label, 0) < figures and label != NO_TUMOR:
                drawn_figures[label] = drawn_figures.get(label, 0) + 1
                save_pseudomask_figure(partial / "figures" / f"{stem}.png", images[i], heats[i], masks[i],
                                       f"{CLASSES[label]}: {sample.id}", truth=truth, map_title=map_title,
                                       seed_mask=seeds[i] if refining else None)
        progress(f"pseudo-masks: {min(start + 64, len(samples))}/{len(samples)} images")
    summary = {"images": len(rows), "settings": settings.__dict__,
               "tumour_images": sum(r["class"] != "no_tumor" for r in rows),
               "drawn_masks": sum(r["mask_source"] == "drawn" for r in rows)}
    if scores:
        truth = np.stack([t for t, _, _ in scores])
        stages = [("seeds_vs_drawn", 1, "seeds before refinement")] if refining else []
        for key, column, what in stages + [("vs_drawn", 2, "pseudo-mask")]:
            pseudo = np.stack([row[column] for row in scores])
            summary[key] = {"n": len(scores), "pooled_dice": dice(truth, pseudo),
                            "mean_dice": float(np.mean([dice(row[0], row[column]) for row in scores]))}
            progress(f"{what} Dice against drawn masks: pooled {summary[key]['pooled_dice']:.4f}, "
                     f"mean {summary[key]['mean_dice']:.4f} over {len(scores)} images")
    write_csv(partial / "pseudomasks.csv", rows)
    write_json(partial / "summary.json", summary)
    partial.rename(out_dir)
    return summary
