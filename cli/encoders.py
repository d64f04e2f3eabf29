"""`kerasbrain encoders`: pretrained encoder weights for machines with and without a network."""

from __future__ import annotations

import click

from cli.common import OutputPath


@click.group()
def encoders():
    """Pretrained encoders (keras-hub presets) for `[model] encoder_weights`."""


@encoders.command("list")
def list_encoders():
    """The encoders with ImageNet weights and the keras-hub preset each comes from."""
    from kerasbrain.models.backbones import IMAGENET_PRESETS
    from kerasbrain.models.presets import cached

    for encoder, preset in sorted(IMAGENET_PRESETS.items()):
        click.echo(f"{encoder:16s} {preset:30s} {'cached' if cached(preset) else 'not cached'}")


@encoders.command()
@click.argument("encoder")
@click.option("--out", required=True, type=OutputPath(file_okay=False),
              help="Folder to write the preset to (keras-hub's format: config.json, model.weights.h5).")
def fetch(encoder, out):
    """Download ENCODER's ImageNet preset (on a machine with a network) and write it to --out; copy that
    folder anywhere and set `encoder_weights = "OUT"`."""
    from kerasbrain.models.presets import PresetUnavailable, fetch as fetch_preset

    try:
        click.echo(str(fetch_preset(encoder, out)))
    except PresetUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
