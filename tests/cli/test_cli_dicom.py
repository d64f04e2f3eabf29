"""DICOM in, DICOM SEG out, through `kerasbrain predict`, on a tiny real 3-D U-Net.

Known answers: the same phantom written as a DICOM study and as NIfTI predicts the same label map;
the SEG read back by highdicom and by a hand-written pydicom reader gives, voxel for voxel in the
source geometry, the NIfTI output's label map; its references are the source images' SOP UIDs.
"""

import csv
import shutil

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from click.testing import CliRunner

from cli.main import cli
from kerasbrain.data.dicom.study import load_study
from tests.conftest import once

SHAPE = (41, 38, 35)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("dicom")
    result = run("synth", "dicom", "--out", root / "data", "--cases", 2, "--shape", *SHAPE, "--seed", 4,
                 "--oblique", 10)
    assert result.exit_code == 0, result.output
    return root / "data"


def _seg_by_pydicom(path, source_folder):
    """Segment numbers per source slice, read with pydicom alone (frame references, not highdicom)."""
    seg = pydicom.dcmread(path)
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    by_uid = {}
    for i, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        segment = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        plane = by_uid.setdefault(uid, np.zeros((seg.Rows, seg.Columns), np.uint8))
        plane[frames[i] > 0] = segment
    source = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: f for f in source_folder.iterdir()}
    return by_uid, source


def test_a_dicom_study_predicts_as_the_same_data_in_nifti_and_its_seg_reads_back_as_that(volume_run, studies,
                                                                                        tmp_path):
    study = studies / "studies" / "PHANTOM_001"
    result = run("predict", "--model", volume_run, "--input", study, "--out", tmp_path / "p.dcm", "--probabilities",
                 "--nifti-beside")
    assert result.exit_code == 0, result.output
    assert "T1Gd <- series #3 'AX T1 POST GD'" in result.output  # which series became which modality
    result = run("predict", "--model", volume_run, "--input", studies / "nifti" / "PHANTOM_001.nii.gz",
                 "--out", tmp_path / "n.nii.gz")
    assert result.exit_code == 0, result.output
    from_dicom, from_nifti = nib.load(tmp_path / "p.nii.gz"), nib.load(tmp_path / "n.nii.gz")
    labels = np.asarray(from_nifti.dataobj)
    np.testing.assert_array_equal(np.asarray(from_dicom.dataobj), labels)
    np.testing.assert_allclose(from_dicom.affine, from_nifti.affine, atol=1e-4)
    assert 0 < (labels > 0).sum() < labels.size  # a map with something to get wrong

    # the SEG, read by highdicom: the label map in the source geometry (MSD numbering -> segments 1..3)
    internal = {0: 0, 1: 2, 2: 1, 3: 3}  # MSD 1 edema, 2 core, 3 enhancing -> segments core 1, edema 2, ET 3
    expected = np.vectorize(internal.get)(labels)
    source = load_study(study).reference
    uids = [f.sop_instance_uid for f in source.frames]
    seg = hd.seg.segread(tmp_path / "p.dcm")
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
    np.testing.assert_array_equal(pixels.transpose(2, 1, 0), expected)
    assert [d.SegmentLabel for d in seg.SegmentSequence] == ["necrotic / non-enhancing tumour core",
                                                              "peritumoral edema", "enhancing tumour"]
    assert [d.SegmentedPropertyTypeCodeSequence[0].CodeValue for d in seg.SegmentSequence] == \
        ["6574001", "79654002", "108369006"]  # SNOMED CT: necrosis, edema, neoplasm
    assert seg.FrameOfReferenceUID == pydicom.dcmread(source.frames[0].path).FrameOfReferenceUID
    import kerasbrain

    assert seg.SoftwareVersions == f"kerasbrain {kerasbrain.__version__}" and seg.ManufacturerModelName == "unet3d"
    assert seg.DeviceSerialNumber == str(volume_run)[-64:]  # the run that made it
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "kerasbrain unet3d"

    # and by pydicom alone: every frame refers to a real source image, whose pixels it labels
    by_uid, files = _seg_by_pydicom(tmp_path / "p.dcm", study / "series3")
    assert set(by_uid) == set(files)  # every source image, and nothing else
    for k, uid in enumerate(uids):
        np.testing.assert_array_equal(by_uid[uid].T, expected[:, :, k])

    # the fractional SEG holds the three region probabilities
    fractional = hd.seg.segread(tmp_path / "p_probabilities.dcm")
    assert fractional.SegmentationType == "FRACTIONAL" and len(fractional.SegmentSequence) == 3


