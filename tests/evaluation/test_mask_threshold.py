"""The segmenter's operating point: chosen by pooled Dice on validation masks, folded into its logits."""

import json

import numpy as np
import pytest

from kerasbrain.evaluation.mask_threshold import (RECORD, THRESHOLDS, UNFOLDED, choose_threshold, fold_threshold,
                                                  set_operating_point)


def test_the_threshold_of_highest_pooled_dice_is_chosen():
    reference = np.zeros((2, 4, 4), bool)
    reference[:, 1:3, 1:3] = True  # 8 pixels
    probabilities = np.where(reference, 0.95, 0.0)
    probabilities[:, 0, :] = 0.65  # a halo of 8 pixels above 0.6 and below 0.7
    threshold, curve = choose_threshold(probabilities, reference)
    assert threshold == 0.7  # the first threshold that drops the halo; 0.8-0.95 tie with it, 0.7 is nearest 0.5
    assert curve[THRESHOLDS.index(0.5)] == pytest.approx(2 * 8 / (8 + 16))  # by hand: Dice 0.667 with the halo
    assert curve[THRESHOLDS.index(0.7)] == 1.0
    assert choose_threshold(np.full((1, 2, 2), 0.2), np.zeros((1, 2, 2), bool))[0] == 0.5  # all tie: 0.5


def _segmenter():
    import keras

    from kerasbrain.models.multitask import MultiTaskNet

    keras.utils.set_random_seed(2)
    return MultiTaskNet("resnet18", tasks=("class", "mask"), decoder_filters=(16, 8, 8, 8, 4))


def test_folding_moves_the_half_point_to_the_threshold():
    model = _segmenter()
    rng = np.random.default_rng(0)
    images = [rng.random((3, 32, 32, 3), dtype=np.float32) for _ in range(2)]  # two batches of three
    before = [np.asarray(model.predict_on_batch(x)["mask"]) for x in images]
    fold_threshold(model, 0.8)
    for x, p in zip(images, before):
        after = np.asarray(model.predict_on_batch(x)["mask"])
        expected = 1 / (1 + np.exp(-(np.log(p / (1 - p)) - np.log(0.8 / 0.2))))
        np.testing.assert_allclose(after, expected, rtol=1e-4, atol=1e-6)
        clear = np.abs(p - 0.8) > 1e-4  # away from the threshold itself, the masks are p >= 0.8
        np.testing.assert_array_equal((after >= 0.5)[clear], (p >= 0.8)[clear])
    with pytest.raises(ValueError, match="threshold must be in"):
        fold_threshold(model, 1.0)


def test_the_operating_point_is_folded_into_best_keras_once(tmp_path):
    from kerasbrain.evaluation.classification import predict_images
    from kerasbrain.inference.model_io import load_model

    model = _segmenter()
    model.save(tmp_path / "best.keras")
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    probabilities = predict_images(model, images)["mask"]
    reference = probabilities >= np.quantile(probabilities, 0.9)  # the top tenth: a high threshold is best
    expected, _ = choose_threshold(probabilities, reference)
    assert expected > 0.5
    messages = []
    record = set_operating_point(tmp_path, images, reference, "pseudo", messages.append)
    assert record["threshold"] == expected and record["against"] == "pseudo" and "folded" in messages[0]
    assert json.loads((tmp_path / RECORD).read_text()) == record and len(record["model_sha256"]) == 64
    np.testing.assert_array_equal(predict_images(load_model(tmp_path / UNFOLDED), images)["mask"], probabilities)
    folded = predict_images(load_model(tmp_path / "best.keras"), images)["mask"]
    clear = np.abs(probabilities - expected) > 1e-4
    np.testing.assert_array_equal((folded >= 0.5)[clear], (probabilities >= expected)[clear])
    assert set_operating_point(tmp_path, images, ~reference, "pseudo", messages.append) == record  # not twice
    assert len(messages) == 1
    # training went on and saved a new best: it is chosen again, from that model
    model.save(tmp_path / "best.keras")
    again = set_operating_point(tmp_path, images, np.ones_like(reference), "drawn", messages.append)
    assert again["threshold"] == 0.3 and again["against"] == "drawn" and len(messages) == 2  # all tumour: lowest
    np.testing.assert_array_equal(predict_images(load_model(tmp_path / UNFOLDED), images)["mask"], probabilities)
