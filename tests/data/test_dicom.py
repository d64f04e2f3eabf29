"""DICOM studies in: kerasbrain's volumes and world geometry against SimpleITK's reader, the modality
rules, resampling onto the reference grid, and broken studies refused in one line naming the fault.

The reader is numpy and pydicom only, so these run on one backend (`once`); prediction from DICOM
is tested on both in tests/cli/test_cli_dicom.py.
"""

import shutil
import zipfile

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from kerasbrain.data.dicom.modalities import assign_modalities, classify, parse_overrides
from kerasbrain.data.dicom.series import SeriesInfo, read_volume, scan_series
from kerasbrain.data.dicom.study import load_study
from kerasbrain.data.dicom.synth import write_study
from kerasbrain.data.errors import DataError
from kerasbrain.data.phantom import LPS_AFFINE, _to_file_order, make_phantom
from tests.conftest import once

pytestmark = once
SHAPE = (29, 26, 17)  # odd sizes: a transposed row/column shows
LPS = np.diag([-1.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def phantom():
    image, labels = make_phantom(SHAPE, seed=5)
    return _to_file_order(image), _to_file_order(labels)


def _sitk_series(folder, uid):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder), uid))
    return reader.Execute()


def _assert_same_as_sitk(volume, image):
    """Voxels (columns, rows, slices) and LPS geometry equal to what SimpleITK read."""
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    step = float(np.abs(array).max()) / 30000  # SimpleITK rescales in float32; we in float64
    np.testing.assert_allclose(volume.data, array, atol=step)
    direction = np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    np.testing.assert_allclose(LPS @ volume.affine[:3, :3], direction, atol=1e-4)
    np.testing.assert_allclose(LPS @ volume.affine[:3, 3], image.GetOrigin(), atol=1e-4)


@pytest.mark.parametrize("rotate", [(0, 0, 0), (12, -25, 40)], ids=["axial", "oblique"])
def test_each_series_equals_simpleitks_reading(phantom, tmp_path, rotate):
    written = write_study(tmp_path, phantom[0], LPS_AFFINE, seed=1, rotate_degrees=rotate)
    study = load_study(tmp_path)
    for m, modality in enumerate(("FLAIR", "T1", "T1Gd", "T2")):
        _assert_same_as_sitk(study.series[modality], _sitk_series(tmp_path / f"series{m + 1}", written[modality].uid))
        np.testing.assert_array_equal(study.series[modality].data, written[modality].data)
    # the study's image is the four series on the T1Gd grid, in FLAIR, T1, T1Gd, T2 order
    np.testing.assert_array_equal(study.image, np.stack([written[m].data for m in ("FLAIR", "T1", "T1Gd", "T2")], -1))
    np.testing.assert_allclose(study.affine, written["T1Gd"].affine, atol=1e-5)


def test_slices_are_ordered_by_position_not_by_name_or_instance_number(phantom, tmp_path):
    write_study(tmp_path, phantom[0], LPS_AFFINE, seed=2)
    files = sorted((tmp_path / "series3").iterdir())
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    by_position = np.argsort([float(h.ImagePositionPatient[2]) for h in headers])
    by_number = np.argsort([int(h.InstanceNumber) for h in headers])
    assert not np.array_equal(by_position, np.arange(len(files)))  # names are shuffled
    assert not np.array_equal(by_position, by_number)  # so are instance numbers
    volume = load_study(tmp_path).series["T1Gd"]
    sorted_z = [volume.frames[k].position[2] for k in range(len(files))]
    assert sorted_z == sorted(sorted_z)


def test_gantry_tilt_keeps_every_slice_where_its_file_puts_it(phantom, tmp_path):
    write_study(tmp_path, phantom[0], LPS_AFFINE, seed=3, tilt_degrees=20)
    volume = load_study(tmp_path).series["T2"]
    assert volume.tilt_degrees == pytest.approx(20, abs=0.01)
    for k, frame in enumerate(volume.frames):  # voxel (0, 0, k) is the slice's ImagePositionPatient
        ds = pydicom.dcmread(frame.path, stop_before_pixels=True)
        position = [float(v) for v in ds.ImagePositionPatient]
        np.testing.assert_allclose(LPS @ (volume.affine @ [0, 0, k, 1])[:3], position, atol=1e-4)
        pixels = pydicom.dcmread(frame.path).pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_allclose(volume.data[:, :, k], pixels.T, atol=1e-3)
    # in-plane geometry and voxels are SimpleITK's (which drops the shear of the slice stack)
    image = _sitk_series(tmp_path / "series4", volume.info.uid)
    np.testing.assert_allclose(volume.data, sitk.GetArrayFromImage(image).transpose(2, 1, 0), atol=1e-2)
    direction = np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    np.testing.assert_allclose(LPS @ volume.affine[:3, :2], direction[:, :2], atol=1e-4)


