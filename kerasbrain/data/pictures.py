"""One reader for 2-D pictures (TIFF, PNG, JPEG): every slice, image and mask goes through it.

It checks a file before decoding it, because OpenCV decodes a truncated JPEG without an error (the
missing rows come back grey) and writes its decoders' complaints to stderr. A broken picture is a
`DataError` naming the file: missing, a folder, empty, truncated, not a picture, or a pixel type we
do not read. Unusual but valid pictures are read as their 8-bit RGB equivalent: grey-level (copied
to three channels), RGBA (alpha dropped) and 16-bit (divided by 257, so 16-bit = 8-bit x 257 reads
back exactly).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasbrain.data.errors import DataError

PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _decode(raw: bytes) -> np.ndarray | None:
    """OpenCV's decoder with its log silenced while it runs: we raise our own error, naming the file."""
    import cv2
    import cv2.utils.logging as cv2_log

    level = cv2_log.getLogLevel()
    cv2_log.setLogLevel(cv2_log.LOG_LEVEL_SILENT)
    try:
        return cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    finally:
        cv2_log.setLogLevel(level)


def _check_complete(path: Path, raw: bytes) -> None:
    """Refuse what the decoders would accept in part: a PNG or JPEG cut short."""
    if raw.startswith(_PNG_SIGNATURE):
        if _PNG_END not in raw[-64:]:
            raise DataError(f"{path}: the PNG is truncated (no IEND chunk at its end)")
    elif raw.startswith(_JPEG_START):
        if _JPEG_END not in raw[-4096:]:  # some writers pad after the end-of-image marker
            raise DataError(f"{path}: the JPEG is truncated (no end-of-image marker)")
    elif not raw.startswith(_TIFF_SIGNATURES):
        raise DataError(f"{path}: not a TIFF, PNG or JPEG picture")


def read_pixels(path: str | Path) -> np.ndarray:
    """The file's pixels as stored: (H, W) or (H, W, C) in OpenCV's BGR(A) order, any depth."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    raw = path.read_bytes()
    if not raw:
        raise DataError(f"{path}: the file is empty")
    _check_complete(path, raw)
    pixels = _decode(raw)
    if pixels is None or pixels.size == 0:
        raise DataError(f"{path}: cannot be decoded as a picture (corrupt or truncated)")
    return pixels


def _to_uint8(path: Path, pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return np.round(pixels / 257.0).astype(np.uint8)
    raise DataError(f"{path}: {pixels.dtype} pixels are not supported; expected 8- or 16-bit integers")


def read_rgb(path: str | Path) -> np.ndarray:
    """A picture as (H, W, 3) uint8 RGB."""
    path = Path(path)
    pixels = _to_uint8(path, read_pixels(path))
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=-1)
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise DataError(f"{path}: expected 1, 3 or 4 channels, found shape {pixels.shape}")
    if pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=-1)
    return np.ascontiguousarray(pixels[..., 2::-1])  # BGR(A) -> RGB


def read_grey(path: str | Path, shape: tuple[int, int] | None = None, mix_colour: bool = False) -> np.ndarray:
    """A mask picture as (H, W) uint8; `shape` is its image's (H, W).

    Colour channels must agree, unless `mix_colour` (a JPEG-compressed mask): then their mean.
    """
    path = Path(path)
    pixels = _to_uint8(path, read_pixels(path))
    if pixels.ndim == 3:
        colour = pixels[..., :3] if pixels.shape[2] >= 3 else pixels[..., :1]
        if mix_colour:
            colour = np.round(colour.mean(axis=-1, keepdims=True)).astype(np.uint8)
        if not all(np.array_equal(colour[..., 0], colour[..., c]) for c in range(1, colour.shape[2])):
            raise DataError(f"{path}: mask channels differ; expected a grey-level mask")
        pixels = colour[..., 0]
    if shape is not None and pixels.shape != tuple(shape):
        raise DataError(f"{path}: mask is {pixels.shape[1]}x{pixels.shape[0]} but its image is "
                        f"{shape[1]}x{shape[0]}")
    return pixels
