"""A whole case in, probabilities out, in one keras.ops graph: what the `segment_case` signature serves.

Local prediction crops the case to its head box on the host (`data/preprocess.nonzero_bbox`), pads
the crop to the window, places windows on it (`sliding_window.window_starts`), normalises with the
head statistics and pastes the blended result back into the full grid. Here all of that is data in
the graph, so the graph accepts any case size and a client sends the raw case alone:

- the head mask, the per-modality head statistics and the head box are computed from the values;
- the image is padded by one window at the far end of each axis (a static amount, so JAX's shape
  polymorphism can export it) instead of cropped, and windows start at the box's corner: every
  voxel a window sees beyond the box is 0 in the case as in local prediction's zero-padded crop;
- window k's corner is worked out from k with integer arithmetic equal to `window_starts`
  (round half to even, as Python's `round`), so no array of data-dependent length is needed;
- probabilities are 0 outside the head box, as local prediction's pasted crop.

Same windows, same weights, same order of accumulation as `DeviceSlidingWindow`; only the head
statistics are summed in float32 here (float64 on the host), axis by axis so that the difference
stays one of float rounding (~1e-6 relative).
"""

from __future__ import annotations

from keras import ops

from kerasbrain.inference.device_window import accumulate_windows
from kerasbrain.intensity import MIN_STD, normalize_ops


def _staged_sum(values):
    """Sum of (X, Y, Z, C) values over space, one axis at a time: no partial sum adds more than one side's
    worth of terms, so float32 stays within ~1e-6 of a float64 sum (one 9-million-term sum was off by 10 %)."""
    for axis in reversed(range(len(values.shape) - 1)):
        values = ops.sum(values, axis=axis)
    return values


def head_statistics_ops(image):
    """keras.ops twin of `intensity.head_statistics` for one (*spatial, C) image: (mean, std), each (C,)."""
    image = ops.cast(image, "float32")
    head = ops.cast(ops.any(ops.not_equal(image, 0), axis=-1, keepdims=True), "float32")
    count = ops.cast(_staged_sum(ops.cast(head, "int32")), "float32")
    safe = ops.maximum(count, 1.0)
    rough = _staged_sum(image * head) / safe
    mean = rough + _staged_sum((image - rough) * head) / safe  # a second pass on small, centred terms
    var = _staged_sum(ops.square((image - mean) * head)) / safe
    std = ops.maximum(ops.sqrt(var), MIN_STD)
    empty = ops.equal(count, 0)
    return ops.where(empty, ops.zeros_like(mean), mean), ops.where(empty, ops.ones_like(std), std)


def head_box_ops(head):
    """(lo, hi, size) int32 scalars per axis of the box of True voxels in a (*spatial) mask (whole grid if none)."""
    dims = len(head.shape)
    boxes = []
    for axis in range(dims):
        others = tuple(a for a in range(dims) if a != axis)
        line = ops.any(head, axis=others)
        size = ops.sum(ops.ones_like(line, "int32"))
        found = ops.any(line)
        lo = ops.cast(ops.argmax(ops.cast(line, "int32")), "int32")
        hi = size - ops.cast(ops.argmax(ops.cast(ops.flip(line, 0), "int32")), "int32")
        boxes.append((ops.where(found, lo, 0), ops.where(found, hi, size), size))
    return boxes


def _round_half_even(numerator, denominator):
    """round(numerator / denominator) for non-negative int32 tensors, ties to even, as Python's `round`."""
    q = numerator // denominator
    twice_r = 2 * (numerator - q * denominator)
    up = ops.logical_or(twice_r > denominator, ops.logical_and(twice_r == denominator, q % 2 == 1))
    return q + ops.cast(up, "int32")


def axis_starts(extent, window: int, overlap: float):
    """(count, start(i)) of `sliding_window.window_starts(extent, window, overlap)` for a traced extent."""
    step = max(int(window * (1 - overlap)), 1)
    span = ops.maximum(extent - window, 0)
    count = ops.where(span > 0, (span + step - 1) // step + 1, 1)

    def start(i):
        return ops.where(count > 1, _round_half_even(i * span, ops.maximum(count - 1, 1)), 0)

    return count, start


def case_probabilities(call, image, window, overlap: float, batch_size: int, out_channels: int,
                       mirror: bool = False):
    """keras.ops: probabilities (*spatial, out_channels) of one raw case (*spatial, C) of any size.

    `call` maps a normalised window batch (B, *window, C) to (B, *window, out_channels).
    """
    window = tuple(int(w) for w in window)
    dims = len(window)
    image = ops.cast(image, "float32")
    head = ops.any(ops.not_equal(image, 0), axis=-1)
    mean, std = head_statistics_ops(image)
    boxes = head_box_ops(head)
    padded = ops.pad(image, [(0, w) for w in window] + [(0, 0)])
    x = normalize_ops(padded[None], mean[None], std[None])[0]
    grids = [axis_starts(ops.maximum(hi - lo, w), w, overlap) for (lo, hi, _), w in zip(boxes, window)]
    counts = [count for count, _ in grids]
    total = counts[0]
    for c in counts[1:]:
        total = total * c

    def window_at(k):
        valid = k < total
        k = ops.where(valid, k, 0)
        corner, rest = [], k
        for a in reversed(range(dims)):  # the last axis varies fastest, as itertools.product
            corner.insert(0, boxes[a][0] + grids[a][1](rest % counts[a]))
            rest = rest // counts[a]
        return corner, valid

    batches = (total + batch_size - 1) // batch_size
    acc, norm = accumulate_windows(call, x, window_at, batches, window, batch_size, out_channels, mirror)
    inside = None
    for a, (lo, hi, _) in enumerate(boxes):
        index = ops.arange(0, ops.shape(x)[a], dtype="int32")
        axis_in = ops.logical_and(index >= lo, index < hi)
        axis_in = ops.reshape(axis_in, [-1 if b == a else 1 for b in range(dims)])
        inside = axis_in if inside is None else ops.logical_and(inside, axis_in)
    probabilities = ops.where(inside[..., None], acc / ops.maximum(norm, 1e-12), 0.0)
    shape = ops.shape(image)
    return probabilities[tuple(slice(0, shape[a]) for a in range(dims))]


def cases_probabilities(call, images, window, overlap: float, batch_size: int, out_channels: int,
                        mirror: bool = False):
    """keras.ops: `case_probabilities` of each case of a (n, *spatial, C) stack, one after the other.

    Cases never mix: each has its own statistics, box and windows. The stack exists so that a
    server which merges concurrent requests along the first axis (TF Serving's batching) merges
    whole cases, never the voxels of two cases into one.
    """
    shape = ops.shape(images)
    out = ops.zeros(tuple(shape[:-1]) + (out_channels,), "float32")
    dims = len(window)

    def body(i, out):
        image = ops.slice(images, [i] + [0] * (dims + 1), (1,) + tuple(shape[1:]))[0]
        probabilities = case_probabilities(call, image, window, overlap, batch_size, out_channels, mirror)
        return ops.slice_update(out, [i] + [0] * (dims + 1), probabilities[None])

    return ops.fori_loop(0, shape[0], body, out)

