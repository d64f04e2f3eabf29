"""`kerasbrain compare`: two time points of one patient, lesion by lesion (measurements only)."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from cli.common import OutputPath, echo


def _time_point(path: Path, model, layout: str, options: dict):
    """A `TimePoint` from a label map (NIfTI), or from a case `model` predicts (NIfTI or a DICOM study)."""
    from kerasbrain.data.labels import to_internal
    from kerasbrain.data.nifti import load_nifti, to_canonical
    from kerasbrain.evaluation.longitudinal import TimePoint

    name = path.name
    if model is None:
        data, grid = load_nifti(path, ndim=3)
        if not np.array_equal(data, np.round(data)):
            raise click.ClickException(f"{path}: not a label map (non-integer values); give --model to predict a scan")
        labels = to_internal(to_canonical(data.astype(np.int16), grid), layout, str(path))
        return TimePoint(name, labels, grid.canonical_affine)
    from kerasbrain.data.io import format_of
    from kerasbrain.inference.predict_volume import predict_case

    family, session = model
    case = format_of([path], "volume").load([path], options, echo)
    labels, _ = predict_case(case, session.predict, session.channels, session.config, session.spacing)
    reference = getattr(case.source, "reference", None)  # a DICOM study's reference series
    frame = getattr(getattr(reference, "info", None), "frame_of_reference", "") or ""
    return TimePoint(name, labels, case.grid.canonical_affine, case.image, frame)



@click.command()
@click.option("--before", required=True, type=click.Path(exists=True, path_type=Path),
              help="The earlier time point: a label map (.nii.gz), or with --model a case (NIfTI or DICOM study).")
@click.option("--after", required=True, type=click.Path(exists=True, path_type=Path), help="The later time point.")
@click.option("--out", required=True, type=OutputPath(file_okay=False),
              help="Folder for comparison.json, lesions.csv and comparison.png.")
@click.option("--model", "model_path", type=click.Path(exists=True, path_type=Path),
              help="A volumetric run: predict both cases with it first.")
@click.option("--labels", "layout", type=click.Choice(["msd", "brats2021", "brats2023"]), default="msd",
              show_default=True, help="The numbering of label-map inputs (kerasbrain writes the input's).")
@click.option("--match-mm", type=click.FloatRange(0), default=10.0, show_default=True,
              help="A lesion that overlaps no earlier one is matched with the nearest within this distance.")
@click.option("--register", is_flag=True, help="Rigidly register the later scan onto the earlier one first "
              "(scans from different sessions; needs --model, since it registers the images). Two DICOM studies "
              "whose FrameOfReferenceUIDs differ are registered without it.")
def compare(before, after, out, model_path, layout, match_mm, register):
    """Match the lesions of two scans of one patient: matched, new and vanished lesions, the change in
    volume (WT, TC, ET) and in RANO's bidimensional product, per lesion and in total; a side-by-side
    picture. Measurements only: no diagnosis or response category is implied."""
    from kerasbrain.evaluation.longitudinal import compare_time_points, save_comparison_figure
    from kerasbrain.files import write_csv, write_json

    model = None
    if register and model_path is None:
        raise click.UsageError("--register needs --model: it registers the scans' images")
    if model_path is not None:
        from kerasbrain.families import family_of_run

        family = family_of_run(model_path)
        family.require("predict", model_path)
        if family.input_kind != "volume":
            raise click.ClickException(f"{model_path}: a {family.name} model does not segment volumes")
        model = (family, family.local_session(model_path)[1])
    try:
        points = [_time_point(path, model, layout, {}) for path in (before, after)]
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    frames = [p.frame_of_reference for p in points]
    if not register and all(frames) and frames[0] != frames[1]:
        echo("the two studies have different DICOM frames of reference: registering them rigidly first")
        register = True
    result = compare_time_points(*points, match_mm=match_mm, register=register)
    after_here = result.pop("_after_here")
    out.mkdir(parents=True, exist_ok=True)
    written = [write_json(out / "comparison.json", result),
               write_csv(out / "lesions.csv", [{**r, "after_lesions": " ".join(map(str, r["after_lesions"])),
                                                "centre_mm": " ".join(map(str, r["centre_mm"]))}
                                               for r in result["lesions"]]),
               save_comparison_figure(out / "comparison.png", points[0], after_here, result)]
    t, c = result["totals"], result["counts"]
    click.echo(f"lesions: {c['matched']} matched, {c['split']} split, {c['new']} new, {c['vanished']} vanished")
    for key, title in (("WT_ml", "WT"), ("TC_ml", "TC"), ("ET_ml", "ET")):
        click.echo(f"{title}: {t[key]['before']:.2f} -> {t[key]['after']:.2f} mL ({t[key]['change']:+.2f})")
    click.echo(f"RANO sum of products: {t['rano_product_mm2']['before']:.0f} -> {t['rano_product_mm2']['after']:.0f}"
               " mm^2 (measurements only; no response category is implied)")
    for path in written:
        click.echo(str(path))
