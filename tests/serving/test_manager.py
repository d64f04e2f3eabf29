"""Configuration changes without a restart, the gRPC reload call, monitoring, and the `serve` command."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from kerasbrain.export.saved_model import export_version
from kerasbrain.models.unet import UNet
from kerasbrain.serving.client import GrpcClient, RestClient, ServingClientError
from kerasbrain.serving.server import ServerOptions, build_server
from tests.conftest import once_on

CONFIG = "model_config_list {{ {entries} }}"
ENTRY = "config {{ name: '{name}' base_path: '{path}' model_platform: 'tensorflow' }}"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("sm")
    model = UNet(base_filters=4, depth=2)
    export_version(model, "a", root)
    export_version(model, "b", root)
    return root


def _wait(predicate, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (ServingClientError, OSError):  # not up yet
            pass
        time.sleep(0.2)
    return False


def test_config_edits_are_applied_and_broken_ones_ignored(exported, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(CONFIG.format(entries=ENTRY.format(name="a", path=exported / "a")))
    (tmp_path / "monitoring.config").write_text('prometheus_config { enable: true path: "/metrics" }')
    server = build_server(model_config_file=config, monitoring_config=tmp_path / "monitoring.config",
                          options=ServerOptions(rest_port=0, grpc_port=0, poll_seconds=0.3)).start()
    rest = f"http://127.0.0.1:{server.rest_port}"
    try:
        assert RestClient(rest, "a").status()["model_version_status"][0]["state"] == "AVAILABLE"
        with pytest.raises(ServingClientError):
            RestClient(rest, "b").status()
        both = CONFIG.format(entries=ENTRY.format(name="a", path=exported / "a") + ENTRY.format(name="b", path=exported / "b"))
        config.write_text(both)
        assert _wait(lambda: RestClient(rest, "b").status())
        config.write_text("model_config_list { config { name: 'a' base_pathh: 'x' } }")  # TF Serving would reject it
        assert _wait(lambda: "base_pathh" in server.manager.config_error)  # read, refused, reported
        assert RestClient(rest, "a").status() and RestClient(rest, "b").status()  # still serving
        config.write_text(CONFIG.format(entries=ENTRY.format(name="b", path=exported / "b")))
        assert _wait(lambda: server.manager.model_names() == ["b"])
        metrics = urllib.request.urlopen(rest + "/metrics").read().decode()
        assert ":tensorflow:serving:request_count" in metrics
    finally:
        server.stop()


def test_grpc_reload_config_request(exported, tmp_path):
    from tensorflow_serving.apis import model_management_pb2
    from tensorflow_serving.config import model_server_config_pb2

    config = tmp_path / "models.config"
    config.write_text(CONFIG.format(entries=ENTRY.format(name="a", path=exported / "a")))
    server = build_server(model_config_file=config, options=ServerOptions(rest_port=0, grpc_port=0,
                                                                          poll_seconds=0)).start()
    try:
        client = GrpcClient(f"127.0.0.1:{server.grpc_port}", "b")
        request = model_management_pb2.ReloadConfigRequest()
        request.config.CopyFrom(model_server_config_pb2.ModelServerConfig())
        request.config.model_config_list.config.add(name="b", base_path=str(exported / "b"),
                                                    model_platform="tensorflow")
        client._models.HandleReloadConfigRequest(request, timeout=60)
        assert client.status().model_version_status[0].state == 30
        assert "name: \"b\"" in config.read_text()  # the new config is what a restart would read
    finally:
        server.stop()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@once_on("jax")  # the server process's signal handling
def test_serve_command_runs_and_stops_on_sigterm(exported):
    rest_port, grpc_port = _free_port(), _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--model-name", "a", "--model-base-path",
                             str(exported / "a"), "--rest-port", str(rest_port), "--grpc-port", str(grpc_port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        url = f"http://127.0.0.1:{rest_port}/v1/models/a"
        assert _wait(lambda: json.loads(urllib.request.urlopen(url, timeout=5).read()), seconds=120), proc.poll()
    except Exception:
        proc.kill()
        raise
    finally:
        proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, output
    assert f"serving REST on http://127.0.0.1:{rest_port}" in output
