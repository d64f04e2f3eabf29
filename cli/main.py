"""The `kerasbrain` command line: thin click wrappers over library functions a script can call directly.

Why one long module: every verb still lives here, with per-family branches. Issue 8 ("One house
for every model family") splits it into a module per verb group behind a family registry; until
then new options are added here only where a verb already exists.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

# Quiet TensorFlow's C++ start-up chatter before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

LAYOUTS = {"msd": "msd", "brats": "brats2021", "brats2021": "brats2021", "brats2023": "brats2023", "lgg": "lgg"}


class KerasbrainGroup(click.Group):
    """Turns the library's input errors into a one-line message and exit status 1 (no traceback)."""

    def invoke(self, ctx):
        from kerasbrain.data.errors import DataError
        from kerasbrain.training.config import ConfigError

        try:
            return super().invoke(ctx)
        except (DataError, ConfigError, FileNotFoundError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc


def echo(message: str) -> None:
    click.echo(message, err=True)


@click.group(cls=KerasbrainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kerasbrain")
def cli():
    """kerasbrain: brain-tumour MRI models in Keras 3.

    Stages: `synth` (phantom data in the real layouts), `train`, `evaluate`, `predict`; `demo`
    runs them all on a small phantom dataset.
    """


@cli.command()
@click.argument("layout", type=click.Choice(sorted(LAYOUTS)))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write.")
@click.option("--cases", "--patients", default=4, show_default=True, type=click.IntRange(1),
              help="Labelled cases (LGG: patients).")
@click.option("--slices", default=12, show_default=True, type=click.IntRange(1), help="LGG: slices per patient.")
@click.option("--test-cases", default=0, show_default=True, type=click.IntRange(0),
              help="Unlabelled cases (MSD imagesTs/ only).")
@click.option("--shape", nargs=3, type=int, default=(96, 96, 64), show_default=True, help="Volume size in voxels.")
@click.option("--seed", default=0, show_default=True, help="Same seed, same files.")
def synth(layout, out, cases, slices, test_cases, shape, seed):
    """Write deterministic phantom MRI cases in a real public layout.

    LAYOUT is msd (Medical Segmentation Decathlon Task01), brats / brats2021, brats2023, or lgg
    (Buda's kaggle_3m slices: OUT/kaggle_3m/<PATIENT>/<PATIENT>_<k>[_mask].tif, 256 x 256).
    """
    from kerasbrain.data.phantom import write_dataset, write_lgg

    if layout == "lgg":
        root = write_lgg(out, cases, slices, seed=seed, progress=lambda i, pid: echo(f"[{i}/{cases}] {pid}"))
        click.echo(str(root))
        return

    write_dataset(out, LAYOUTS[layout], cases, tuple(shape), seed, test_cases,
                  progress=lambda i, cid: echo(f"[{i}/{cases + test_cases}] {cid}"))
    click.echo(str(out))


@cli.group(cls=KerasbrainGroup)
def train():
    """Train a model (see `kerasbrain train MODEL --help`)."""


@train.command("unet3d")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Dataset folder (MSD Task01 or BraTS 2021/2023 layout).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML config; defaults for anything it leaves out.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder; re-running the same command resumes an interrupted run.")
@click.option("--epochs", type=click.IntRange(1), help="Override [training].epochs.")
@click.option("--steps-per-epoch", type=click.IntRange(1), help="Override [training].steps_per_epoch.")
def train_unet3d_cmd(data, config, out, epochs, steps_per_epoch):
    """Train the volumetric 3-D U-Net on random patches (seed 003 / nnU-Net recipe)."""
    from kerasbrain.training.config import load_config
    from kerasbrain.training.train_unet3d import train_unet3d

    result = train_unet3d(data, out, load_config(config), epochs, steps_per_epoch, progress=echo)
    click.echo(f"best model: {result['best']}\nlast model: {result['last']}\nTensorBoard: {out / 'logs'}")


@train.command("unet2d")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="LGG dataset folder (kaggle_3m or its parent).")
@click.option("--config", help="TOML config or a shipped name (seed002_unet2d, seed004_resnet50).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder.")
@click.option("--time-budget", type=click.FloatRange(min=0, min_open=True), metavar="MINUTES",
              help="Stop after this much wall-clock training time, ending cleanly with best/last models.")
def train_unet2d_cmd(data, config, out, time_budget):
    """Train a 2-D slice U-Net (from scratch or with a keras-cv encoder) with patient-level splits."""
    from kerasbrain.training.config2d import load_slice_config
    from kerasbrain.training.train_unet2d import train_unet2d

    result = train_unet2d(data, out, load_slice_config(config), progress=echo, time_budget=time_budget)
    click.echo(f"best model: {result['best']}\nlast model: {result['last']}\nTensorBoard: {out / 'logs'}")


def _inference_options(f):
    f = click.option("--window", nargs=3, type=int, help="Sliding-window size (default: the run's config).")(f)
    f = click.option("--overlap", type=click.FloatRange(0, 0.95), help="Window overlap fraction.")(f)
    f = click.option("--batch-size", type=click.IntRange(1), help="Windows per model call.")(f)
    f = click.option("--mirror/--no-mirror", default=None, help="Flip test-time augmentation.")(f)
    f = click.option("--compile-mode", type=click.Choice(["auto", "xla", "graph"]), help="XLA or plain graph.")(f)
    f = click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]),
                     help="Compute precision (auto: bf16 on a GPU that has it).")(f)
    return f


