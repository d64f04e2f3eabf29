"""The task-mixing stream: targets, per-task weights, and seed 001's alternation."""

import numpy as np
import pytest

from kerasbrain.data.image_pipeline import image_dataset


def _arrays(n=10):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, -1, 0, 1, 2, 3, -1])[:n]  # two images without a class
    has_mask = np.array([1, 1, 0, 1, 1, 0, 0, 0, 1, 1], bool)[:n]
    masks = (rng.uniform(size=(n, 32, 32, 1)) > 0.7).astype(np.uint8) * has_mask[:, None, None, None]
    return images, labels, masks, has_mask


def test_joint_stream_weights_each_task_by_what_a_sample_has():
    images, labels, masks, has_mask = _arrays()
    ds, steps = image_dataset(images, labels, masks, has_mask, 4, shuffle=False)
    batches = list(ds.as_numpy_iterator())
    assert steps == 3 and [len(b[0]) for b in batches] == [4, 4, 2]
    x = np.concatenate([b[0] for b in batches])
    np.testing.assert_allclose(x, images / 255.0, atol=1e-7)
    y_class = np.concatenate([b[1]["class"] for b in batches])
    w_class = np.concatenate([b[2]["class"] for b in batches])
    w_mask = np.concatenate([b[2]["mask"] for b in batches])
    assert y_class.tolist() == [0, 1, 2, 3, 0, 0, 1, 2, 3, 0]  # placeholder 0 where there is no class ...
    assert w_class.tolist() == [1, 1, 1, 1, 0, 1, 1, 1, 1, 0]  # ... and weight 0
    assert w_mask.tolist() == has_mask.astype(float).tolist()


def test_alternation_gives_each_task_its_own_batches():
    images, labels, masks, has_mask = _arrays()
    ds, steps = image_dataset(images, labels, masks, has_mask, 4, schedule="alternate", seed=1)
    assert steps == 2 * 2  # 8 labelled and 6 masked images: 2 batches each per epoch
    for i, (x, y, w) in enumerate(ds.take(6).as_numpy_iterator()):
        assert len(x) == 4
        if i % 2 == 0:  # a classification batch: only images with a class, no mask loss
            assert (w["class"] == 1).all() and (w["mask"] == 0).all()
        else:  # a segmentation batch: only images with a mask, no class loss
            assert (w["mask"] == 1).all() and (w["class"] == 0).all() and y["mask"].any()


def test_alternation_needs_both_kinds_of_image():
    images, labels, masks, _ = _arrays()
    with pytest.raises(ValueError, match="use schedule = \"joint\""):
        image_dataset(images, labels, masks, np.zeros(10, bool), 4, schedule="alternate")
