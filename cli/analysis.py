"""Verbs that work on a trained class model (classifier or multitask): pseudo-masks, calibration, robustness."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import OutputPath, echo

_MODEL = dict(required=True, type=click.Path(exists=True, path_type=Path),
              help="A classifier or multitask run folder or .keras model.")
_DATA = dict(required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
             help="BRISC 2025 (or its parent) or the Kaggle class folders.")


def _image_model(model_path, purpose: str):
    """(model, image size) of a 2-D image model's run; one line when the family cannot serve `purpose`."""
    from kerasbrain.families import NotSupported, family_of_run
    from kerasbrain.families.base import InferenceOverrides

    family = family_of_run(model_path)
    try:
        family.require("image_analysis", model_path)
    except NotSupported as exc:
        raise click.ClickException(f"{exc} ({purpose} need a classifier or multitask model)") from None
    return family.load_with_size(model_path, InferenceOverrides())


@click.command()
@click.option("--model", "model_path", **_MODEL)
@click.option("--data", **_DATA)
@click.option("--out", required=True, type=OutputPath(), help="New folder for the BRISC-layout dataset.")
@click.option("--method", type=click.Choice(["gradcam", "gradcam++", "layercam", "atlas"]), default="atlas",
              show_default=True,
              help="'atlas': the departure from the healthy heads of the 'no tumour' training images (measured "
                   "best; the model only classifies images without a label), or a class activation map.")
@click.option("--layer", default="P4", show_default=True,
              help="Encoder level explained: P4 (stride 16), P5 (stride 32), P3, a block output name, or levels "
                   "joined by + (P3+P4+P5: their maps averaged).")
@click.option("--contrast/--no-contrast", default=False, show_default=True,
              help="Explain the tumour class against 'no tumour', so evidence of normal tissue cancels.")
@click.option("--refine", type=click.Choice(["none", "grabcut"]), default="none", show_default=True,
              help="grabcut: snap each mask to the image's edges, seeded by the map.")
@click.option("--threshold", type=click.Choice(["otsu", "percentile"]), default="otsu", show_default=True,
              help="How the heat map inside the head is cut.")
@click.option("--percentile", type=click.FloatRange(0, 100, min_open=True, max_open=True), default=90.0,
              show_default=True, help="With --threshold percentile: keep the map's top (100 - p) %.")
@click.option("--components", type=click.IntRange(1), default=1, show_default=True,
              help="Largest connected components kept.")
@click.option("--figures", type=click.IntRange(0), default=4, show_default=True,
              help="Figures per tumour class (original | seed map | pseudo-mask).")
def pseudomask(model_path, data, out, method, layer, contrast, refine, threshold, percentile, components, figures):
    """Pseudo tumour masks (healthy atlas or a classifier's activation maps), written as a BRISC 2025 dataset."""
    from kerasbrain.data.tumour_images import discover_tumour_images
    from kerasbrain.evaluation.pseudomask import (ATLAS, PseudoMaskSettings, healthy_training_images,
                                                  write_pseudomask_dataset)

    samples = discover_tumour_images(data)
    if method == ATLAS:
        healthy_training_images(samples, data)
    model, size = _image_model(model_path, "pseudo-masks")
    settings = PseudoMaskSettings(method, layer, contrast, threshold, percentile, components, refine=refine)
    summary = write_pseudomask_dataset(model, samples, size, out, settings, figures, progress=echo)
    click.echo(f"pseudo-mask dataset: {out / 'brisc2025'} ({summary['images']} images, "
               f"{summary['tumour_images']} with a tumour class)")
    if "vs_drawn" in summary:
        v = summary["vs_drawn"]
        click.echo(f"Dice against drawn masks: pooled {v['pooled_dice']:.4f}, mean {v['mean_dice']:.4f} (n = {v['n']})")
    click.echo(f"figures: {out / 'figures'}\ntable: {out / 'pseudomasks.csv'}")


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="A classifier, multitask or unet3d run folder or .keras model.")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The run's data: BRISC 2025 / Kaggle class folders, or the MSD / BraTS dataset of a unet3d run.")
def calibrate(model_path, data):
    """Fit a temperature on the run's validation data; calibration errors before and after; save calibrated.keras.

    Class models: one temperature for the class head (ECE, MCE, Brier on the test images). 3-D
    segmenters: one temperature per region (WT, TC, ET) on validation voxels, voxel-level ECE and a
    reliability diagram per region; the label map does not change (a temperature keeps 0.5 at 0.5).
    """
    from kerasbrain.families import family_of_run

    family = family_of_run(model_path)
    if family.can("region_calibration"):
        from kerasbrain.evaluation.region_calibration import calibrate_volume_run

        model, session = family.local_session(model_path)
        result = calibrate_volume_run(model, model_path, data, session, progress=echo)
        click.echo(result["table"])
        click.echo("\n" + "\n".join(str(f) for f in result["files"]))
        return
    from kerasbrain.evaluation.calibration import calibrate_run

    model, size = _image_model(model_path, "calibration and its reliability diagram")
    result = calibrate_run(model, size, model_path, data, progress=echo)
    click.echo(result["table"])
    click.echo("\n" + "\n".join(str(f) for f in result["files"]))


@click.command()
@click.option("--model", "model_path", **_MODEL)
@click.option("--data", **_DATA)
@click.option("--out", required=True, type=OutputPath(file_okay=False))
@click.option("--corruption", "corruptions", multiple=True,
              type=click.Choice(["gaussian_noise", "rician_noise", "motion", "ghosting", "bias_field", "blur",
                                 "contrast"]), help="Only these corruptions (default: all).")
@click.option("--max-images", type=click.IntRange(0), default=0,
              help="Score a seeded random subset of this many test images (0: all).")
@click.option("--seed", type=int, default=0, show_default=True)
def robustness(model_path, data, out, corruptions, max_images, seed):
    """Scores under noise, motion, ghosting, bias field, blur and contrast loss at severities 0-5."""
    from kerasbrain.evaluation.robustness import CORRUPTIONS, evaluate_robustness

    model, size = _image_model(model_path, "robustness scores")
    result = evaluate_robustness(model, size, model_path, data, out, tuple(corruptions) or CORRUPTIONS, max_images=max_images,
                                 seed=seed, progress=echo)
    click.echo(result["table"])
    click.echo("\n" + "\n".join(str(f) for f in result["files"]))
