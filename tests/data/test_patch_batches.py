"""Keras's PyDataset patch stream (data/patch_batches.py) against the tf.data one, batch for batch."""

import numpy as np
import pytest

from kerasbrain.data.augment import AugmentConfig
from kerasbrain.data.layouts import discover
from kerasbrain.data.patch_batches import PatchBatches, patch_stream, resolve_input_pipeline
from kerasbrain.data.pipeline import PatchSampler
from kerasbrain.data.preprocess import cached_preprocess
from kerasbrain.training.train_unet3d import deep_supervision_targets


@pytest.fixture(scope="module")
def folders(msd_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return [cached_preprocess(c, cache) for c in discover(msd_dir).cases]


def _batches(stream, count):
    it = stream.as_numpy_iterator() if hasattr(stream, "as_numpy_iterator") else iter(stream)
    return [next(it) for _ in range(count)]


def _assert_same(a, b):
    import keras

    flat_a, flat_b = keras.tree.flatten(a), keras.tree.flatten(b)
    assert len(flat_a) == len(flat_b)
    for x, y in zip(flat_a, flat_b):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("on_device", [False, True], ids=["host_augment", "device_augment"])
def test_the_pydataset_gives_tf_datas_batches_skipped_and_mapped_alike(folders, on_device):
    """The endless training stream, 3 batches skipped (a resumed run) and deep supervision's pyramid:
    the same four batches of 3 different patches either way, down to the drawn augmentation parameters."""
    sampler = PatchSampler(folders, (16, 16, 8), 0.5, AugmentConfig(), seed=4, augment_on_device=on_device)
    pyramid = deep_supervision_targets(2, ((2, 2, 2), (2, 2, 1)))
    ours = _batches(patch_stream(sampler, 3, "pydataset", first_batch=3, to_targets=pyramid, workers=2), 4)
    theirs = _batches(patch_stream(sampler, 3, "tf.data", first_batch=3, to_targets=pyramid), 4)
    for a, b in zip(ours, theirs):
        _assert_same(a, b)
    image, targets = ours[0]
    image = image["image"] if on_device else image
    assert image.shape == (3, 16, 16, 8, 4) and [t.shape for t in targets] == [
        (3, 16, 16, 8, 3), (3, 8, 8, 4, 3), (3, 4, 4, 4, 3)]
    assert not np.array_equal(image[0], image[1]) and not np.array_equal(ours[0][1][0], ours[1][1][0])
    # batch b of the stream is batch first_batch + b of the unskipped one
    _assert_same(ours[1], PatchBatches(sampler, 3, to_targets=pyramid)[4])


def test_a_finite_stream_ends_with_a_short_batch_and_keeps_it(folders):
    sampler = PatchSampler(folders, (8, 8, 8), 0.33, None, seed=1)
    stream = patch_stream(sampler, 2, "pydataset", num_patches=5, cache=True)
    batches = list(stream)
    assert len(stream) == 3 and [len(x) for x, _ in batches] == [2, 2, 1]
    _assert_same(batches, _batches(patch_stream(sampler, 2, "tf.data", num_patches=5), 3))
    assert stream[2][0] is batches[2][0]  # cached: the same arrays, not a second draw
    # read-only: TensorFlow copies them instead of reusing their memory under a distribution strategy
    assert not any(a.flags.writeable for a in batches[0])
    with pytest.raises(IndexError):
        stream[3]


def test_element_spec_matches_the_batches(folders):
    sampler = PatchSampler(folders, (8, 8, 8), 0.33, AugmentConfig(), seed=1, augment_on_device=True)
    stream = PatchBatches(sampler, 2, to_targets=deep_supervision_targets(1))
    spec, batch = stream.element_spec, stream[0]
    import keras

    for s, b in zip(keras.tree.flatten(spec), keras.tree.flatten(batch)):
        assert s.shape == (None, *b.shape[1:]) and s.dtype == str(b.dtype)


def test_pipeline_names(monkeypatch):
    from kerasbrain import runtime

    assert resolve_input_pipeline("auto") == "tf.data"  # TensorFlow is installed here
    monkeypatch.setattr(runtime, "has_tensorflow", lambda: False)
    monkeypatch.setattr("kerasbrain.data.patch_batches.has_tensorflow", lambda: False)
    assert resolve_input_pipeline("auto") == "pydataset"
    with pytest.raises(ValueError, match="needs TensorFlow, which is not installed"):
        resolve_input_pipeline("tf.data")
    with pytest.raises(ValueError, match="input_pipeline must be one of"):
        resolve_input_pipeline("torch")
