import numpy as np

from kerasbrain.data.layouts import discover, load_case
from kerasbrain.data.preprocess import cached_preprocess, load_cached, nonzero_bbox, preprocess_case, zscore
from kerasbrain.intensity import normalize_np, normalize_ops


def test_nonzero_bbox():
    image = np.zeros((10, 12, 14, 2))
    image[2:5, 3:9, 4, 1] = 1
    assert nonzero_bbox(image) == ((2, 5), (3, 9), (4, 5))
    assert nonzero_bbox(np.zeros((3, 4, 5, 1))) == ((0, 3), (0, 4), (0, 5))


def test_zscore_over_the_head_only():
    image = np.zeros((2, 2, 1, 2), np.float32)
    image[..., 0] = [[[1.0], [3.0]], [[0.0], [0.0]]]
    image[0, 0, 0, 1] = 5.0
    image[1, 0, 0, 1] = 7.0  # a head voxel because channel 1 is non-zero there
    out = zscore(image)
    # head = 3 voxels; channel 0 over them: values 1, 3, 0 -> mean 4/3, std sqrt(14/9)
    std = np.sqrt(14 / 9)
    np.testing.assert_allclose(out[..., 0].ravel(), [(1 - 4 / 3) / std, (3 - 4 / 3) / std, (0 - 4 / 3) / std, 0],
                               rtol=1e-5)
    assert out[1, 1, 0].tolist() == [0.0, 0.0]  # background stays 0


def test_preprocess_crops_and_normalises(msd_dir):
    case = load_case(discover(msd_dir).cases[0])
    pre = preprocess_case(case)
    head = np.any(pre.image != 0, axis=-1)
    for c in range(4):
        values = pre.image[..., c][head]
        assert abs(values.mean()) < 1e-4 and abs(values.std() - 1) < 1e-3
    sl = tuple(slice(a, b) for a, b in pre.bbox)
    np.testing.assert_array_equal(pre.labels, case.labels[sl])
    assert pre.full_shape == case.image.shape[:3]


def test_resampling_to_target_spacing(msd_dir):
    case = load_case(discover(msd_dir).cases[0])
    pre = preprocess_case(case, target_spacing=(2.0, 2.0, 2.0))
    crop = [b - a for a, b in pre.bbox]
    assert pre.image.shape[:3] == tuple(int(round(c / 2)) for c in crop)
    assert set(np.unique(pre.labels)) <= {0, 1, 2, 3}


def test_cache_is_reused_and_invalidated(msd_dir, tmp_path):
    case = discover(msd_dir).cases[1]
    first = cached_preprocess(case, tmp_path)
    assert cached_preprocess(case, tmp_path) == first
    pre = load_cached(first)
    fg = np.load(first / "foreground.npy")
    assert len(fg) == int((pre.labels > 0).sum())
    other = cached_preprocess(case, tmp_path, target_spacing=(2.0, 2.0, 2.0))
    assert other != first


def test_window_normalisation_with_case_statistics_equals_whole_case(msd_dir):
    """What a serving client relies on: raw windows + case statistics give the training values."""
    case = load_case(discover(msd_dir).cases[0])
    raw = preprocess_case(case, normalize=False)
    normalised = preprocess_case(case)
    window = (slice(3, 19), slice(5, 21), slice(0, 16))
    np.testing.assert_allclose(normalize_np(raw.image[window], raw.mean, raw.std), normalised.image[window],
                               atol=1e-5)
    batch = raw.image[window][None]
    graph = np.asarray(normalize_ops(batch, raw.mean[None], raw.std[None]))
    np.testing.assert_allclose(graph[0], normalised.image[window], atol=1e-5)
