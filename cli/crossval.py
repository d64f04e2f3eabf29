"""`kerasbrain crossval`: pick the best configuration or ensemble on out-of-fold predictions."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import OutputPath, echo


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The dataset the folds were trained on (its labels score the out-of-fold predictions).")
@click.option("--out", required=True, type=OutputPath(file_okay=False),
              help="Folder for crossval.md / .json and the best candidate's ensemble.json.")
@click.option("--metric", type=click.Choice(["legacy", "lesion"]), default="legacy", show_default=True,
              help="Mean WT/TC/ET whole-region Dice, or BraTS 2023's lesion-wise Dice.")
@click.option("--lesion-preset", type=click.Choice(["GLI", "MET", "PED", "MEN", "SSA"]), default="GLI",
              show_default=True, help="With --metric lesion: the challenge's dilation and volume threshold.")
def crossval(runs, data, out, metric, lesion_preset):
    """Score RUNS (cross-validation folders from `train unet3d --fold all`) and every ensemble of them on their
    out-of-fold cases, each with its best post-processing; the best goes to OUT/ensemble.json, which predict
    and evaluate take as --model."""
    from kerasbrain.evaluation.crossval import crossval as run_crossval
    from kerasbrain.metrics.lesion_wise import LesionSettings

    try:
        result = run_crossval(runs, data, out, metric, LesionSettings.of(lesion_preset), progress=echo)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result["table"])
    click.echo("\n".join(str(f) for f in result["files"]))