def test_enhanced_multiframe_reads_as_the_same_volume_as_single_frames(phantom, tmp_path):
    single = load_study(write_study(tmp_path / "single", phantom[0], LPS_AFFINE, seed=4, rotate_degrees=(0, 15, 0))
                        and tmp_path / "single")
    write_study(tmp_path / "multi", phantom[0], LPS_AFFINE, seed=4, rotate_degrees=(0, 15, 0), multiframe=True)
    multi = load_study(tmp_path / "multi")
    assert len(list((tmp_path / "multi" / "series1").iterdir())) == 1
    assert [f.index for f in multi.reference.frames] != list(range(SHAPE[2]))  # frames stored out of order
    np.testing.assert_array_equal(multi.image, single.image)
    np.testing.assert_allclose(multi.affine, single.affine, atol=1e-6)


def test_a_thick_slice_series_is_resampled_onto_the_reference_grid_as_simpleitk_resamples(phantom, tmp_path):
    written = write_study(tmp_path, phantom[0], LPS_AFFINE, seed=5, thick_flair=2, rotate_degrees=(5, 0, 0))
    study = load_study(tmp_path)
    assert study.series["FLAIR"].data.shape[2] == (SHAPE[2] + 1) // 2
    assert any("FLAIR resampled onto the T1Gd grid" in line for line in study.lines)
    flair = _sitk_series(tmp_path / "series1", written["FLAIR"].uid)
    reference = _sitk_series(tmp_path / "series3", written["T1Gd"].uid)
    expected = sitk.GetArrayFromImage(sitk.Resample(flair, reference, sitk.Transform(), sitk.sitkLinear, 0.0,
                                                    sitk.sitkFloat32)).transpose(2, 1, 0)
    inside = expected != 0  # ITK and scipy treat the last half voxel at the edge differently
    np.testing.assert_allclose(study.image[..., 0][inside], expected[inside], atol=1e-2)
    # on the slices both grids share, resampling returns the stored values
    np.testing.assert_allclose(study.image[:, :, ::2, 0], written["FLAIR"].data, atol=1e-3)
    # and the background stays exactly 0 (no round-off for the head mask to take for head)
    flair = study.image[..., 0]
    assert not study.warnings and not ((flair != 0) & (np.abs(flair) < 1e-6 * np.abs(flair).max())).any()


def test_different_frames_of_reference_are_refused_or_registered(phantom, tmp_path):
    write_study(tmp_path, phantom[0], LPS_AFFINE, seed=6, separate_frames=True)
    with pytest.raises(DataError, match="different frames of reference; pass --register"):
        load_study(tmp_path)
    study = load_study(tmp_path, register=True)
    for m in range(4):  # the series lie where they are, so registration must leave them there
        a, b = study.image[..., m], phantom[0][..., m]
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98
    # The same study gives the same image: the metric's sample is seeded (SimpleITK's seed 0 is the clock)
    np.testing.assert_array_equal(load_study(tmp_path, register=True).image, study.image)


def test_registration_undoes_a_shift_that_world_coordinates_alone_would_keep(phantom, tmp_path):
    """T2 written 4 mm and 3 mm off in another frame of reference: registration puts it back on T1Gd."""
    from kerasbrain.data.dicom.study import resample_to

    write_study(tmp_path, phantom[0], LPS_AFFINE, seed=10, separate_frames=True)
    shift = np.array([4.0, -3.0, 0.0])
    for path in (tmp_path / "series4").iterdir():  # the scanner placed T2's frame 4 mm / 3 mm elsewhere
        ds = pydicom.dcmread(path)
        ds.ImagePositionPatient = [float(v) + d for v, d in zip(ds.ImagePositionPatient, shift)]
        ds.save_as(path)
    study = load_study(tmp_path, register=True)
    assert "T2 registered rigidly onto the T1Gd series" in " ".join(study.lines)
    truth = phantom[0][..., 3]
    naive = resample_to(study.series["T2"].data, study.series["T2"].affine, truth.shape, study.affine)

    def error(a):
        return float(np.abs(a - truth).mean())

    assert error(study.image[..., 3]) < 0.25 * error(naive)  # far closer than world coordinates alone


