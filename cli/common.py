"""What every verb module shares: the error-to-one-line group, stderr progress, inference flags."""

from __future__ import annotations

from pathlib import Path

import click


class KerasbrainGroup(click.Group):
    """Turns the library's input errors and the system's file errors (a full disk, a folder that
    cannot be written) into a one-line message and exit status 1 (no traceback)."""

    def invoke(self, ctx):
        from kerasbrain.config import ConfigError
        from kerasbrain.data.errors import DataError

        try:
            return super().invoke(ctx)
        except (DataError, ConfigError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:  # ENOSPC, EACCES, EROFS, ENOTDIR ...: name the file and the reason
            where = exc.filename or ""
            reason = exc.strerror or str(exc)
            raise click.ClickException(f"{where}: {reason}" if where else reason) from exc


class OutputPath(click.Path):
    """A file or folder a command will write: refused while the arguments are read when a file stands
    where a folder must be (`kerasbrain.files.check_can_create`), not after the training, evaluation
    or prediction it was meant to hold."""

    def __init__(self, **kwargs):
        super().__init__(path_type=Path, **kwargs)

    def convert(self, value, param, ctx):
        from kerasbrain.files import check_can_create

        path = super().convert(value, param, ctx)
        try:
            check_can_create(path)
        except OSError as exc:  # one line and exit 1, as for any file the system refuses (not a usage error)
            raise click.ClickException(f"{exc.filename}: {exc.strerror}") from exc
        return path


def echo(message: str) -> None:
    """Progress and notes go to stderr; stdout carries only results (paths, tables)."""
    click.echo(message, err=True)


def inference_options(f):
    """The flags that override a run's `[inference]` settings (volumetric models; precision: all)."""
    f = click.option("--window", nargs=3, type=int, help="Sliding-window size (default: the run's config).")(f)
    f = click.option("--overlap", type=click.FloatRange(0, 0.95), help="Window overlap fraction.")(f)
    f = click.option("--batch-size", type=click.IntRange(1), help="Windows per model call.")(f)
    f = click.option("--mirror/--no-mirror", default=None, help="Flip test-time augmentation.")(f)
    f = click.option("--compile-mode", type=click.Choice(["auto", "xla", "graph"]), help="XLA or plain graph.")(f)
    f = click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]),
                     help="Compute precision (auto: bf16 on a GPU that has it).")(f)
    f = click.option("--min-component-ml", type=click.FloatRange(0),
                     help="Tumour islands smaller than this (mL) are removed, never the largest; 0 = off.")(f)
    f = click.option("--min-enhancing-ml", type=click.FloatRange(0),
                     help="Enhancing tumour smaller than this (mL) becomes core; 0 = off (BraTS post-processing).")(f)
    f = click.option("--min-part-ml", type=click.FloatRange(0),
                     help="Specks of ET, TC or WT smaller than this (mL) join the region around them; 0 = off.")(f)
    return f


def overrides(flags: dict):
    """The `inference_options` a command received (popped from its keyword arguments) as overrides."""
    from dataclasses import fields

    from kerasbrain.families import InferenceOverrides

    values = {f.name: flags.pop(f.name) for f in fields(InferenceOverrides)}
    values["window"] = tuple(values["window"]) if values["window"] else None
    return InferenceOverrides(**values)


def input_format_options(f, reading_only: bool = False):
    """Every registered input format's `predict` flags (`kerasbrain.data.io.InputOption`); with
    `reading_only`, those that say how inputs are read (`data convert`)."""
    from kerasbrain.data.io import all_options

    for option in reversed([o for o in all_options() if o.reading or not reading_only]):
        flag = "--" + option.name.replace("_", "-")
        if option.type is bool:
            f = click.option(flag, option.name, is_flag=True, help=option.help)(f)
        else:
            f = click.option(flag, option.name, type=option.type, multiple=option.multiple, default=option.default,
                             show_default=option.default not in (None, ()), help=option.help)(f)
    return f


def given_input_options(values: dict) -> dict:
    """Of `input_format_values`, those the user set (not left at their defaults)."""
    from kerasbrain.data.io import all_options

    defaults = {o.name: (() if o.multiple else o.default if o.type is not bool else False) for o in all_options()}
    return {name: value for name, value in values.items() if value not in (defaults.get(name), ())}


def input_format_values(flags: dict) -> dict:
    """The input-format flags a command received (popped from its keyword arguments)."""
    from kerasbrain.data.io import all_options

    return {o.name: flags.pop(o.name) for o in all_options() if o.name in flags}
