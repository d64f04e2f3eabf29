"""The window-size convention: every spatial side a network sees is a multiple of its divisor.

A U-Net of depth d halves its input d times, so sides must be multiples of 2**d; an encoder
U-Net's divisor is its encoder's total stride (32). Every kerasbrain network answers
`size_divisor` and `spatial_dims`; this module is the one place that reads them, so training
patches, inference windows, export signatures and warm-up requests follow one rule.
"""

from __future__ import annotations


def size_divisor(model) -> int:
    """The multiple every input side must be (a kerasbrain network, or any model with `depth`)."""
    divisor = getattr(model, "size_divisor", None)
    if divisor is None:
        depth = getattr(model, "depth", None)
        if depth is None:
            raise ValueError(f"{type(model).__name__} states neither size_divisor nor depth")
        divisor = 2**depth
    return int(divisor)


def unet_divisor(depth: int) -> int:
    """The divisor of a U-Net of `depth` downsamplings, for checks made before the model exists."""
    return 2**int(depth)


def spatial_dims(model) -> int:
    """2 for slice networks, 3 for volumetric ones."""
    dims = getattr(model, "spatial_dims", None)
    if dims not in (2, 3):
        raise ValueError(f"{type(model).__name__} is not a kerasbrain segmentation network (no spatial_dims)")
    return int(dims)


def check_window(window, divisor: int, what: str = "window") -> tuple[int, ...]:
    """`window` as a tuple, or a ValueError naming `what` when a side is not a multiple of `divisor`."""
    window = tuple(int(w) for w in window)
    if any(w <= 0 or w % divisor for w in window):
        raise ValueError(f"{what} sides must be positive multiples of {divisor} for this model. Received: {window}")
    return window
