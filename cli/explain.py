"""`kerasbrain explain`: why a model predicted what it did, drawn for one image."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import OutputPath, echo
from kerasbrain.evaluation.explain_agnostic import DEFAULT_SAMPLES, MIN_SAMPLES


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="A .keras model or a run folder (multitask or classifier).")
@click.option("--input", "image", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="One JPEG/PNG/TIFF image.")
@click.option("--method", type=click.Choice(["gradcam", "gradcam++", "occlusion", "integrated-gradients", "shap", "lime"]), default="gradcam",
              show_default=True, help="shap and lime need the explain extra: pip install -e \".[explain]\".")
@click.option("--layer", help="Encoder layer whose feature maps to use (default: its deepest level, P5).")
@click.option("--class", "target", help="Class to explain (default: the predicted one).")
@click.option("--samples", type=click.IntRange(min=MIN_SAMPLES),
              help=f"Model evaluations for shap and lime (default {DEFAULT_SAMPLES}); fewer: faster, noisier maps.")
@click.option("--out", required=True, type=OutputPath(dir_okay=False), help="PNG to write.")
def explain(model_path, image, method, layer, target, samples, out):
    """Draw original | heat map | predicted mask | class probabilities for one image."""
    from kerasbrain.data.pictures import read_rgb
    from kerasbrain.families import family_of_run

    family = family_of_run(model_path)
    family.require("explain", model_path)  # first: a volume given to a 3-D model is refused for what it is
    read_rgb(image)  # a broken picture is refused now, in one line, before the model loads
    echo(f"explaining {image.name} with {method}")
    for item in family.explain(model_path, image, out, method, layer, target, samples):
        click.echo(str(item))
