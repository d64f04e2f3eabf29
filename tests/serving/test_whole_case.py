"""The whole case in one served request (`segment_case`), equal to local prediction voxel for voxel.

A tiny real U-Net is exported with its run's settings (window 16, overlap 0.25, 3 windows per
batch, mirror TTA), served by `kerasbrain serve`'s server, and asked through the client that
`kerasbrain predict --server` uses, from a "machine" without the export folder: the settings come
from the served `describe` signature.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kerasbrain.data.labels import regions_to_labels
from kerasbrain.data.layouts import Case, discover, load_case
from kerasbrain.data.nifti import Grid
from kerasbrain.data.preprocess import preprocess_case
from kerasbrain.export.compressed import encode_case
from kerasbrain.families.base import InferenceOverrides, PredictRequest
from kerasbrain.families.unet3d import FAMILY
from kerasbrain.inference.config import InferenceConfig
from kerasbrain.inference.predict_volume import predict_case
from kerasbrain.inference.sliding_window import window_positions
from kerasbrain.runtime import predictor
from kerasbrain.serving.client import GrpcClient, RestClient, ServingClientError
from tests.serving.whole_case_server import serve_with_settings, tiny_unet
from tests.conftest import once

MODEL = "kb_case"
SETTINGS = InferenceConfig(window=(16, 16, 16), overlap=0.25, batch_size=3, mirror=True)


@pytest.fixture(scope="module")
def model():
    return tiny_unet(5)


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("case_models")
    server = serve_with_settings(model, MODEL, root, SETTINGS)
    yield {"rest": f"http://127.0.0.1:{server.rest_port}", "grpc": f"grpc://127.0.0.1:{server.grpc_port}",
           "root": root}
    server.stop()


@pytest.fixture(scope="module")
def case(msd_dir):
    return load_case(discover(msd_dir).labelled()[0])


def _session(server, protocol, tmp_path, **request):
    """The family's remote session as `kerasbrain predict --server` builds it, with no saved_models copy."""
    empty = tmp_path / "no_saved_models"
    empty.mkdir(exist_ok=True)
    req = PredictRequest(MODEL, (Path("unused.nii.gz"),), tmp_path / "out.nii.gz", server=server[protocol],
                         saved_models=empty, **request)
    session = FAMILY.remote_session(req, progress=lambda message: None)
    calls = []
    original = session.predict.client.predict

    def counted(inputs, signature_name="serving_default", output_filter=None):
        calls.append(signature_name)
        return original(inputs, signature_name, output_filter)

    session.predict.client.predict = counted
    return session, calls


@pytest.fixture(scope="module")
def local(model):
    """`local(case, cfg)`: the case predicted in-process as `kerasbrain predict` does, by one predictor for
    the module; each answer is kept, as several tests compare the server with the same prediction."""
    run, answers = predictor(model, "graph"), {}

    def predict(case, cfg=SETTINGS):
        key = (case.image.shape, hashlib.sha256(case.image.tobytes()).hexdigest(), cfg)
        if key not in answers:
            answers[key] = predict_case(case, run, 3, cfg)
        return answers[key]

    return predict


def test_the_case_needs_several_windows_and_batches(case):
    pre = preprocess_case(case, None, normalize=False)
    assert len(window_positions(pre.image.shape[:3], SETTINGS.window, SETTINGS.overlap)) > 2 * SETTINGS.batch_size


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_one_request_per_case_equals_local_prediction(server, local, case, protocol, tmp_path):
    session, calls = _session(server, protocol, tmp_path)
    assert session.config == SETTINGS  # read from the served `describe`, not from a folder
    labels, _ = predict_case(case, session.predict, session.channels, session.config, session.spacing)
    local_labels, _ = local(case)
    assert calls == ["segment_case_compressed" if protocol == "rest" else "segment_case"]
    assert local_labels.any() and (local_labels != local_labels.flat[0]).any()
    np.testing.assert_array_equal(labels, local_labels)
    # the served estimate came back with the label map: the expected Dice of that map under local probabilities
    np.testing.assert_allclose(session.predict.last_estimate, _estimate(local(case)[1]), atol=1e-5)


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_probabilities_come_back_when_asked(server, local, case, protocol, tmp_path):
    session, calls = _session(server, protocol, tmp_path, probabilities=True)
    labels, probs = predict_case(case, session.predict, session.channels, session.config, session.spacing)
    local_labels, local_probs = local(case)
    assert calls == ["segment_case"]
    assert np.abs(probs - local_probs).max() <= 1e-5
    np.testing.assert_array_equal(labels, local_labels)


