"""The models the web app offers: run folders and `.keras` files on disk, or versions a server serves.

Models are found through the family registry, exactly as the CLI finds them (`family_of_run`,
`family_of_served_model`), and a family declares what it can do (`capabilities`: a served model
is listed only when its family can predict through a server) and what its `predict` takes
(`input_kind`), so a new family appears in the app without app changes. A run folder offers its `calibrated.keras` when
`kerasbrain calibrate` made one (calibrated class probabilities), else its `best.keras`; a `kerasbrain crossval`
folder offers its `ensemble.json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kerasbrain.runs import BEST_MODEL, CALIBRATED_MODEL, LAST_MODEL, RUN_FILE

#: How deep below the models folder run folders and `.keras` files are looked for.
SEARCH_DEPTH = 4
#: A run folder's model, in order of preference.
RUN_MODELS = (CALIBRATED_MODEL, BEST_MODEL, LAST_MODEL, "ensemble.json")  # the last: a crossval folder


@dataclass(frozen=True)
class AppModel:
    """One model the app can run: a label for the picker and what `PredictRequest` needs."""

    label: str
    ref: str  # a .keras path, or the served model's name with `server`
    family: object  # ModelFamily
    server: str | None = None
    saved_models: Path | None = None

    @property
    def input_kind(self) -> str:
        return self.family.input_kind


def _run_model(run_dir: Path) -> Path | None:
    return next((run_dir / name for name in RUN_MODELS if (run_dir / name).is_file()), None)


def _candidates(root: Path):
    """Run folders' models and bare `.keras` files under `root`, nearest first, each once."""
    frontier, seen_runs = [root], set()
    for _ in range(SEARCH_DEPTH + 1):
        following = []
        for folder in frontier:
            if (folder / RUN_FILE).is_file():
                model = _run_model(folder)
                if model is not None:
                    seen_runs.add(folder)
                    yield model
                continue
            for child in sorted(folder.iterdir()):
                if child.is_dir() and not child.name.startswith("."):
                    following.append(child)
                elif child.suffix == ".keras" and child.is_file() and folder not in seen_runs:
                    yield child
        frontier = following


def find_local_models(root, warn=print) -> list[AppModel]:
    """Every model under `root` whose family can predict locally (others, such as SimCLR encoders, are left out)."""
    from kerasbrain.families import family_of_run

    root = Path(root)
    if not root.is_dir():
        return []
    models = []
    for path in _candidates(root):
        try:
            family = family_of_run(path)
        except Exception as exc:  # an unreadable or foreign file must not stop the app
            warn(f"{path}: skipped ({exc})")
            continue
        if not family.can("predict"):
            continue
        shown = path.parent if path.name in RUN_MODELS else path
        name = shown.relative_to(root) if shown != root else Path(shown.name)
        note = {CALIBRATED_MODEL: " calibrated", "ensemble.json": " ensemble"}.get(path.name, "")
        models.append(AppModel(f"{name} ({family.name}{note})", str(path), family))
    return models


def find_served_models(server: str, saved_models, warn=print) -> list[AppModel]:
    """The models exported under `saved_models` (the folder the server serves), predicted through `server`."""
    from kerasbrain.export.layout import versions
    from kerasbrain.families import family_of_served_model

    saved_models = Path(saved_models)
    if not saved_models.is_dir():
        return []
    models = []
    for folder in sorted(p for p in saved_models.iterdir() if p.is_dir()):
        if not versions(folder):
            warn(f"{folder}: skipped (no exported version)")
            continue
        try:
            family = family_of_served_model(saved_models, folder.name)
        except Exception as exc:
            warn(f"{folder}: skipped ({exc})")
            continue
        if family.can("predict_server"):  # a served model whose family cannot be asked through a server is not listed
            models.append(AppModel(f"{folder.name} ({family.name}, served)", folder.name, family, server, saved_models))
    return models
