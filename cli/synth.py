"""`kerasbrain synth`: deterministic phantom data written in the real public layouts."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import OutputPath, echo

LAYOUTS = {"dicom": "dicom", "msd": "msd", "brats": "brats2021", "brats2021": "brats2021", "brats2023": "brats2023",
           "lgg": "lgg", "brisc": "brisc", "classes": "classes"}


@click.command()
@click.argument("layout", type=click.Choice(sorted(LAYOUTS)))
@click.option("--out", required=True, type=OutputPath(),
              help="Folder to write (written beside it first, so a failure leaves nothing half-written).")
@click.option("--cases", "--patients", default=4, show_default=True, type=click.IntRange(1),
              help="Labelled cases (LGG: patients).")
@click.option("--slices", default=12, show_default=True, type=click.IntRange(1), help="LGG: slices per patient.")
@click.option("--test-cases", default=0, show_default=True, type=click.IntRange(0),
              help="Unlabelled cases (MSD imagesTs/ only).")
@click.option("--shape", nargs=3, type=int, default=(96, 96, 64), show_default=True, help="Volume size in voxels.")
@click.option("--image-size", default=256, show_default=True, type=click.IntRange(32),
              help="lgg: side of each slice in pixels (kaggle_3m's is 256; smaller makes quick tests and demos).")
@click.option("--per-class", default=8, show_default=True, type=click.IntRange(1),
              help="brisc / classes: images per class (a quarter go to the test split).")
@click.option("--seed", default=0, show_default=True, help="Same seed, same files.")
@click.option("--difficulty", type=click.Choice(["easy", "hard"]), default="easy", show_default=True,
              help="msd / brats / lgg: hard adds small and multi-focal lesions, blurred borders, heterogeneous "
                   "tumour signal, white-matter hyperintensities and per-case scanner differences.")
@click.option("--generator", type=click.Choice(["shapes", "anatomy"]), default="shapes", show_default=True,
              help="msd / brats: shapes (nested ellipsoids) or anatomy (an independently written generator: folded "
                   "cortex, T1Gd-bright choroid plexus and sinus, irregular lesions, MRI units and noise floor).")
@click.option("--spacing", nargs=3, type=click.FloatRange(min=0, min_open=True), default=None,
              help="msd / brats: voxel size in mm written in the headers (default 1 1 1), e.g. 0.5 0.5 5 for a "
                   "thick-sliced protocol; the voxels are the same.")
@click.option("--multiframe", is_flag=True, help="dicom: one enhanced multi-frame MR image per series.")
@click.option("--oblique", type=float, default=0.0, show_default=True,
              help="dicom: turn the acquisition by this many degrees about each axis.")
@click.option("--tilt", type=float, default=0.0, show_default=True, help="dicom: a gantry tilt of this many degrees.")
@click.option("--thick-flair", type=click.IntRange(1), default=1, show_default=True,
              help="dicom: FLAIR keeps every N-th slice (its own, thicker grid, resampled on reading).")
def synth(layout, out, cases, slices, test_cases, shape, image_size, per_class, seed, difficulty, generator, spacing,
          multiframe, oblique, tilt, thick_flair):
    """Write deterministic phantom MRI cases in a real public layout.

    LAYOUT is dicom (OUT/studies/<case>/ as four MR series with shuffled file names, plus
    OUT/labels/<case>.nii.gz and, when the series share a grid, the same voxels as
    OUT/nifti/<case>.nii.gz), msd (Medical Segmentation Decathlon Task01), brats / brats2021, brats2023, lgg
    (Buda's kaggle_3m slices: OUT/kaggle_3m/<PATIENT>/<PATIENT>_<k>[_mask].tif, 256 x 256 unless
    --image-size says otherwise), brisc
    (BRISC 2025: OUT/brisc2025/{classification,segmentation}_task/...) or classes (the Kaggle
    4-class Training/ and Testing/ folders of seed 000).
    """
    from kerasbrain.data.phantom import write_dataset, write_lgg
    from kerasbrain.files import staged_folder

    if min(shape) < 16:
        raise ValueError(f"--shape: each size must be at least 16 voxels. Received: {' '.join(map(str, shape))}")
    for name, given in (("--spacing", spacing), ("--generator", generator != "shapes")):
        if given and layout not in ("msd", "brats", "brats2021", "brats2023"):
            raise ValueError(f"{name} applies to the msd and brats layouts, not {layout}")
    with staged_folder(out) as staged:  # a failure half-way leaves nothing behind
        if layout in ("brisc", "classes"):
            from kerasbrain.data.phantom_classes import write_brisc, write_class_folders

            if difficulty != "easy":
                raise ValueError(f"--difficulty applies to the msd, brats and lgg layouts, not {layout}")

            write = write_brisc if layout == "brisc" else write_class_folders
            root = write(staged, per_class, seed=seed, progress=lambda i, name: echo(f"[{i}/4] {name}"))
        elif layout == "dicom":
            from kerasbrain.data.dicom.synth import write_dicom_dataset

            root = write_dicom_dataset(staged, cases, tuple(shape), seed, difficulty,
                                       progress=lambda i, cid: echo(f"[{i}/{cases}] {cid}"), multiframe=multiframe,
                                       rotate_degrees=(oblique,) * 3, tilt_degrees=tilt, thick_flair=thick_flair)
        elif layout == "lgg":
            root = write_lgg(staged, cases, slices, (image_size, image_size), seed=seed, difficulty=difficulty,
                             progress=lambda i, pid: echo(f"[{i}/{cases}] {pid}"))
        else:
            root = write_dataset(staged, LAYOUTS[layout], cases, tuple(shape), seed, test_cases,
                                 progress=lambda i, cid: echo(f"[{i}/{cases + test_cases}] {cid}"),
                                 difficulty=difficulty, spacings=[tuple(spacing)] if spacing else None,
                                 generator=generator)
    click.echo(str(out / Path(root).relative_to(staged)))
