import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasbrain.data.labels import regions_to_labels
from kerasbrain.export.saved_model import WARMUP_FILE, export_version, read_manifest
from kerasbrain.export.layout import versions
from kerasbrain.intensity import normalize_np
from kerasbrain.models.unet import UNet
from tests.conftest import once_on

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(4)
    return UNet(base_filters=4, depth=2)


def _inputs(rng, batch=2, size=(8, 12, 16)):
    image = rng.normal(100, 30, size=(batch,) + size + (4,)).astype(np.float32)
    image[:, :2] = 0  # some background
    mean = rng.normal(100, 5, size=(batch, 4)).astype(np.float32)
    std = rng.uniform(20, 40, size=(batch, 4)).astype(np.float32)
    return image, mean, std


def _expected(model, image, mean, std):
    """`model`'s probabilities for each raw item, normalised as kerasbrain does."""
    return np.stack([model.predict_on_batch(normalize_np(image[i:i + 1], mean[i], std[i]))[0]
                     for i in range(len(image))])


def test_exported_signature_matches_keras(model, tmp_path):
    """Named inputs and outputs; the graph normalises raw intensities exactly as kerasbrain does."""
    path = export_version(model, "tumor3d", tmp_path, warmup_window=(8, 8, 8))
    assert path == tmp_path / "tumor3d" / "1"
    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures["serving_default"]
    assert sorted(fn.structured_input_signature[1]) == ["channel_mean", "channel_std", "image"]
    assert sorted(fn.structured_outputs) == ["mask", "probabilities"]
    rng = np.random.default_rng(0)
    image, mean, std = _inputs(rng)
    out = fn(image=tf.constant(image), channel_mean=tf.constant(mean), channel_std=tf.constant(std))
    np.testing.assert_allclose(out["probabilities"].numpy(), _expected(model, image, mean, std), atol=1e-5)
    np.testing.assert_array_equal(out["mask"].numpy(), regions_to_labels(out["probabilities"].numpy() >= 0.5))
    assert out["mask"].dtype == tf.uint8
    manifest = read_manifest(path)
    assert manifest["inputs"] == ["image", "channel_mean", "channel_std"]
    assert manifest["size_divisor"] == 4 and manifest["exported_from_backend"] == keras.backend.backend()


def test_a_network_that_leaves_thick_slices_unpooled_exports_and_its_divisors_are_served(tmp_path):
    """[model] strides: z is pooled once of two levels, so windows need z in multiples of 2, not 4; the
    manifest says so and the server holds requests to it."""
    from kerasbrain.serving.servable import _read_contract as read_contract, check_values
    from kerasbrain.serving.errors import ServingError

    keras.utils.set_random_seed(5)
    thick = UNet(base_filters=4, depth=2, strides=((2, 2, 1), (2, 2, 2)))
    path = export_version(thick, "thick", tmp_path, warmup_window=(8, 8, 6))
    manifest = read_manifest(path)
    assert manifest["axis_divisors"] == [4, 4, 2] and manifest["size_divisor"] == 4
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    image, mean, std = _inputs(np.random.default_rng(2), size=(8, 12, 6))
    out = fn(image=tf.constant(image), channel_mean=tf.constant(mean), channel_std=tf.constant(std))
    np.testing.assert_allclose(out["probabilities"].numpy(), _expected(thick, image, mean, std), atol=1e-5)
    contract = read_contract(path)
    check_values({"image": image, "channel_mean": mean, "channel_std": std}, contract)
    with pytest.raises(ServingError, match=r"spatial sides \[8, 12, 5\] must be multiples of \[4, 4, 2\]"):
        check_values({"image": image[:, :, :, :5], "channel_mean": mean, "channel_std": std}, contract)


def test_versions_are_atomic_and_immutable(model, tmp_path):
    export_version(model, "m", tmp_path)
    second = export_version(model, "m", tmp_path)
    assert second.name == "2" and versions(tmp_path / "m") == [1, 2]
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]  # no staging folders left
    with pytest.raises(FileExistsError, match="version 2 of 'm' already exists"):
        export_version(model, "m", tmp_path, version=2)
    with pytest.raises(ValueError, match="model name must be"):
        export_version(model, "../evil", tmp_path)


def test_warmup_requests_are_valid_prediction_logs(model, tmp_path):
    from tensorflow_serving.apis import prediction_log_pb2

    path = export_version(model, "w", tmp_path, warmup_window=(8, 8, 8))
    records = list(tf.data.TFRecordDataset(str(path / "assets.extra" / WARMUP_FILE)))
    log = prediction_log_pb2.PredictionLog.FromString(records[0].numpy())
    request = log.predict_log.request
    assert request.model_spec.name == "w" and request.model_spec.signature_name == "serving_default"
    assert tf.make_ndarray(request.inputs["image"]).shape == (1, 8, 8, 8, 4)


def test_unsupported_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no serving signature"):
        export_version(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), "x", tmp_path)


def test_cli_export(tmp_path):
    from click.testing import CliRunner

    from cli.main import cli

    model = UNet(base_filters=4, depth=2)
    model.save(tmp_path / "best.keras")
    (tmp_path / "config.json").write_text(json.dumps({"inference": {"window": [16, 16, 16]}}))
    result = CliRunner().invoke(cli, ["export", "--model", str(tmp_path / "best.keras"), "--name", "tumor3d",
                                      "--root", str(tmp_path / "sm"), "--backend", keras.backend.backend()])
    assert result.exit_code == 0, result.output
    manifest = read_manifest(tmp_path / "sm" / "tumor3d" / "1")
    assert manifest["warmup_window"] == [16, 16, 16] and manifest["exported_from_backend"] == keras.backend.backend()


