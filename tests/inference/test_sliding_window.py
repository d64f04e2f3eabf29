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
