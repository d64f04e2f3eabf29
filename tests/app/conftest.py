"""Tiny real models in run folders, made in-process (no training: the app's glue is under test)."""

import keras
import pytest

from kerasbrain.config import parse_config, save_config_json
from kerasbrain.families import get_family
from kerasbrain.runs import CONFIG_FILE, write_run_info


def make_run(run_dir, family: str, model, config: dict):
    """A run folder as `kerasbrain train` leaves it: run.json, config.json and best.keras."""
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config_json(parse_config(get_family(family)._config_cls(), config), run_dir / CONFIG_FILE)
    write_run_info(run_dir, family)
    model.save(run_dir / "best.keras")
    return run_dir


@pytest.fixture(scope="session")
def volume_run(tmp_path_factory):
    from kerasbrain.models.unet import UNet

    keras.utils.set_random_seed(1)
    model = UNet(spatial_dims=3, base_filters=4, depth=2)
    return make_run(tmp_path_factory.mktemp("app-models") / "volume", "unet3d", model,
                    {"inference": {"window": [32, 32, 32], "batch_size": 2, "overlap": 0.25}})


@pytest.fixture(scope="session")
def multitask_run(tmp_path_factory):
    from kerasbrain.models.multitask import MultiTaskNet

    keras.utils.set_random_seed(2)
    model = MultiTaskNet(encoder="resnet18", decoder_filters=(16, 8, 8, 8, 4))
    return make_run(tmp_path_factory.mktemp("app-models") / "multitask", "multitask", model,
                    {"data": {"image_size": 64}, "model": {"decoder_filters": [16, 8, 8, 8, 4]}})
