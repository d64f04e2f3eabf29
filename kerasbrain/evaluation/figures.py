"""Pictures people look at: label overlays on the slice with the most tumour, and seed 002's slice figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasbrain.files import atomic_write

#: RGBA per internal label: necrotic core red, edema green, enhancing yellow (BraTS viewer colours).
LABEL_COLOURS = {1: (1.0, 0.1, 0.1, 0.6), 2: (0.1, 0.9, 0.1, 0.45), 3: (1.0, 0.9, 0.0, 0.6)}


def tumour_slice(labels: np.ndarray, axis: int = 2) -> int:
    """Index of the slice along `axis` with the most tumour voxels (the middle slice if none)."""
    other = tuple(a for a in range(3) if a != axis)
    area = (labels > 0).sum(axis=other)
    return int(np.argmax(area)) if area.any() else labels.shape[axis] // 2


def _rgba(labels2d):
    rgba = np.zeros(labels2d.shape + (4,), dtype=np.float32)
    for value, colour in LABEL_COLOURS.items():
        rgba[labels2d == value] = colour
    return rgba


def save_overlay(path, image: np.ndarray, prediction: np.ndarray, truth: np.ndarray | None = None,
                 title: str = "", modality: int = 0) -> Path:
    """PNG of the axial slice with most predicted tumour: MRI | prediction overlay | truth overlay.

    `image` is (X, Y, Z, C) canonical RAS+; slices are drawn radiologically (anterior up, the
    patient's right on the left), as the web app's viewer draws them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = tumour_slice(prediction if prediction.any() or truth is None else truth)
    panels = [("MRI", None), ("prediction", prediction)] + ([("ground truth", truth)] if truth is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.3))
    background = image[::-1, :, z, modality].T  # x reversed: the patient's right on the left
    for ax, (name, labels) in zip(np.atleast_1d(axes), panels):
        ax.imshow(background, cmap="gray", origin="lower")
        if labels is not None:
            ax.imshow(_rgba(labels[::-1, :, z].T), origin="lower")
        ax.set_title(f"{name} (z={z})")
        ax.axis("off")
    handles = [matplotlib.patches.Patch(color=c[:3], label=n) for c, n in
               zip(LABEL_COLOURS.values(), ("necrotic/non-enhancing core", "edema", "enhancing"))]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


def save_slice_figure(path, image: np.ndarray, probability: np.ndarray, truth: np.ndarray | None = None) -> Path:
    """Original | ground truth (if given) | prediction heatmap, as seed 002 shows its results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("original (FLAIR)", image[..., 1], "gray")]
    if truth is not None:
        panels.append(("ground truth", truth, "gray"))
    panels.append(("prediction heatmap", probability, "hot"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.2))
    for ax, (title, data, cmap) in zip(np.atleast_1d(axes), panels):
        shown = ax.imshow(data, cmap=cmap, vmin=0, vmax=255 if data.dtype == np.uint8 and data.max() > 1 else 1)
        ax.set_title(title)
        ax.axis("off")
        if title == "prediction heatmap":
            fig.colorbar(shown, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


def save_class_figure(path, image: np.ndarray, class_probabilities=None, mask_probability=None) -> Path:
    """Original | mask heat map | predicted mask on the image, titled with the predicted class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasbrain.data.classes import CLASS_TITLES

    panels = [("original", image, None)]
    if mask_probability is not None:
        panels += [("mask probability", mask_probability, "hot"), ("predicted mask", image, None)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.4))
    for ax, (title, data, cmap) in zip(np.atleast_1d(axes), panels):
        ax.imshow(data, cmap=cmap, vmin=0, vmax=1 if cmap else None)
        if title == "predicted mask":
            ax.contour(mask_probability >= 0.5, levels=[0.5], colors="red", linewidths=1.2)
        ax.set_title(title)
        ax.axis("off")
    if class_probabilities is not None:
        c = int(np.argmax(class_probabilities))
        fig.suptitle(f"{CLASS_TITLES[c]} ({class_probabilities[c]:.2f})")
    fig.tight_layout()
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


def save_explanation_figure(path, image: np.ndarray, heat: np.ndarray, mask_probability, class_probabilities,
                            explained: int, method: str) -> Path:
    """Original | heat map over the image | predicted mask (multi-task) | class probabilities."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasbrain.data.classes import CLASS_TITLES

    n = 4 if mask_probability is not None else 3
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 4.4))
    axes[0].imshow(image)
    axes[0].set_title("original")
    axes[1].imshow(image)
    axes[1].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[1].set_title(f"{method}: {CLASS_TITLES[explained]}")
    if mask_probability is not None:
        axes[2].imshow(image)
        axes[2].contour(mask_probability >= 0.5, levels=[0.5], colors="red", linewidths=1.2)
        axes[2].set_title("predicted mask")
    for ax in axes[:n - 1]:
        ax.axis("off")
    bars = axes[n - 1]
    bars.barh(range(len(CLASS_TITLES)), class_probabilities, color=["C3" if i == explained else "C0"
                                                                  for i in range(len(CLASS_TITLES))])
    bars.set_yticks(range(len(CLASS_TITLES)), CLASS_TITLES)
    bars.set_xlim(0, 1)
    bars.invert_yaxis()
    bars.set_title("prediction")
    fig.tight_layout()
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


def save_history_curves(path, series: dict[str, list], titles: tuple[str, ...]) -> Path:
    """Per-epoch curves of several runs side by side: `series[run][i]` is panel i's values for `run`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(titles), figsize=(5.5 * len(titles), 4))
    axes = np.atleast_1d(axes)
    for name, panels in series.items():
        for ax, values in zip(axes, panels):
            ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    for ax, title in zip(axes, titles):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