def _load_for_inference(model_path: Path, window, overlap, batch_size, mirror, compile_mode, precision=None):
    """Load the model and the inference settings of its run (config.json beside it), overridden by flags."""
    from dataclasses import replace

    from kerasbrain.inference.model_io import load_model, output_channels
    from kerasbrain.inference.predict_volume import InferenceConfig
    from kerasbrain.runtime import precision_policy, predictor
    from kerasbrain.training.config import config_from_json

    run_config = (model_path if model_path.is_dir() else model_path.parent) / "config.json"
    cfg, spacing = InferenceConfig(), None
    if run_config.exists():
        config = config_from_json(run_config)
        cfg, spacing = config.inference, tuple(config.data.target_spacing) or None
    overrides = {"window": tuple(window) if window else None, "overlap": overlap, "batch_size": batch_size,
                 "mirror": mirror, "compile_mode": compile_mode, "precision": precision}
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    with precision_policy(cfg.precision):
        model = load_model(model_path)
    divisor = 2 ** getattr(model, "depth", 0)
    if any(w % divisor for w in cfg.window):
        raise ValueError(f"window sides must be multiples of {divisor} for this model. Received: window={cfg.window}")
    return model, predictor(model, cfg.compile_mode), output_channels(model), cfg, spacing


@cli.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="A .keras model or a run folder (uses its best.keras).")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write cases.csv and summary.{json,md} (default: <data>/../evaluation).")
@click.option("--subset", type=click.Choice(["all", "validation", "train", "test"]), default="all", show_default=True,
              help="Cases to score; validation/train need the run's split.json beside the model.")
