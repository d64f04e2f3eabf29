"""Loading models: one load per file inside `reuse_loaded_models` (folder prediction), fresh ones outside."""

import os

from kerasbrain.inference.model_io import load_model, reuse_loaded_models
from kerasbrain.models.unet import UNet


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
