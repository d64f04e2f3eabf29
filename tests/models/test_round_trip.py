"""Every registered network, loss and metric survives `.keras` in a fresh interpreter.

One subprocess on the other Keras backend loads them all (after `import kerasbrain.models` and the
training wrapper's module, safe mode on, no `custom_objects`) and predicts; outputs must equal the
in-process ones. A UNet saved before the `upsample` option existed loads too, and so does an
EncoderUNet saved before `stem_skip` and `image_skip_filters`. One process for all keeps the suite short.
"""

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import keras
import numpy as np

from kerasbrain.inference.model_io import load_model
from kerasbrain.losses import DiceCELoss, NTXentLoss, PerSampleDiceBCELoss
from kerasbrain.metrics import RegionDice
from kerasbrain.models.encoder_unet import EncoderUNet
from kerasbrain.models.ensemble import EnsembleNet
from kerasbrain.models.label_channels import RegionsFromLabels
from kerasbrain.models.multitask import MultiTaskNet
from kerasbrain.models.resenc_unet import ResEncUNet
from kerasbrain.models.simclr import SimCLRNet
from kerasbrain.models.unet import UNet
from kerasbrain.training.device_augment import DeviceAugmentedTraining


def _legacy_file(model, path, dropped={"upsample": "transpose"}):
    """Save `model` and drop `dropped`'s keys from its config: a file written before those options existed."""
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    for key, value in dropped.items():
        assert config["config"].pop(key) == value
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _hub_unet(tmp_path):
    """An EncoderUNet on a keras-hub ResNet-18 read from a preset folder in keras-hub's own format."""
    from kerasbrain.models.backbones import hub_backbone

    hub_backbone("resnet18").save_to_preset(str(tmp_path / "preset"))
    return EncoderUNet.with_pretrained_encoder("resnet18", str(tmp_path / "preset"),
                                               decoder_filters=(32, 16, 16, 8, 8))


def _outputs(result) -> dict:
    return {k: np.asarray(v) for k, v in result.items()} if isinstance(result, dict) else {"y": np.asarray(result)}


