"""Loading models: one load per file when a folder is predicted; untrusted files refused with the reason."""

import os
import pickle
import zipfile

import cv2
import keras
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from kerasbrain.data.errors import DataError
from kerasbrain.inference.model_io import load_model, reuse_loaded_models
from kerasbrain.models.unet import UNet
from kerasbrain.serialization import ModelFileError


def test_a_folder_of_cases_loads_the_model_once(tmp_path):
    path = tmp_path / "m.keras"
    UNet(spatial_dims=2, base_filters=4, depth=2, in_channels=1, out_channels=1).save(path)
    assert load_model(path) is not load_model(path)
    with reuse_loaded_models():
        first = load_model(path)
        assert load_model(tmp_path / "m.keras") is first
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed: load it again
        assert load_model(path) is not first
    assert load_model(path) is not first


# --- untrusted model files -------------------------------------------------------------------------
def _tiny(path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.save(path)
    return path


def _rewrite(source, target, extra=None, config_edit=None):
    """Copy a .keras zip, optionally editing config.json and adding members (name -> bytes)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "config.json" and config_edit:
                data = config_edit(data.decode()).encode()
            dst.writestr(name, data)
        for name, data in (extra or {}).items():
            dst.writestr(name, data)
    return target


def test_untrusted_model_files_are_refused_with_the_reason(tmp_path):
    good = _tiny(tmp_path / "good.keras")
    load_model(good)
    lam = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x * 2)])
    lam.save(tmp_path / "lambda.keras")
    with pytest.raises(DataError, match="lambda.keras: cannot be loaded.*Lambda.*safe_mode"):
        load_model(tmp_path / "lambda.keras")
    unknown = _rewrite(good, tmp_path / "unknown.keras",
                       config_edit=lambda c: c.replace('"Dense"', '"NoSuchLayer"', 1))
    with pytest.raises(DataError, match="unknown.keras: cannot be loaded.*NoSuchLayer"):
        load_model(unknown)
    cases = {
        "escape.keras": ({"../../escaped.txt": b"x"}, "points outside the archive"),
        "absolute.keras": ({"/tmp/absolute.txt": b"x"}, "points outside the archive"),
        "pickle.keras": ({"assets/payload.bin": pickle.dumps({"run": "code"})}, "is a Python pickle"),
        "extra.keras": ({"evil.py": b"import os"}, "unexpected archive member 'evil.py'"),
    }
    for name, (extra, reason) in cases.items():
        with pytest.raises(ModelFileError, match=f"{name}: .*{reason}"):
            load_model(_rewrite(good, tmp_path / name, extra))
    assert not (tmp_path.parent / "escaped.txt").exists()
    (tmp_path / "text.keras").write_text("not a zip")
    with pytest.raises(ModelFileError, match="text.keras: not a .keras archive"):
        load_model(tmp_path / "text.keras")


def test_the_cli_refuses_an_unsafe_model_in_one_line(tmp_path):
    keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x * 2)]).save(tmp_path / "lambda.keras")
    image = tmp_path / "slice.png"
    cv2.imwrite(str(image), np.zeros((8, 8), np.uint8))
    result = CliRunner().invoke(cli, ["predict", "--model", str(tmp_path / "lambda.keras"), "--input", str(image),
                                      "--out", str(tmp_path / "o.png")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "lambda.keras" in result.output, result.output