@pytest.mark.parametrize("multiframe", [False, True], ids=["single-frame", "multi-frame"])
def test_a_seg_drawn_on_the_reference_series_gives_the_cases_labels(phantom, tmp_path, multiframe):
    from kerasbrain.data.dicom.seg import write_segmentation

    write_study(tmp_path, phantom[0], LPS_AFFINE, seed=9, multiframe=multiframe, rotate_degrees=(0, 0, 20))
    assert load_study(tmp_path).labels is None  # no SEG yet
    write_segmentation(tmp_path / "truth" / "seg.dcm", phantom[1], load_study(tmp_path), "phantom truth")
    study = load_study(tmp_path)
    np.testing.assert_array_equal(study.labels, phantom[1])
    assert {1, 2, 3} <= set(np.unique(study.labels))
    assert "labels <- segmentation seg.dcm" in study.lines[-1]
    assert set(study.series) == {"FLAIR", "T1", "T1Gd", "T2"}  # the SEG is not taken for an image series
    write_segmentation(tmp_path / "truth" / "second.dcm", phantom[1], study, "another reader")
    assert load_study(tmp_path).labels is None  # two candidates: none is guessed


# --- the modality rules -----------------------------------------------------------------------------
def _info(description="", tr=None, te=None, ti=None, contrast="", uid="1.2", number=1, image_type="ORIGINAL"):
    return SeriesInfo(uid, "1", "1", number, description, "", "", "", tr, te, ti, contrast, image_type)


@pytest.mark.parametrize("description, expected", [
    ("AX T2 FLAIR", "FLAIR"), ("t2_tirm_tra_dark-fl", "FLAIR"), ("Sag 3D FLAIR", "FLAIR"), ("t2f", "FLAIR"),
    ("AX T1 POST GD", "T1Gd"), ("t1_mprage_sag_post", "T1Gd"), ("T1C", "T1Gd"), ("T1+C AX", "T1Gd"),
    ("post gad T1 axial", "T1Gd"), ("T1ce", "T1Gd"),
    ("AX T1 SE", "T1"), ("t1_mprage_sag", "T1"), ("T1W_3D_TFE", "T1"),
    ("AX T2 TSE", "T2"), ("T2W_TSE", "T2"), ("t2_fse_axial", "T2"),
    ("localizer", None), ("AX DWI b1000", None), ("ADC", None), ("3 Plane Loc", None),
])
def test_series_names_decide_the_modality(description, expected):
    assert classify(_info(description))[0] == expected


def test_timing_and_contrast_decide_when_names_say_nothing():
    assert classify(_info("AX 3D", tr=9000, te=120, ti=2500))[0] == "FLAIR"
    assert classify(_info("AX 3D", tr=550, te=10))[0] == "T1"
    assert classify(_info("AX 3D", tr=550, te=10, contrast="gadobutrol"))[0] == "T1Gd"
    assert classify(_info("AX T1 SE", contrast="gadobutrol"))[0] == "T1Gd"
    assert classify(_info("AX 3D", tr=4000, te=100))[0] == "T2"
    assert classify(_info("AX 3D", tr=1500, te=20))[0] is None


def test_a_missing_or_ambiguous_modality_is_one_line_listing_the_candidates():
    series = {s.uid: s for s in (_info("FLAIR", uid="1"), _info("T1", uid="2", number=2),
                                 _info("T1 post", uid="3", number=3), _info("T2", uid="4", number=4),
                                 _info("T2 cor", uid="5", number=5))}
    with pytest.raises(DataError) as error:
        assign_modalities(series)
    message = str(error.value)
    assert "\n" not in message and message.startswith("T2: 2 series")
    assert "'T2' (4)" in message and "'T2 cor' (5)" in message and "--series T2=" in message
    chosen, lines = assign_modalities(series, parse_overrides(["T2=5"]))  # by series number
    assert chosen["T2"].uid == "5" and "--series T2=5" in lines[3]
    chosen, _ = assign_modalities(series, parse_overrides(["t2=*cor*"]))  # by a pattern, any case
    assert chosen["T2"].uid == "5"
    del series["1"]
    with pytest.raises(DataError, match="^FLAIR: no series found"):
        assign_modalities(series, parse_overrides(["T2=4"]))
    with pytest.raises(DataError, match="expected MODALITY=UID_OR_PATTERN"):
        parse_overrides(["PD=1"])


# --- broken studies: one line naming the file or series -------------------------------------------
@pytest.fixture()
def study(phantom, tmp_path):
    write_study(tmp_path / "study", phantom[0], LPS_AFFINE, seed=7)
    return tmp_path / "study"


def _slice_files(folder):
    files = sorted(folder.iterdir())
    return sorted(files, key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))


def _one_line(path, match):
    with pytest.raises(DataError, match=match) as error:
        load_study(path)
    assert "\n" not in str(error.value)


def test_a_missing_slice_is_refused(study):
    _slice_files(study / "series2")[5].unlink()
    _one_line(study, r"series #2 'AX T1 SE' .* missing slices or uneven spacing")


