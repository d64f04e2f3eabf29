"""Sliding-window inference settings, the `[inference]` section of a volumetric run's config.

Kept apart from the prediction code so that reading a config imports neither NIfTI nor SciPy.
"""

from __future__ import annotations

from dataclasses import dataclass

from kerasbrain.config import check


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
    min_component_ml: float = 0.0  # tumour islands below this volume are removed (0 = off); inference/postprocess.py
    min_enhancing_ml: float = 0.0  # enhancing tumour below this volume becomes core (0 = off); inference/postprocess.py
    min_part_ml: float = 0.01  # specks of ET, TC or WT below this volume join the region around (0 = off); ditto

    def __post_init__(self):
        check(len(self.window) == 3 and all(int(w) >= 1 for w in self.window), "window",
              "three positive sides", self.window)
        check(0.0 <= self.overlap <= 0.95, "overlap", "must be in [0, 0.95] (a negative overlap leaves gaps; "
              "1 never moves the window)", self.overlap)
        check(self.batch_size >= 1, "batch_size", "must be at least 1", self.batch_size)
        check(0.0 < self.threshold < 1.0, "threshold", "must be in (0, 1)", self.threshold)
        check(self.compile_mode in ("auto", "xla", "graph"), "compile_mode", "auto, xla or graph", self.compile_mode)
        check(self.precision in ("auto", "fp32", "bf16"), "precision", "auto, fp32 or bf16", self.precision)
        check(self.blend in ("auto", "device", "host"), "blend", "auto, device or host", self.blend)
        check(self.min_component_ml >= 0, "min_component_ml", "must not be negative (0 = off)", self.min_component_ml)
        check(self.min_enhancing_ml >= 0, "min_enhancing_ml", "must not be negative (0 = off)", self.min_enhancing_ml)
        check(self.min_part_ml >= 0, "min_part_ml", "must not be negative (0 = off)", self.min_part_ml)