def test_uncertainty_of_a_dicom_study_comes_back_as_parametric_maps_on_its_series(volume_run, studies, tmp_path):
    """Each map's Parametric Map holds, frame by frame on the source images, the NIfTI map of the same
    prediction (read with pydicom: float pixels, one frame per slice and region)."""
    study = studies / "studies" / "PHANTOM_001"
    result = run("predict", "--model", volume_run, "--input", study, "--out", tmp_path / "u.dcm", "--uncertainty")
    assert result.exit_code == 0, result.output
    result = run("predict", "--model", volume_run, "--input", study, "--out", tmp_path / "u.nii.gz", "--uncertainty")
    assert result.exit_code == 0, result.output
    source = load_study(study).reference
    uids = [f.sop_instance_uid for f in source.frames]
    for kind in ("entropy", "variance"):
        nifti = np.asarray(nib.load(tmp_path / f"u_{kind}.nii.gz").dataobj)  # (columns, rows, slices, 3)
        pm = pydicom.dcmread(tmp_path / f"u_{kind}.dcm")
        assert pm.SOPClassUID == "1.2.840.10008.5.1.4.1.1.30" and pm.ContentLabel == kind.upper()
        assert pm.FrameOfReferenceUID == pydicom.dcmread(source.frames[0].path).FrameOfReferenceUID
        pixels = pm.pixel_array.reshape(-1, pm.Rows, pm.Columns)
        assert len(pixels) == 3 * len(uids)
        for i, group in enumerate(pm.PerFrameFunctionalGroupsSequence):
            uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            mapping = group.RealWorldValueMappingSequence[0]
            region = ["WT", "TC", "ET"].index(mapping.LUTLabel.split()[0])
            np.testing.assert_allclose(pixels[i].T, nifti[:, :, uids.index(uid), region], atol=1e-6)
    report = __import__("json").loads((tmp_path / "u_report.json").read_text())
    assert report["uncertainty"]["members"] == 8


def test_a_folder_of_studies_and_zips_is_predicted_case_by_case(volume_run, studies, tmp_path):
    incoming = tmp_path / "incoming"
    shutil.copytree(studies / "studies" / "PHANTOM_001", incoming / "PHANTOM_001")
    shutil.make_archive(str(incoming / "PHANTOM_002"), "zip", studies / "studies" / "PHANTOM_002")
    result = run("predict", "--model", volume_run, "--input", incoming, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "out" / "predictions.csv").open()))
    assert [(r["case"], r["status"]) for r in rows] == [("PHANTOM_001", "ok"), ("PHANTOM_002", "ok")]
    for case in ("PHANTOM_001", "PHANTOM_002"):
        seg = hd.seg.segread(tmp_path / "out" / f"{case}_seg.dcm")
        truth = pydicom.dcmread(next((studies / "studies" / case / "series3").iterdir()), stop_before_pixels=True)
        assert seg.StudyInstanceUID == truth.StudyInstanceUID  # the SEG joins the source study


