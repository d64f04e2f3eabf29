"""The window-size convention: every spatial side a network sees is a multiple of its divisor.

A U-Net of depth d halves its input d times, so sides must be multiples of 2**d; one that leaves
thick slices unpooled at some levels (per-axis `strides`) needs each side a multiple of its own
axis's product (`axis_divisors`); an encoder U-Net's divisor is its encoder's total stride (32).
Every kerasbrain network answers `size_divisor` and `spatial_dims` (the 3-D U-Nets also
`axis_divisors`); this module is the one place that reads them, so training patches, inference
windows, export signatures and warm-up requests follow one rule.
"""

from __future__ import annotations

import math


def size_divisor(model) -> int:
    """The multiple every input side must be (a kerasbrain network, or any model with `depth`)."""
    divisor = getattr(model, "size_divisor", None)
    if divisor is None:
        depth = getattr(model, "depth", None)
        if depth is None:
            raise ValueError(f"{type(model).__name__} states neither size_divisor nor depth")
        divisor = 2**depth
    return int(divisor)


def stage_strides(strides, depth: int, dims: int = 3) -> tuple[tuple[int, ...], ...]:
    """Each of a U-Net's `depth` poolings per axis, checked: () or None is 2 everywhere; else `depth`
    entries of 1 or 2 per axis, each pooling at least one axis (nnU-Net's per-axis pooling, which
    leaves thick slices unpooled until the spacings match)."""
    if not strides:
        return ((2,) * dims,) * int(depth)
    stages = tuple(tuple(int(s) for s in stage) for stage in strides)
    if len(stages) != depth or any(len(s) != dims or not set(s) <= {1, 2} or 2 not in s for s in stages):
        raise ValueError(f"strides must be {depth} entries (one per pooling) of {dims} sides, each 1 or 2 and at "
                         f"least one 2. Received: {strides}")
    return stages


def level_kernels(kernel_sizes, depth: int, dims: int = 3) -> tuple[tuple[int, ...], ...]:
    """Each level's convolution kernel per axis, checked: () or None is 3 everywhere; else `depth` + 1
    entries of 1 or 3 per axis (nnU-Net's 1-voxel-wide kernels along slices too thick to mix yet)."""
    if not kernel_sizes:
        return ((3,) * dims,) * (int(depth) + 1)
    levels = tuple(tuple(int(k) for k in level) for level in kernel_sizes)
    if len(levels) != depth + 1 or any(len(k) != dims or not set(k) <= {1, 3} for k in levels):
        raise ValueError(f"kernel_sizes must be {depth + 1} entries (one per level) of {dims} sides, each 1 or 3. "
                         f"Received: {kernel_sizes}")
    return levels


def stride_divisors(strides) -> tuple[int, ...]:
    """The multiple each input side must be for these poolings (the product per axis)."""
    return tuple(math.prod(s[axis] for s in strides) for axis in range(len(strides[0])))


def axis_divisors(model) -> tuple[int, ...]:
    """Per axis, the multiple every input side must be (`size_divisor` on every axis for networks that
    pool every axis alike)."""
    divisors = getattr(model, "axis_divisors", None)
    return tuple(int(d) for d in divisors) if divisors else (size_divisor(model),) * spatial_dims(model)


def spatial_dims(model) -> int:
    """2 for slice networks, 3 for volumetric ones."""
    dims = getattr(model, "spatial_dims", None)
    if dims not in (2, 3):
        raise ValueError(f"{type(model).__name__} is not a kerasbrain segmentation network (no spatial_dims)")
    return int(dims)


def check_window(window, divisor, what: str = "window") -> tuple[int, ...]:
    """`window` as a tuple, or a ValueError naming `what` when a side is not a multiple of `divisor`
    (one number, or one per axis)."""
    window = tuple(int(w) for w in window)
    divisors = tuple(divisor) if isinstance(divisor, (list, tuple)) else (divisor,) * len(window)
    if len(set(divisors)) == 1:
        divisor = divisors[0]
    if any(w <= 0 or w % d for w, d in zip(window, divisors)):
        raise ValueError(f"{what} sides must be positive multiples of {divisor} for this model. Received: {window}")
    return window