def test_duplicate_positions_are_refused(study):
    files = _slice_files(study / "series4")
    ds = pydicom.dcmread(files[3])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(study / "series4" / "copy.dcm")
    _one_line(study, r"series #4 .* lie at the same position")


def test_mixed_orientations_are_refused(study):
    path = _slice_files(study / "series1")[2]
    ds = pydicom.dcmread(path)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.save_as(path)
    _one_line(study, r"series #1 .* mixed orientations")


def test_a_truncated_file_is_named(study):
    path = _slice_files(study / "series3")[4]
    path.write_bytes(path.read_bytes()[:2000])
    _one_line(study, str(path).replace(".", r"\.") + ": the pixel data cannot be decoded")


def test_a_study_without_images_is_refused(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "README.txt").write_text("not DICOM")
    report = pydicom.Dataset()
    report.SOPClassUID, report.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.88.11", "1.2.3"  # Basic Text SR
    report.file_meta = pydicom.dataset.FileMetaDataset()
    report.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    report.file_meta.MediaStorageSOPClassUID, report.file_meta.MediaStorageSOPInstanceUID = report.SOPClassUID, "1.2.3"
    report.save_as(folder / "report.dcm", enforce_file_format=True)
    _one_line(folder, r"no DICOM image series found \(1 file\(s\) passed over: no image \(Basic Text SR")


def test_a_zip_whose_members_leave_its_folder_is_refused_before_unpacking(study, tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../escaped.dcm", b"x")
    _one_line(archive, r"evil\.zip: member '\.\./escaped\.dcm' would be written outside")
    assert not (tmp_path / "escaped.dcm").exists()


def test_a_zipped_study_reads_as_the_folder(study, tmp_path):
    archive = tmp_path / "study.zip"
    shutil.make_archive(str(archive)[:-4], "zip", study)
    np.testing.assert_array_equal(load_study(archive).image, load_study(study).image)


def test_not_skull_stripped_input_is_warned_about(phantom, tmp_path):
    image = phantom[0] + 0.05  # background no longer zero
    write_study(tmp_path, image, LPS_AFFINE, seed=8)
    warnings = load_study(tmp_path).warnings
    assert len(warnings) == 1 and "border voxels are non-zero" in warnings[0] and "skull-stripped" in warnings[0]
    assert not load_study(write_study(tmp_path / "clean", phantom[0], LPS_AFFINE) and tmp_path / "clean").warnings


# --- pydicom's real scanner files -------------------------------------------------------------------
def test_compressed_scanner_files_decode_as_their_uncompressed_twin(tmp_path):
    """pydicom's MR_small (a real 64 x 64 MR slice) stored uncompressed, RLE- and JPEG-LS-compressed: one volume.

    RLE is pydicom's own decoder; JPEG-LS comes with highdicom's dependency pyjpegls.
    """
    from pydicom.data import get_testdata_file

    volumes = {}
    names = ("MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm")
    for name in names:
        folder = tmp_path / name
        folder.mkdir()
        for k in range(2):  # a two-slice series from the one slice, 3 mm apart
            ds = pydicom.dcmread(get_testdata_file(name))
            ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{k}"
            ds.ImagePositionPatient = [float(v) + (3.0 * k if i == 2 else 0) for i, v in
                                       enumerate(ds.ImagePositionPatient)]
            ds.save_as(folder / f"{k}.dcm")
        (info,) = scan_series(sorted(folder.iterdir()))[0].values()  # (series, notes, segmentations)
        volumes[name] = read_volume(info)
    reference = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array.T
    np.testing.assert_array_equal(volumes["MR_small.dcm"].data[:, :, 0], reference)
    for name in names[1:]:
        np.testing.assert_array_equal(volumes[name].data, volumes["MR_small.dcm"].data)


def test_a_transfer_syntax_no_installed_handler_decodes_is_one_line_naming_it(tmp_path, monkeypatch):
    from pydicom.data import get_testdata_file

    folder = tmp_path / "jpeg"
    folder.mkdir()
    for k in range(2):
        ds = pydicom.dcmread(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
        ds.SOPInstanceUID = f"{ds.SOPInstanceUID}.{k}"
        ds.ImagePositionPatient = [0.0, 0.0, 3.0 * k]
        ds.save_as(folder / f"{k}.dcm")
    (info,) = scan_series(sorted(folder.iterdir()))[0].values()

    def no_decoder(self, *args, **kwargs):
        raise RuntimeError("Unable to decode the pixel data: no plugins are available")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(no_decoder))
    with pytest.raises(DataError, match=r"0\.dcm: the pixel data cannot be decoded, transfer syntax JPEG-LS Lossless "
                                        r"Image Compression \(RuntimeError: Unable to decode"):
        read_volume(info)
