"""A compact twin of a whole-case signature: each case as gzip bytes, decoded in the graph.

A 4 x 240 x 240 x 155 float32 case is 143 MB, and several times that as a JSON list. The twin takes

    image_gzip  string  (n,)    gzip of each case's little-endian bytes in C order (x, y, z, channel)
    shape       int32   (n, 4)  each case's x, y, z, channels
    dtype       string  (n,)    "float32" or "int16" (MRI is usually stored as int16: half the bytes again)

and answers `mask` uint8 (n, X, Y, Z): each case's label map from the plain signature (the same
numbers), zero-padded to the largest case of the request (a client crops to its own shape), and
`expected_dice` float32 (n, 3), the plain signature's review estimate. Not the probabilities,
because TF Serving's REST API cannot filter outputs and the probabilities as JSON would be ten times
the case again. A first axis on every input lets TF Serving's batching merge requests
(of any sizes) safely. Over REST the bytes travel as {"b64": "..."}; over gRPC as string tensors.
Only standard TensorFlow ops (DecodeCompressed, DecodeRaw, Assert), so TF Serving's own binary runs it.
"""

from __future__ import annotations

import tensorflow as tf

COMPRESSED_SUFFIX = "_compressed"
COMPRESSED_INPUTS = ("image_gzip", "shape", "dtype")
DTYPES = ("float32", "int16")


def decode_case(image_gzip, shape, dtype):
    """The (x, y, z, C) float32 case held by one gzip string; a wrong size or dtype is an InvalidArgumentError."""
    raw = tf.io.decode_compressed(image_gzip, compression_type="GZIP")
    itemsize = tf.where(tf.equal(dtype, "int16"), 2, 4)
    expected = tf.reduce_prod(tf.cast(shape, tf.int64)) * tf.cast(itemsize, tf.int64)
    checks = [
        tf.debugging.Assert(tf.reduce_any(tf.equal(dtype, DTYPES)), ["dtype must be float32 or int16; got", dtype]),
        tf.debugging.assert_positive(shape, message="shape must be 4 positive sides (x, y, z, channels)"),
        tf.debugging.assert_equal(tf.cast(tf.strings.length(raw), tf.int64), expected,
                                  message="image_gzip does not hold prod(shape) values of dtype"),
    ]
    with tf.control_dependencies(checks):  # a bad request is named before a reshape fails on it
        values = tf.cond(tf.equal(dtype, "int16"),
                         lambda: tf.cast(tf.io.decode_raw(raw, tf.int16), tf.float32),
                         lambda: tf.io.decode_raw(raw, tf.float32))
        return tf.reshape(values, shape)


def compressed_endpoint(case_fn, channels: int):
    """A traced tf.function taking the compact inputs and calling `case_fn(image)` (the plain signature)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_gzip"),
                                  tf.TensorSpec([None, 4], tf.int32, name="shape"),
                                  tf.TensorSpec([None], tf.string, name="dtype")])
    def serve(image_gzip, shape, dtype):
        checks = [tf.debugging.assert_equal(tf.shape(shape)[0], tf.shape(image_gzip)[0],
                                            message="image_gzip, shape and dtype must have one entry per case"),
                  tf.debugging.assert_equal(tf.shape(dtype)[0], tf.shape(image_gzip)[0],
                                            message="image_gzip, shape and dtype must have one entry per case"),
                  tf.debugging.assert_equal(shape[:, 3], channels, message=f"each case must have {channels} channels")]
        def one(i, masks, estimates):
            image = tf.ensure_shape(decode_case(image_gzip[i], shape[i], dtype[i]), [None, None, None, channels])
            outputs = case_fn(image[None])
            padding = tf.stack([tf.zeros(3, tf.int32), largest - shape[i, :3]], axis=1)
            return (i + 1, masks.write(i, tf.pad(outputs["mask"][0], padding)),
                    estimates.write(i, outputs["expected_dice"][0]))

        with tf.control_dependencies(checks):  # the request is named wrong before any case is decoded
            largest = tf.reduce_max(shape[:, :3], axis=0)
            count = tf.shape(image_gzip)[0]
            masks = tf.TensorArray(tf.uint8, size=count, element_shape=[None, None, None])
            estimates = tf.TensorArray(tf.float32, size=count, element_shape=[None])
            _, masks, estimates = tf.while_loop(lambda i, *_: i < count, one, (tf.constant(0), masks, estimates))
            return {"mask": tf.ensure_shape(masks.stack(), [None, None, None, None]),
                    "expected_dice": tf.ensure_shape(estimates.stack(), [None, None])}

    serve.get_concrete_function()
    return serve


def encode_case(image, dtype: str = "float32") -> dict:
    """The compact inputs for one (x, y, z, C) case (client side; int16 only when its values fit exactly)."""
    import gzip

    import numpy as np

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}. Received: dtype={dtype!r}")
    array = np.asarray(image)
    cast = array.astype("<i2" if dtype == "int16" else "<f4")
    if dtype == "int16" and not np.array_equal(cast, array):
        raise ValueError("the case has values int16 cannot hold exactly; send it as float32")
    data = gzip.compress(np.ascontiguousarray(cast).tobytes(), compresslevel=1)
    return {"image_gzip": np.asarray([data], dtype=object), "shape": np.asarray([array.shape], np.int32),
            "dtype": np.asarray([dtype.encode()], dtype=object)}
