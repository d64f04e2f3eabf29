"""Readers of BRISC 2025 and the Kaggle class folders, on phantoms written in both layouts."""

import cv2
import numpy as np
import pytest

from kerasbrain.data.classes import CLASSES, class_index
from kerasbrain.data.errors import DataError
from kerasbrain.data.phantom_classes import write_brisc, write_class_folders
from kerasbrain.data.tumour_images import (
    discover_tumour_images,
    load_samples,
    prepare_image,
    read_rgb,
    stratified_split,
)


@pytest.fixture(scope="module")
def brisc(tmp_path_factory):
    return write_brisc(tmp_path_factory.mktemp("brisc"), per_class=4, seed=1)


@pytest.mark.parametrize("folder,index", [("glioma", 0), ("glioma_tumor", 0), ("Meningioma", 1),
                                          ("meningioma_tumor", 1), ("notumor", 2), ("no_tumor", 2),
                                          ("pituitary", 3), ("pituitary_tumor", 3), ("tumour", None)])
def test_every_spelling_of_the_class_folders(folder, index):
    assert class_index(folder) == index


def test_brisc_images_of_both_tasks_become_one_sample(brisc):
    samples = discover_tumour_images(brisc.parent)  # the parent of brisc2025/ works too
    assert len(samples) == 16 and {s.subset for s in samples} == {"train", "test"}
    for s in samples:
        assert s.label == CLASSES.index(s.image.parent.name)
        assert (s.mask is None) == (CLASSES[s.label] == "no_tumor")
        assert s.id == s.image.stem and s.id.split("_")[3] == {0: "gl", 1: "me", 2: "no", 3: "pi"}[s.label]


def test_kaggle_class_folders(tmp_path):
    root = write_class_folders(tmp_path, per_class=3, seed=0)
    (root / "Training" / "notumor").rename(root / "Training" / "no_tumor")  # the older spelling
    samples = discover_tumour_images(root)
    assert len(samples) == 12 and all(s.mask is None for s in samples)
    assert sorted({s.label for s in samples}) == [0, 1, 2, 3]
    assert sum(s.subset == "test" for s in samples) == 4


def test_images_of_any_size_and_colour_load_as_square_rgb(brisc, tmp_path):
    samples = [s for s in discover_tumour_images(brisc) if s.subset == "train"]
    sizes = {cv2.imread(str(s.image), cv2.IMREAD_UNCHANGED).shape for s in samples}
    assert len(sizes) > 1 and all(len(shape) == 2 for shape in sizes)  # grayscale, several sizes
    images, labels, masks, has_mask = load_samples(samples, 64)
    assert images.shape == (12, 64, 64, 3) and images.dtype == np.uint8
    assert (images[..., 0] == images[..., 2]).all()  # gray repeated to RGB
    assert labels.tolist() == [s.label for s in samples]
    assert has_mask.tolist() == [s.mask is not None for s in samples]
    assert set(np.unique(masks)) <= {0, 1} and masks[has_mask].any() and not masks[~has_mask].any()
    colour = np.zeros((30, 50, 3), np.uint8)
    colour[..., 2] = 200  # red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "c.png"), colour)
    rgb = read_rgb(tmp_path / "c.png")
    assert rgb.shape == (30, 50, 3) and rgb[0, 0].tolist() == [200, 0, 0]
    assert prepare_image(rgb, 32).shape == (32, 32, 3)


def test_bad_files_are_named(brisc, tmp_path):
    import shutil

    root = tmp_path / "bad"
    shutil.copytree(brisc, root / "brisc2025")
    image = sorted((root / "brisc2025" / "segmentation_task" / "train" / "images").glob("*.jpg"))[0]
    mask = image.parent.parent / "masks" / f"{image.stem}.png"
    cv2.imwrite(str(mask), np.zeros((10, 10), np.uint8))
    samples = [s for s in discover_tumour_images(root) if s.id == image.stem]
    with pytest.raises(DataError, match=f"{mask.name}: mask is 10x10 but its image is"):
        load_samples(samples, 32)
    samples[0].image.write_bytes(b"")  # the classification-task copy, which the sample reads
    with pytest.raises(DataError, match=f"{image.name}: the file is empty"):
        load_samples(samples, 32)
    mask.unlink()
    with pytest.raises(DataError, match=f"{image.name}: has no mask"):
        discover_tumour_images(root)
    wrong = root / "brisc2025" / "classification_task" / "train" / "meningioma" / "brisc2025_train_09999_gl_ax_t1.jpg"
    cv2.imwrite(str(wrong), np.zeros((8, 8), np.uint8))
    mask.write_bytes(b"")  # restore a mask file so discovery reaches the class check
    with pytest.raises(DataError, match="file name says glioma but the folder says meningioma"):
        discover_tumour_images(root)
    with pytest.raises(DataError, match="neither a BRISC 2025 folder"):
        discover_tumour_images(tmp_path / "bad" / "brisc2025" / "classification_task")


def test_split_is_stratified_seeded_and_keeps_the_test_set(brisc):
    samples = discover_tumour_images(brisc)
    split = stratified_split(samples, 0.34, seed=3)
    assert split == stratified_split(samples, 0.34, seed=3)
    assert split["test"] == sorted(s.id for s in samples if s.subset == "test")
    assert not set(split["train"]) & set(split["validation"])
    by_id = {s.id: s for s in samples}
    assert sorted({by_id[i].label for i in split["validation"]}) == [0, 1, 2, 3]  # every class validated