def test_every_network_round_trips_in_a_fresh_process(tmp_path):
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    volume = rng.normal(size=(2, 8, 12, 16, 4)).astype("float32")
    image = rng.uniform(size=(2, 64, 64, 3)).astype("float32")
    unet = UNet(base_filters=4, depth=2)
    unet.compile(loss=DiceCELoss(), metrics=[RegionDice(0, name="dice_wt")])
    multitask = MultiTaskNet("resnet18", decoder_filters=(16, 8, 8, 8, 4), calibration_temperature=1.5)
    multitask.compile(loss={"class": "sparse_categorical_crossentropy", "mask": PerSampleDiceBCELoss()})
    simclr = SimCLRNet("resnet18", projection_dims=(32, 8), temperature=0.2)
    simclr.compile(loss=NTXentLoss(0.2))
    models = {
        "UNet": (unet, volume),
        "EncoderUNet": (EncoderUNet("resnet18", decoder_filters=(32, 16, 16, 8, 8)), image),
        "MultiTaskNet": (multitask, image),
        "SimCLRNet": (simclr, image),
        "EncoderUNetHub": (_hub_unet(tmp_path), image),  # a pretrained keras-hub encoder, rebuilt offline
        "ResEncUNet": (ResEncUNet(base_filters=4, depth=2, blocks_per_stage=(1, 2, 2)), volume),
        "EnsembleNet": (EnsembleNet([UNet(base_filters=4, depth=2), UNet(base_filters=4, depth=3)], [0.25, 0.75]),
                        rng.normal(size=(2, 16, 16, 16, 4)).astype("float32")),
        "DeviceAugmentedTraining": (DeviceAugmentedTraining(UNet(base_filters=4, depth=2)), volume),
        "RegionsFromLabels": (RegionsFromLabels(UNet(base_filters=4, depth=2, deep_supervision=1)), volume),
        "UNetThickSlices": (UNet(base_filters=4, depth=2, strides=((2, 2, 1), (2, 2, 2))), volume),
    }
    legacy = UNet(base_filters=4, depth=2, upsample="transpose")
    legacy_2d = EncoderUNet("resnet18", decoder_filters=(32, 16, 16, 8, 8), upsample="transpose", stem_skip=False,
                            image_skip_filters=0)
    expected = {}
    for name, (model, x) in models.items():
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}_x.npy", x)
        expected[name] = _outputs(model.predict_on_batch(x))
    _legacy_file(legacy, tmp_path / "legacy.keras")
    np.save(tmp_path / "legacy_x.npy", volume)
    expected["legacy"] = _outputs(legacy.predict_on_batch(volume))
    _legacy_file(legacy_2d, tmp_path / "legacy_2d.keras", {"upsample": "transpose", "stem_skip": False,
                                                                     "image_skip_filters": 0})
    np.save(tmp_path / "legacy_2d_x.npy", image)
    expected["legacy_2d"] = _outputs(legacy_2d.predict_on_batch(image))
    code = textwrap.dedent(f"""
        import json, numpy as np, keras, kerasbrain.models, kerasbrain.training.device_augment
        root = {str(tmp_path)!r}
        facts = {{}}
        for name in {list(models) + ["legacy", "legacy_2d"]!r}:
            m = keras.saving.load_model(f"{{root}}/{{name}}.keras", safe_mode=True)
            out = m.predict_on_batch(np.load(f"{{root}}/{{name}}_x.npy"))
            out = out if isinstance(out, dict) else {{"y": out}}
            for key, value in out.items():
                np.save(f"{{root}}/{{name}}_{{key}}_out.npy", np.asarray(value))
            loss = getattr(m, "loss", None)
            facts[name] = {{"type": type(m).__name__, "config": m.get_config(),
                            "loss": keras.saving.serialize_keras_object(loss) if loss is not None else None}}
        json.dump(facts, open(f"{{root}}/facts.json", "w"), default=str)
    """)
    # The fresh process runs the other backend: a `.keras` file is backend-neutral, and `kerasbrain
    # export` loads a JAX-trained run under TensorFlow by default.
    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "KERAS_BACKEND": other})
    facts = json.loads((tmp_path / "facts.json").read_text())
    for name, outputs in expected.items():
        assert facts[name]["type"] == {"legacy": "UNet", "legacy_2d": "EncoderUNet",
                                       "EncoderUNetHub": "EncoderUNet", "UNetThickSlices": "UNet"}.get(name, name)
        for key, value in outputs.items():
            np.testing.assert_allclose(np.load(tmp_path / f"{name}_{key}_out.npy"), value, atol=1e-5)
    assert facts["MultiTaskNet"]["config"]["tasks"] == ["class", "mask"]
    assert facts["MultiTaskNet"]["config"]["calibration_temperature"] == 1.5
    assert facts["SimCLRNet"]["config"]["temperature"] == 0.2
    assert facts["SimCLRNet"]["loss"]["config"]["temperature"] == 0.2
    assert facts["legacy"]["config"]["upsample"] == "transpose"
    assert load_model(tmp_path / "legacy.keras").upsample == "pixel_shuffle"  # kerasbrain's loader swaps it
    assert facts["legacy_2d"]["config"]["stem_skip"] is False and facts["EncoderUNet"]["config"]["stem_skip"] is True
    assert facts["legacy_2d"]["config"]["image_skip_filters"] == 0
    assert facts["EncoderUNetHub"]["config"]["input_normalization"] == "imagenet"
    assert facts["EnsembleNet"]["config"]["member_weights"] == [0.25, 0.75]
    assert "hub_backbone" not in facts["EncoderUNet"]["config"]  # keras-cv encoders keep their old config
    assert facts["EncoderUNet"]["config"]["image_skip_filters"] == 32
    loaded_2d = load_model(tmp_path / "legacy_2d.keras")
    assert loaded_2d.upsample == "pixel_shuffle" and loaded_2d.stem_skip is False and loaded_2d.image_skip_filters == 0
    np.testing.assert_allclose(np.asarray(loaded_2d.predict_on_batch(image)), expected["legacy_2d"]["y"], atol=1e-5)
