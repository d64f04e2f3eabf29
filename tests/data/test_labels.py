import numpy as np
import pytest

from kerasbrain.data.labels import (
    LABEL_MAPS,
    LabelError,
    from_internal,
    labels_to_regions,
    regions_to_labels,
    to_internal,
)


def test_label_maps_are_the_published_conventions():
    # internal: 1 necrotic/non-enhancing core, 2 edema, 3 enhancing
    assert LABEL_MAPS["msd"] == {0: 0, 1: 2, 2: 1, 3: 3}
    assert LABEL_MAPS["brats2021"] == {0: 0, 1: 1, 2: 2, 4: 3}
    assert LABEL_MAPS["brats2023"] == {0: 0, 1: 1, 2: 2, 3: 3}


@pytest.mark.parametrize("layout,raw,internal", [
    ("msd", [0, 1, 2, 3], [0, 2, 1, 3]),
    ("brats2021", [0, 1, 2, 4], [0, 1, 2, 3]),
    ("brats2023", [0, 1, 2, 3], [0, 1, 2, 3]),
])
def test_to_internal_and_back(layout, raw, internal):
    raw = np.array(raw, dtype=np.uint8)
    np.testing.assert_array_equal(to_internal(raw, layout), internal)
    np.testing.assert_array_equal(from_internal(np.array(internal), layout), raw)


def test_unknown_label_names_the_source():
    with pytest.raises(LabelError, match=r"case_seg.nii.gz: label values \[3\] are not part of the brats2021"):
        to_internal(np.array([0, 1, 3]), "brats2021", source="case_seg.nii.gz")


def test_regions_from_labels():
    labels = np.array([0, 1, 2, 3])
    # WT = {1,2,3}, TC = {1,3}, ET = {3}
    expected = np.array([[0, 0, 0], [1, 1, 0], [1, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(labels_to_regions(labels), expected)
    np.testing.assert_array_equal(regions_to_labels(expected), labels)


def test_same_tumour_gives_same_regions_in_every_layout():
    internal = np.array([0, 1, 2, 3, 3, 2])
    for layout in LABEL_MAPS:
        raw = from_internal(internal, layout)
        np.testing.assert_array_equal(labels_to_regions(to_internal(raw, layout)), labels_to_regions(internal))


def test_inconsistent_regions_follow_brats_nesting():
    # ET without WT still decodes to enhancing: ET wins over TC, TC over WT
    regions = np.array([[0, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(regions_to_labels(regions), [3, 1])
