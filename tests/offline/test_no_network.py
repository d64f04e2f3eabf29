"""The CLI's main commands and the web app run with the network cut off (only loopback answers).

Two walls, both on where the machine allows: the whole process tree runs in a network namespace of
its own with only loopback up (`unshare --user --net`), so native code (TensorFlow's file systems,
gRPC, a downloader in C) cannot reach out either; and inside it, Python's sockets are patched to
refuse and record any connection off loopback (`no_network.py`), so an attempt is seen, not only
failed. Without user namespaces only the second wall stands; the namespace test says so by skipping.
"""

import functools
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_MULTITASK_TOML, TINY_UNET3D_TOML, once

GUARD = Path(__file__).with_name("no_network.py")
ROOT = Path(__file__).resolve().parents[2]
pytestmark = [once, pytest.mark.slow]
#: run a command in a new user + network namespace with loopback up
NAMESPACE = ["unshare", "--user", "--map-root-user", "--net", "bash", "-c", 'ip link set lo up && exec "$@"', "netns"]
NO_NAMESPACE = "no user network namespace on this machine"
#: a native connection off the machine, made by bash itself (no Python socket involved)
NATIVE_CONNECT = ["bash", "-c", "exec 3<>/dev/tcp/192.0.2.1/80"]


@functools.cache
def namespace() -> list[str]:
    """The namespace prefix where the machine allows user namespaces, else []."""
    try:
        probe = subprocess.run([*NAMESPACE, "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return NAMESPACE if probe.returncode == 0 else []


def offline(log, *args, driver: str | None = None):
    """Run kerasbrain ARGS (or a Python `driver` script) with the network cut off; returns the result."""
    env = {**os.environ, "KERASBRAIN_BLOCKED_LOG": str(log), "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, str(GUARD), *map(str, args)] if driver is None else [sys.executable, "-c", driver]
    result = subprocess.run([*namespace(), *command], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, f"{args}: {result.stderr[-3000:]}"
    return result


def test_the_guard_really_blocks(tmp_path):
    log = tmp_path / "blocked.log"
    code = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"
    result = subprocess.run([sys.executable, "-c", f"import runpy; runpy.run_path({str(GUARD)!r}); {code}"],
                            env={**os.environ, "KERASBRAIN_BLOCKED_LOG": str(log)}, capture_output=True, text=True)
    assert result.returncode != 0 and "network blocked by the test" in result.stderr
    assert "192.0.2.1" in log.read_text()


def test_the_namespace_cuts_native_connections_and_keeps_loopback():
    if not namespace():
        pytest.skip(f"{NO_NAMESPACE}: only Python sockets are guarded")
    cut = subprocess.run([*namespace(), *NATIVE_CONNECT], capture_output=True, text=True, timeout=30)
    assert cut.returncode != 0 and "Network is unreachable" in cut.stderr, cut.stderr
    loopback = ("import socket; s = socket.create_server(('127.0.0.1', 0)); "
                "socket.create_connection(s.getsockname(), timeout=5); print('loopback answers')")
    kept = subprocess.run([*namespace(), sys.executable, "-c", loopback], capture_output=True, text=True, timeout=60)
    assert kept.stdout.strip() == "loopback answers", kept.stderr


def test_main_commands_never_reach_the_network(tmp_path):
    log = tmp_path / "blocked.log"
    log.write_text("")
    msd = tmp_path / "Task01_BrainTumour"
    (tmp_path / "tiny3d.toml").write_text(TINY_UNET3D_TOML)
    (tmp_path / "tiny2d.toml").write_text(TINY_MULTITASK_TOML)
    then = "--then"
    offline(log, "synth", "msd", "--out", msd, "--cases", 3, "--test-cases", 1, "--shape", 40, 36, 30, then,
            "train", "unet3d", "--data", msd, "--config", tmp_path / "tiny3d.toml", "--out", tmp_path / "run3d",
            "--epochs", 1, "--steps-per-epoch", 2, then,
            "evaluate", "--model", tmp_path / "run3d", "--data", msd, "--out", tmp_path / "eval", then,
            "predict", "--model", tmp_path / "run3d", "--input", msd / "imagesTs", "--out", tmp_path / "pred", then,
            "export", "--model", tmp_path / "run3d", "--name", "brain", "--root", tmp_path / "saved", then,
            "synth", "brisc", "--out", tmp_path / "brisc", "--per-class", 2, then,
            "train", "classifier", "--data", tmp_path / "brisc", "--config", tmp_path / "tiny2d.toml",
            "--out", tmp_path / "run2d")  # the keras-cv encoder is built from code, never downloaded
    assert (tmp_path / "pred" / "predictions.csv").is_file() and (tmp_path / "run2d" / "best.keras").is_file()
    assert (tmp_path / "saved" / "brain" / "1" / "saved_model.pb").is_file()
    assert log.read_text() == ""


APP_DRIVER = """
import socket, subprocess, sys, time, urllib.request
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
app = subprocess.Popen([sys.executable, {guard!r}, "app", "--models", {models!r}, "--port", str(port)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(240):
        try:
            page = urllib.request.urlopen(f"http://127.0.0.1:{{port}}/", timeout=2).read().decode()
            break
        except OSError:
            assert app.poll() is None, "the app stopped"
            time.sleep(0.5)
    else:
        raise AssertionError("the app did not answer")
    time.sleep(3)  # time for any call home at start-up
    print("kerasbrain" in page)
finally:
    app.terminate()
    app.wait(timeout=30)
"""


def test_the_web_app_serves_with_the_network_cut_off(tmp_path):
    """The app and the client that fetches its page run together inside the cut-off namespace."""
    log = tmp_path / "blocked.log"
    log.write_text("")
    result = offline(log, driver=APP_DRIVER.format(guard=str(GUARD), models=str(tmp_path / "none")))
    assert result.stdout.strip() == "True", result.stdout
    assert log.read_text() == ""
