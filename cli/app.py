"""`kerasbrain app`: the web app (Gradio, the optional `[app]` extra) for every model kerasbrain trains."""

from __future__ import annotations

from pathlib import Path

import click

from kerasbrain.app.handlers import DEFAULT_MAX_UPLOAD_MB


@click.command()
@click.option("--models", "models_dir", default="runs", show_default=True, type=click.Path(path_type=Path),
              help="Folder searched for run folders and .keras models (an empty or missing folder is fine).")
@click.option("--server", help="Predict through TF Serving instead: http://HOST:8501 or grpc://HOST:8500.")
@click.option("--saved-models", default="saved_models", show_default=True, type=click.Path(path_type=Path),
              help="With --server: the folder the server serves (the models offered are read from it).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one).")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535))
@click.option("--max-upload-mb", default=DEFAULT_MAX_UPLOAD_MB, show_default=True, type=click.FloatRange(min=1),
              help="Largest upload taken, all files of a case together.")
def app(models_dir, server, saved_models, host, port, max_upload_mb):
    """Open the web app: pick a model, upload a slice or a NIfTI case, see, check and download the result.

    Slices (PNG/JPEG/TIFF) go to 2-D, classifier and multi-task models; NIfTI cases (one 4-D MSD file
    or the four BraTS modalities) to 3-D models, with an axial/coronal/sagittal viewer and region
    volumes in mL. Downloads: the mask (NIfTI or PNG, the same bytes `kerasbrain predict` writes)
    and a one-page report (PNG or PDF).
    """
    try:
        from kerasbrain.app.ui import launch_app
    except ImportError as exc:
        raise click.ClickException(f"the app needs Gradio: pip install 'kerasbrain[app]' ({exc})") from None
    click.echo(f"kerasbrain app on http://{host}:{port} (models: {saved_models if server else models_dir}); "
               "Ctrl+C stops it")
    launch_app(models_dir, server, saved_models, host, port, max_upload_mb)
