"""Linear probe: what a (self-supervised) encoder's features are worth for the 4 tumour classes.

The encoder is frozen and run in inference mode; each image becomes the global average of its
deepest feature map, and a logistic regression (scikit-learn, standardised features) is fitted on
the training images and scored on the test images: accuracy and macro F1. The same probe on a
randomly initialised encoder of the same architecture is the reference a pretraining must beat.
"""

from __future__ import annotations

import numpy as np


def encoder_features(encoder, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """uint8 (N, H, W, 3) images -> (N, C) globally pooled deepest features, inference mode."""
    from keras import ops

    out = []
    for i in range(0, len(images), batch_size):
        p5 = encoder(images[i:i + batch_size].astype(np.float32) / 255.0, training=False)[3]
        out.append(ops.convert_to_numpy(ops.mean(p5, axis=(1, 2))))
    return np.concatenate(out).astype(np.float64)


def fit_probe(train_x, train_y, test_x, test_y, seed: int = 0) -> dict:
    """Accuracy and macro F1 of a logistic regression on the given features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    probe.fit(train_x, train_y)
    predicted = probe.predict(test_x)
    return {"accuracy": float(accuracy_score(test_y, predicted)),
            "macro_f1": float(f1_score(test_y, predicted, average="macro", zero_division=0)),
            "n_train": int(len(train_y)), "n_test": int(len(test_y))}


def probe_subsets(samples, max_images: int, seed: int = 0):
    """(train, test) labelled samples: the dataset's own test set, else a stratified 25 % of train."""
    labelled = [s for s in samples if s.label is not None]
    train = [s for s in labelled if s.subset == "train"]
    test = [s for s in labelled if s.subset == "test"]
    if not test and train:
        from kerasbrain.data.tumour_images import stratified_split

        split = stratified_split(train, 0.25, seed)
        by_id = {s.id: s for s in train}
        train, test = [by_id[i] for i in split["train"]], [by_id[i] for i in split["validation"]]
    rng = np.random.default_rng(seed)

    def cap(items):
        if max_images and len(items) > max_images:
            items = [items[i] for i in sorted(rng.choice(len(items), max_images, replace=False))]
        return items

    return cap(train), cap(test)


def probe_data(samples, image_size: int, max_images: int = 2000, seed: int = 0, progress=print) -> dict | None:
    """The probe's images and labels, read now (a trainer reads them before its first epoch, so a
    broken file stops it before hours of pretraining); None when the dataset has no class labels."""
    from kerasbrain.data.tumour_images import load_samples

    train, test = probe_subsets(samples, max_images, seed)
    if len({s.label for s in train}) < 2 or not test:
        progress("linear probe skipped: the data has no class labels (or only one class)")
        return None
    train_images, train_y = load_samples(train, image_size)[:2]
    test_images, test_y = load_samples(test, image_size)[:2]
    return {"train": (train_images, train_y), "test": (test_images, test_y)}


def linear_probe(encoders: dict, data: dict | None, seed: int = 0, progress=print) -> dict | None:
    """{name: scores} for each encoder in `encoders` on `probe_data`'s images; None without them."""
    if data is None:
        return None
    (train_images, train_y), (test_images, test_y) = data["train"], data["test"]
    results = {}
    for name, encoder in encoders.items():
        results[name] = fit_probe(encoder_features(encoder, train_images), train_y,
                                  encoder_features(encoder, test_images), test_y, seed)
        progress(f"linear probe ({name}): accuracy {results[name]['accuracy']:.4f}, "
                 f"macro F1 {results[name]['macro_f1']:.4f} on {len(test_y)} images")
    return results
