"""Training that survives `kill -9`: the backup is never half-read, the history never has gaps or repeats."""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasbrain.inference.model_io import load_model
from kerasbrain.training import callbacks as cb
from tests.conftest import TINY_UNET3D_TOML, once_on

ROOT = Path(__file__).resolve().parents[2]


def test_trim_history_keeps_the_epochs_that_were_backed_up(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,1.0\n1,0.5\n2,0.25\n")
    cb.trim_history(path, 2)
    assert path.read_text().splitlines() == ["epoch,loss", "0,1.0", "1,0.5"]
    cb.trim_history(path, 5)  # nothing past the backup: unchanged
    assert path.read_text().splitlines() == ["epoch,loss", "0,1.0", "1,0.5"]
    cb.trim_history(tmp_path / "missing.csv", 1)


class _Killed(Exception):
    pass


def _tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def test_a_backup_cut_between_its_weights_and_metadata_resumes_from_the_last_complete_pair(tmp_path, monkeypatch):
    x, y = np.random.default_rng(0).normal(size=(32, 3)).astype("float32"), np.ones((32, 1), "float32")
    backup = tmp_path / "backup"
    model = _tiny_model()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[cb.AtomicBackup(str(backup), delete_checkpoint=False)])
    after_two = [w.copy() for w in model.get_weights()]
    real_write = cb.atomic_write

    def killed_before_metadata(path, write):
        if Path(path).name == "training_metadata.json":
            raise _Killed  # the process dies after the new weights were renamed into place
        return real_write(path, write)

    monkeypatch.setattr(cb, "atomic_write", killed_before_metadata)
    with pytest.raises(_Killed):
        model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[cb.AtomicBackup(str(backup), delete_checkpoint=False)])
    monkeypatch.setattr(cb, "atomic_write", real_write)
    assert sorted(p.name for p in backup.glob("*.h5")) == ["epoch-00002.weights.h5", "epoch-00003.weights.h5"]
    assert cb.completed_epochs(backup) == 2

    seen = {}

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["weights"] = [w.copy() for w in self.model.get_weights()]

    fresh = _tiny_model()
    history = fresh.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[cb.AtomicBackup(str(backup), delete_checkpoint=False), Record()])
    assert len(history.history["loss"]) == 1  # only the third epoch ran
    for restored, saved in zip(seen["weights"], after_two):
        np.testing.assert_array_equal(restored, saved)
    assert sorted(p.name for p in backup.glob("*.h5")) == ["epoch-00003.weights.h5"]
    assert json.loads((backup / "training_metadata.json").read_text())["weights"] == "epoch-00003.weights.h5"




@pytest.mark.slow
# The atomic files and the resume logic are ours and backend-independent; the backup and resume under
# each backend are tested in-process above and in tests/training/test_train.py. The three killed
# and finished subprocess trainings run once, on JAX, where they are faster (TensorFlow carries more).
@once_on("jax")
def test_kill_9_at_random_moments_then_the_same_command_finishes_the_run(msd_dir, tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_UNET3D_TOML)
    run, epochs = tmp_path / "run", 4
    command = [sys.executable, "-m", "cli.main", "train", "unet3d", "--data", str(msd_dir), "--config",
               str(tmp_path / "tiny.toml"), "--out", str(run), "--epochs", str(epochs), "--steps-per-epoch", "3"]
    rng, kills = random.Random(4), 0

    def backed_up():
        return cb.completed_epochs(run / "backup")

    while kills < 2:
        before = backed_up()
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        deadline = time.monotonic() + 300
        while process.poll() is None and backed_up() == before:  # let it get somewhere first
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("training backed up no epoch within 300 s")
            time.sleep(0.05)
        if process.poll() is not None:
            break  # it finished before we could kill it
        time.sleep(rng.uniform(0, 1.5))  # anywhere in the next epoch: training, validation or saving
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
    final = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr[-3000:]
    assert kills == 2
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(epochs))
    assert backed_up() == epochs
    for name in ("best.keras", "last.keras"):
        load_model(run / name)  # complete files, whatever moment the kills hit
