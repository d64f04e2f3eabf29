"""`kerasbrain evaluate` and `kerasbrain predict`: the model's family (from its run) does the work."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from cli.common import (
    OutputPath,
    echo,
    given_input_options,
    inference_options,
    input_format_options,
    input_format_values,
    overrides,
)


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="A .keras model or a run folder (uses its best.keras).")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=OutputPath(file_okay=False),
              help="Where to write the per-case (or per-slice) CSV and summary.{json,md} "
                   "(default: <data>/../evaluation).")
@click.option("--subset", type=click.Choice(["all", "validation", "train", "test"]), default="all", show_default=True,
              help="Cases to score; validation/train/test need the run's split.json beside the model.")
@click.option("--save-predictions", is_flag=True, help="Also write each predicted label map.")
@click.option("--lesion-preset", type=click.Choice(["GLI", "MET", "PED", "MEN", "SSA"]), default="GLI",
              show_default=True, help="Volumes: the BraTS 2023 challenge whose lesion-wise settings apply "
                                      "(dilation 3/1/3/1/3 voxels, lesions over 50/2/50/50/50 mm^3 scored).")
@click.option("--lesion-dilation", type=click.IntRange(0), help="Volumes: override the preset's dilation (voxels).")
@click.option("--lesion-threshold", type=click.FloatRange(0), help="Volumes: override the preset's lesion volume "
              "threshold (mm^3; lesions at or below it are left out).")
@click.option("--postprocess-target", type=click.Choice(["legacy", "lesion"]), default="legacy", show_default=True,
              help="Volumes: choose the post-processing thresholds for the whole-region Dice or the lesion-wise Dice.")
@click.option("--uncertainty", is_flag=True, help="Volumes: with mirror TTA, score the members' uncertainty as "
              "QU-BraTS does (Dice as the most uncertain voxels are filtered out, filtered TP / TN ratios, their "
              "areas and score) beside the same uncertainty shuffled within the head; uncertainty.json and .png.")
@inference_options
@functools.partial(input_format_options, reading_only=True)
def evaluate(model_path, data, out, subset, save_predictions, lesion_preset, lesion_dilation, lesion_threshold,
             postprocess_target, uncertainty, **inference_flags):
    """Score a model on every labelled case: per-case CSV and a per-region summary (mean, std, median).

    3-D models are scored on whole volumes (MSD/BraTS, DICOM studies with a truth SEG), region by
    region ("legacy" Dice and HD95) and lesion by lesion as BraTS has ranked since 2023
    (lesions.csv: every lesion and false positive); 2-D slice models on LGG slices, with scores
    pooled over all pixels and averaged over images, and seed 002's pixel-wise report.
    """
    from kerasbrain.families import family_of_run
    from kerasbrain.runs import run_dir_of, subset_ids

    case_ids = subset_ids(run_dir_of(model_path), subset)
    out = out or data.parent / "evaluation"
    from kerasbrain.families.base import ScoringOptions

    family = family_of_run(model_path)
    reading = tuple(sorted(given_input_options(input_format_values(inference_flags)).items()))
    scoring = ScoringOptions(lesion_preset, lesion_dilation, lesion_threshold, postprocess_target, uncertainty, reading)
    extra = {}
    if uncertainty:
        family.require("uncertainty", model_path)
    if family.can("lesion_wise"):
        extra["scoring"] = scoring
    elif scoring.given():
        family.require("lesion_wise", model_path)
    result = family.evaluate(model_path, data, out, case_ids, overrides(inference_flags), save_predictions,
                             progress=echo, **extra)
    click.echo(result["text"])
    names = {".csv": "per-case scores", ".json": "summary", ".md": "table", ".png": "curves"}
    click.echo("\n" + "\n".join(f"{'per-lesion scores' if p.name == 'lesions.csv' else names.get(p.suffix, 'written')}"
                                 f": {p}" for p in result["files"]))
    failed = result.get("failed") or []
    if failed:  # scored the rest; say which could not be read, and fail the command
        click.echo(f"{len(failed)} case(s) could not be scored: " + "; ".join(f["error"] for f in failed), err=True)
        raise SystemExit(1)


@click.command()
@click.option("--model", "model_ref", required=True,
              help="A .keras model or run folder; with --server, the served model's name.")
@click.option("--server", help="Predict through TF Serving: http://HOST:8501 (REST) or grpc://HOST:8500.")
@click.option("--model-version", type=click.IntRange(1), help="With --server: a specific version.")
@click.option("--model-label", help="With --server: a version label (stable, canary).")
@click.option("--saved-models", default="saved_models", show_default=True, type=click.Path(path_type=Path),
              help="With --server: where the served model was exported, to read its run's inference settings.")
@click.option("--input", "inputs", required=True, multiple=True, type=click.Path(exists=True, path_type=Path),
              help="One 4-D NIfTI, four 3-D NIfTIs (FLAIR, T1, T1Gd, T2; repeat --input), a BraTS case folder, "
                   "a DICOM study (a folder or a .zip), or one TIFF/PNG/JPEG slice for a 2-D model; or a folder of "
                   "cases with --out a folder.")
@click.option("--out", required=True, type=OutputPath(),
              help="Label map .nii.gz (volumes; .dcm for a DICOM Segmentation of a DICOM study), mask .png "
                   "(a 2-D slice model) or figure .png (class / multi-task "
                   "models; a mask head also writes <out>_mask.png); a folder when --input is a folder of cases.")
@click.option("--truth", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Slice inputs: the ground-truth mask, shown in the figure.")
@click.option("--labels", "label_layout", type=click.Choice(["msd", "brats2021", "brats2023"]),
              help="Label numbering to write (default: the input's layout; msd for bare files).")
@click.option("--probabilities", is_flag=True, help="Also write <out>_probabilities.nii.gz (WT, TC, ET); a fractional "
              "DICOM SEG <out>_probabilities.dcm with --out .dcm.")
@click.option("--overlay", type=click.Path(dir_okay=False, path_type=Path),
              help="Picture to write (default: <out> with .png for volumes, <out>_figure.png for slices).")
@click.option("--uncertainty", is_flag=True, help="Volumes: with mirror TTA, also write <out>_entropy.nii.gz and "
              "<out>_variance.nii.gz (per region, the members' spread) and <out>_lesions.json (each predicted "
              "lesion's volume, centre, mean probability and entropy).")
@inference_options
@input_format_options
def predict(model_ref, server, model_version, model_label, saved_models, inputs, out, truth, label_layout,
            probabilities, overlay, uncertainty, **inference_flags):
    """Segment one case, or every case in a folder; writes the result in the input's own grid and a picture.

    Volumes go locally (--model best.keras) or through a TF Serving endpoint (--server URL --model
    NAME), both with the run's own inference settings; both write the same files. A single
    TIFF/PNG/JPEG slice goes to a 2-D model: writes the mask PNG and seed 002's figure (original |
    ground truth if --truth | prediction heatmap).

    A DICOM study (a folder or a .zip; the four series are found by the rules in the README, or
    chosen with --series) gives a DICOM Segmentation with --out .dcm, or NIfTI with --out .nii.gz.

    With `--input DIR --out DIR` every case in DIR (NIfTI files, an MSD or BraTS dataset, DICOM
    studies, or pictures) is predicted with the model loaded once, the next case read while this one runs; a
    case that fails is reported and the rest go on; `DIR/predictions.csv` lists each case, and the
    exit status is 1 when any failed.
    """
    from kerasbrain.families import PredictRequest, family_of_run, family_of_served_model

    if not server and not Path(model_ref).exists():
        raise click.BadParameter(f"{model_ref}: no such model file or run folder", param_hint="--model")
    input_options = input_format_values(inference_flags)
    request = PredictRequest(model_ref, tuple(inputs), out, overrides(inference_flags), server, model_version,
                             model_label, saved_models, truth, label_layout, probabilities, overlay, input_options,
                             uncertainty)
    family = family_of_served_model(saved_models, model_ref) if server else family_of_run(model_ref)
    from kerasbrain.data.io import names_one_output

    if len(inputs) == 1 and inputs[0].is_dir() and not names_one_output(out):
        failed = predict_folder(family, request, inputs[0], out)
        if failed:
            raise SystemExit(1)
        return
    from kerasbrain.inference.predict_cases import predict_case

    prediction = predict_case(family, request, progress=echo)
    for line in prediction.lines + [str(path) for path in prediction.files]:
        click.echo(line)


def predict_folder(family, request, folder: Path, out: Path) -> int:
    """Predict every case in `folder` into `out` (kerasbrain.inference.predict_cases); returns how many failed."""
    from kerasbrain.inference.predict_cases import predict_folder as run_folder
    from kerasbrain.inference.predict_cases import read_first
    from kerasbrain.inference.slice_review import missed_end_candidates

    result = run_folder(family, request, folder, out, progress=echo)
    rows, failed = result["rows"], result["failed"]
    click.echo(f"{len(rows) - failed} of {len(rows)} cases predicted" + (f", {failed} failed" if failed else "")
               + f"; per case: {result['table']}")
    first = read_first(rows)
    if first:
        click.echo("least confident (lowest estimated Dice; review first): " + ", ".join(first))
    ends = missed_end_candidates(rows)
    if ends:
        shown = ", ".join(ends[:10]) + (f" and {len(ends) - 10} more" if len(ends) > 10 else "")
        click.echo(f"nothing predicted next to a predicted tumour (where a missed tumour end is likeliest; "
                   f"review too): {shown}")
    return failed
