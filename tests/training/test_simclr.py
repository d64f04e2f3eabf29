"""SimCLR: the two-view stream, unlabelled discovery, and a real pretraining run whose encoder transfers."""

import keras
import numpy as np
import pytest

from kerasbrain.data.contrastive import discover_unlabelled, two_view_dataset
from kerasbrain.data.errors import DataError
from kerasbrain.training.config_simclr import SimCLRConfig, SimCLRData, SimCLRModelConfig, SimCLRTraining


def test_batches_stack_two_different_views_of_the_same_images():
    images = np.zeros((6, 32, 32, 3), np.uint8)
    images[:, 8:24, 8:24] = np.arange(6)[:, None, None, None] * 40 + 40  # six different images
    dataset, steps = two_view_dataset(images, 4, seed=1)
    assert steps == 1
    batches = [b.numpy() if hasattr(b, "numpy") else np.asarray(b) for b, _ in zip(dataset, range(2))]
    for batch in batches:
        assert batch.shape == (8, 32, 32, 3) and batch.min() >= 0.0 and batch.max() <= 1.0
        assert np.abs(batch[:4] - batch[4:]).mean() > 0.01  # the two views differ
    assert np.abs(batches[0] - batches[1]).mean() > 0.01  # so do successive batches
    with pytest.raises(DataError, match="at least 2 images"):
        two_view_dataset(images[:1], 4)


