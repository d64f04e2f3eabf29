"""Results written back as DICOM: a Segmentation (highdicom) that references the source series.

The label map becomes a BINARY Segmentation with one segment per label (necrotic / non-enhancing
core, edema, enhancing tumour) coded in SNOMED CT; the WT/TC/ET probabilities, on request, a
FRACTIONAL Segmentation with one segment per region. Both carry the algorithm's identification
(kerasbrain's version, the model family, the run) and the reference series' frame of reference and
geometry, frame by frame, so a PACS viewer overlays them on the images they came from.
"""

from __future__ import annotations

import re
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


#: SNOMED CT property types read back as labels (a truth SEG from another tool uses them too).
LABEL_OF_CODE = {"6574001": NECROTIC_CORE, "79654002": EDEMA, "108369006": ENHANCING}


def _label_of_segment(segment) -> int | None:
    code = segment.SegmentedPropertyTypeCodeSequence[0].CodeValue
    if str(code) in LABEL_OF_CODE:
        return LABEL_OF_CODE[str(code)]
    text = str(segment.get("SegmentLabel", "")).lower()
    for pattern, label in ((r"\b(core|necro\w*|ncr|net)\b", NECROTIC_CORE), (r"\b(o?edema|ed)\b", EDEMA),
                           (r"\b(enhanc\w*|et)\b", ENHANCING)):  # core first: "non-enhancing core" is core
        if re.search(pattern, text):
            return label
    return None


def references_series(path, series_uid: str) -> bool:
    """Whether the SEG at `path` was drawn on the series `series_uid` (its ReferencedSeriesSequence)."""
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return any(str(item.get("SeriesInstanceUID", "")) == series_uid for item in ds.get("ReferencedSeriesSequence", []))


def read_segmentation(path, reference) -> np.ndarray:
    """A SEG drawn on the `reference` series (a `SeriesVolume`) as internal labels (columns, rows, slices).

    Segments are matched to labels by their SNOMED CT property type (necrosis, edema, neoplasm: what
    `write_segmentation` writes) or, failing that, by their label text; any other segment is an error.
    """
    import highdicom as hd

    from kerasbrain.data.errors import DataError

    try:
        seg = hd.seg.segread(path)
        labels_of = {int(s.SegmentNumber): _label_of_segment(s) for s in seg.SegmentSequence}
        unknown = [n for n, label in labels_of.items() if label is None]
        if unknown:
            raise DataError(f"{path}: segment {unknown[0]} is none of necrotic / non-enhancing core, edema, "
                            "enhancing tumour")
        frames = reference.frames
        if frames[0].index is None:
            pixels = seg.get_pixels_by_source_instance(
                source_sop_instance_uids=[f.sop_instance_uid for f in frames], combine_segments=True,
                assert_missing_frames_are_empty=True)
        else:
            pixels = seg.get_pixels_by_source_frame(
                source_sop_instance_uid=frames[0].sop_instance_uid, source_frame_numbers=[f.index + 1 for f in frames],
                combine_segments=True, assert_missing_frames_are_empty=True)
    except DataError:
        raise
    except Exception as exc:  # highdicom raises many kinds for a SEG that does not fit its source
        raise DataError(f"{path}: cannot be read as a segmentation of series {reference.info.uid} "
                        f"({type(exc).__name__}: {exc})") from None
    labels = np.zeros(pixels.shape, dtype=np.uint8)
    for number, label in labels_of.items():
        labels[pixels == number] = label
    return np.ascontiguousarray(labels.transpose(2, 1, 0))


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
