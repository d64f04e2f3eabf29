"""Several devices through keras.distribution (JAX) and tf.distribute (TensorFlow): the CPU shown as
two devices (`two_cpu_devices.py`) must follow one device's loss curve at the same global batch,
resume under the strategy, and save models that load and predict anywhere."""

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from kerasbrain.config import parse_config
from kerasbrain.training.config import Config
from tests.conftest import TINY_UNET3D_TOML

ROOT = Path(__file__).resolve().parents[2]
TWO_DEVICES = Path(__file__).with_name("two_cpu_devices.py")
CONFIG = TINY_UNET3D_TOML.replace("batch_size = 2\nvalidation_patches = 2", """batch_size = 4
validation_patches = 4
workers = 1
learning_rate = 0.01
lr_schedule = 'constant'
precision = 'fp32'""")  # equal losses up to summation order: bfloat16 (auto on some CPUs) rounds far coarser


def kerasbrain(*args, two_devices=False, env=None):
    command = [sys.executable, str(TWO_DEVICES)] if two_devices else [sys.executable, "-m", "cli.main"]
    return subprocess.run(command + [str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def losses(run):
    return np.array([[float(row["loss"]), float(row["val_loss"])] for row in csv.DictReader(open(run / "history.csv"))])


def train_args(msd_dir, config, out, epochs):
    return ("train", "unet3d", "--data", msd_dir, "--config", config, "--out", out, "--epochs", epochs,
            "--steps-per-epoch", 3)


def test_two_devices_follow_one_device_loss_curve_and_resume_under_the_strategy(msd_dir, tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG)
    # one device: in this process (the two-device runs need a process of their own, set up before start)
    one = CliRunner().invoke(cli, [str(a) for a in train_args(msd_dir, config, tmp_path / "one", 3)],
                             catch_exceptions=False)
    assert one.exit_code == 0, one.output[-3000:]
    # two devices, stopped after 2 epochs (a constant rate, so --epochs 2 then 3 is one schedule), resumed
    two = kerasbrain(*train_args(msd_dir, config, tmp_path / "two", 2), "--distribution", "data_parallel",
                     two_devices=True)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "data parallel over 2 devices" in two.stderr, two.stderr[-3000:]
    resumed = kerasbrain(*train_args(msd_dir, config, tmp_path / "two", 3), "--distribution", "data_parallel",
                         two_devices=True)
    assert resumed.returncode == 0 and "resuming after epoch 2" in resumed.stderr, resumed.stderr[-3000:]
    curve = losses(tmp_path / "one")
    assert curve[0, 0] - curve[-1, 0] > 0.02, curve  # a curve that moves, far more than the tolerance
    # equal up to float summation order (oneDNN's threads; two devices sum the gradient in halves)
    np.testing.assert_allclose(losses(tmp_path / "two"), curve, rtol=2e-3)
    # the models saved under the strategy load on one device and predict as the one-device run's do
    from kerasbrain.inference.model_io import load_model

    x = np.random.default_rng(0).normal(size=(2, 16, 16, 16, 4)).astype("float32")
    difference = np.abs(np.asarray(load_model(tmp_path / "two" / "last.keras").predict_on_batch(x))
                        - np.asarray(load_model(tmp_path / "one" / "last.keras").predict_on_batch(x)))
    # Different weights would differ by tenths everywhere. Summation order carried through three epochs
    # once moved 20 of 24,576 outputs by up to 0.016 (JAX, a loaded CPU), so the bound is on the mean
    # and a loose one on the largest.
    assert difference.mean() < 2e-3 and difference.max() < 0.05, (difference.mean(), difference.max())


def test_a_global_batch_that_does_not_split_is_one_line_and_no_run(msd_dir, tmp_path):
    config = tmp_path / "odd.toml"
    config.write_text(CONFIG.replace("batch_size = 4", "batch_size = 3"))
    result = kerasbrain(*train_args(msd_dir, config, tmp_path / "run", 1), "--distribution", "data_parallel",
                        two_devices=True)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == ("Error: [training] batch_size = 3 does not split evenly "
                                                      "across 2 devices; use a multiple of 2")
    assert not (tmp_path / "run").exists()
    result = kerasbrain(*train_args(msd_dir, config, tmp_path / "run", 1), "--devices", 3, two_devices=True)
    assert result.returncode == 1 and "[distribution] devices = 3, but this machine has 2" in result.stderr


def test_the_distribution_section_is_checked_like_any_other():
    config = parse_config(Config, {"distribution": {"strategy": "data_parallel", "devices": 2}})
    assert (config.distribution.strategy, config.distribution.devices) == ("data_parallel", 2)
    with pytest.raises(ValueError, match=r"\[distribution\].strategy: none, data_parallel, multi_worker"):
        parse_config(Config, {"distribution": {"strategy": "mirrored"}})


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_worker_processes_on_loopback_train_one_model(msd_dir, tmp_path):
    """`multi_worker`: two processes, each the same command, as on two machines (jax.distributed on
    loopback), each with one CPU device; the chief writes the run, the other `.worker-1/`."""
    import keras

    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG)
    command = [sys.executable, "-m", "cli.main"] + [str(a) for a in train_args(msd_dir, config, tmp_path / "run", 2)]
    command += ["--distribution", "multi_worker"]
    if keras.backend.backend() == "tensorflow":  # Keras 3.15's TF trainer fails under MultiWorkerMirroredStrategy
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 1 and "needs the JAX backend" in result.stderr.strip().splitlines()[-1]
        assert not (tmp_path / "run").exists()
        return
    port = _free_ports(1)[0]
    workers = [subprocess.Popen(command, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "KERASBRAIN_COORDINATOR": f"127.0.0.1:{port}",
                                     "KERASBRAIN_NUM_PROCESSES": "2", "KERASBRAIN_PROCESS_ID": str(index)})
               for index in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (out, err) in zip(workers, outputs):
        assert w.returncode == 0, err[-3000:]
    assert "data parallel over 2 devices" in outputs[0][1], outputs[0][1][-3000:]
    run = tmp_path / "run"
    assert (run / "last.keras").exists() and len(losses(run)) == 2
    np.testing.assert_allclose(losses(run / ".worker-1"), losses(run), rtol=1e-5)  # one model, one curve
