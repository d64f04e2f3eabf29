"""Results written back as DICOM: a Segmentation (highdicom) that references the source series.

The label map becomes a BINARY Segmentation with one segment per label (necrotic / non-enhancing
core, edema, enhancing tumour) coded in SNOMED CT; the WT/TC/ET probabilities, on request, a
FRACTIONAL Segmentation with one segment per region. Both carry the algorithm's identification
(kerasbrain's version, the model family, the run) and the reference series' frame of reference and
geometry, frame by frame, so a PACS viewer overlays them on the images they came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasbrain.data.labels import EDEMA, ENHANCING, NECROTIC_CORE
from kerasbrain.files import atomic_write

#: (internal label, segment label, SNOMED CT property type keyword); category: Morphologically Abnormal Structure.
LABEL_SEGMENTS = (
    (NECROTIC_CORE, "necrotic / non-enhancing tumour core", "Necrosis"),
    (EDEMA, "peritumoral edema", "Edema"),
    (ENHANCING, "enhancing tumour", "Neoplasm"),
)
REGION_SEGMENTS = (("WT", "whole tumour probability"), ("TC", "tumour core probability"),
                   ("ET", "enhancing tumour probability"))


def _algorithm(model: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    import kerasbrain

    return hd.AlgorithmIdentificationSequence(name=f"kerasbrain {model}"[:64], version=kerasbrain.__version__,
                                              family=codes.cid7162.ArtificialIntelligence)


def _descriptions(items, model: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm = _algorithm(model)
    return [hd.seg.SegmentDescription(segment_number=i + 1, segment_label=label,
                                      segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                                      segmented_property_type=getattr(codes.SCT, keyword),
                                      algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                                      algorithm_identification=algorithm)
            for i, (label, keyword) in enumerate(items)]


def _frames(volume: np.ndarray, frames) -> np.ndarray:
    """A (columns, rows, slices[, C]) volume as the source's frames (frame, rows, columns[, C]).

    Single-frame sources: one frame per file, in the order of `frames` (slice order). A multi-frame
    source: the file's own frame order, which `Frame.index` records.
    """
    planes = np.moveaxis(volume, 2, 0).swapaxes(1, 2)  # (slices, rows, columns, ...)
    if frames[0].index is None:
        return np.ascontiguousarray(planes)
    out = np.empty_like(planes)
    for k, frame in enumerate(frames):
        out[frame.index] = planes[k]
    return out


def write_segmentation(path, labels: np.ndarray, source, model: str, run: str = "",
                       probabilities: np.ndarray | None = None) -> list[Path]:
    """Write `labels` (internal numbering, on the reference series' voxels) as a DICOM SEG at `path`.

    `source` is the `DicomStudy` the case came from. With `probabilities` (WT/TC/ET on the same
    voxels) a fractional SEG is written beside it as `<stem>_probabilities.dcm`.
    """
    import highdicom as hd
    from pydicom.uid import generate_uid

    path = Path(path)
    frames, headers = source.reference.frames, source.reference_headers
    label_map = np.zeros(labels.shape, dtype=np.uint8)
    for number, (label, _, _) in enumerate(LABEL_SEGMENTS, 1):
        label_map[labels == label] = number
    common = dict(source_images=headers, series_number=900, instance_number=1, manufacturer="kerasbrain",
                  manufacturer_model_name=model[:64], software_versions=_software(),
                  device_serial_number=(run or "unknown")[-64:], omit_empty_frames=False)
    seg = hd.seg.Segmentation(pixel_array=_frames(label_map, frames), segmentation_type="BINARY",
                              segment_descriptions=_descriptions([(s[1], s[2]) for s in LABEL_SEGMENTS], model),
                              series_instance_uid=generate_uid(), sop_instance_uid=generate_uid(),
                              series_description=f"kerasbrain {model} tumour labels"[:64], **common)
    written = [atomic_write(path, lambda tmp: seg.save_as(tmp))]
    if probabilities is not None:
        stem = path.name[:-4] if path.name.lower().endswith(".dcm") else path.name
        fractional = hd.seg.Segmentation(
            pixel_array=_frames(np.clip(probabilities, 0.0, 1.0).astype(np.float32), frames),
            segmentation_type="FRACTIONAL", fractional_type="PROBABILITY", max_fractional_value=255,
            segment_descriptions=_descriptions([(label, "Neoplasm") for _, label in REGION_SEGMENTS], model),
            series_instance_uid=generate_uid(), sop_instance_uid=generate_uid(),
            series_description=f"kerasbrain {model} region probabilities"[:64], **common)
        written.append(atomic_write(path.with_name(f"{stem}_probabilities.dcm"), lambda tmp: fractional.save_as(tmp)))
    return written


def _software() -> str:
    import kerasbrain

    return f"kerasbrain {kerasbrain.__version__}"
