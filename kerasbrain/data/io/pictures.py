"""Pictures (TIFF, PNG, JPEG): one 2-D slice or image per case; the model family reads and writes them."""

from __future__ import annotations

from pathlib import Path

from kerasbrain.data.io import InputFormat
from kerasbrain.data.pictures import PICTURE_SUFFIXES


class PictureFormat(InputFormat):
    name = "picture"
    kind = "image"
    description = "one PNG/JPEG/TIFF picture"
    upload_suffixes = PICTURE_SUFFIXES
    output_suffixes = (".png",)  # a mask or a figure; each family names its extra files

    def recognises(self, inputs):
        return len(inputs) == 1 and inputs[0].name.lower().endswith(PICTURE_SUFFIXES)

    def list_cases(self, folder):
        """Every picture but the labels beside them: `P_7_mask.tif` next to `P_7.tif` (kaggle_3m's
        layout) is P_7's mask, not a case."""
        pictures = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES
                          and not p.name.startswith("."))
        stems = {p.stem for p in pictures}
        return [(p.stem, (p,)) for p in pictures if not (p.stem.endswith("_mask") and p.stem[:-5] in stems)]

    def output_name(self, name):
        return f"{name}.png"

    def check_output(self, out):
        pass  # the family checks its own outputs


FORMAT = PictureFormat()
