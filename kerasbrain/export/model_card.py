"""The model card of an exported version: what the model is, how it was trained and scored, its limits.

Written beside the manifest as `assets.extra/MODEL_CARD.md`, so it travels with the SavedModel to
whatever serves it. Everything comes from files that already exist: the manifest (family, kind,
signature settings, calibration temperature), the run folder's `run.json` and `config.json`, and,
when present, the run's `evaluation/summary.md` and `calibration/calibration.md`.
"""

from __future__ import annotations

import json
from pathlib import Path

from kerasbrain.runs import CONFIG_FILE, RUN_FILE

_IO = {
    "volume_segmentation": "a multi-modal MRI volume (normalised per channel with the sent statistics) -> "
                           "per-region probabilities and a label map",
    "slice_segmentation": "a 2-D FLAIR slice (raw 0-255) -> tumour probability and mask",
    "image_classification": "a 2-D slice (raw 0-255 RGB at the exported image size) -> class probabilities "
                            "(glioma, meningioma, no tumour, pituitary), class, and a tumour mask where the "
                            "model has a mask head",
}


def _flat(config: dict, prefix: str = "") -> list[str]:
    lines = []
    for key, value in config.items():
        if isinstance(value, dict):
            lines += _flat(value, f"{prefix}{key}.")
        else:
            lines.append(f"- `{prefix}{key}` = {json.dumps(value)}")
    return lines


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def model_card(manifest: dict, run_dir: Path | None = None) -> str:
    """Markdown model card of an exported version (run folder optional: a bare `.keras` gives less)."""
    name, version = manifest.get("name", "model"), manifest.get("version", "?")
    lines = [f"# {name}, version {version}", "",
             f"- family: {manifest.get('family', 'unet3d')}; serving kind: {manifest.get('kind', 'volume_segmentation')}",
             f"- signature: {_IO.get(manifest.get('kind', 'volume_segmentation'), 'see the manifest')}"]
    for name, entry in manifest.get("signatures", {}).items():
        lines.append(f"- signature `{name}`: inputs {', '.join(entry['inputs'])} -> {', '.join(entry['outputs'])}"
                     + (f"; run settings {json.dumps(entry['settings'])}" if "settings" in entry else "")
                     + (f"; the same result as `{entry['same_as']}`" if "same_as" in entry else ""))
    for key in ("image_size", "tasks", "target_spacing", "out_channels", "requires_clahe"):
        if key in manifest:
            lines.append(f"- {key}: {json.dumps(manifest[key])}")
    temperature = manifest.get("calibration_temperature")
    lines.append(f"- calibration: temperature {temperature:.4f} folded into the class layer" if temperature
                 else "- calibration: none (probabilities as trained)")
    info = json.loads(_read(run_dir / RUN_FILE) or "{}") if run_dir else {}
    if info:
        lines.append(f"- trained with kerasbrain {info.get('kerasbrain')}, Keras {info.get('keras')}, "
                     f"backend {info.get('backend')}")
    config = json.loads(_read(run_dir / CONFIG_FILE) or "null") if run_dir else None
    if config:
        lines += ["", "## Training configuration", ""] + _flat(config)
    for title, relative in (("Evaluation (test images)", "evaluation/summary.md"),
                            ("Calibration", "calibration/calibration.md")):
        text = _read(run_dir / relative) if run_dir else None
        if text:
            lines += ["", f"## {title}", "", text]
    lines += ["", "## Intended use and limits", "",
              "Research use only; not a medical device. The scores above are on the run's own test images; "
              "a model trained on phantoms says nothing about real scans, and a model trained on one "
              "dataset may not transfer to other scanners, sequences or populations without re-evaluation."]
    return "\n".join(lines) + "\n"