@click.option("--save-predictions", is_flag=True, help="Also write each predicted label map.")
@_inference_options
def evaluate(model_path, data, out, subset, save_predictions, window, overlap, batch_size, mirror, compile_mode,
             precision):
    """Score a model on every labelled case: per-case CSV and a per-region summary (mean, std, median).

    3-D models are scored on whole volumes (MSD/BraTS); 2-D slice models on LGG slices, with
    scores pooled over all pixels and averaged over images, and seed 002's pixel-wise report.
    """
    import json

    run_dir = model_path if model_path.is_dir() else model_path.parent
    case_ids = None
    if subset != "all":
        split_file = run_dir / "split.json"
        if not split_file.exists():
            raise FileNotFoundError(f"{split_file}: --subset {subset} needs the run's split.json")
        case_ids = json.loads(split_file.read_text()).get(subset)
        if not case_ids:
            raise ValueError(f"{split_file}: the run's split has no {subset!r} cases")
    out = out or data.parent / "evaluation"
    if _is_slice_run(model_path):
        from kerasbrain.data.lgg import discover_lgg
        from kerasbrain.evaluation.slices import evaluate_slices
        from kerasbrain.inference.model_io import load_model

        slices = [s for s in discover_lgg(data) if case_ids is None or s.patient in set(case_ids)]
        result = evaluate_slices(load_model(model_path), slices, out, _slice_enhance(run_dir), progress=echo)
        click.echo(result["table"] + "\n\n" + result["report"])
        click.echo(f"per-slice scores: {out / 'slices.csv'}\nsummary: {out / 'summary.json'}")
        return
    from kerasbrain.evaluation.segmentation import evaluate_dataset

    model, predict, channels, cfg, spacing = _load_for_inference(model_path, window, overlap, batch_size, mirror,
                                                                 compile_mode, precision)
    result = evaluate_dataset(data, predict, channels, out, cfg, case_ids, save_predictions, spacing, progress=echo)
    click.echo(result["table"])
    click.echo(f"\nper-case scores: {out / 'cases.csv'}\nsummary: {out / 'summary.json'}")


SLICE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


def _is_slice_run(model_path: Path) -> bool:
    """Whether a model (or run folder) is a 2-D slice model, decided from its run config or the model."""
    run_config = (model_path if model_path.is_dir() else model_path.parent) / "config.json"
    if run_config.exists():
        import json

        return "stages" in json.loads(run_config.read_text())
    from kerasbrain.inference.model_io import load_model
    from kerasbrain.registry import is_slice_model

    return is_slice_model(load_model(model_path))


def _slice_enhance(run_dir: Path) -> bool:
    """Whether the run trained on median + CLAHE enhanced slices (so inference must enhance too)."""
    run_config = run_dir / "config.json"
    if not run_config.exists():
        return False
    from kerasbrain.training.config2d import slice_config_from_json

    return slice_config_from_json(run_config).data.enhance


@cli.command()
@click.option("--model", "model_path", required=True,
              help="A .keras model or run folder; with --server, the served model's name.")
@click.option("--server", help="Predict through TF Serving: http://HOST:8501 (REST) or grpc://HOST:8500.")
@click.option("--model-version", type=click.IntRange(1), help="With --server: a specific version.")
@click.option("--model-label", help="With --server: a version label (stable, canary).")
@click.option("--input", "inputs", required=True, multiple=True, type=click.Path(exists=True, path_type=Path),
              help="One 4-D NIfTI, four 3-D NIfTIs (FLAIR, T1, T1Gd, T2; repeat --input) or a BraTS case folder.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Label map .nii.gz (volumes) or mask .png (a TIFF/PNG/JPEG slice).")