def test_settings_the_graph_does_not_have_go_by_windows(server, local, case, tmp_path):
    session, calls = _session(server, "grpc", tmp_path, overrides=InferenceOverrides(mirror=False))
    labels, _ = predict_case(case, session.predict, session.channels, session.config, session.spacing)
    assert set(calls) == {"serving_default"} and len(calls) > 1
    np.testing.assert_array_equal(labels, local(case, dataclasses.replace(SETTINGS, mirror=False))[0])


def _small_head_case(shape, box):
    """A case whose head box is smaller than the window on some axes and touches the far end."""
    rng = np.random.default_rng(11)
    image = np.zeros(tuple(shape) + (4,), np.float32)
    image[tuple(slice(a, b) for a, b in box)] = np.round(rng.normal(300, 80, size=[b - a for a, b in box] + [4]))
    return Case("small", image, None, Grid(tuple(shape), np.eye(4), None, "memory"), "msd")


def test_a_whole_case_sent_as_is_equals_local_prediction_at_any_size(server, local):
    """Another client sends the raw case uncropped: the graph finds the head box itself."""
    client = GrpcClient(server["grpc"][len("grpc://"):], MODEL)
    for shape, box in (((40, 37, 29), ((3, 30), (20, 37), (17, 29))), ((12, 50, 20), ((0, 12), (5, 45), (2, 9)))):
        case = _small_head_case(shape, box)
        served = client.predict({"image": case.image[None]}, "segment_case")
        _, local_probs = local(case)
        assert served["probabilities"].shape == (1,) + shape + (3,)
        assert np.abs(served["probabilities"][0] - local_probs).max() <= 1e-5
        assert served["expected_dice"].shape == (1, 3)
        np.testing.assert_allclose(served["expected_dice"][0], _estimate(local_probs), atol=1e-5)
        outside = np.ones(shape, bool)
        outside[tuple(slice(a, b) for a, b in box)] = False
        assert not served["probabilities"][0][outside].any()


def _estimate(probs):
    """Each region's expected Dice of the label map decoded from (x, y, z, 3) probabilities, on the host."""
    from kerasbrain.data.labels import labels_to_regions
    from kerasbrain.metrics.case_confidence import expected_dice

    regions = labels_to_regions(regions_to_labels(probs >= 0.5)).astype(bool)
    return [expected_dice(probs[..., r], regions[..., r]) for r in range(3)]


def test_compact_requests_merge_cases_of_any_size(server, local):
    """Two cases of different sizes in one gzip request: each gets its own label map, padded to the larger,
    and its own estimate."""
    client = RestClient(server["rest"], MODEL)
    cases = [_small_head_case((40, 37, 29), ((3, 30), (20, 37), (17, 29))),
             _small_head_case((12, 50, 20), ((0, 12), (5, 45), (2, 9)))]
    parts = [encode_case(cases[0].image, "int16"), encode_case(cases[1].image, "float32")]
    inputs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    answer = client.predict(inputs, "segment_case_compressed")
    mask = answer["mask"]
    assert mask.shape == (2, 40, 50, 29) and answer["expected_dice"].shape == (2, 3)
    for i, case in enumerate(cases):
        expected = regions_to_labels(local(case)[1] >= 0.5)
        np.testing.assert_array_equal(mask[i][:case.image.shape[0], :case.image.shape[1], :case.image.shape[2]],
                                      expected)
        np.testing.assert_allclose(answer["expected_dice"][i], _estimate(local(case)[1]), atol=1e-5)
    assert not np.allclose(answer["expected_dice"][0], answer["expected_dice"][1])
    assert not mask[1][12:].any()


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_bad_compact_requests_are_refused_and_the_server_lives(server, protocol):
    image = np.ones((8, 8, 8, 4), np.float32)
    client = RestClient(server["rest"], MODEL) if protocol == "rest" else GrpcClient(server["grpc"][7:], MODEL)
    bad_size = {**encode_case(image), "shape": np.asarray([[8, 8, 9, 4]], np.int32)}
    bad_dtype = {**encode_case(image), "dtype": np.asarray([b"float64"], object)}
    bad_channels = encode_case(np.ones((8, 8, 8, 3), np.float32))
    not_gzip = {**encode_case(image), "image_gzip": np.asarray([b"plain bytes"], object)}
    for inputs, words in ((bad_size, "prod(shape)"), (bad_dtype, "float32 or int16"),
                          (bad_channels, "4 channels"), (not_gzip, "inflate")):
        with pytest.raises(ServingClientError) as error:
            client.predict(inputs, "segment_case_compressed")
        assert error.value.status in (400, "INVALID_ARGUMENT")
        assert words in error.value.message
    assert client.predict(encode_case(image), "segment_case_compressed")["mask"].shape == (1, 8, 8, 8)


