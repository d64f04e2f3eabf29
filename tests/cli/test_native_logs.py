"""TensorFlow's native start-up lines held to TF_CPP_MIN_LOG_LEVEL on the command line (cli/native_logs.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.native_logs import filtered_stderr, kept_lines
from tests.conftest import once

ROOT = Path(__file__).resolve().parents[2]

BEFORE_INIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
INFO = "I0000 00:00:1796558971.369448   21024 port.cc:153] oneDNN custom operations are on.\n"
GUARD = ("I0000 00:00:1796559045.616042   21536 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.\n"
         "To enable the following instructions: AVX2 FMA, rebuild TensorFlow.\n")
WARN = "W1204 11:58:41.000001   21024 cuda_dnn.cc:8] cuDNN is older than the build.\n"
ERROR = "E0000 00:00:1796559050.108249   21536 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n"
PYTHON = "/x/site-packages/numpy/__init__.py:1: UserWarning: a Python warning\n"


@pytest.mark.parametrize("level, expected", [
    (0, [PYTHON, BEFORE_INIT, INFO, *GUARD.splitlines(keepends=True), WARN, ERROR]),
    (1, [PYTHON, WARN, ERROR]),
    (2, [PYTHON, ERROR]),
    (3, [PYTHON]),
])
def test_records_below_the_level_go_with_their_continuation_lines(level, expected):
    text = PYTHON + BEFORE_INIT + INFO + GUARD + WARN + ERROR
    assert kept_lines(text, level) == expected


def test_native_writes_are_filtered_and_the_descriptor_comes_back(capfd):
    with filtered_stderr(2):
        os.write(2, b"plain native line\n")
        os.write(2, INFO.encode())
        os.write(2, ERROR.encode())
    os.write(2, INFO.encode())  # after the block: written as it comes
    assert capfd.readouterr().err == "plain native line\n" + ERROR + INFO

    with pytest.raises(RuntimeError, match="inside"), filtered_stderr(3):
        os.write(2, INFO.encode() + b"kept\n")
        raise RuntimeError("inside")
    os.write(2, b"restored\n")
    assert capfd.readouterr().err == "restored\n"


@once  # one process on the TensorFlow backend: its start-up lines are what this filters
def test_a_refused_input_is_one_line_on_stderr_of_a_tensorflow_process(tmp_path):
    from kerasbrain.models.unet import UNet

    UNet(base_filters=4, depth=2).save(tmp_path / "m.keras")
    bad = tmp_path / "case.nii.gz"
    bad.write_text("not a NIfTI file")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the command's own default
    done = subprocess.run([sys.executable, "-m", "cli.main", "predict", "--model", str(tmp_path / "m.keras"),
                           "--input", str(bad), "--out", str(tmp_path / "seg.nii.gz")], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**env, "KERAS_BACKEND": "tensorflow"})
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"Error: {bad}: cannot be read as NIfTI (ImageFileError: File {bad} "
                                        "is not a gzip file)"], done.stderr
    assert not (tmp_path / "seg.nii.gz").exists()
