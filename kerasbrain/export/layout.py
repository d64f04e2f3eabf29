"""The `saved_models/<name>/<version>/` layout TF Serving reads."""

from __future__ import annotations

import os
from pathlib import Path


def versions(model_root: str | os.PathLike) -> list[int]:
    """Integer versions present under `saved_models/<name>/` (TF Serving ignores other names)."""
    root = Path(model_root)
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())