def test_any_2d_layout_or_folder_gives_unlabelled_images(tmp_path):
    import cv2

    from kerasbrain.data.phantom import write_lgg

    lgg = write_lgg(tmp_path / "lgg", patients=2, slices=3, shape=(32, 32), seed=1)
    found = discover_unlabelled(lgg)
    assert len(found) == 6 and all(s.label is None and not s.image.name.endswith("_mask.tif") for s in found)
    (tmp_path / "plain" / "a").mkdir(parents=True)
    for name in ("a/x.png", "y.jpg", "y_mask.png"):
        cv2.imwrite(str(tmp_path / "plain" / name), np.full((8, 8), 100, np.uint8))
    assert sorted(s.id for s in discover_unlabelled(tmp_path / "plain")) == ["a/x", "y"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        discover_unlabelled(tmp_path / "empty")


TINY = SimCLRConfig(data=SimCLRData(image_size=32), model=SimCLRModelConfig(projection_dims=(32, 16)),
                    training=SimCLRTraining(batch_size=4, epochs=2, warmup_epochs=1, bn_recalibration_batches=2))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    from kerasbrain.data.phantom_classes import write_class_folders
    from kerasbrain.training.train_simclr import train_simclr

    root = tmp_path_factory.mktemp("simclr")
    data = write_class_folders(root / "data", per_class=4, seed=2)
    result = train_simclr(data, root / "run", TINY, verbose=0, progress=lambda m: None)
    return root, result


def test_pretraining_writes_an_encoder_and_probes_it(pretrained):
    root, result = pretrained
    losses = result["history"]["loss"]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert result["encoder"].exists() and (root / "run" / "best.keras").exists()
    probe = result["probe"]
    assert set(probe) == {"simclr", "random init"}
    assert probe["simclr"]["n_train"] == 12 and probe["simclr"]["n_test"] == 4  # the shipped Testing/ images
    assert "| simclr |" in (root / "run" / "probe.md").read_text()


def test_the_probe_scores_are_what_each_encoder_gives(pretrained):
    """Both recorded probe rows are recomputed here with an independent scikit-learn fit: the pretrained
    row from the saved encoder file, the reference row from a fresh random encoder of the same seed;
    the two encoders differ, so the table compares what it claims to."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from kerasbrain.data.contrastive import discover_unlabelled
    from kerasbrain.evaluation.linear_probe import encoder_features, probe_data
    from kerasbrain.models.backbones import encoder_model

    root, result = pretrained
    t = TINY.training
    data = probe_data(discover_unlabelled(root / "data"), TINY.data.image_size, TINY.probe.max_images, t.seed,
                      progress=lambda m: None)
    (train_images, train_y), (test_images, test_y) = data["train"], data["test"]
    keras.utils.set_random_seed(t.seed)
    encoders = {"random init": encoder_model(TINY.model.encoder),
                "simclr": keras.saving.load_model(result["encoder"], compile=False)}
    features = {}
    for name, encoder in encoders.items():
        train_x, test_x = encoder_features(encoder, train_images), encoder_features(encoder, test_images)
        features[name] = test_x
        scaler = StandardScaler().fit(train_x)
        fitted = LogisticRegression(max_iter=2000, random_state=t.seed).fit(scaler.transform(train_x), train_y)
        accuracy = float(np.mean(fitted.predict(scaler.transform(test_x)) == test_y))
        assert result["probe"][name]["accuracy"] == pytest.approx(accuracy), name
    assert np.abs(features["simclr"] - features["random init"]).mean() > 1e-3


def test_the_probe_fit_knows_separable_and_uninformative_features():
    from kerasbrain.evaluation.linear_probe import fit_probe

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 10)
    separable = np.eye(4)[labels] * 5.0 + rng.normal(0, 0.1, (40, 4))
    assert fit_probe(separable[::2], labels[::2], separable[1::2], labels[1::2]) == {
        "accuracy": 1.0, "macro_f1": 1.0, "n_train": 20, "n_test": 20}
    constant = np.ones((40, 3))  # features that say nothing: one class for every image, a quarter right
    assert fit_probe(constant[::2], labels[::2], constant[1::2], labels[1::2])["accuracy"] == pytest.approx(0.25)


def test_the_encoder_starts_the_other_families(pretrained):
    from kerasbrain.models.encoder_unet import EncoderUNet
    from kerasbrain.models.multitask import MultiTaskNet

    root, result = pretrained
    source = keras.saving.load_model(result["encoder"], compile=False)
    for model in (MultiTaskNet("resnet18", tasks=("class",)), EncoderUNet("resnet18", decoder_filters=(8,) * 5)):
        model.load_encoder_weights(result["encoder"])
        for mine, theirs in zip(model.encoder.get_weights(), source.get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(ValueError, match="do not match a resnet34 encoder"):
        MultiTaskNet("resnet34", tasks=("class",)).load_encoder_weights(result["encoder"])


def test_resuming_a_finished_run_trains_no_more(pretrained):
    from kerasbrain.training.train_simclr import train_simclr

    root, first = pretrained
    again = train_simclr(root / "data", root / "run", TINY, verbose=0, progress=lambda m: None)
    assert again["history"].get("loss", []) == []


def test_the_view_blur_is_a_gaussian_per_image():
    import cv2
    import tensorflow as tf

    from kerasbrain.data.contrastive import random_blur

    x = np.zeros((3, 64, 64, 3), np.float32)
    x[:, 32, 32] = 1.0
    x[1, 10, 50, 1] = 2.0  # a different image
    np.testing.assert_array_equal(np.asarray(random_blur(tf.constant(x), probability=0.0)), x)
    y = np.asarray(random_blur(tf.constant(x), sigma_range=(1.5, 1.5), probability=1.0))
    for i in range(3):
        for c in range(3):
            expected = cv2.GaussianBlur(x[i, ..., c], (0, 0), sigmaX=0.75, borderType=cv2.BORDER_CONSTANT)
            np.testing.assert_allclose(y[i, ..., c], expected, atol=1e-3)  # sigma 1.5 px at 128 = 0.75 at 64


def test_evaluate_reruns_the_probe_with_the_same_answer(pretrained, tmp_path):
    import json

    from kerasbrain.families import family_of_run

    root, result = pretrained
    family = family_of_run(root / "run")
    assert family.name == "simclr" and family.stage == "pretrain"
    out = family.evaluate(root / "run" / "best.keras", root / "data", tmp_path, progress=lambda m: None)
    assert "| simclr |" in out["text"]
    assert json.loads((tmp_path / "probe.json").read_text()) == json.loads((root / "run" / "probe.json").read_text())
