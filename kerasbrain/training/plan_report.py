"""What `kerasbrain data plan` writes: the planned config (TOML), the plan and fingerprint (JSON), and a
picture of the spacings and head sizes the plan was chosen from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasbrain.config import config_to_toml
from kerasbrain.data.fingerprint import DatasetFingerprint
from kerasbrain.files import atomic_write, write_json, write_text
from kerasbrain.training.planning import Plan

AXES = ("x (R)", "y (A)", "z (S)")


def plan_figure(fingerprint: DatasetFingerprint, plan: Plan, path) -> Path:
    """Per axis: each case's voxel size against the target spacing, and each case's head (in the
    target spacing) against the patch side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spacings = fingerprint.spacings
    heads = fingerprint.cropped_shapes * spacings / np.asarray(plan.target_spacing)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, colour in zip(range(3), ("tab:blue", "tab:orange", "tab:green")):
        jitter = axis + np.linspace(-0.2, 0.2, len(spacings))
        axes[0].scatter(jitter, spacings[:, axis], s=8, color=colour, alpha=0.6)
        axes[0].hlines(plan.target_spacing[axis], axis - 0.3, axis + 0.3, color="black")
        axes[1].scatter(jitter, heads[:, axis], s=8, color=colour, alpha=0.6)
        axes[1].hlines(plan.patch_size[axis], axis - 0.3, axis + 0.3, color="black")
    for ax, title in zip(axes, ("voxel size per case (mm); line: target spacing",
                                "head per case (voxels of the target spacing); line: patch side")):
        ax.set_xticks(range(3), AXES)
        ax.set_title(title, fontsize=10)
    fig.suptitle(f"{len(fingerprint.cases)} cases ({fingerprint.layout}): patch {list(plan.patch_size)}, "
                 f"depth {plan.depth}, batch {plan.batch_size}, ~{plan.estimated_gb:g} of {plan.memory_gb:g} GB",
                 fontsize=10)
    fig.tight_layout()
    written = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return written


def write_plan(config, plan: Plan, fingerprint: DatasetFingerprint, out, header: tuple[str, ...] = ()) -> list[Path]:
    """OUT.toml (the config, the plan's reasons as comments), OUT.json (plan and fingerprint) and OUT.png."""
    out = Path(out)
    return [write_text(out, config_to_toml(config, header + plan.reasons)),
            write_json(out.with_suffix(".json"), {"plan": plan.to_dict(), "fingerprint": fingerprint.to_dict()}),
            plan_figure(fingerprint, plan, out.with_suffix(".png"))]
