"""Whole-case prediction with a real tiny U-Net: several windows per batch, several batches per case.

A model call that takes B windows must give each window the result it gets alone; the blended
volume must therefore not depend on the batch size. (Predicting with 2 windows per batch once
crashed because per-window statistics of shape (B, C) did not broadcast.)
"""

from dataclasses import replace

import keras
import numpy as np
import pytest

from kerasbrain.data.layouts import discover, load_case
from kerasbrain.data.preprocess import preprocess_case
from kerasbrain.evaluation.segmentation import evaluate_dataset
from kerasbrain.inference.device_window import window_grid
from kerasbrain.inference.predict_volume import InferenceConfig, predict_case
from kerasbrain.inference.sliding_window import window_starts
from kerasbrain.intensity import head_statistics, normalize_np
from kerasbrain.models.unet import UNet
from kerasbrain.runtime import predictor

WINDOW = (16, 16, 16)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return UNet(base_filters=4, depth=2)


@pytest.fixture(scope="module")
def case(msd_dir):
    return load_case(discover(msd_dir).labelled()[0])


def test_case_needs_several_batches(case):
    pre = preprocess_case(case, None, normalize=False)
    windows = np.prod([len(window_starts(s, w, 0.5)) for s, w in zip(pre.image.shape[:3], WINDOW)])
    assert windows > 6, "the case must span several batches of 3 windows"


def test_normalize_np_takes_per_item_statistics():
    rng = np.random.default_rng(0)
    batch = rng.normal(100, 20, size=(3, 4, 5, 6, 2)).astype(np.float32)
    mean = rng.normal(100, 5, size=(3, 2)).astype(np.float32)
    std = rng.uniform(10, 30, size=(3, 2)).astype(np.float32)
    together = normalize_np(batch, mean, std)
    alone = np.stack([normalize_np(batch[i], mean[i], std[i]) for i in range(3)])
    np.testing.assert_array_equal(together, alone)
    with pytest.raises(ValueError, match="statistics for 2 images given for a batch of 3"):
        normalize_np(batch, mean[:2], std[:2])


@pytest.mark.parametrize("mirror", [False, True])
def test_batch_size_does_not_change_the_prediction(model, case, mirror):
    predict = predictor(model, "graph")
    results = []
    for batch_size in (1, 2, 3):
        cfg = InferenceConfig(window=WINDOW, overlap=0.5, batch_size=batch_size, mirror=mirror)
        calls = []
        labels, probs = predict_case(case, lambda b, m, s: calls.append(len(b)) or predict(b, m, s), 3, cfg)
        results.append((labels, probs))
        assert max(calls) == batch_size and len(calls) > 1
    for labels, probs in results[1:]:
        np.testing.assert_allclose(probs, results[0][1], atol=1e-5)
        np.testing.assert_array_equal(labels, results[0][0])


def test_each_window_is_normalised_with_its_case_statistics(model, case):
    """The predictor's batch result equals the model applied to each window z-scored alone."""
    pre = preprocess_case(case, None, normalize=False)
    windows = np.stack([pre.image[:16, :16, :16], pre.image[-16:, -16:, -16:], pre.image[8:24, :16, -16:]])
    mean, std = head_statistics(pre.image)
    got = predictor(model, "graph")(windows, np.repeat(mean[None], 3, 0), np.repeat(std[None], 3, 0))
    expected = np.concatenate([model.predict_on_batch(normalize_np(w[None], mean, std)) for w in windows])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_evaluate_scores_the_same_at_any_batch_size(model, msd_dir, tmp_path):
    predict = predictor(model, "graph")
    scores = []
    for batch_size in (1, 3):
        cfg = InferenceConfig(window=WINDOW, overlap=0.25, batch_size=batch_size)
        result = evaluate_dataset(msd_dir, predict, 3, tmp_path / str(batch_size), cfg, progress=lambda m: None)
        scores.append([{k: v for k, v in row.items() if k != "case_id"} for row in result["rows"]])
    assert len(scores[0]) > 1
    for a, b in zip(*scores):
        for key in a:
            assert a[key] == pytest.approx(b[key], abs=1e-6, nan_ok=True), key


@pytest.mark.parametrize("window,batch_size,mirror", [(WINDOW, 3, False), (WINDOW, 2, True), ((48, 48, 48), 2, False)])
def test_device_blending_equals_host_blending(model, case, window, batch_size, mirror):
    """The compiled whole-volume path (gather, mirror, Gaussian blend on the device) matches numpy's."""
    predict = predictor(model, "graph")
    cfg = InferenceConfig(window=window, overlap=0.5, batch_size=batch_size, mirror=mirror)
    host_labels, host = predict_case(case, predict, 3, replace(cfg, blend="host"))
    device_labels, device = predict_case(case, predict, 3, replace(cfg, blend="device"))
    assert predict.volume_predictor(window, 0.5, batch_size, mirror, "device") is not None
    np.testing.assert_allclose(device, host, atol=1e-5)
    assert (device_labels != host_labels).mean() < 1e-4


def test_window_grid_pads_whole_batches_with_weightless_windows():
    grid = window_grid((40, 16, 16), (16, 16, 16), 0.5, 3)
    assert grid.shape == (6, 4)  # 4 real windows (0, 8, 16, 24 on x) + 2 padding rows
    assert grid[:, 3].tolist() == [1, 1, 1, 1, 0, 0]
    assert sorted(grid[:4, 0].tolist()) == [0, 8, 16, 24]
