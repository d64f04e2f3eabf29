"""`kerasbrain data check`: a dataset read as training reads it, problems listed before training starts."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import OutputPath, echo


@click.group()
def data():
    """Look at a dataset before training on it."""


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
