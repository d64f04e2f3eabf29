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

from kerasbrain.data.pictures import PICTURE_SUFFIXES

NIFTI_SUFFIXES = (".nii.gz", ".nii")
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
def upload_kind(path) -> str | None:
    """"volume" for NIfTI, "image" for pictures, None for anything else (by name)."""
    name = Path(path).name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "volume"
    if name.endswith(PICTURE_SUFFIXES):
        return "image"
    return None


def check_upload(paths, input_kind: str, max_mb: float = DEFAULT_MAX_UPLOAD_MB) -> tuple[Path, ...]:
    """The uploaded files as the model's `predict` wants them, or one `UploadError` line."""
    from kerasbrain.data.errors import DataError
    from kerasbrain.data.layouts import order_modalities

    paths = [Path(p) for p in (paths or [])]
    if not paths:
        raise UploadError("Upload a file first: a PNG/JPEG/TIFF slice or a NIfTI case.")
    total = 0
    for path in paths:
        if not path.is_file():
            raise UploadError(f"{path.name}: not a file")
        size = path.stat().st_size
        if size == 0:
            raise UploadError(f"{path.name}: the file is empty")
        total += size
        if upload_kind(path) is None:
            raise UploadError(f"{path.name}: not a picture (PNG, JPEG, TIFF) or a NIfTI volume (.nii, .nii.gz)")
    if total > max_mb * 1e6:
        raise UploadError(f"the upload is {total / 1e6:.0f} MB, over this app's limit of {max_mb:g} MB")
    kinds = {upload_kind(p) for p in paths}
    if len(kinds) > 1:
        raise UploadError("upload either one picture or the NIfTI files of one case, not both")
    if kinds != {input_kind}:
        wanted = "a NIfTI case (one 4-D file or the four BraTS modalities)" if input_kind == "volume" \
            else "one PNG/JPEG/TIFF picture"
        raise UploadError(f"{paths[0].name}: this model takes {wanted}")
    if input_kind == "image":
        if len(paths) != 1:
            raise UploadError(f"this model takes one picture; {len(paths)} were uploaded")
        return tuple(paths)
    if len(paths) == 1:
        return tuple(paths)
    if len(paths) != 4:
        raise UploadError(f"a case is one 4-D NIfTI or the four BraTS modalities; {len(paths)} files were uploaded")
    try:
        return order_modalities(paths)
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
    name = Path(inputs[0]).name
    for suffix in NIFTI_SUFFIXES + PICTURE_SUFFIXES:
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
    out = folder / (f"{name}_seg.nii.gz" if model.input_kind == "volume" else f"{name}.png")
    request = PredictRequest(model.ref, tuple(staged), out, server=model.server,
                             saved_models=model.saved_models or Path("saved_models"))
    say(0.0, f"running {model.label}")
    prediction = model.family.predict(request, progress=lambda message: say(fraction_of(message), message))
    result = AppResult(prediction, model.label, tuple(staged), model.input_kind)
    if explain and prediction.class_probabilities is not None:
        if model.server:
            result.notes += ("Grad-CAM needs the model file; served models are explained with `kerasbrain explain`",)
        else:
            say(None, "Grad-CAM")
            written = model.family.explain(model.ref, staged[0], folder / f"{name}_gradcam.png")
            result.explanation = Path(written[-1])
    return result
