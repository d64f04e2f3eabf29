"""A full disk or an unwritable run folder: one clear line, exit 1, the last good checkpoint intact."""

import errno

import pytest
from click.testing import CliRunner

from cli.main import cli
from kerasbrain.files import atomic_write
from kerasbrain.inference.model_io import load_model
from kerasbrain.training import callbacks
from tests.conftest import TINY_UNET3D_TOML, once_on



def train(msd_dir, config, out, epochs):
    return CliRunner().invoke(cli, ["train", "unet3d", "--data", str(msd_dir), "--config", str(config), "--out",
                                    str(out), "--epochs", str(epochs), "--steps-per-epoch", "2"])


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_UNET3D_TOML)
    return tmp_path / "tiny.toml"


@once_on("jax")  # the trainer's file handling; training and saving are tested on both backends
def test_a_disk_that_fills_up_stops_training_with_one_line_and_keeps_the_last_good_model(msd_dir, tiny, tmp_path,
                                                                                           monkeypatch):
    run = tmp_path / "run"
    assert train(msd_dir, tiny, run, 1).exit_code == 0
    good = (run / "last.keras").read_bytes()

    def full_disk(path, write):
        if path.name == "last.keras":
            def partial(tmp):  # the copy being written fills the disk half-way
                open(tmp, "wb").write(b"PK\x03\x04 half a model")
                raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
            return atomic_write(path, partial)
        return atomic_write(path, write)

    monkeypatch.setattr(callbacks, "atomic_write", full_disk)
    result = train(msd_dir, tiny, run, 2)
    last_line = result.output.strip().splitlines()[-1]
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert last_line.endswith(f"Error: {run / 'last.keras'}: No space left on device"), last_line
    assert (run / "last.keras").read_bytes() == good  # the epoch-1 model, whole
    load_model(run / "last.keras")
    assert not list(run.glob(".tmp-*"))  # the half-written copy was removed


def test_a_run_folder_that_cannot_be_created_is_one_line(msd_dir, tiny, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = train(msd_dir, tiny, blocker / "run", 1)
    assert result.exit_code == 1 and "Traceback" not in result.output
    # refused while the arguments are read (cli.common.OutputPath), before any data is read
    assert result.output.strip() == f"Error: {blocker / 'run'}: cannot be written: {blocker} is a file, not a folder"
