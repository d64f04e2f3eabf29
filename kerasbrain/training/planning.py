"""Plan a volumetric training from a dataset's fingerprint: target spacing, patch, poolings, batch size.

nnU-Net's self-configuration, in kerasbrain's terms (`kerasbrain data plan`):

- **Target spacing**: the median voxel size per axis. A dataset of thick slices (the coarsest axis
  more than 3x the finest, and along it fewer than a third of the other axes' voxels) is resampled
  along that axis to its 10th percentile instead (no coarser than the other axes), so the few cases
  with finer slices do not lose what they have and the rest are not blurred further.
- **Patch**: the median head (in the target spacing) whole, in sides that are multiples of the
  network's divisor; while the estimated training memory at batch 2 exceeds the budget, the side
  that covers the largest share of the median head shrinks by one divisor step.
- **Poolings** (`[model] strides`, `depth`): at each level the axes whose voxels are at most twice
  the finest poolable axis's, while at least 8 voxels are left along them (so thick slices wait
  until the in-plane voxels have grown to their size, and the bottleneck keeps 4 voxels), up to the
  base config's depth; sides multiples of the product of each axis's strides. Kernels
  (`[model] kernel_sizes`) are 1 voxel wide along an axis until its voxels are within 2x of the
  finest, 3 from then on.
- **Batch**: as many patches as the budget holds, at least 2, and no more than 5% of the
  dataset's voxels in one batch (a batch that sees most of a small dataset at once only
  averages it away).

The memory estimate is a fixed cost plus a cost per feature-map value the backward pass keeps,
fitted per architecture to the peak memory `bench/plan_memory.py` measured (TensorFlow, float32,
several patches and batches, on this project's CPU machine); JAX and bfloat16 training need less.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from kerasbrain.data.fingerprint import DatasetFingerprint
from kerasbrain.windows import stage_strides, stride_divisors

ANISOTROPY = 3.0  # coarsest / finest axis beyond which a dataset counts as thick-sliced
MIN_BOTTLENECK = 4  # voxels per side left after the last pooling
MIN_BATCH = 2
BATCH_SHARE = 0.05  # at most this share of the dataset's voxels in one batch
# Peak memory = fixed GB + bytes per kept value x values, per architecture, least squares over the
# points in bench/results_cpu_2026-12-06/plan_memory*.jsonl (the fixed part grows with the weights
# and the optimizer's state: ResEnc-M has more of both)
MEMORY_FIT = {"unet": (1.25, 17.0), "resenc": (1.78, 18.8)}


@dataclass(frozen=True)
class Plan:
    target_spacing: tuple[float, float, float]
    median_shape: tuple[float, float, float]  # the median head in voxels of the target spacing
    patch_size: tuple[int, int, int]
    depth: int
    batch_size: int
    memory_gb: float  # the budget
    estimated_gb: float  # the estimate at this patch and batch
    reasons: tuple[str, ...]  # one line per choice, for the user and the plan file
    strides: tuple = ()  # each pooling's stride per axis; () = 2 on every axis at every level
    kernel_sizes: tuple = ()  # each level's kernel per axis; () = 3 everywhere

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def kept_values(patch, model) -> float:
    """Feature-map values one patch keeps for the backward pass: every convolution's output, per level
    (an estimate's unit, not an exact count)."""
    blocks = ()
    if model.architecture == "resenc":  # residual blocks per stage, ResEnc-M's unless the config says
        from kerasbrain.models.resenc_unet import RESENC_M_BLOCKS

        blocks = tuple(model.blocks_per_stage or RESENC_M_BLOCKS[:model.depth + 1])
    total, steps = 0.0, (1, 1, 1)
    strides = stage_strides(model.strides, model.depth)
    for level in range(model.depth + 1):
        if level:
            steps = tuple(a * s for a, s in zip(steps, strides[level - 1]))
        voxels = float(np.prod([math.ceil(p / k) for p, k in zip(patch, steps)]))
        filters = min(model.base_filters * 2**level, model.max_filters)
        encoder = 2 * (blocks[level] if level < len(blocks) else 1)
        decoder = 2 if level < model.depth else 0
        total += voxels * filters * (encoder + decoder)
    return total


def estimate_training_gb(patch, batch_size: int, model) -> float:
    """Peak memory of training `model` (a `ModelConfig`) on `batch_size` patches of `patch`, in GB."""
    fixed_gb, bytes_per_value = MEMORY_FIT[model.architecture]
    return fixed_gb + bytes_per_value * batch_size * kept_values(patch, model) / 1e9


def choose_target_spacing(fingerprint: DatasetFingerprint) -> tuple[tuple[float, float, float], str]:
    """The median spacing, or the thick-slice rule of the module docstring; and why."""
    spacings = fingerprint.spacings
    target = np.median(spacings, axis=0)
    coarse = int(np.argmax(target))
    others = [a for a in range(3) if a != coarse]
    sizes = np.median(fingerprint.cropped_shapes * spacings / target, axis=0)
    if target[coarse] > ANISOTROPY * target[others].min() and sizes[coarse] * ANISOTROPY < sizes[others].min():
        finer = max(float(np.percentile(spacings[:, coarse], 10)), float(target[others].max()))
        reason = (f"target spacing: thick slices along axis {coarse} (median {target[coarse]:g} mm against "
                  f"{target[others].min():g} mm, {sizes[coarse]:.0f} voxels against {sizes[others].min():.0f}): "
                  f"that axis at its 10th percentile, {finer:g} mm; the others at their median")
        target[coarse] = finer
    else:
        reason = f"target spacing: the median voxel size, {' x '.join(f'{s:g}' for s in target)} mm"
    return tuple(round(float(s), 4) for s in target), reason


def choose_strides(patch, spacing, max_depth: int) -> tuple[tuple[int, int, int], ...]:
    """Each pooling's stride per axis (nnU-Net's rule): at every level, pool the axes whose voxels are at
    most twice as long as the finest of those still long enough to pool (at least 2 x MIN_BOTTLENECK
    voxels left), up to `max_depth` levels. Thick slices wait until the in-plane voxels have grown
    to their size; an isotropic patch pools every axis at every level."""
    sizes, lengths, stages = [float(p) for p in patch], [float(s) for s in spacing], []
    while len(stages) < max_depth:
        poolable = [a for a in range(3) if sizes[a] >= 2 * MIN_BOTTLENECK]
        if not poolable:
            break
        finest = min(lengths[a] for a in poolable)
        stage = tuple(2 if a in poolable and lengths[a] <= 2 * finest else 1 for a in range(3))
        stages.append(stage)
        sizes = [s / k for s, k in zip(sizes, stage)]
        lengths = [s * k for s, k in zip(lengths, stage)]
    return tuple(stages)


def choose_kernels(strides, spacing) -> tuple[tuple[int, int, int], ...]:
    """Each level's kernel per axis (nnU-Net's rule): 3 along an axis once its voxels are at most twice
    the finest axis's at that level (and from then on), 1 before: slices too thick to mix are
    convolved within themselves until pooling has brought the others to their size."""
    lengths, wide, kernels = [float(s) for s in spacing], [False] * 3, []
    for level in range(len(strides) + 1):
        wide = [w or lengths[a] <= 2 * min(lengths) for a, w in enumerate(wide)]
        kernels.append(tuple(3 if w else 1 for w in wide))
        if level < len(strides):
            lengths = [s * k for s, k in zip(lengths, strides[level])]
    return tuple(kernels)


def _multiple(n: float, step: int) -> int:
    return max(step, int(math.ceil(n / step)) * step)


def _fit(patch, spacing, max_depth: int):
    """The strides for `patch`, and the patch rounded up to their multiples (repeated until stable)."""
    while True:
        strides = choose_strides(patch, spacing, max_depth)
        if not strides:
            raise ValueError(f"a {list(patch)} patch leaves nothing to pool (each side needs "
                             f"{2 * MIN_BOTTLENECK} voxels)")
        rounded = [_multiple(p, d) for p, d in zip(patch, stride_divisors(strides))]
        if rounded == list(patch):
            return strides, rounded
        patch = rounded


def plan_training(fingerprint: DatasetFingerprint, model, memory_gb: float = 8.0) -> Plan:
    """A plan for `fingerprint`'s dataset with the base `model` config (`training/config.ModelConfig`)
    under `memory_gb` of training memory. ValueError when not even the smallest patch fits."""
    spacing, spacing_reason = choose_target_spacing(fingerprint)
    heads = fingerprint.cropped_shapes * fingerprint.spacings / np.asarray(spacing)
    median = np.median(heads, axis=0)
    patch, shrunk = [math.ceil(m) for m in median], False
    for _ in range(100_000):  # each step shrinks one side; rounding to new strides may add a little back
        strides, patch = _fit(patch, spacing, model.depth)
        depth = len(strides)
        at_depth = dataclasses.replace(model, depth=depth, strides=_stored(strides, (2, 2, 2)),
                                       blocks_per_stage=model.blocks_per_stage[:depth + 1])
        if estimate_training_gb(patch, MIN_BATCH, at_depth) <= memory_gb:
            break
        divisors = stride_divisors(strides)
        shrinkable = [a for a in range(3) if patch[a] - divisors[a] >= 2 * MIN_BOTTLENECK]
        if not shrinkable:
            raise ValueError(f"{memory_gb:g} GB of training memory does not hold even batch {MIN_BATCH} of "
                             f"{patch} patches ({estimate_training_gb(patch, MIN_BATCH, at_depth):.1f} GB estimated)")
        axis = max(shrinkable, key=lambda a: patch[a] / median[a])
        patch[axis] -= divisors[axis]
        shrunk = True
    else:
        raise ValueError(f"no patch found that fits {memory_gb:g} GB (the search did not settle)")
    strides, kernels = _stored(strides, (2, 2, 2)), _stored(choose_kernels(strides, spacing), (3, 3, 3))
    fixed_gb = MEMORY_FIT[model.architecture][0]
    per_patch = estimate_training_gb(patch, 1, at_depth) - fixed_gb
    fitting = int((memory_gb - fixed_gb) // per_patch)
    dataset_voxels = float(np.prod(heads, axis=1).sum())
    share_cap = int(BATCH_SHARE * dataset_voxels // float(np.prod(patch)))
    batch = max(MIN_BATCH, min(fitting, share_cap))
    estimated = estimate_training_gb(patch, batch, at_depth)
    head = " x ".join(f"{m:.0f}" for m in median)
    reasons = (
        spacing_reason,
        f"patch: {'shrunk from ' if shrunk else ''}the median head ({head} voxels) "
        f"{'to fit ' if shrunk else 'whole, within '}{memory_gb:g} GB at batch {MIN_BATCH}: {patch}",
        f"depth: {depth} poolings (the base config's {model.depth}"
        f"{'' if depth == model.depth else f', fewer so every side keeps {MIN_BOTTLENECK} voxels'}); "
        + (f"strides per axis {[list(s) for s in strides]} (thick slices pooled once the in-plane voxels "
           f"have grown to their size); " if strides else "every axis pooled at every level; ")
        + f"sides multiples of {list(stride_divisors(stage_strides(strides, depth)))}"
        + (f"; kernels per level {[list(k) for k in kernels]} (1 voxel wide along slices still too thick to mix)"
           if kernels else ""),
        f"batch: {batch} ({fitting} fit the memory; 5% of the dataset's {dataset_voxels / 1e6:.1f} M head voxels "
        f"hold {share_cap}; at least {MIN_BATCH})",
        f"estimated training memory {estimated:.1f} GB of {memory_gb:g} (float32; bfloat16 needs less)",
    )
    return Plan(spacing, tuple(round(float(m), 1) for m in median), tuple(patch), depth, batch, float(memory_gb),
                round(estimated, 2), reasons, strides, kernels)


def _stored(levels, default) -> tuple:
    """Per-level strides or kernels as a config stores them: () when every level is `default`."""
    return () if all(level == default for level in levels) else tuple(levels)


def planned_config(base, plan: Plan):
    """`base` (a volumetric `Config`) with the plan's spacing, patch, depth, batch and inference window."""
    model = base.model
    if model.deep_supervision >= plan.depth:
        model = dataclasses.replace(model, deep_supervision=plan.depth - 1)
    blocks = model.blocks_per_stage[:plan.depth + 1] if model.blocks_per_stage else ()
    return dataclasses.replace(
        base,
        data=dataclasses.replace(base.data, target_spacing=plan.target_spacing),
        model=dataclasses.replace(model, depth=plan.depth, blocks_per_stage=blocks, strides=plan.strides,
                                  kernel_sizes=plan.kernel_sizes),
        training=dataclasses.replace(base.training, patch_size=plan.patch_size, batch_size=plan.batch_size),
        inference=dataclasses.replace(base.inference, window=plan.patch_size),
    )
