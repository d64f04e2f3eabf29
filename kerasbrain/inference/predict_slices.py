"""2-D slice inference: images in, tumour probabilities out, at any size (padding to the divisor)."""

from __future__ import annotations

import numpy as np

from kerasbrain.data.slices import median_clahe, to_float
from kerasbrain.files import write_image
from kerasbrain.windows import size_divisor


def pad_to_multiple(image: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    return np.pad(image, ((0, ph), (0, pw), (0, 0))), (h, w)


def predict_slice_probabilities(model, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """(N, H, W, 3) float images -> (N, H, W) tumour probabilities (padding to the model's multiple)."""
    divisor = size_divisor(model)
    padded = np.stack([pad_to_multiple(im, divisor)[0] for im in images])
    out = [np.asarray(model.predict_on_batch(padded[i:i + batch_size]))[..., 0]
           for i in range(0, len(padded), batch_size)]
    h, w = images.shape[1:3]
    return np.concatenate(out)[:, :h, :w]


def predict_slice_image(model, image, out_png, enhance: bool = False, threshold: float = 0.5):
    """One RGB uint8 slice (`data/pictures.read_rgb`) -> mask PNG (0/255); returns (probabilities, mask path)."""
    x = to_float(median_clahe(image) if enhance else image)
    prob = predict_slice_probabilities(model, x[None])[0]
    mask = (prob >= threshold).astype(np.uint8) * 255
    return prob, write_image(out_png, mask)