@once
def test_bad_dicom_input_exits_1_naming_the_fault_and_writes_nothing(volume_run, studies, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(studies / "studies" / "PHANTOM_001", study)
    shutil.rmtree(study / "series2")  # no T1
    out = tmp_path / "out" / "p.dcm"
    result = run("predict", "--model", volume_run, "--input", study, "--out", out)
    assert result.exit_code == 1
    assert "Error: T1: no series found; choose one with --series T1=UID_OR_PATTERN" in result.output
    assert not out.parent.exists()
    result = run("predict", "--model", volume_run, "--input", study, "--out", out, "--series", "T1=#2")
    assert result.exit_code == 1 and "T1: no series found" in result.output
    result = run("predict", "--model", volume_run, "--input", study, "--out", tmp_path / "p.png")
    assert result.exit_code == 1 and "--out must end with .dcm or .nii.gz for a DICOM study" in result.output
    # a NIfTI input cannot give a DICOM SEG: there are no source images to refer to
    result = run("predict", "--model", volume_run, "--input", studies / "nifti" / "PHANTOM_001.nii.gz",
                 "--out", tmp_path / "n.dcm")
    assert result.exit_code == 1 and "--out must end with .nii.gz for NIfTI volumes" in result.output


@once
def test_series_can_be_chosen_by_hand(volume_run, studies, tmp_path):
    """--series overrides the rules: swapping T1 and T1Gd changes the image the model sees."""
    study = studies / "studies" / "PHANTOM_001"
    result = run("predict", "--model", volume_run, "--input", study, "--out", tmp_path / "swap.nii.gz",
                 "--series", "T1=*POST*", "--series", "T1Gd=3", "--series", "T1Gd=2")
    assert result.exit_code == 0, result.output  # the last --series for a modality wins
    assert "T1 <- series #3 'AX T1 POST GD' (" in result.output and "--series T1=*POST*" in result.output
    assert "T1Gd <- series #2 'AX T1 SE'" in result.output


def _seg_labels(path, study):
    uids = [f.sop_instance_uid for f in load_study(study).reference.frames]
    return hd.seg.segread(path).get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)


@once  # DICOM in and out around the served model; served answers are tested on both backends
def test_a_dicom_study_through_a_server_gives_the_local_segmentation(volume_run, studies, tmp_path):
    from kerasbrain.serving.server import ServerOptions, build_server

    saved = tmp_path / "saved_models"
    assert run("export", "--model", volume_run, "--name", "tumor3d", "--root", saved).exit_code == 0
    server = build_server(model_name="tumor3d", model_base_path=saved / "tumor3d",
                          options=ServerOptions(rest_port=0, grpc_port=0, poll_seconds=0)).start()
    study = studies / "studies" / "PHANTOM_002"
    try:
        result = run("predict", "--server", f"grpc://127.0.0.1:{server.grpc_port}", "--model", "tumor3d",
                     "--saved-models", saved, "--input", study, "--out", tmp_path / "remote.dcm")
        assert result.exit_code == 0, result.output
    finally:
        server.stop()
    assert run("predict", "--model", volume_run, "--input", study, "--out", tmp_path / "local.dcm").exit_code == 0
    remote, local = _seg_labels(tmp_path / "remote.dcm", study), _seg_labels(tmp_path / "local.dcm", study)
    np.testing.assert_array_equal(remote, local)
    assert local.any()
    assert hd.seg.segread(tmp_path / "remote.dcm").DeviceSerialNumber.endswith("tumor3d")


