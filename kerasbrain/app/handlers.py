"""What the web app does, without the web: check an upload, run a model, draw views and a report.

The app is thin: `run_model` builds the same `PredictRequest` as `kerasbrain predict` and calls the
model family's `predict`, so the mask a user downloads is the CLI's, byte for byte. Everything
here is plain Python and numpy, tested without a browser; `kerasbrain.app.ui` only wires it to
Gradio components.
"""

from __future__ import annotations

import datetime
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
NIFTI_SUFFIXES = (".nii.gz", ".nii")
#: Largest upload the app takes by default (all files of one case together), in MB.
DEFAULT_MAX_UPLOAD_MB = 1024
PLANES = ("axial", "coronal", "sagittal")
#: Internal label -> (name, RGB colour) drawn in the viewer and the report.
LABEL_STYLE = {1: ("necrotic core", (230, 60, 60)), 2: ("edema", (60, 200, 90)), 3: ("enhancing", (250, 210, 40))}


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
    if name.endswith(IMAGE_SUFFIXES):
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
    for suffix in NIFTI_SUFFIXES + IMAGE_SUFFIXES:
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


# --- views ---------------------------------------------------------------------------------------
def slice_count(shape, plane: str) -> int:
    """Number of slices of a (X, Y, Z, ...) volume in a plane."""
    return int(shape[{"axial": 2, "coronal": 1, "sagittal": 0}[plane]])


def tumour_centre(labels: np.ndarray) -> tuple[int, int, int]:
    """The (x, y, z) slices with the most labelled voxels (the middle ones when there are none),
    so the viewer opens on the axial slice the result figure shows."""
    from kerasbrain.evaluation.figures import tumour_slice

    return tuple(tumour_slice(labels, axis) for axis in range(3))


