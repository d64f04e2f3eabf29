import numpy as np
import pytest

from kerasbrain.inference.sliding_window import flips, gaussian_importance, sliding_window_predict, window_starts


def test_window_starts_cover_the_axis():
    assert window_starts(100, 128, 0.5) == [0]
    assert window_starts(128, 128, 0.5) == [0]
    starts = window_starts(240, 128, 0.5)
    assert starts[0] == 0 and starts[-1] == 240 - 128
    assert all(b - a <= 64 for a, b in zip(starts, starts[1:]))


def test_gaussian_peaks_at_centre():
    g = gaussian_importance((9, 9, 9))
    assert g[4, 4, 4] == 1.0 and g.min() > 0
    assert g[0, 0, 0] < g[2, 2, 2] < g[4, 4, 4]


@pytest.mark.parametrize("mirror", [False, True])
def test_identity_model_reproduces_the_volume(mirror):
    """Blending is a weighted average: a model that returns its input gives the input back exactly."""
    rng = np.random.default_rng(0)
    volume = rng.normal(size=(37, 30, 23, 2)).astype(np.float32)
    calls = []

    def identity(batch):
        calls.append(batch.shape[0])
        return batch

    out = sliding_window_predict(volume, identity, (16, 16, 16), 2, overlap=0.5, batch_size=3, mirror=mirror)
    np.testing.assert_allclose(out, volume, atol=1e-5)
    assert max(calls) == 3


def test_volume_smaller_than_window_is_padded_and_cropped_back():
    volume = np.ones((5, 6, 7, 1), np.float32)
    out = sliding_window_predict(volume, lambda b: b * 2, (8, 8, 8), 1)
    assert out.shape == (5, 6, 7, 1)
    np.testing.assert_allclose(out, 2.0)


def test_flip_sets():
    assert flips(3, False) == [()]
    assert len(flips(3, True)) == 8 and len(flips(2, True)) == 4


def test_overlapping_windows_blend_with_gaussian_weights_at_their_offsets():
    """Two windows along x that each predict a different constant: the blend at every voxel is the
    Gaussian-weighted mean of the two, each weight read at the voxel's offset inside its window."""
    volume = np.zeros((24, 16, 16, 1), np.float32)
    volume[..., 0] = np.arange(24)[:, None, None]  # each window can tell where it starts
    window = (16, 16, 16)
    assert window_starts(24, 16, 0.5) == [0, 8]

    def by_start(batch):  # window starting at x = 0 predicts 1, the one at x = 8 predicts 9
        return np.stack([np.full(w.shape[:3] + (1,), w[0, 0, 0, 0] + 1.0) for w in batch])

    out = sliding_window_predict(volume, by_start, window, 1, overlap=0.5, batch_size=1)
    g = gaussian_importance(window)
    for x in range(24):
        covering = [(s, value) for s, value in ((0, 1.0), (8, 9.0)) if s <= x < s + 16]
        weights = [g[x - s, 5, 7] for s, _ in covering]
        expected = sum(w * v for w, (_, v) in zip(weights, covering)) / sum(weights)
        assert out[x, 5, 7, 0] == pytest.approx(expected, rel=1e-5), x
    assert out[0, 5, 7, 0] == pytest.approx(1.0) and out[23, 5, 7, 0] == pytest.approx(9.0)
    assert 1.0 < out[12, 5, 7, 0] < 9.0