def save_candidate_scores(path, rows: list[dict], metric_name: str) -> Path:
    """crossval's candidates as horizontal bars: score without and with each one's post-processing, best first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["score"])
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.45 * len(rows)))
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r["score_off"] for r in rows], 0.4, label="no post-processing", color="0.7")
    ax.barh(y + 0.2, [r["score"] for r in rows], 0.4, label="its best post-processing", color="tab:blue")
    ax.set_yticks(y, [r["candidate"] for r in rows], fontsize=8)
    ax.set_xlabel(f"mean WT/TC/ET {metric_name}, out-of-fold cases")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


def save_filtering_curves(path, result: dict) -> Path:
    """QU-BraTS's panels: Dice, filtered TP ratio and filtered TN ratio against 100 - threshold, per
    region, the uncertainty (solid) against its shuffled (dashed) and edge (dotted) controls; `result` as
    uncertainty.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = 100 - np.asarray(result["thresholds"], float)
    rows = (("dice", "Dice of the voxels kept"), ("ftp", "filtered TP ratio"), ("ftn", "filtered TN ratio"))
    regions = list(result["mean"])
    fig, axes = plt.subplots(len(rows), len(regions), figsize=(4 * len(regions), 2.8 * len(rows)), sharex=True)
    for j, region in enumerate(regions):
        for i, (key, title) in enumerate(rows):
            ax = axes[i, j]
            for kind, style in (("uncertainty", "-o"), ("shuffled", "--s"), ("edge", ":^")):
                if kind not in result["mean"][region]:
                    continue
                curve = result["mean"][region][kind]
                ax.plot(x, curve[key], style, label=f"{kind} (AUC {curve['auc_' + key]:.3f})", markersize=4)
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            if i == 0:
                scores = result["mean"][region]
                ax.set_title(f"{region}: score {scores['uncertainty']['score']:.3f} (shuffled "
                             f"{scores['shuffled']['score']:.3f}" + (f", edge {scores['edge']['score']:.3f}"
                                                                     if "edge" in scores else "") + ")", fontsize=9)
            if j == 0:
                ax.set_ylabel(title)
            if i == len(rows) - 1:
                ax.set_xlabel("100 - uncertainty threshold")
    fig.suptitle(f"uncertainty filtering (QU-BraTS), mean of {result['cases']} cases", fontsize=10)
    fig.tight_layout()
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


def _wrapped(title: str, width: int = 30) -> str:
    """A panel title folded onto lines of at most `width` characters, so neighbours do not overlap."""
    import textwrap

    return "\n".join(textwrap.wrap(title, width))


def save_pseudomask_figure(path, image: np.ndarray, heat: np.ndarray, pseudo_mask: np.ndarray, title: str,
                           output=None, truth=None, map_title: str = "Grad-CAM", seed_mask=None) -> Path:
    """Seed 000's figure: original | seed map overlay (`map_title`) | pseudo-mask | segmentation output
    (when given).

    `truth`, where the dataset has a drawn mask, is outlined in green on the pseudo-mask and output
    panels; `seed_mask`, the mask before refinement, in cyan on the pseudo-mask panel.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 4 if output is not None else 3
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 4.3))
    axes[0].imshow(image)
    axes[0].set_title("original")
    axes[1].imshow(image)
    axes[1].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[1].set_title(_wrapped(map_title))
    axes[2].imshow(image)
    axes[2].imshow(np.ma.masked_where(pseudo_mask == 0, pseudo_mask), cmap="autumn", alpha=0.5, vmin=0, vmax=1)
    drawn = truth is not None and truth.any()
    if drawn:
        axes[2].contour(truth, levels=[0.5], colors="lime", linewidths=1.0)
    if seed_mask is not None and seed_mask.any():
        axes[2].contour(seed_mask, levels=[0.5], colors="cyan", linewidths=1.0)
    axes[2].set_title(_wrapped("pseudo-mask" + (" (green: drawn)" if drawn else "")
                               + (" (cyan: before refinement)" if seed_mask is not None else "")))
    if output is not None:
        axes[3].imshow(image)
        if drawn:
            axes[3].contour(truth, levels=[0.5], colors="lime", linewidths=1.0)
        axes[3].contour(output >= 0.5, levels=[0.5], colors="red", linewidths=1.2)
        axes[3].set_title("segmentation output")
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title)
    # Fixed margins that fit titles of two lines: pseudo-mask sets draw a dozen of these each, and
    # tight_layout's extra rendering pass cost 40 % of every one (0.23 -> 0.14 s a figure, ad hoc)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.8, wspace=0.04)
    path = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path
