"""What the web app does, without the web: check an upload, run a model in a per-session folder.

The app is thin: `run_model` builds the same `PredictRequest` as `kerasbrain predict` and calls the
model family's `predict`, so the mask a user downloads is the CLI's, byte for byte. Everything
here is plain Python and numpy, tested without a browser; `kerasbrain.app.ui` only wires it to
Gradio components; `views` draws what the page shows and `report` the one-page report.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

#: Largest upload the app takes by default (all files of one case together), in MB.
DEFAULT_MAX_UPLOAD_MB = 1024


class UploadError(ValueError):
    """An upload the app cannot use; its message is shown in the page."""


@dataclass
class AppResult:
    """One run of the app: the model's `Prediction`, plus what the page adds."""

    prediction: object  # kerasbrain.families.Prediction
    model_label: str
    inputs: tuple[Path, ...]
    kind: str  # "volume" or "image"
    explanation: Path | None = None  # a Grad-CAM figure for models with a class head
    notes: tuple[str, ...] = ()


# --- uploads ---------------------------------------------------------------------------------------
def upload_format(path):
    """The input format (kerasbrain.data.io) an uploaded file's name belongs to, or None."""
    from kerasbrain.data.io import format_of_upload

    return format_of_upload([path])


def upload_kind(path) -> str | None:
    """"volume" for NIfTI and zipped DICOM studies, "image" for pictures, None for anything else (by name)."""
    fmt = upload_format(path)
    return fmt.kind if fmt else None


def _accepted(kind: str | None = None) -> str:
    from kerasbrain.data.io import input_formats

    return "; or ".join(f.description for f in input_formats(kind) if f.upload_suffixes)


def check_upload(paths, input_kind: str, max_mb: float = DEFAULT_MAX_UPLOAD_MB) -> tuple[Path, ...]:
    """The uploaded files as the model's `predict` wants them, or one `UploadError` line.

    Which formats the app takes, and how each checks its files, comes from the input-format registry.
    """
    from kerasbrain.data.errors import DataError
    from kerasbrain.data.io import format_of_upload

    paths = [Path(p) for p in (paths or [])]
    if not paths:
        raise UploadError(f"Upload a file first: {_accepted()}.")
    total = 0
    for path in paths:
        if not path.is_file():
            raise UploadError(f"{path.name}: not a file")
        size = path.stat().st_size
        if size == 0:
            raise UploadError(f"{path.name}: the file is empty")
        total += size
        if upload_format(path) is None:
            raise UploadError(f"{path.name}: not a picture (PNG, JPEG, TIFF), a NIfTI volume (.nii, .nii.gz) or a "
                              "DICOM study (.zip)")
    if total > max_mb * 1e6:
        raise UploadError(f"the upload is {total / 1e6:.0f} MB, over this app's limit of {max_mb:g} MB")
    fmt = format_of_upload(paths)
    if fmt is None:
        raise UploadError("upload the files of one case in one format (one picture, the NIfTI files of one case or "
                          "one zipped DICOM study), not both")
    if fmt.kind != input_kind:
        raise UploadError(f"{paths[0].name}: this model takes {_accepted(input_kind)}")
    if input_kind == "image" and len(paths) != 1:
        raise UploadError(f"this model takes one picture; {len(paths)} were uploaded")
    try:
        return fmt.check_upload(paths)
    except DataError as exc:
        raise UploadError(str(exc)) from None


# --- per-session folders -------------------------------------------------------------------------
class Workspace:
    """One temporary folder per browser session, so users never see each other's files.

    Each run gets a fresh folder (the session's previous one is removed); a session's folder goes
    when its page closes, and the whole workspace when the app stops.
    """

    def __init__(self, root=None):
        self.root = Path(root or tempfile.mkdtemp(prefix="kerasbrain-app-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._runs: dict[str, int] = {}

    def _session_dir(self, session: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", session or "anonymous")[:64]
        return self.root / safe

    def new_run(self, session: str) -> Path:
        with self._lock:
            n = self._runs.get(session, 0) + 1
            self._runs[session] = n
        folder = self._session_dir(session)
        for old in folder.glob("run-*") if folder.is_dir() else ():
            shutil.rmtree(old, ignore_errors=True)
        run = folder / f"run-{n}"
        run.mkdir(parents=True)
        return run

    def release(self, session: str) -> None:
        with self._lock:
            self._runs.pop(session, None)
        shutil.rmtree(self._session_dir(session), ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# --- running a model -----------------------------------------------------------------------------
def _case_name(inputs) -> str:
    from kerasbrain.data.io import input_formats

    name = Path(inputs[0]).name
    for suffix in sorted((s for f in input_formats() for s in f.upload_suffixes), key=len, reverse=True):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    if len(inputs) == 4:  # BraTS modalities: drop the modality suffix
        name = re.sub(r"([_-](flair|t1|t1ce|t2|t2f|t1n|t1c|t2w))$", "", name, flags=re.IGNORECASE)
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "case"


def fraction_of(message: str) -> float | None:
    """The share done that a progress line like "case: window 3/18" reports, if any."""
    match = re.search(r"(\d+)\s*/\s*(\d+)", message)
    if not match or int(match.group(2)) == 0:
        return None
    return min(1.0, int(match.group(1)) / int(match.group(2)))


def run_model(model, uploads, folder, max_mb: float = DEFAULT_MAX_UPLOAD_MB, progress=None,
              explain: bool = True) -> AppResult:
    """Check the upload, predict with the family's `predict` (as the CLI does) into `folder`.

    `model` is a `catalogue.AppModel`; `progress(fraction or None, message)` hears the family's
    progress lines. Models with a class head also get a Grad-CAM figure (local models only).
    """
    from kerasbrain.families import PredictRequest

    say = progress or (lambda fraction, message: None)
    inputs = check_upload(uploads, model.input_kind, max_mb)
    folder = Path(folder)
    staged = []
    for path in inputs:  # the family reads the files under their own names, from the run's folder
        target = folder / "input" / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        staged.append(target)
    name = _case_name(staged)
    out = folder / upload_format(staged[0]).output_name(name)
    request = PredictRequest(model.ref, tuple(staged), out, server=model.server,
                             saved_models=model.saved_models or Path("saved_models"))
    say(0.0, f"running {model.label}")
    from kerasbrain.inference.predict_cases import predict_case

    prediction = predict_case(model.family, request, progress=lambda message: say(fraction_of(message), message))
    result = AppResult(prediction, model.label, tuple(staged), model.input_kind)
    if explain and prediction.class_probabilities is not None:
        if model.server:
            result.notes += ("Grad-CAM needs the model file; served models are explained with `kerasbrain explain`",)
        else:
            say(None, "Grad-CAM")
            written = model.family.explain(model.ref, staged[0], folder / f"{name}_gradcam.png")
            result.explanation = Path(written[-1])
    return result
