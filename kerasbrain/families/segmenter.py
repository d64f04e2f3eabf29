"""The segmenter family: the multi-task family's code with the mask decoder only (the segmentation baseline)."""

from kerasbrain.families.multitask import MultiTaskFamily

FAMILY = MultiTaskFamily("segmenter", ("mask",),
                         "Single-task ResNet U-Net segmenter (tumour mask), the baseline of the multi-task "
                         "network, BRISC 2025 segmentation task.")
