"""An input format defined outside kerasbrain, to show a new format needs no edit to the CLI or the app.

A `.toyvol.npz` file holds one case: `image` (X, Y, Z, 4) on `affine` (voxel -> RAS), and optionally
`labels` (MSD numbering) for evaluation. Results are written as `.toyseg.npz` holding `labels`
(kerasbrain's internal numbering) in the file's own voxel order.
"""

from pathlib import Path

import numpy as np

from kerasbrain.data.errors import DataError
from kerasbrain.data.io import InputFormat

SUFFIX = ".toyvol.npz"


class ToyVolumeFormat(InputFormat):
    name = "toyvol"
    kind = "volume"
    description = "a toy volume (.toyvol.npz)"
    upload_suffixes = (SUFFIX,)
    output_suffixes = (".toyseg.npz",)

    def recognises(self, inputs):
        return len(inputs) == 1 and inputs[0].name.endswith(SUFFIX)

    def list_cases(self, folder):
        return [(p.name[: -len(SUFFIX)], (p,)) for p in sorted(Path(folder).glob(f"*{SUFFIX}"))]

    def load(self, inputs, options=None, progress=None):
        from kerasbrain.data.layouts import Case
        from kerasbrain.data.nifti import Grid, to_canonical

        from kerasbrain.data.labels import to_internal

        (path,) = inputs
        try:
            with np.load(path) as data:
                image, affine = data["image"].astype(np.float32), data["affine"]
                labels = to_internal(data["labels"], "msd") if "labels" in data else None
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path}: not a toy volume ({exc})") from None
        grid = Grid(image.shape[:3], affine, None, str(path))
        labels = None if labels is None else to_canonical(labels, grid)
        return Case(path.name[: -len(SUFFIX)], to_canonical(image, grid), labels, grid, "msd")

    def write(self, case, labels, out, probabilities=None, layout=None, model="", run="", options=None):
        from kerasbrain.data.nifti import from_canonical
        from kerasbrain.files import atomic_write

        labels = from_canonical(labels, case.grid)
        return [atomic_write(out, lambda tmp: np.savez(open(tmp, "wb"), labels=labels))]


FORMAT = ToyVolumeFormat()