@once_on("jax")  # export's default from a JAX process: TensorFlow's graph, made by a child process
def test_a_model_saved_on_jax_exports_under_tensorflow_and_serves_what_jax_predicts(model, tmp_path):
    from click.testing import CliRunner

    from cli.main import cli

    model.save(tmp_path / "best.keras")
    (tmp_path / "config.json").write_text(json.dumps({"inference": {"window": [8, 8, 8]}}))
    args = ["export", "--model", str(tmp_path / "best.keras"), "--name", "m", "--root", str(tmp_path / "sm")]
    result = CliRunner().invoke(cli, args)
    path = tmp_path / "sm" / "m" / "1"
    assert result.exit_code == 0 and str(path) in result.output.splitlines(), result.output  # the child's stdout
    assert read_manifest(path)["exported_from_backend"] == "tensorflow"
    graph = tf.saved_model.load(str(path)).signatures["serving_default"]
    ops = {n.op for f in graph.graph.as_graph_def().library.function for n in f.node_def}
    assert "XlaCallModule" not in ops  # TensorFlow's own graph, not JAX's program run by XLA
    image, mean, std = _inputs(np.random.default_rng(1))
    out = graph(image=tf.constant(image), channel_mean=tf.constant(mean), channel_std=tf.constant(std))
    np.testing.assert_allclose(out["probabilities"].numpy(), _expected(model, image, mean, std), atol=1e-5)

    # The child's refusal reaches the user as its one line and exit status; nothing else is written.
    again = CliRunner().invoke(cli, [*args, "--version", "1"])
    assert again.exit_code == 1 and "version 1 of 'm' already exists" in again.output, again.output
    assert sorted(p.name for p in (tmp_path / "sm" / "m").iterdir()) == ["1"]
    # --backend jax keeps JAX's program (XLA inside TF Serving).
    assert CliRunner().invoke(cli, [*args, "--backend", "jax", "--no-warmup"]).exit_code == 0
    assert read_manifest(tmp_path / "sm" / "m" / "2")["exported_from_backend"] == "jax"
    jax_graph = tf.saved_model.load(str(tmp_path / "sm" / "m" / "2")).signatures["serving_default"]
    assert "XlaCallModule" in {n.op for f in jax_graph.graph.as_graph_def().library.function for n in f.node_def}


def test_an_export_process_that_is_killed_is_one_line_and_its_status(tmp_path, monkeypatch):
    """The child's command line and backend, and a child killed by a signal (out of memory), which
    cannot say so itself: the parent says it in one line and exits 1."""
    import subprocess

    from click.testing import CliRunner

    from cli.main import cli

    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    calls = []

    def killed(argv, **kwargs):
        calls.append((argv, kwargs["env"]["KERAS_BACKEND"]))
        return subprocess.CompletedProcess(argv, -9, "", "")

    monkeypatch.setattr("subprocess.run", killed)
    (tmp_path / "best.keras").write_bytes(b"")
    result = CliRunner().invoke(cli, ["export", "--model", str(tmp_path / "best.keras"), "--name", "m", "--root",
                                      str(tmp_path / "sm"), "--backend", other, "--version", "3", "--no-warmup"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: the export process under {other} was killed by signal SIGKILL; nothing was exported")
    assert f"exporting under {other} in a child process" in result.output
    ((argv, backend),) = calls
    assert backend == other and argv[1:] == ["-m", "cli.main", "export", "--model", str(tmp_path / "best.keras"),
                                             "--name", "m", "--root", str(tmp_path / "sm"), "--backend", other,
                                             "--no-warmup", "--version", "3"]


@pytest.mark.parametrize("make", [lambda: UNet(spatial_dims=2, in_channels=3, out_channels=1, base_filters=4, depth=2),
                                  lambda: __import__("kerasbrain.models.encoder_unet", fromlist=["x"]).EncoderUNet(
                                      "resnet18", decoder_filters=(16, 16, 8, 8, 8))],
                         ids=["unet2d", "resnet18_unet"])
def test_slice_model_export_matches_keras(tmp_path, make):
    model = make()
    path = export_version(model, "slices", tmp_path, warmup_window=(64, 64))
    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    assert list(fn.structured_input_signature[1]) == ["image"]
    pixels = np.random.default_rng(1).integers(0, 256, (2, 64, 96, 3)).astype(np.float32)
    out = fn(image=tf.constant(pixels))
    expected = model.predict_on_batch(pixels / 255.0)[..., 0]
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(out["mask"].numpy(), (out["probabilities"].numpy() >= 0.5).astype(np.uint8))
    # each slice's review estimate, as `predict` computes it on the host
    from kerasbrain.metrics.case_confidence import expected_dice

    assert out["expected_dice"].shape == (2,)
    np.testing.assert_allclose(out["expected_dice"].numpy(), [expected_dice(p, p >= 0.5) for p in expected], atol=1e-5)
    assert read_manifest(path)["kind"] == "slice_segmentation"
