"""Training from Keras's PyDataset (`[training] input_pipeline`, data/patch_batches.py), and on a
machine with JAX and no TensorFlow, as the lent GPU machines are."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np

from kerasbrain.training.config import config_from_dict
from kerasbrain.training.train_unet3d import train_unet3d
from tests.conftest import once_on

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "model": {"base_filters": 4, "depth": 2, "deep_supervision": 1},
    # a constant rate: a cosine over `epochs` would differ between a 1-epoch run and a 2-epoch one
    "training": {"patch_size": [16, 16, 16], "batch_size": 2, "validation_patches": 3, "steps_per_epoch": 2,
                 "lr_schedule": "constant"},
    "data": {"validation_fraction": 0.34},
    "postprocessing": {"choose_on": "off"},
}


def _history(run):
    return list(csv.DictReader((run / "history.csv").open()))


def test_the_pydataset_trains_tf_datas_run_and_a_resumed_run_goes_on_with_new_patches(msd_dir, tmp_path,
                                                                                       monkeypatch):
    """Two epochs through tf.data; one through the PyDataset, then the same command for two: the
    same patches reach the same network, so every logged loss and validation value agrees (a resumed
    PyDataset that started its stream again would train epoch 2 on epoch 1's patches). Augmented on
    the device (the batches carry each patch's drawn parameters, blur and bias field among them),
    with nnU-Net's foreground draw, which reaches every sampler; the checkpoints hold the plain network."""
    import kerasbrain.training.train_unet3d as trainer
    from kerasbrain.models.unet import UNet

    draws, sampler = [], trainer.PatchSampler

    def recording(*args, **kwargs):
        draws.append(kwargs["fg_sampling"])
        return sampler(*args, **kwargs)

    monkeypatch.setattr(trainer, "PatchSampler", recording)

    def config(pipeline):
        return config_from_dict({**TINY, "training": {**TINY["training"], "input_pipeline": pipeline,
                                                      "augment_on": "device", "fg_sampling": "classes"},
                                 "augmentation": {"blur_prob": 0.5, "bias_field_prob": 0.5}})

    train_unet3d(msd_dir, tmp_path / "tfdata", config("tf.data"), epochs=2, verbose=0, progress=lambda m: None)
    messages = []
    train_unet3d(msd_dir, tmp_path / "py", config("pydataset"), epochs=1, verbose=0, progress=messages.append)
    train_unet3d(msd_dir, tmp_path / "py", config("pydataset"), epochs=2, verbose=0, progress=messages.append)
    assert any("resuming after epoch 1" in m for m in messages)
    assert any("patches through Keras's PyDataset" in m for m in messages)
    assert any("augmenting patches on the device" in m for m in messages)
    assert draws == ["classes"] * 6  # training and validation samplers, three runs
    for name in ("best.keras", "last.keras"):
        model = keras.saving.load_model(tmp_path / "py" / name)
        assert type(model) is UNet
        outputs = model.predict_on_batch(np.zeros((2, 16, 16, 16, 4), "float32"))
        assert [o.shape for o in outputs] == [(2, 16, 16, 16, 3), (2, 8, 8, 8, 3)]
    theirs, ours = _history(tmp_path / "tfdata"), _history(tmp_path / "py")
    assert len(theirs) == len(ours) == 2
    assert theirs[0].keys() == ours[0].keys() >= {"loss", "dice_WT", "val_loss", "val_hd95_WT"}
    # the losses and soft Dice, which move with every probability. JAX: equal to 1e-4 (a resumed stream
    # that started again moved them by 2e-2). TensorFlow traces the PyDataset's step with an open batch
    # axis, whose kernels round differently (1e-5 after one step), enough to flip voxels of the
    # thresholded metrics and to move the small validation soft Dice by 1e-3 after two epochs; a restarted
    # stream moved them by only 1.5e-3 there, so TensorFlow's half checks that both runs train alike, and
    # the stream's order is checked on JAX here and batch by batch in tests/data/test_patch_batches.py
    rtol = 1e-4 if keras.backend.backend() == "jax" else 5e-3
    continuous = [key for key in theirs[0] if key.endswith(("loss", "soft_dice"))]
    assert {"loss", "val_loss", "soft_dice", "val_soft_dice"} <= set(continuous)
    for key in continuous:
        a, b = [float(r[key]) for r in theirs], [float(r[key]) for r in ours]
        np.testing.assert_allclose(b, a, rtol=rtol, err_msg=key)
    assert float(ours[0]["loss"]) != float(ours[1]["loss"])


@once_on("jax")
def test_training_and_evaluation_run_where_tensorflow_is_not_installed(msd_dir, tmp_path):
    """A `tensorflow` that fails to import, first on the path: `kerasbrain train unet3d` picks the
    PyDataset, writes no TensorBoard logs and says so, and its model is evaluated, all on JAX."""
    hidden = tmp_path / "no_tensorflow" / "tensorflow"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('No module named tensorflow (hidden by the test)')\n")
    (tmp_path / "tiny.toml").write_text(
        "[model]\nbase_filters = 4\ndepth = 2\n[training]\npatch_size = [16, 16, 16]\nbatch_size = 2\n"
        "validation_patches = 2\nsteps_per_epoch = 2\nepochs = 1\n[data]\nvalidation_fraction = 0.34\n"
        "[postprocessing]\nchoose_on = \"off\"\n")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": f"{hidden.parent}{os.pathsep}{ROOT}"}
    cli = [sys.executable, "-c", "import sys; from cli.main import main; sys.exit(main())"]
    run = tmp_path / "run"
    train = subprocess.run(cli + ["train", "unet3d", "--data", str(msd_dir), "--config", str(tmp_path / "tiny.toml"),
                                  "--out", str(run)], env=env, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-3000:]
    assert "no TensorFlow here, so no TensorBoard logs" in train.stdout + train.stderr
    assert (run / "best.keras").exists() and not (run / "logs").exists() and "TensorBoard:" not in train.stdout
    evaluate = subprocess.run(cli + ["evaluate", "--model", str(run), "--data", str(msd_dir), "--subset", "validation",
                                     "--out", str(tmp_path / "scores")], env=env, capture_output=True, text=True,
                              timeout=600)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    rows = list(csv.DictReader((tmp_path / "scores" / "cases.csv").open()))
    assert rows and all(0.0 <= float(r["dice_WT"]) <= 1.0 for r in rows)
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "hidden by the test" in probe.stderr
