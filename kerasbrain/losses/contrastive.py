"""NT-Xent, SimCLR's contrastive loss (Chen et al. 2020), in `keras.ops` for every backend.

A batch of 2N projections holds two augmented views of N images: rows i and i + N are a positive
pair, every other row is a negative. With z the L2-normalised projections and s_ij = z_i . z_j / T,
each row's loss is the cross-entropy of picking its partner among the 2N - 1 other rows:
    l_i = -s_i,p(i) + log sum_{j != i} exp(s_ij)
and the loss is the mean over all 2N rows.
"""

from __future__ import annotations

import keras
from keras import ops

from kerasbrain.serialization import register


def nt_xent(projections, temperature: float = 0.5):
    """Mean NT-Xent loss of (2N, D) projections whose halves are the two views of the same N images."""
    z = ops.cast(projections, "float32")
    z = z / ops.maximum(ops.sqrt(ops.sum(ops.square(z), axis=1, keepdims=True)), 1e-12)
    n2 = ops.shape(z)[0]
    half = n2 // 2
    similarity = ops.matmul(z, ops.transpose(z)) / temperature
    self_pairs = ops.eye(n2, dtype="float32")
    similarity = similarity - 1e9 * self_pairs  # a row is never its own candidate
    partner = ops.concatenate([ops.arange(half, n2), ops.arange(0, half)])
    positives = ops.one_hot(partner, n2, dtype="float32")
    log_probabilities = ops.log_softmax(similarity, axis=1)
    return -ops.mean(ops.sum(positives * log_probabilities, axis=1))


@register
class NTXentLoss(keras.losses.Loss):
    """NT-Xent with a temperature; `y_true` is ignored (the pairs are the batch's halves)."""

    def __init__(self, temperature=0.5, name="nt_xent", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if temperature <= 0:
            raise ValueError(f"temperature must be positive. Received: temperature={temperature}")
        self.temperature = temperature

    def call(self, y_true, y_pred):
        return nt_xent(y_pred, self.temperature)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
