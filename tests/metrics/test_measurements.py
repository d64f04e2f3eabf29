"""RANO's bidimensional measurement on shapes whose diameters are known, at anisotropic spacing."""

import numpy as np
import pytest

from kerasbrain.metrics.measurements import bidimensional, case_measurements, lesion_bidimensional


def _ellipse(shape, spacing, centre, a, b, degrees):
    x, y = np.meshgrid(np.arange(shape[0]) * spacing[0], np.arange(shape[1]) * spacing[1], indexing="ij")
    t = np.deg2rad(degrees)
    u = (x - centre[0]) * np.cos(t) + (y - centre[1]) * np.sin(t)
    v = -(x - centre[0]) * np.sin(t) + (y - centre[1]) * np.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 <= 1


@pytest.mark.parametrize("degrees", [0, 30, 75])
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 1.0), (1.2, 0.7)])
def test_an_ellipse_measures_its_two_axes(spacing, degrees):
    mask = _ellipse((240, 200), spacing, (60, 60), 20.0, 12.0, degrees)
    longest, perpendicular = bidimensional(mask, spacing)
    tolerance = 1.0 + max(spacing)  # within about a pixel of the true 40 and 24 mm
    assert longest == pytest.approx(40.0, abs=tolerance) and perpendicular == pytest.approx(24.0, abs=tolerance)


def test_a_rectangle_measures_its_diagonal_and_the_chord_across_it():
    """40 x 30 mm: the longest diameter is the 50 mm diagonal; the longest chord perpendicular to it
    runs through the centre and meets the long sides: 2 x 15 / (40 / 50) = 37.5 mm."""
    mask = np.zeros((100, 50), bool)
    mask[10:50, 5:20] = True  # 40 pixels of 1 mm by 15 pixels of 2 mm
    longest, perpendicular = bidimensional(mask, (1.0, 2.0))
    assert longest == pytest.approx(50.0, abs=0.5) and perpendicular == pytest.approx(37.5, abs=1.0)


def test_a_rotated_rectangle():
    spacing = (0.8, 0.8)
    x, y = np.meshgrid(np.arange(150) * 0.8, np.arange(150) * 0.8, indexing="ij")
    t = np.deg2rad(40)
    u = (x - 60) * np.cos(t) + (y - 60) * np.sin(t)
    v = -(x - 60) * np.sin(t) + (y - 60) * np.cos(t)
    mask = (np.abs(u) <= 20) & (np.abs(v) <= 4)  # 40 x 8 mm bar: diagonal 40.8, chord across it 8 / cos(11.3 deg)
    longest, perpendicular = bidimensional(mask, spacing)
    assert longest == pytest.approx(np.hypot(40, 8), abs=1.2)
    assert perpendicular == pytest.approx(8 / np.cos(np.arctan2(8, 40)), abs=1.2)


def test_single_pixels_and_lines():
    one = np.zeros((5, 5), bool)
    one[2, 2] = True
    assert bidimensional(one, (1.0, 2.0)) == (1.0, 2.0)
    line = np.zeros((20, 5), bool)
    line[2:12, 2] = True
    longest, perpendicular = bidimensional(line, (1.0, 1.0))
    assert longest == pytest.approx(10.0) and perpendicular == pytest.approx(1.0)


def test_a_lesion_is_measured_on_its_largest_axial_slice():
    spacing = (1.0, 1.0, 3.0)
    lesion = np.zeros((80, 80, 6), bool)
    for z, (a, b) in enumerate([(5, 4), (10, 8), (16, 10), (12, 9), (6, 5), (3, 2)]):
        lesion[..., z] = _ellipse((80, 80), spacing[:2], (40, 40), a, b, 0)
    rano = lesion_bidimensional(lesion, spacing)
    assert rano["slice"] == 2 and rano["measurable"]
    assert rano["longest_mm"] == pytest.approx(32, abs=2) and rano["perpendicular_mm"] == pytest.approx(20, abs=2)
    small = lesion_bidimensional(_ellipse((80, 80), (1, 1), (40, 40), 6, 3, 0)[..., None], (1.0, 1.0, 1.0))
    assert not small["measurable"]  # 12 x 6 mm: under RANO's 10 mm on one side


def test_case_measurements_counts_volumes_and_lesions():
    spacing = (1.0, 1.0, 2.0)
    regions = np.zeros((60, 60, 10, 3), bool)
    regions[5:25, 5:25, 2:6, 0] = True  # WT lesion 1: 20 x 20 x 4 voxels = 3.2 mL
    regions[40:50, 40:50, 2:4, 0] = True  # WT lesion 2: 0.4 mL
    regions[8:22, 8:22, 3:5, 1] = True  # TC inside lesion 1
    regions[8:22, 8:22, 3:5, 2] = True  # ET: 14 x 14 mm square, diagonal 19.8 mm
    m = case_measurements(regions, spacing, affine=np.diag([1.0, 1.0, 2.0, 1.0]))
    assert m["volumes_ml"] == {"WT": pytest.approx(3.6), "TC": pytest.approx(0.784), "ET": pytest.approx(0.784)}
    assert m["lesion_counts"] == {"WT": 2, "TC": 1, "ET": 1}
    (et,) = [x for x in m["lesions"] if x["region"] == "ET"]
    assert et["rano"]["longest_mm"] == pytest.approx(14 * np.sqrt(2), abs=0.5) and et["rano"]["slice"] in (3, 4)
    assert et["centre_voxel"] == [14.5, 14.5, 3.5] and et["centre_mm"] == [14.5, 14.5, 7.0]
    assert m["measurable_enhancing_lesions"] == 1
    assert m["rano_sum_of_products_mm2"] == pytest.approx(et["rano"]["product_mm2"])
    assert case_measurements(regions, spacing, min_volume_ml=0.5)["lesion_counts"]["WT"] == 1