@click.option("--truth", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Slice inputs: the ground-truth mask, shown in the figure.")
@click.option("--labels", "label_layout", type=click.Choice(["msd", "brats2021", "brats2023"]),
              help="Label numbering to write (default: the input's layout; msd for bare files).")
@click.option("--probabilities", is_flag=True, help="Also write <out>_probabilities.nii.gz (WT, TC, ET).")
@click.option("--overlay", type=click.Path(dir_okay=False, path_type=Path),
              help="PNG of the slice with most tumour (default: <out> with .png).")
@_inference_options
def predict(model_path, server, model_version, model_label, inputs, out, truth, label_layout, probabilities, overlay,
            window, overlap, batch_size, mirror, compile_mode, precision):
    """Segment one case; writes the label map in the input's own grid and an overlay PNG.

    A single TIFF/PNG/JPEG slice goes to a 2-D model: writes the mask PNG and seed 002's figure
    (original | ground truth if --truth | prediction heatmap). Volumes go locally (--model best.keras) or through a TF Serving endpoint (--server URL --model NAME); both
    write the same files.
    """
    if not server and len(inputs) == 1 and inputs[0].suffix.lower() in SLICE_SUFFIXES:
        from kerasbrain.evaluation.slices import predict_slice_file
        from kerasbrain.inference.model_io import load_model

        if out.suffix.lower() != ".png":
            raise ValueError(f"--out must be a .png mask for a slice input. Received: {out}")
        model_path = Path(model_path)
        run_dir = model_path if model_path.is_dir() else model_path.parent
        for path in predict_slice_file(load_model(model_path), inputs[0], out, truth, _slice_enhance(run_dir)):
            click.echo(str(path))
        return
    from kerasbrain.data.layouts import case_from_files
    from kerasbrain.evaluation.figures import save_overlay
    from kerasbrain.inference.predict_volume import predict_files

    if server:
        predict_fn, channels, cfg, spacing = _remote_predictor(server, model_path, model_version, model_label,
                                                               window, overlap, batch_size, mirror)
    else:
        _, predict_fn, channels, cfg, spacing = _load_for_inference(Path(model_path), window, overlap, batch_size,
                                                                    mirror, compile_mode, precision)
    files = case_from_files(list(inputs))
    if not str(out).endswith(".nii.gz"):
        raise ValueError(f"--out must end with .nii.gz. Received: {out}")
    case, labels, written = predict_files(
        files, predict_fn, channels, cfg, out, probabilities, label_layout, spacing,
        progress=lambda d, n: echo(f"{files.case_id}: window {d}/{n}"))
    overlay = overlay or out.with_name(out.name[:-7] + ".png")
    written.append(save_overlay(overlay, case.image, labels, case.labels, title=case.case_id))
    for path in written:
        click.echo(str(path))


def _remote_predictor(server, model_name, version, label, window, overlap, batch_size, mirror):
    from dataclasses import replace

    from kerasbrain.inference.predict_volume import InferenceConfig
    from kerasbrain.serving.client import RemoteWindowPredictor, ServingClientError, connect

    client = connect(server, model_name, version, label)
    try:
        client.status()
    except ServingClientError as exc:
        raise ValueError(f"{server}: model {model_name!r} is not available ({exc.message})") from exc
    overrides = {"window": tuple(window) if window else None, "overlap": overlap, "batch_size": batch_size,
                 "mirror": mirror}
    cfg = replace(InferenceConfig(), **{k: v for k, v in overrides.items() if v is not None})
    return RemoteWindowPredictor(client), 3, cfg, None


@cli.command("export")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="A .keras model or a run folder (uses its best.keras).")
@click.option("--name", required=True, help="Model name: the folder under saved_models/ and the served name.")
@click.option("--version", "version", type=click.IntRange(1), help="Version number (default: next integer).")
@click.option("--root", default="saved_models", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--warmup/--no-warmup", default=True, show_default=True,
              help="Write TF Serving warm-up requests (assets.extra/tf_serving_warmup_requests).")
def export_cmd(model_path, name, version, root, warmup):
    """Export a model as saved_models/NAME/VERSION, a SavedModel with named serving signatures."""
    from kerasbrain.export.saved_model import export_version
    from kerasbrain.inference.model_io import load_model
    from kerasbrain.training.config import config_from_json

    model = load_model(model_path)
    run_dir = model_path if model_path.is_dir() else model_path.parent
    slices = _is_slice_run(model_path)
    window = None
    if warmup:
        if slices:
            window = (256, 256)
        elif (run_dir / "config.json").exists():
            window = config_from_json(run_dir / "config.json").inference.window
        else:
            window = (2 ** model.depth,) * 3
    path = export_version(model, name, root, version, window, requires_clahe=slices and _slice_enhance(run_dir))
    click.echo(str(path))


@cli.group(cls=KerasbrainGroup)
def serving():
    """TF Serving configuration (see `kerasbrain serving config --help`)."""


@serving.command("config")
@click.option("--saved-models", default="saved_models", show_default=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", default="serving/models.config", show_default=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--base-path-prefix", default="/models", show_default=True,
              help="Where the server sees saved_models/ (docker-compose mounts it at /models).")