def test_the_manifest_describes_the_signatures(server):
    manifest = json.loads((server["root"] / MODEL / "1" / "assets.extra" / "kerasbrain.json").read_text())
    assert manifest["signatures"]["segment_case"]["settings"] == {
        "window": [16, 16, 16], "overlap": 0.25, "batch_size": 3, "mirror": True, "threshold": 0.5}
    assert manifest["signatures"]["segment_case_compressed"]["inputs"] == ["image_gzip", "shape", "dtype"]
    assert manifest["signatures"]["segment_case"]["outputs"] == ["probabilities", "mask", "expected_dice"]
    assert manifest["signatures"]["segment_case_compressed"]["outputs"] == ["mask", "expected_dice"]
    card = (server["root"] / MODEL / "1" / "assets.extra" / "MODEL_CARD.md").read_text()
    assert "segment_case" in card
    loaded = tf.saved_model.load(str(server["root"] / MODEL / "1"))
    assert sorted(loaded.signatures) == ["describe", "segment_case", "segment_case_compressed", "serving_default"]
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((server["root"] / MODEL / "1" / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0].graph_def
    ops = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    assert not ops & {"PyFunc", "PyFuncStateless", "EagerPyFunc"}  # nothing that needs a Python interpreter
    assert {"DecodeCompressed", "DecodeRaw"} <= ops


def test_admission_waits_then_refuses_beyond_its_line():
    """Capacity 2, one waiting place: a third request waits for room, a fourth is refused at once."""
    import threading

    from kerasbrain.serving.admission import Admission
    from kerasbrain.serving.errors import ServingError

    gate = Admission(2, 1, wait_seconds=30, what="cases")
    first, second = gate.admit(), gate.admit()
    first.__enter__(), second.__enter__()
    admitted = threading.Event()

    def third():
        with gate.admit():
            admitted.set()

    waiter = threading.Thread(target=third)
    waiter.start()
    deadline = time.monotonic() + 30
    while gate.waiting != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.waiting == 1 and not admitted.is_set()
    with pytest.raises(ServingError) as error:
        with gate.admit():
            pass
    assert error.value.code == "RESOURCE_EXHAUSTED" and "2/2 in use, 1 waiting" in error.value.message
    first.__exit__(None, None, None)
    assert admitted.wait(30)
    waiter.join(30)
    with pytest.raises(ServingError, match="exceeds the server's capacity of 2"):
        with gate.admit(3):
            pass
    second.__exit__(None, None, None)
    assert gate.in_use == 0 and gate.refused == 2


@pytest.fixture(scope="module")
def full_server(model, tmp_path_factory):
    """A server with room for one whole case, no waiting line and 1 MB of request bodies in flight."""
    server = serve_with_settings(model, MODEL, tmp_path_factory.mktemp("full"), SETTINGS, case_slots=1,
                                 max_waiting=0, max_inflight_mb=1)
    yield server
    server.stop()


@once  # the server's admission control; the exported model's answers are tested on both backends above
@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_a_full_server_answers_resource_exhausted_and_recovers(full_server, protocol):
    server = full_server
    client = (RestClient(f"http://127.0.0.1:{server.rest_port}", MODEL) if protocol == "rest" else
              GrpcClient(f"127.0.0.1:{server.grpc_port}", MODEL))
    small = np.zeros((1, 8, 8, 8, 4), np.float32)
    small[0, 2:6, 2:6, 2:6] = 50
    with server.manager.case_admission.admit():  # a whole case is running
        with pytest.raises(ServingClientError) as error:
            client.predict({"image": small}, "segment_case")
        assert error.value.status in (429, "RESOURCE_EXHAUSTED")
    if protocol == "rest":  # a body larger than the in-flight budget is refused unread
        with pytest.raises(ServingClientError) as error:
            client.predict({"image": np.ones((1, 40, 40, 40, 4), np.float32)}, "segment_case")
        assert error.value.status == 429 and "exceeds the server's capacity" in error.value.message
    assert client.predict({"image": small}, "segment_case")["mask"].shape == (1, 8, 8, 8)
    deadline = time.monotonic() + 30  # a handler releases its room just after its answer is sent
    while (server.manager.case_admission.in_use or server.bodies.in_use) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.manager.case_admission.in_use == 0 and server.bodies.in_use == 0
