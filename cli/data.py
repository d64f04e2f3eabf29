"""`kerasbrain data check` (a dataset read as training reads it, problems listed before training starts) and
`kerasbrain data plan` (a 3-D training planned from the dataset's spacings and head sizes)."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from cli.common import OutputPath, echo, input_format_options, input_format_values


@click.group()
def data():
    """Look at a dataset before training on it: check it, convert it to the MSD layout, plan a 3-D training."""


@data.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=OutputPath(file_okay=False),
              help="Folder for report.md, report.json and report.png (default: data_check/<FOLDER's name>).")
def check(folder, out):
    """Check FOLDER (MSD / BraTS / DICOM volumes, LGG slices, BRISC or class-folder pictures): counts,
    shapes, spacings, orientations, labels, modalities, masks fitting images, and the same image twice
    (by pixel content), above all in two splits. One line per problem; exit 1 if there is any."""
    from kerasbrain.data.check import check_dataset, write_check_report
    from kerasbrain.data.errors import DataError

    try:
        report = check_dataset(folder, progress=echo)
    except DataError as exc:
        raise click.ClickException(str(exc)) from exc
    out = out or Path("data_check") / folder.resolve().name
    files = write_check_report(report, out)
    click.echo(f"{report.layout}: {report.counts}")
    for note in report.notes:
        click.echo(f"note: {note}")
    for problem in report.problems:
        click.echo(f"problem: {problem}")
    click.echo("\n".join(str(f) for f in files))
    if report.problems:
        raise SystemExit(1)


@data.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=OutputPath(dir_okay=False), required=True,
              help="The planned config (TOML, for `train unet3d --config`); the plan with the fingerprint "
                   "(.json) and a picture of both (.png) go beside it under the same name.")
@click.option("--base", "base_config", default=None,
              help="Config to start from (a file or a shipped name); its other settings are kept. Default: "
                   "the defaults of `train unet3d`.")
@click.option("--memory-gb", type=click.FloatRange(min=1.5), default=8.0, show_default=True,
              help="Training memory to plan for: the GPU's, or the RAM a CPU run may use.")
def plan(folder, out, base_config, memory_gb):
    """Plan a 3-D U-Net training for FOLDER (MSD or BraTS layout), as nnU-Net plans its runs: target
    spacing, patch size, poolings and kernels per axis, and batch size from the cases' spacings and
    head sizes, within a memory budget. Writes a config `kerasbrain train unet3d --config OUT` reads."""
    from kerasbrain.config import ConfigError
    from kerasbrain.data.errors import DataError
    from kerasbrain.data.fingerprint import fingerprint_dataset
    from kerasbrain.training.config import Config, load_config_file
    from kerasbrain.training.plan_report import write_plan
    from kerasbrain.training.planning import plan_training, planned_config

    if out.suffix != ".toml":
        raise click.ClickException(f"{out}: the plan is a TOML config; name it *.toml")
    try:
        base = load_config_file(Config, base_config)
        fingerprint = fingerprint_dataset(folder, progress=echo)
        chosen = plan_training(fingerprint, base.model, memory_gb)
    except (ConfigError, DataError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    header = (f"planned by `kerasbrain data plan {folder}` from {len(fingerprint.cases)} cases "
              f"({fingerprint.layout}), {memory_gb:g} GB, base: {base_config or 'the defaults'}",
              f"train: kerasbrain train unet3d --data {folder} --config {out} --out runs/planned", "")
    files = write_plan(planned_config(base, chosen), chosen, fingerprint, out, header)
    for reason in chosen.reasons:
        click.echo(reason)
    click.echo("\n".join(str(f) for f in files))


@data.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@functools.partial(input_format_options, reading_only=True)
@click.option("--out", type=OutputPath(file_okay=False), required=True,
              help="The MSD Task01 folder to write (dataset.json, imagesTr/, labelsTr/, imagesTs/); it must not "
                   "exist yet or be empty.")
def convert(folder, out, **format_flags):
    """Write FOLDER's cases (DICOM studies with their SEG labels, BraTS case folders, any volume format
    kerasbrain reads) as an MSD Task01 dataset, the layout `train unet3d`, `data plan` and
    cross-validation read. Studies without labels go to imagesTs/."""
    from kerasbrain.data.convert import convert_to_msd
    from kerasbrain.data.errors import DataError
    from kerasbrain.files import staged_folder

    if out.exists() and any(out.iterdir()):
        raise click.ClickException(f"{out}: not empty; convert into a new folder")
    try:
        with staged_folder(out) as staged:  # a failure half-way leaves nothing behind
            manifest = convert_to_msd(folder, staged, progress=echo, options=input_format_values(format_flags))
    except DataError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{manifest['numTraining']} labelled and {manifest['numTest']} unlabelled cases\n{out}")