@once
def test_evaluate_scores_a_folder_of_studies_against_their_truth_segs(volume_run, studies, tmp_path):
    """The scores of each DICOM study are the scores of its NIfTI twin's prediction against the true labels."""
    from kerasbrain.data.labels import to_internal
    from kerasbrain.metrics.numpy_metrics import region_scores

    result = run("evaluate", "--model", volume_run, "--data", studies / "studies", "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "eval" / "cases.csv").open()))
    assert [r["case_id"] for r in rows] == ["PHANTOM_001", "PHANTOM_002"]
    for row in rows:
        case = row["case_id"]
        out = tmp_path / f"{case}.nii.gz"
        assert run("predict", "--model", volume_run, "--input", studies / "nifti" / f"{case}.nii.gz",
                   "--out", out).exit_code == 0
        truth = nib.load(studies / "labels" / f"{case}.nii.gz")
        expected = region_scores(to_internal(np.asarray(out and nib.load(out).dataobj), "msd"),
                                 to_internal(np.asarray(truth.dataobj), "msd"),
                                 tuple(float(z) for z in truth.header.get_zooms()[:3]))
        for key in ("dice_WT", "dice_TC", "dice_ET", "hd95_WT"):
            assert float(row[key]) == pytest.approx(expected[key], abs=1e-6), (case, key)


@once
def test_evaluate_reads_the_studies_with_the_series_chosen_by_hand(volume_run, studies, tmp_path):
    """--series / --reference as predict takes them: T1 and T1Gd swapped score as the NIfTI twin with those
    two channels swapped."""
    from kerasbrain.data.labels import to_internal
    from kerasbrain.metrics.numpy_metrics import region_scores

    result = run("evaluate", "--model", volume_run, "--data", studies / "studies", "--out", tmp_path / "eval",
                 "--series", "T1=3", "--series", "T1Gd=2", "--reference", "T1")
    assert result.exit_code == 0, result.output
    row = next(r for r in csv.DictReader((tmp_path / "eval" / "cases.csv").open()) if r["case_id"] == "PHANTOM_001")
    twin = nib.load(studies / "nifti" / "PHANTOM_001.nii.gz")
    swapped = tmp_path / "swapped.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(twin.dataobj)[..., [0, 2, 1, 3]], twin.affine), swapped)
    out = tmp_path / "swapped_seg.nii.gz"
    assert run("predict", "--model", volume_run, "--input", swapped, "--out", out).exit_code == 0
    truth = nib.load(studies / "labels" / "PHANTOM_001.nii.gz")
    expected = region_scores(to_internal(np.asarray(nib.load(out).dataobj), "msd"),
                             to_internal(np.asarray(truth.dataobj), "msd"),
                             tuple(float(z) for z in truth.header.get_zooms()[:3]))
    for key in ("dice_WT", "dice_TC", "dice_ET", "hd95_WT"):
        assert float(row[key]) == pytest.approx(expected[key], abs=1e-6), key


def test_compare_two_time_points_given_as_a_dicom_study_and_its_nifti_twin(volume_run, studies, tmp_path):
    """The same scan as a DICOM study and as NIfTI, predicted by --model: every lesion matched, nothing changed."""
    import json

    result = run("compare", "--model", volume_run, "--before", studies / "studies" / "PHANTOM_001",
                 "--after", studies / "nifti" / "PHANTOM_001.nii.gz", "--out", tmp_path / "cmp")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert saved["counts"]["new"] == 0 and saved["counts"]["vanished"] == 0
    for key in ("WT_ml", "TC_ml", "ET_ml"):
        assert abs(saved["totals"][key]["change"]) <= 1e-3, key
    assert saved["totals"]["WT_ml"]["before"] > 0


def test_compare_registers_two_studies_whose_frames_of_reference_differ(volume_run, studies, tmp_path):
    """The same study written again under a new FrameOfReferenceUID (as a second session would be): compare
    says so and registers without --register; nothing is new, vanished or changed beyond interpolation."""
    import json
    import shutil

    from pydicom.uid import generate_uid

    again = tmp_path / "again"
    shutil.copytree(studies / "studies" / "PHANTOM_001", again)
    frame = generate_uid()
    for path in again.rglob("*"):
        if path.is_file():
            ds = pydicom.dcmread(path)
            if "FrameOfReferenceUID" in ds:
                ds.FrameOfReferenceUID = frame
                ds.save_as(path)
    result = run("compare", "--model", volume_run, "--before", studies / "studies" / "PHANTOM_001",
                 "--after", again, "--out", tmp_path / "cmp")
    assert result.exit_code == 0, result.output
    assert "different DICOM frames of reference: registering them rigidly" in result.output
    saved = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert saved["counts"]["new"] == 0 and saved["counts"]["vanished"] == 0
    assert abs(saved["totals"]["WT_ml"]["change"]) <= 0.02 * saved["totals"]["WT_ml"]["before"]
    same = run("compare", "--model", volume_run, "--before", studies / "studies" / "PHANTOM_001",
               "--after", studies / "studies" / "PHANTOM_001", "--out", tmp_path / "cmp_same")
    assert same.exit_code == 0 and "registering" not in same.output  # one frame of reference: world coordinates
