"""The run folder: what `kerasbrain train` writes and every later verb reads back.

A run folder holds `run.json` (which model family made it, with which kerasbrain and Keras),
`config.json` (the family's full config), `split.json` (case or patient ids per subset),
`best.keras`, `last.keras`, `history.csv`, `logs/` (TensorBoard) and `backup/` (resume). Verbs
find the family of a model through `run.json`, never by looking at class names or config keys;
runs made before `run.json` existed are recognised by `kerasbrain.families.family_of_run`.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

from kerasbrain import __version__
from kerasbrain.files import atomic_write

RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
BEST_MODEL = "best.keras"  # lowest validation loss
LAST_MODEL = "last.keras"
CALIBRATED_MODEL = "calibrated.keras"  # `kerasbrain calibrate`: the best model with its temperature folded in
HISTORY_FILE = "history.csv"


def run_dir_of(model_path) -> Path:
    """The run folder of a model path: the folder itself, or the folder holding a `.keras` file."""
    model_path = Path(model_path)
    return model_path if model_path.is_dir() else model_path.parent


def model_digest(path) -> str:
    """SHA-256 of a model file: what a choice made after training (a threshold, a post-processing)
    records, so that it is made again when the run saves another model."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_run_info(run_dir, family: str) -> Path:
    """Record which family made this run (written once at the start of training)."""
    import keras

    info = {"family": family, "kerasbrain": __version__, "keras": keras.__version__,
            "backend": keras.backend.backend()}
    return atomic_write(Path(run_dir) / RUN_FILE, lambda tmp: Path(tmp).write_text(json.dumps(info, indent=2)))


def read_run_info(run_dir) -> dict:
    """`run.json` of a run folder ({} for a bare model or a run made before run.json)."""
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def read_run_config(run_dir) -> dict | None:
    """The raw `config.json` of a run folder, or None when there is none."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def subset_ids(run_dir, subset: str) -> list[str] | None:
    """Case (or patient) ids of `subset` in the run's split; None for "all"."""
    if subset == "all":
        return None
    path = Path(run_dir) / SPLIT_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: --subset {subset} needs the run's split.json")
    ids = json.loads(path.read_text()).get(subset)
    if not ids:
        raise ValueError(f"{path}: the run's split has no {subset!r} cases")
    return list(ids)


def _has_saved_epoch(folder: Path) -> bool:
    """Whether a run in `folder` has saved an epoch: the folder's own, a fold's (`fold_K/`) or, for an
    experiment's folder, any of its runs'."""
    return any(folder.rglob("*.keras")) or any(any(b.iterdir()) for b in folder.rglob("backup") if b.is_dir())


@contextmanager
def removed_if_failed_before_training(run_dir):
    """Remove the run folder this block creates if the block fails before an epoch is saved.

    A bad input or config then leaves nothing half-written; a folder holding a saved epoch (or one
    that existed before) is kept, so re-running the command resumes it. Also for an experiment's
    folder of several runs: kept once any of them has saved an epoch. A run stopped by the user
    (Ctrl-C) is kept too: nothing in it is half-written (each cached case is moved in whole), and
    re-running reuses its preprocessing cache, which on a real dataset took longer than an epoch.
    """
    run_dir = Path(run_dir)
    fresh = not run_dir.exists()
    try:
        yield run_dir
    except Exception:
        if fresh and run_dir.is_dir() and not _has_saved_epoch(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
