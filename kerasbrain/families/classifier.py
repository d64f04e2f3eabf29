"""The classifier family: the multi-task family's code with the class head only (seed 000's baseline)."""

from kerasbrain.families.multitask import MultiTaskFamily

FAMILY = MultiTaskFamily("classifier", ("class",),
                         "Single-task ResNet classifier (4 classes), the baseline of seed 000, BRISC 2025 or "
                         "class folders.")
