"""Writing files so that readers never see them half-written."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def check_can_create(path: str | os.PathLike) -> None:
    """Refuse, before any work, an output path under a file: the nearest existing folder above `path`
    must be a folder (a long prediction would otherwise end in "File exists" for its result)."""
    path = Path(path)
    for above in path.parents:
        if above.exists():
            if not above.is_dir():
                raise OSError(errno.ENOTDIR, f"cannot be written: {above} is a file, not a folder", str(path))
            return


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call `write(tmp_path)` then rename onto `path`, so readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno and exc.filename != str(path):  # name the file, not our copy
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    return path


@contextmanager
def staged_folder(path: str | os.PathLike):
    """Yield a hidden folder beside `path` to write into; on success its contents move into `path`.

    On failure the staged folder is removed, so `path` never holds a half-written dataset. `path`
    may exist (its other files are kept; same-named ones are replaced) or not.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OSError(errno.ENOTDIR, "exists and is not a folder", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        yield staged
        if not path.exists():
            os.replace(staged, path)
            return
        for item in staged.iterdir():
            target = path / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_image(path: str | os.PathLike, data) -> Path:
    """Write an image array (uint8 or uint16; 3 channels are BGR, OpenCV's order) atomically."""
    import cv2

    def write(tmp):
        if not cv2.imwrite(str(tmp), data):
            raise OSError(f"{path}: OpenCV could not write the image")

    return atomic_write(path, write)


def write_json(path: str | os.PathLike, data, indent: int | None = 2) -> Path:
    """Write `data` as JSON atomically."""
    import json

    return write_text(path, json.dumps(data, indent=indent))


def write_csv(path: str | os.PathLike, rows: list[dict], fieldnames=None) -> Path:
    """Write dict rows as CSV atomically (columns: `fieldnames`, else the first row's keys)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fieldnames or (rows[0] if rows else [])))
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())
