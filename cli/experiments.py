"""`kerasbrain experiment ...` (published comparisons) and `kerasbrain demo` (every stage on phantoms)."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import KerasbrainGroup, OutputPath, echo
from kerasbrain.demo import DEMO_MINUTES


@click.group(cls=KerasbrainGroup)
def experiment():
    """Reproduce a published comparison (see `kerasbrain experiment lgg-compare --help`)."""


@experiment.command("lgg-compare")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="LGG dataset (kaggle_3m or its parent).")
@click.option("--out", default="runs/lgg-compare", show_default=True, type=OutputPath(file_okay=False))
@click.option("--encoder", "encoders", multiple=True, default=("resnet50", "efficientnet_b0"), show_default=True,
              type=click.Choice(["resnet18", "resnet34", "resnet50", "efficientnet_b0"]))
@click.option("--quick", is_flag=True, help="Two short stages on at most 24 slices per subset (CPU, phantom data; "
              "random encoders unless --encoder-weights is given).")
@click.option("--encoder-weights", help="Override seed 004's `imagenet`: a keras-hub preset folder, or '' for random "
              "encoders (the same folder is used for every encoder only if it fits them; see `kerasbrain encoders`).")
def lgg_compare(data, out, encoders, quick, encoder_weights):
    """Seed 004's table: raw / median+CLAHE x ResNet50 / EfficientNet-B0 on ImageNet encoders, two-stage fine-tuning."""
    from kerasbrain.experiments.lgg_compare import run_lgg_compare
    from kerasbrain.runs import removed_if_failed_before_training

    with removed_if_failed_before_training(out):
        result = run_lgg_compare(data, out, tuple(encoders), quick, progress=echo, encoder_weights=encoder_weights)
    click.echo(result["table"] + "\n\n" + result["comparison"])
    click.echo(f"\nresults: {out / 'results.md'}, {out / 'results.csv'}\ncurves: {result['curves']}")


@experiment.command("multitask-vs-baseline")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="BRISC 2025 (or its parent) or the Kaggle class folders.")
@click.option("--out", default="runs/multitask-vs-baseline", show_default=True,
              type=OutputPath(file_okay=False))
@click.option("--config", help="TOML config of both runs (multitask family's sections); defaults if left out.")
@click.option("--time-budget", type=click.FloatRange(min=0, min_open=True), metavar="MINUTES",
              help="The same wall-clock budget for each of the two runs.")
@click.option("--quick", is_flag=True, help="Two epochs at 64 x 64 (CPU, phantom data).")
def multitask_vs_baseline(data, out, config, time_budget, quick):
    """Seed 000's table: single-task classifier vs multi-task network, same data, seed and budget."""
    from kerasbrain.experiments.multitask_compare import run_multitask_compare
    from kerasbrain.runs import removed_if_failed_before_training
    from kerasbrain.training.config_multitask import load_multitask_config

    with removed_if_failed_before_training(out):
        result = run_multitask_compare(data, out, load_multitask_config(config), quick, time_budget, progress=echo)
    click.echo(result["table"] + "\n\n" + result["comparison"])
    click.echo(f"\nresults: {out / 'results.md'}, {out / 'results.csv'}\ncurves: {result['curves']}")


def _shares(ctx, param, value: str) -> tuple[float, ...]:
    """A comma-separated list of shares in [0, 1]."""
    try:
        shares = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected shares such as 0.01,0.05,0.1") from None
    if any(not 0 <= v <= 1 for v in shares):
        raise click.BadParameter(f"{value!r}: every share must be between 0 and 1")
    return shares


@experiment.command("label-efficient")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Kaggle 4-class folders (no masks) or BRISC 2025 (pseudo-masks are then scored too).")
@click.option("--out", default="runs/label-efficient", show_default=True,
              type=OutputPath(file_okay=False))
@click.option("--config", help="TOML of the classifier / multitask stages (multitask family's sections).")
@click.option("--simclr-config", help="TOML of the SimCLR stage (simclr family's sections).")
@click.option("--time-budget", type=click.FloatRange(min=0, min_open=True), metavar="MINUTES",
              help="The wall-clock budget of each training stage (the baseline gets the multitask stage's).")
@click.option("--quick", is_flag=True, help="One epoch per stage at 32 x 32 (CPU, phantom data).")
@click.option("--cam", type=click.Choice(["gradcam", "gradcam++", "layercam", "atlas"]), default="atlas",
              show_default=True,
              help="Where the first pseudo-masks come from: 'atlas', where each tumour image departs from the "
                   "healthy heads of the 'no tumour' training images (measured best), or a class activation map "
                   "of the classifier (seed 000: gradcam).")
@click.option("--cam-layer", default="P4", show_default=True, help="Its encoder level, or levels joined by +.")
@click.option("--contrast/--no-contrast", default=False, show_default=True,
              help="Explain each tumour class against 'no tumour'.")
@click.option("--refine", type=click.Choice(["none", "grabcut"]), default="none", show_default=True,
              help="Snap the first pseudo-masks to the image's edges.")
@click.option("--self-training-rounds", type=click.IntRange(0), default=0, show_default=True,
              help="Rounds in which the last network's masks train the next (stop rules: README).")