def _plane(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    """A 2-D view of a canonical RAS volume, radiological convention (patient's right on the left)."""
    if plane == "axial":  # rows anterior -> posterior, columns right -> left
        return volume[:, :, index].T[::-1, ::-1]
    if plane == "coronal":  # rows superior -> inferior
        return volume[:, index, :].T[::-1, ::-1]
    return volume[index, :, :].T[::-1, :]  # sagittal: rows superior -> inferior, columns posterior -> anterior


def _plane_spacing(spacing, plane: str) -> tuple[float, float]:
    """(row, column) voxel size of a plane's view."""
    sx, sy, sz = (tuple(spacing) + (1.0, 1.0, 1.0))[:3] if spacing else (1.0, 1.0, 1.0)
    return {"axial": (sy, sx), "coronal": (sz, sx), "sagittal": (sz, sy)}[plane]


def to_grey(values: np.ndarray) -> np.ndarray:
    """An image as uint8 grey, scaled between its 0.5th and 99.5th percentile (non-zero voxels)."""
    values = np.asarray(values, np.float32)
    inside = values[values != 0]
    lo, hi = np.percentile(inside, (0.5, 99.5)) if inside.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    return (np.clip((values - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def blend(grey: np.ndarray, labels: np.ndarray, shown=(1, 2, 3), opacity: float = 0.5) -> np.ndarray:
    """An RGB uint8 picture: `grey` (H, W) or RGB (H, W, 3) with each shown label painted in its colour."""
    rgb = np.repeat(grey[..., None], 3, axis=-1) if grey.ndim == 2 else grey.copy()
    rgb = rgb.astype(np.float32)
    for label in shown:
        colour = LABEL_STYLE.get(int(label), ("tumour", (230, 60, 60)))[1]
        where = labels == label
        rgb[where] = (1 - opacity) * rgb[where] + opacity * np.asarray(colour, np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def render_view(image: np.ndarray, labels: np.ndarray, plane: str = "axial", index: int | None = None,
                channel: int = 0, shown=(1, 2, 3), opacity: float = 0.5, spacing=None,
                height: int = 384) -> np.ndarray:
    """One slice of a canonical volume with its labels painted in, at true aspect ratio, RGB uint8."""
    import cv2

    if plane not in PLANES:
        raise ValueError(f"plane must be one of {', '.join(PLANES)}. Received: {plane!r}")
    count = slice_count(image.shape, plane)
    index = count // 2 if index is None else int(np.clip(index, 0, count - 1))
    volume = image[..., channel] if image.ndim == 4 else image
    grey = to_grey(_plane(volume, plane, index))
    picture = blend(grey, _plane(labels, plane, index), shown, opacity)
    row_mm, col_mm = _plane_spacing(spacing, plane)
    rows, cols = picture.shape[:2]
    width = max(1, int(round(height * (cols * col_mm) / (rows * row_mm))))
    return cv2.resize(picture, (width, height), interpolation=cv2.INTER_NEAREST)


def overlay_picture(prediction, opacity: float = 0.5) -> np.ndarray | None:
    """A picture's predicted mask painted on it (RGB uint8), or None without a mask."""
    if prediction.labels is None or prediction.image is None:
        return None
    image = np.asarray(prediction.image)
    grey = image if image.ndim == 3 else to_grey(image)
    return blend(grey.astype(np.uint8), prediction.labels, (1,), opacity)


def volumes_table(volumes: dict[str, float] | None) -> str:
    """Markdown table of region volumes in mL."""
    if not volumes:
        return ""
    names = {"WT": "whole tumour", "TC": "tumour core", "ET": "enhancing tumour"}
    rows = [f"| {names.get(r, r)} ({r}) | {v:.2f} |" for r, v in volumes.items()]
    return "| region | volume (mL) |\n|---|---|\n" + "\n".join(rows)


# --- report --------------------------------------------------------------------------------------
def write_report(result: AppResult, path) -> Path:
    """A one-page report (PNG or PDF by `path`'s suffix): the pictures and the numbers of one run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasbrain.files import atomic_write

    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf"):
        raise ValueError(f"{path}: a report is a .png or .pdf file")
    p = result.prediction
    fig = plt.figure(figsize=(8.27, 11.69))  # A4 portrait
    fig.suptitle("kerasbrain report", fontsize=16, x=0.05, ha="left")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    header = [f"model: {result.model_label}", "input: " + ", ".join(p_.name for p_ in result.inputs),
              f"made: {stamp}"]
    fig.text(0.05, 0.93, "\n".join(header), va="top", fontsize=9, family="monospace")
    panels, wide = [], None
    if result.kind == "volume" and p.image is not None:
        centre = tumour_centre(p.labels)
        for plane, axis in zip(PLANES, (2, 1, 0)):
            panels.append((plane, render_view(p.image, p.labels, plane, centre[axis], spacing=p.spacing)))
    else:
        if p.image is not None:
            panels.append(("input", np.asarray(p.image)))
        picture = overlay_picture(p)
        if picture is not None:
            panels.append(("predicted mask", picture))
        if result.explanation is not None:
            import cv2

            wide = cv2.cvtColor(cv2.imread(str(result.explanation)), cv2.COLOR_BGR2RGB)
    for i, (title, picture) in enumerate(panels[:3]):
        ax = fig.add_axes([0.05 + i * 0.31, 0.60, 0.29, 0.28])
        ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    if wide is not None:
        ax = fig.add_axes([0.05, 0.40, 0.90, 0.19])
        ax.imshow(wide)
        ax.axis("off")
    lines = []
    if p.region_volumes_ml:
        lines.append("Volumes")
        lines += [f"  {r}: {v:9.2f} mL" for r, v in p.region_volumes_ml.items()]
        lines.append("  labels: " + ", ".join(f"{name} ({colour})" for name, colour in
                                             zip((n for n, _ in LABEL_STYLE.values()), ("red", "green", "yellow"))))
    if p.class_probabilities:
        lines.append("Class probabilities" + (" (temperature-calibrated)" if "calibrated" in result.model_label
                                               else ""))
        for name, value in sorted(p.class_probabilities.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {name:16s} {value:6.3f}")
    lines += [line for line in p.lines if not line.startswith(("volumes:", "class:"))] + list(result.notes)
    fig.text(0.05, 0.37 if wide is not None else 0.56, "\n".join(lines), va="top", fontsize=10, family="monospace")
    fig.text(0.05, 0.03, "Made by kerasbrain for research. Not a medical device; not for diagnosis.",
             fontsize=8, color="grey")
    written = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format=path.suffix[1:].lower()))
    plt.close(fig)
    return written
