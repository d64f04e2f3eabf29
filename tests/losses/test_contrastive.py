"""NT-Xent on hand-made batches with known answers, on every backend."""

import math

import keras
import numpy as np
import pytest

from kerasbrain.losses import NTXentLoss, nt_xent


def _reference(z, t):
    """Straight from the SimCLR paper's definition, in numpy."""
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z) // 2
    s = z @ z.T / t
    total = 0.0
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        others = [j for j in range(2 * n) if j != i]
        total += -s[i, partner] + math.log(sum(math.exp(s[i, j]) for j in others))
    return total / (2 * n)


def test_aligned_pairs_with_orthogonal_negatives():
    # views 0/2 = e1 and 1/3 = e2: each row sees its partner at similarity 1 and two others at 0
    z = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], np.float32)
    expected = math.log(2 + math.e) - 1.0
    assert float(nt_xent(z, 1.0)) == pytest.approx(expected, rel=1e-6)
    assert float(nt_xent(z, 0.5)) == pytest.approx(math.log(2 + math.e ** 2) - 2.0, rel=1e-6)


def test_random_batches_match_the_definition_and_ignore_scale():
    rng = np.random.default_rng(0)
    for n, d, t in ((3, 5, 0.5), (8, 16, 0.1), (2, 3, 2.0)):
        z = rng.normal(size=(2 * n, d)).astype(np.float32)
        assert float(nt_xent(z, t)) == pytest.approx(_reference(z.astype(np.float64), t), rel=1e-4)
        assert float(nt_xent(7.0 * z, t)) == pytest.approx(float(nt_xent(z, t)), rel=1e-5)  # L2-normalised


def test_swapping_the_pairs_raises_the_loss():
    z = np.eye(4, dtype=np.float32)[[0, 1, 0, 1]] + 0.01
    wrong = z[[0, 1, 3, 2]]  # partners mismatched
    assert float(nt_xent(wrong, 0.5)) > float(nt_xent(z, 0.5)) + 1.0


def test_the_loss_class_serialises_with_its_temperature():
    loss = NTXentLoss(temperature=0.2)
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(clone, NTXentLoss) and clone.temperature == 0.2
    z = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    assert float(clone(np.zeros(6), z)) == pytest.approx(float(nt_xent(z, 0.2)), rel=1e-6)
    with pytest.raises(ValueError, match="temperature must be positive"):
        NTXentLoss(temperature=0)
