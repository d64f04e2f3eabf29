"""`kerasbrain train FAMILY` and `kerasbrain pretrain FAMILY`: one subcommand per registered family.

`train` lists the families whose stage is "train", `pretrain` those whose stage is "pretrain"
(representation learning such as SimCLR). Every family gets --data, --config, --out and --time-budget, plus the flags it declares as
`TrainOption`s; nothing here names a family, so a new family appears without editing this file.
"""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import KerasbrainGroup, OutputPath, echo


def _click_type(option):
    if option.type is int:
        return click.IntRange(int(option.minimum)) if option.minimum is not None else int
    if option.type is float:
        return click.FloatRange(min=option.minimum, min_open=True) if option.minimum is not None else float
    return option.type


def _train_command(name: str) -> click.Command:
    from kerasbrain.families import get_family

    family = get_family(name)

    def run(data, config, out, time_budget, **options):
        from kerasbrain.runs import removed_if_failed_before_training

        if config is None and (config := family.default_config_name(time_budget)):
            echo(f"no --config: using {config}, the recipe measured best for a time budget on a CPU "
                 "(--config to choose another)")
        with removed_if_failed_before_training(out):
            result = family.train(data, out, family.load_config(config), time_budget=time_budget, progress=echo,
                                  **options)
        click.echo(f"best model: {result['best']}\nlast model: {result['last']}")
        if (out / "logs").is_dir():  # none where TensorFlow is not installed (training/scaffold.py)
            click.echo(f"TensorBoard: {out / 'logs'}")

    params = [
        click.Option(["--data"], required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
                     help="Dataset folder in a layout this family reads."),
        click.Option(["--config"], help="TOML config or a shipped config's name; defaults for anything left out "
                                        "(with --time-budget on a CPU, a family's budget recipe if it has one)."),
        click.Option(["--out"], required=True, type=OutputPath(file_okay=False),
                     help="Run folder; re-running the same command resumes an interrupted run."),
        click.Option(["--time-budget"], type=click.FloatRange(min=0, min_open=True), metavar="MINUTES",
                     help="Stop after this much wall-clock training time, ending cleanly with best/last models."),
    ]
    params += [click.Option([f"--{o.name.replace('_', '-')}"], type=_click_type(o), help=o.help)
               for o in family.train_options]
    return click.Command(name, callback=run, params=params, help=family.description,
                         short_help=family.description.split(",")[0].rstrip("."))


class FamilyTrainGroup(KerasbrainGroup):
    """A group whose subcommands are the registered families of one stage."""

    stage = "train"

    def list_commands(self, ctx):
        from kerasbrain.families import family_names

        return family_names(self.stage)

    def get_command(self, ctx, name):
        return _train_command(name) if name in self.list_commands(ctx) else None


class FamilyPretrainGroup(FamilyTrainGroup):
    stage = "pretrain"


@click.group(cls=FamilyTrainGroup)
def train():
    """Train a model (see `kerasbrain train FAMILY --help`)."""


@click.group(cls=FamilyPretrainGroup)
def pretrain():
    """Pretrain an encoder without labels (see `kerasbrain pretrain simclr --help`)."""
