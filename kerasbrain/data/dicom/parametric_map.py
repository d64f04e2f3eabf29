"""Per-voxel maps (uncertainty) written back as DICOM Parametric Maps (highdicom) on the source series.

One Parametric Map per map kind (entropy, variance), with one channel per region (WT, TC, ET) and a
real-world value mapping per channel that says what the numbers are (float values, identity
mapping, unit "no units" / bits). Frames follow the reference series, as the SEG's do
(`seg._frames`), so a viewer that shows Parametric Maps overlays them on the source images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasbrain.files import atomic_write

REGIONS = ("WT", "TC", "ET")
UNITS = {"entropy": ("bit", "bit"), "variance": ("1", "no units")}  # UCUM code, meaning


def write_parametric_map(path, values: np.ndarray, source, kind: str, model: str, run: str = "") -> Path:
    """Write `values` ((columns, rows, slices, 3) float, WT/TC/ET on the reference series' voxels) at `path`."""
    import highdicom as hd
    from pydicom.sr.coding import Code
    from pydicom.uid import generate_uid

    from kerasbrain.data.dicom.seg import _frames, _software

    code, meaning = UNITS.get(kind, ("1", "no units"))
    values = np.asarray(values, np.float32)
    mappings = []
    for c, region in enumerate(REGIONS):
        channel = values[..., c]
        low, high = float(channel.min()), float(channel.max())
        mappings.append([hd.pm.RealWorldValueMapping(
            lut_label=f"{region} {kind}"[:16], lut_explanation=f"kerasbrain {kind} of the {region} probability"[:64],
            unit=Code(code, "UCUM", meaning), value_range=(low, high if high > low else low + 1.0),
            slope=1.0, intercept=0.0)])
    frames, headers = source.reference.frames, source.reference_headers
    pm = hd.pm.ParametricMap(
        source_images=headers, pixel_array=_frames(values, frames), series_instance_uid=generate_uid(),
        series_number=901 if kind == "entropy" else 902, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer="kerasbrain", manufacturer_model_name=model[:64], software_versions=_software(),
        device_serial_number=(run or "unknown")[-64:], contains_recognizable_visual_features=False,
        real_world_value_mappings=mappings, content_label=kind.upper()[:16],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=float(values.max()) / 2 or 0.5,
                                                         window_width=float(values.max()) or 1.0)],
        content_description=f"kerasbrain {model} {kind} per region"[:64])
    return atomic_write(Path(path), lambda tmp: pm.save_as(tmp))