@click.option("--drawn-fraction", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of train / validation tumour images that keep their drawn masks (a user's few drawings).")
@click.option("--drawn-sweep", callback=_shares, metavar="F,F,...", default="",
              help="After the chain, its mask stages again with each share of drawn masks (e.g. 0.01,0.05,0.1), "
                   "SimCLR and the classifier shared: what a few drawings buy.")
def label_efficient(data, out, config, simclr_config, time_budget, quick, cam, cam_layer, contrast, refine,
                    self_training_rounds, drawn_fraction, drawn_sweep):
    """Seed 000's chain: SimCLR -> classifier -> pseudo-masks -> multi-task -> calibration, vs supervised."""
    from kerasbrain.evaluation.pseudomask import PseudoMaskSettings
    from kerasbrain.experiments.label_efficient import run_label_efficient
    from kerasbrain.experiments.self_training import SelfTraining
    from kerasbrain.families import get_family
    from kerasbrain.runs import removed_if_failed_before_training

    with removed_if_failed_before_training(out):
        result = run_label_efficient(data, out, get_family("simclr").load_config(simclr_config),
                                     get_family("multitask").load_config(config), quick, time_budget, progress=echo,
                                     pseudomask=PseudoMaskSettings(cam, cam_layer, contrast, refine=refine),
                                     self_training=SelfTraining(self_training_rounds), drawn_fraction=drawn_fraction,
                                     drawn_sweep=drawn_sweep)
    click.echo(result["table"])
    click.echo(f"\nresults: {out / 'results.md'}, {out / 'results.json'}\nfigures: {out / 'figures'}")


@experiment.command("drawn-sweep")
@click.option("--chain", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The folder of a finished `experiment label-efficient` run.")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The chain's dataset, with drawn masks (BRISC 2025 layout).")
@click.option("--shares", callback=_shares, metavar="F,F,...", default="0.01,0.05,0.1", show_default=True,
              help="Shares of train / validation tumour images that keep their drawn masks.")
@click.option("--time-budget", type=click.FloatRange(min=0, min_open=True), metavar="MINUTES",
              help="The wall-clock budget of each multi-task network (the chain's to compare like with like).")
@click.option("--self-training-rounds", type=click.IntRange(0), default=0, show_default=True,
              help="Self-training rounds per share (judged on the validation images, drawn where drawn).")
def drawn_sweep(chain, data, shares, time_budget, self_training_rounds):
    """What a few drawings buy: a finished chain's mask stages again with each share of drawn masks."""
    from kerasbrain.experiments.drawn_sweep import sweep_finished_chain
    from kerasbrain.experiments.self_training import SelfTraining

    result = sweep_finished_chain(chain, data, shares, time_budget, SelfTraining(self_training_rounds), progress=echo)
    click.echo(result["table"])
    click.echo(f"\nresults: {chain / 'drawn_sweep.md'}, {chain / 'drawn_sweep.json'}")


def _seeds() -> list[str]:
    from kerasbrain.experiments.reproduce import RECIPES

    return sorted(RECIPES)


def _seed_list() -> str:
    from kerasbrain.experiments.reproduce import RECIPES

    return "\b\n" + "\n".join(f"{r.seed}  {r.title} ({r.dataset})" for r in RECIPES.values())


@click.command(epilog=_seed_list())
@click.argument("seed", type=click.Choice(_seeds()))
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The seed's dataset (README 'Getting the data').")
@click.option("--out", type=OutputPath(file_okay=False), help="Default: runs/reproduce-SEED.")
@click.option("--quick", is_flag=True, help="Every run shrunk to minutes (CPU, phantom data); not comparable.")
def reproduce(seed, data, out, quick):
    """One seed's main table on its data: its recipe and split, ours beside its published numbers, its figures."""
    from kerasbrain.experiments.reproduce import reproduce as run_reproduce
    from kerasbrain.runs import removed_if_failed_before_training

    out = out or Path("runs") / f"reproduce-{seed}"
    with removed_if_failed_before_training(out):  # a refused dataset leaves no folder
        result = run_reproduce(seed, data, out, quick, progress=echo)
    click.echo(result["table"])
    click.echo(f"\nreport: {result['report']}")


@click.command()
@click.option("--out", default="demo_output", show_default=True, type=OutputPath(file_okay=False))
@click.option("--cases", default=10, show_default=True, type=click.IntRange(3))
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(1))
@click.option("--steps-per-epoch", default=25, show_default=True, type=click.IntRange(1))
@click.option("--time-budget", default=DEMO_MINUTES, show_default=True, type=click.FloatRange(min=0), metavar="MINUTES",
              help="Training stops after this many minutes if the epochs have not ended (the learning rate "
                   "decays over them); 0: no limit.")
def demo(out, cases, epochs, steps_per_epoch, time_budget):
    """Synthesise a small MSD dataset, train a small 3-D U-Net, evaluate it and segment one case."""
    from kerasbrain.demo import run_demo

    run_demo(out, cases, epochs, steps_per_epoch, progress=echo, minutes=time_budget or None)
