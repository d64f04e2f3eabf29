"""The README's DICOM picture: a DICOM study with the SEG kerasbrain wrote for it, read back from the file.

    python bench/dicom_figure.py --model RUN --study STUDY_DIR_OR_ZIP --out docs/dicom/study_with_seg.png

Runs `kerasbrain predict --out <tmp>/seg.dcm` on the study, reads the SEG back with highdicom by
the source images' SOP Instance UIDs (as a PACS viewer pairs them), and draws the reference
series (T1 post-contrast) in three planes with the SEG's segments painted in the app's viewer
colours, beside the series-to-modality lines the command printed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--study", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)

    import highdicom as hd
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from kerasbrain.app.views import render_view, tumour_centre
    from kerasbrain.data.dicom.study import load_study
    from kerasbrain.data.nifti import Grid, to_canonical

    with tempfile.TemporaryDirectory() as tmp:
        seg_path = Path(tmp) / "seg.dcm"
        done = subprocess.run(["kerasbrain", "predict", "--model", args.model, "--input", str(args.study),
                               "--out", str(seg_path)], capture_output=True, text=True)
        if done.returncode:
            sys.exit(done.stderr.strip().splitlines()[-1])
        lines = [line.strip() for line in done.stderr.splitlines() if "<- series" in line or "resampled" in line]
        study = load_study(args.study)
        seg = hd.seg.segread(seg_path)
        uids = [f.sop_instance_uid for f in study.reference.frames]
        pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
        segments = pixels.transpose(2, 1, 0)  # (columns, rows, slices): the reference series' voxels
        labels = np.zeros_like(segments, dtype=np.uint8)  # segment numbers -> kerasbrain's label colours
        for number, label in ((1, 1), (2, 2), (3, 3)):
            labels[segments == number] = label
        grid = Grid(study.image.shape[:3], study.affine, None, str(args.study))
        image, labels = to_canonical(study.image, grid), to_canonical(labels, grid)
        centre = tumour_centre(labels)
        names = [d.SegmentLabel for d in seg.SegmentSequence]

    figure, axes = plt.subplots(1, 4, figsize=(16, 4.6), gridspec_kw={"width_ratios": [1, 1, 1, 1.1]})
    for ax, (plane, index) in zip(axes, (("axial", centre[2]), ("coronal", centre[1]), ("sagittal", centre[0]))):
        ax.imshow(render_view(image, labels, plane, index, channel=2, spacing=grid.spacing, height=320))
        ax.set_title(f"T1 post-contrast + SEG, {plane} {index}")
        ax.axis("off")
    axes[3].axis("off")
    text = ["series -> modality:"] + [line.split(" (1.")[0].replace(" (same frame of reference)", "")
                                      for line in lines] + ["", "SEG segments:"] + \
        [f"{i}. {name}" for i, name in enumerate(names, 1)] + ["", f"{len(uids)} source images referenced",
                                                                 f"{seg.SOPClassUID.name}"]
    axes[3].text(0, 0.5, "\n".join(text), va="center", family="monospace", fontsize=8.5)
    figure.suptitle(f"{args.study.name}: a DICOM study and the SEG kerasbrain wrote for it (read back from the file)")
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=90)
    print(args.out)


if __name__ == "__main__":
    main()
