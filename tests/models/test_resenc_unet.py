"""nnU-Net's residual-encoder U-Net: its blocks as specified, its outputs, and training from the command line."""

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from kerasbrain.models.resenc_unet import RESENC_M_BLOCKS, ResEncUNet
from tests.conftest import TINY_UNET3D_TOML, once


def test_the_encoder_has_the_asked_residual_blocks():
    model = ResEncUNet(base_filters=4, depth=3, blocks_per_stage=(1, 2, 3, 2))
    adds = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 1 + 2 + 3 + 2  # one shortcut per block
    projections = sorted(layer.name for layer in model.layers if layer.name.endswith("_proj"))
    assert projections == ["stage1_block0_proj", "stage2_block0_proj", "stage3_block0_proj"]  # one per downsampling
    strides = {layer.name: layer.strides for layer in model.layers if layer.name.endswith("_conv0")}
    assert strides["stage2_block0_conv0"] == (2, 2, 2) and strides["stage2_block1_conv0"] == (1, 1, 1)
    assert ResEncUNet(base_filters=4, depth=4).blocks_per_stage == RESENC_M_BLOCKS[:5] == (1, 3, 4, 6, 6)
    with pytest.raises(ValueError, match="depth \\+ 1 = 4 counts"):
        ResEncUNet(depth=3, blocks_per_stage=(1, 2))


def test_outputs_and_deep_supervision_match_the_unet_contract():
    model = ResEncUNet(base_filters=4, depth=2, deep_supervision=1)
    x = np.random.default_rng(0).normal(size=(2, 16, 24, 8, 4)).astype("float32")
    full, half = model.predict_on_batch(x)
    assert full.shape == (2, 16, 24, 8, 3) and half.shape == (2, 8, 12, 4, 3)
    assert model.size_divisor == 4 and model.spatial_dims == 3


@once
def test_train_and_predict_a_resenc_run(msd_dir, tmp_path):
    config = TINY_UNET3D_TOML.replace("[model]\n", "[model]\narchitecture = \"resenc\"\nblocks_per_stage = [1, 2, 2]\n")
    (tmp_path / "resenc.toml").write_text(config)
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "unet3d", "--data", str(msd_dir), "--config", str(tmp_path / "resenc.toml"),
                                 "--out", str(tmp_path / "run"), "--epochs", "1", "--steps-per-epoch", "2"])
    assert result.exit_code == 0, result.output
    from kerasbrain.inference.model_io import load_model

    model = load_model(tmp_path / "run" / "best.keras")
    assert type(model).__name__ == "ResEncUNet" and model.blocks_per_stage == (1, 2, 2)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["architecture"] == "resenc"
    case = next(msd_dir.glob("imagesTs/*.nii.gz"))
    result = runner.invoke(cli, ["predict", "--model", str(tmp_path / "run"), "--input", str(case), "--out",
                                 str(tmp_path / "seg.nii.gz")])
    assert result.exit_code == 0, result.output
    bad = TINY_UNET3D_TOML.replace("[model]\n", "[model]\nblocks_per_stage = [1, 2, 2]\n")
    (tmp_path / "bad.toml").write_text(bad)
    result = runner.invoke(cli, ["train", "unet3d", "--data", str(msd_dir), "--config", str(tmp_path / "bad.toml"),
                                 "--out", str(tmp_path / "bad")])
    assert result.exit_code != 0 and "blocks_per_stage" in result.output