def serving_config(saved_models, out, base_path_prefix):
    """Regenerate models.config from the exported models (two newest versions: stable and canary)."""
    from kerasbrain.serving.config import write_models_config

    click.echo(str(write_models_config(saved_models, out, base_path_prefix)))


@cli.command()
@click.option("--model-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A models.config (TF Serving's --model_config_file).")
@click.option("--model-name", help="Serve one model instead (TF Serving's --model_name) ...")
@click.option("--model-base-path", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="... from this folder of versions (--model_base_path).")
@click.option("--saved-models", default="saved_models", show_default=True, type=click.Path(path_type=Path),
              help="Read base paths under /models/ (the docker-compose mount) from this folder.")
@click.option("--batching-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="batching.config: enables server-side batching (--enable_batching).")
@click.option("--monitoring-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="monitoring.config: Prometheus metrics on the REST port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--rest-port", default=8501, show_default=True, type=click.IntRange(0, 65535))
@click.option("--grpc-port", default=8500, show_default=True, type=click.IntRange(0, 65535))
@click.option("--poll-seconds", default=5.0, show_default=True, type=click.FloatRange(0),
              help="How often to look for new versions and config edits (0 = never).")
@click.option("--max-body-mb", default=256, show_default=True, type=click.IntRange(1))
def serve(model_config, model_name, model_base_path, saved_models, batching_config, monitoring_config, host,
          rest_port, grpc_port, poll_seconds, max_body_mb):
    """Serve exported models over TF Serving's REST and gRPC protocols (until Ctrl-C)."""
    import logging
    import signal
    import threading

    from kerasbrain.serving.server import ServerOptions, build_server

    if (model_config is None) == (model_name is None):
        raise click.UsageError("give --model-config, or --model-name with --model-base-path")
    if model_name and model_base_path is None:
        raise click.UsageError("--model-name needs --model-base-path")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    options = ServerOptions(rest_port=rest_port, grpc_port=grpc_port, host=host, poll_seconds=poll_seconds,
                            max_body_bytes=max_body_mb * 1024**2)
    server = build_server(model_config, model_name, model_base_path, saved_models, batching_config,
                          monitoring_config, options).start()
    click.echo(f"serving REST on http://{host}:{server.rest_port}, gRPC on grpc://{host}:{server.grpc_port}", err=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@cli.group(cls=KerasbrainGroup)
def experiment():
    """Reproduce a published comparison (see `kerasbrain experiment lgg-compare --help`)."""


@experiment.command("lgg-compare")
@click.option("--data", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="LGG dataset (kaggle_3m or its parent).")
@click.option("--out", default="runs/lgg-compare", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--encoder", "encoders", multiple=True, default=("resnet50", "efficientnet_b0"), show_default=True,
              type=click.Choice(["resnet18", "resnet34", "resnet50", "efficientnet_b0"]))
@click.option("--quick", is_flag=True, help="Two short stages on at most 24 slices per subset (CPU, phantom data).")
def lgg_compare(data, out, encoders, quick):
    """Seed 004's table: raw / median+CLAHE x ResNet50 / EfficientNet-B0, two-stage fine-tuning."""
    from kerasbrain.experiments.lgg_compare import run_lgg_compare

    result = run_lgg_compare(data, out, tuple(encoders), quick, progress=echo)
    click.echo(result["table"])
    click.echo(f"\nresults: {out / 'results.md'}, {out / 'results.csv'}\ncurves: {result['curves']}")


@cli.command()
@click.option("--out", default="demo_output", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--cases", default=10, show_default=True, type=click.IntRange(3))
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(1))
@click.option("--steps-per-epoch", default=25, show_default=True, type=click.IntRange(1))
def demo(out, cases, epochs, steps_per_epoch):
    """Synthesise a small MSD dataset, train a small 3-D U-Net, evaluate it and segment one case."""
    from kerasbrain.demo import run_demo

    run_demo(out, cases, epochs, steps_per_epoch, progress=echo)


def main():
    cli(prog_name="kerasbrain")


if __name__ == "__main__":
    sys.exit(main())
