"""`kerasbrain export`, `kerasbrain serving config` and `kerasbrain serve`."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import KerasbrainGroup, OutputPath, echo


@click.command("export")
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="A .keras model or a run folder (uses its best.keras).")
@click.option("--name", required=True, help="Model name: the folder under saved_models/ and the served name.")
@click.option("--version", "version", type=click.IntRange(1), help="Version number (default: next integer).")
@click.option("--root", default="saved_models", show_default=True, type=OutputPath(file_okay=False))
@click.option("--warmup/--no-warmup", default=True, show_default=True,
              help="Write TF Serving warm-up requests (assets.extra/tf_serving_warmup_requests).")
@click.option("--backend", "graph_backend", type=click.Choice(["tensorflow", "jax"]), default="tensorflow",
              show_default=True,
              help="The Keras backend that traces the serving graph. tensorflow: TensorFlow's own ops; jax: "
                   "JAX's program, which TF Serving runs through XLA (~6x slower for 3-D convolutions on CPUs). "
                   "From a process on another backend the export runs in a child process.")
def export_cmd(model_path, name, version, root, warmup, graph_backend):
    """Export a model as saved_models/NAME/VERSION, a SavedModel with named serving signatures.

    The version's assets.extra/kerasbrain.json records the model's family and its run's inference
    settings, which `kerasbrain predict --server` reads back. A `.keras` file does not depend on the
    backend that saved it, so a run trained on JAX exports under TensorFlow by default.
    """
    import keras

    if keras.backend.backend() != graph_backend:
        _export_in_child(graph_backend, keras.backend.backend(), model_path, name, version, root, warmup)
        return
    from kerasbrain.families import family_of_run

    family = family_of_run(model_path)
    family.require("export", model_path)
    click.echo(str(family.export(model_path, name, root, version, warmup)))


def _export_in_child(backend, current, model_path, name, version, root, warmup):
    """`kerasbrain export` again in a process whose Keras runs on `backend` (a process has one backend;
    this one runs `current`). Its output is passed on, and its exit status becomes this command's."""
    import os
    import signal
    import subprocess
    import sys

    argv = [sys.executable, "-m", "cli.main", "export", "--model", str(model_path), "--name", name,
            "--root", str(root), "--backend", backend, "--warmup" if warmup else "--no-warmup"]
    if version is not None:
        argv += ["--version", str(version)]
    keep = f"; --backend {current} keeps it" if current in ("tensorflow", "jax") else ""
    echo(f"exporting under {backend} in a child process (this one runs {current}{keep})")
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": backend})
    if done.stdout:
        click.echo(done.stdout, nl=False)
    if done.stderr:
        click.echo(done.stderr, nl=False, err=True)
    if done.returncode < 0:  # killed (out of memory, a signal): it could not say so itself
        raise click.ClickException(f"the export process under {backend} was killed by signal "
                                   f"{signal.Signals(-done.returncode).name}; nothing was exported")
    if done.returncode:
        raise click.exceptions.Exit(done.returncode)


@click.group(cls=KerasbrainGroup)
def serving():
    """TF Serving configuration (see `kerasbrain serving config --help`)."""


@serving.command("config")
@click.option("--saved-models", default="saved_models", show_default=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", default="serving/models.config", show_default=True, type=OutputPath(dir_okay=False))
@click.option("--base-path-prefix", default="/models", show_default=True,
              help="Where the server sees saved_models/ (docker-compose mounts it at /models).")
def serving_config(saved_models, out, base_path_prefix):
    """Regenerate models.config from the exported models (two newest versions: stable and canary)."""
    from kerasbrain.serving.config import write_models_config

    click.echo(str(write_models_config(saved_models, out, base_path_prefix)))


@click.command()
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
@click.option("--max-inflight-mb", default=1024, show_default=True, type=click.IntRange(1),
              help="REST request bodies read and parsed at once; beyond it requests wait, then get 429.")
@click.option("--case-slots", default=2, show_default=True, type=click.IntRange(1),
              help="Whole-case requests (segment_case) run at once, ~2 GB each for a BraTS-size case.")
@click.option("--max-waiting", default=8, show_default=True, type=click.IntRange(0),
              help="Requests waiting for either limit; more are answered 429 / RESOURCE_EXHAUSTED at once.")
def serve(model_config, model_name, model_base_path, saved_models, batching_config, monitoring_config, host,
          rest_port, grpc_port, poll_seconds, max_body_mb, max_inflight_mb, case_slots, max_waiting):
    """Serve exported models over TF Serving's REST and gRPC protocols and the Open Inference Protocol v2
    on the same ports (until Ctrl-C)."""
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
                            max_body_bytes=max_body_mb * 1024**2, max_inflight_mb=max_inflight_mb,
                            case_slots=case_slots, max_waiting=max_waiting)
    # The handler goes in before the ports open: a SIGTERM that arrives as soon as the server answers still
    # stops it cleanly instead of killing the process mid-start.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = build_server(model_config, model_name, model_base_path, saved_models, batching_config,
                          monitoring_config, options).start()
    click.echo(f"serving REST on http://{host}:{server.rest_port}, gRPC on grpc://{host}:{server.grpc_port}", err=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
