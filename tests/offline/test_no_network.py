"""The CLI's main commands and the web app run with the network cut off (only loopback answers)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TINY_MULTITASK_TOML, TINY_UNET3D_TOML, once

GUARD = Path(__file__).with_name("no_network.py")
ROOT = Path(__file__).resolve().parents[2]
pytestmark = [once, pytest.mark.slow]



def offline(log, *args, **popen):
    env = {**os.environ, "KERASBRAIN_BLOCKED_LOG": str(log), "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, str(GUARD), *map(str, args)]
    if popen:
        return subprocess.Popen(command, env=env, cwd=ROOT, **popen)
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args}: {result.stderr[-3000:]}"
    return result


def test_the_guard_really_blocks(tmp_path):
    log = tmp_path / "blocked.log"
    code = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"
    result = subprocess.run([sys.executable, "-c", f"import runpy; runpy.run_path({str(GUARD)!r}); {code}"],
                            env={**os.environ, "KERASBRAIN_BLOCKED_LOG": str(log)}, capture_output=True, text=True)
    assert result.returncode != 0 and "network blocked by the test" in result.stderr
    assert "192.0.2.1" in log.read_text()


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


def test_the_web_app_serves_with_the_network_cut_off(tmp_path):
    log = tmp_path / "blocked.log"
    log.write_text("")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = offline(log, "app", "--models", tmp_path / "none", "--port", port, stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                assert app.poll() is None, "the app stopped"
                time.sleep(0.5)
        else:
            raise AssertionError("the app did not answer")
        assert "kerasbrain" in page
        time.sleep(3)  # time for any call home at start-up
    finally:
        app.terminate()
        app.wait(timeout=30)
    assert log.read_text() == ""
