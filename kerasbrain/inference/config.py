"""Sliding-window inference settings, the `[inference]` section of a volumetric run's config.

Kept apart from the prediction code so that reading a config imports neither NIfTI nor SciPy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InferenceConfig:
    window: tuple[int, int, int] = (128, 128, 128)
    overlap: float = 0.5
    batch_size: int = 1
    mirror: bool = False
    threshold: float = 0.5
    compile_mode: str = "auto"
    precision: str = "auto"  # "fp32", "bf16" or "auto"; see kerasbrain.runtime
    blend: str = "auto"  # where windows are blended: "device", "host" or "auto"; see kerasbrain.runtime
