"""The `saved_models/<name>/<version>/` layout TF Serving reads, and kerasbrain's manifest inside a version."""

from __future__ import annotations

import json
import os
from pathlib import Path

#: kerasbrain's description of an exported version: kind, signature, family, run settings.
MANIFEST = "kerasbrain.json"
MODEL_CARD = "MODEL_CARD.md"  # beside the manifest: kerasbrain.export.model_card


def versions(model_root: str | os.PathLike) -> list[int]:
    """Integer versions present under `saved_models/<name>/` (TF Serving ignores other names)."""
    root = Path(model_root)
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def read_manifest(version_dir: str | os.PathLike) -> dict:
    """`assets.extra/kerasbrain.json` of an exported version ({} when absent)."""
    path = Path(version_dir) / "assets.extra" / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}
