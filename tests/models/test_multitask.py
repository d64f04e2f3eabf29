"""The multi-task network: named outputs, the single-task variants, and a fresh-process round trip."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kerasbrain.models.multitask import MultiTaskNet

SMALL = dict(encoder="resnet18", decoder_filters=(16, 8, 8, 8, 4))


def test_outputs_are_named_by_task_with_known_shapes():
    model = MultiTaskNet(**SMALL)
    x = np.random.default_rng(0).uniform(size=(3, 64, 96, 3)).astype("float32")
    out = model.predict_on_batch(x)
    assert set(out) == {"class", "mask"}
    assert out["class"].shape == (3, 4) and out["mask"].shape == (3, 64, 96, 1)
    np.testing.assert_allclose(out["class"].sum(axis=1), 1.0, atol=1e-5)
    assert model.size_divisor == 32 and model.spatial_dims == 2


@pytest.mark.parametrize("tasks", [("class",), ("mask",)])
def test_single_task_baselines_come_from_the_same_code(tasks):
    model = MultiTaskNet(tasks=tasks, **SMALL)
    assert set(model.predict_on_batch(np.zeros((1, 32, 32, 3), "float32"))) == set(tasks)
    with pytest.raises(ValueError, match="tasks must be"):
        MultiTaskNet(tasks=("class", "boxes"), **SMALL)


def test_keras_round_trip_in_a_fresh_process(tmp_path):
    keras.utils.set_random_seed(1)
    model = MultiTaskNet(**SMALL)
    x = np.random.default_rng(1).uniform(size=(2, 64, 64, 3)).astype("float32")
    expected = model.predict_on_batch(x)
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    code = textwrap.dedent(f"""
        import numpy as np, keras, kerasbrain.models
        m = keras.saving.load_model({str(tmp_path / "m.keras")!r}, safe_mode=True)
        assert type(m).__name__ == "MultiTaskNet" and m.tasks == ("class", "mask"), m.tasks
        out = m.predict_on_batch(np.load({str(tmp_path / "x.npy")!r}))
        np.save({str(tmp_path / "c.npy")!r}, out["class"]); np.save({str(tmp_path / "m.npy")!r}, out["mask"])
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), expected["class"], atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "m.npy"), expected["mask"], atol=1e-5)
