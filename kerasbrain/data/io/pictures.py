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
        pictures = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES
                          and not p.name.startswith("."))
        return [(p.stem, (p,)) for p in pictures]

    def output_name(self, name):
        return f"{name}.png"

    def check_output(self, out):
        pass  # the family checks its own outputs


FORMAT = PictureFormat()
