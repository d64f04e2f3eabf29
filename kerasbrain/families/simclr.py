"""The SimCLR family: self-supervised encoder pretraining on unlabelled 2-D slices (seed 000).

`kerasbrain pretrain simclr` trains it (config: `training/config_simclr.SimCLRConfig`; trainer:
`training/train_simclr.py`); `kerasbrain evaluate` on its run scores the encoder with a linear
probe (`evaluation/linear_probe.py`). Its product is `encoder.keras`, which the unet2d, classifier
and multitask families start from with `--encoder-weights`. It predicts nothing and is not served.
"""

from __future__ import annotations

from pathlib import Path

from kerasbrain.families.base import InferenceOverrides, ModelFamily
from kerasbrain.runs import run_dir_of


class SimCLRFamily(ModelFamily):
    name = "simclr"
    description = ("SimCLR contrastive pretraining of a ResNet encoder on unlabelled slices (any 2-D layout), "
                   "then a linear probe.")
    stage = "pretrain"
    config_class = "kerasbrain.training.config_simclr:SimCLRConfig"
    capabilities = frozenset({"evaluate"})  # a linear probe of the encoder

    def owns_model(self, model) -> bool:
        from kerasbrain.models.simclr import SimCLRNet

        return isinstance(model, SimCLRNet)

    def train(self, data, out, config, time_budget=None, progress=print):
        from kerasbrain.training.train_simclr import train_simclr

        return train_simclr(data, out, config, self.name, progress=progress, time_budget=time_budget)

    def evaluate(self, model_path, data, out, case_ids=None, overrides=InferenceOverrides(),
                 save_predictions=False, progress=print) -> dict:
        """Linear probe of the run's encoder (and a random one) on a labelled 2-D dataset."""
        from kerasbrain.data.contrastive import discover_unlabelled
        from kerasbrain.evaluation.linear_probe import linear_probe, probe_data
        from kerasbrain.files import write_json, write_text
        from kerasbrain.training.train_simclr import probe_table

        if save_predictions or overrides.given():
            raise ValueError("a SimCLR encoder is evaluated by a linear probe; it takes no inference flags")
        model = self.load_whole_image_model(model_path, overrides)
        config = self.run_config(run_dir_of(model_path))
        size = config.data.image_size if config else 128
        encoders = {"simclr": model.encoder}
        if config is None or config.probe.compare_random:
            import keras

            from kerasbrain.models.backbones import encoder_model

            keras.utils.set_random_seed(config.training.seed if config else 0)
            encoders["random init"] = encoder_model(model.encoder_name)
        images = probe_data(discover_unlabelled(data), size, config.probe.max_images if config else 2000,
                            progress=progress)
        probe = linear_probe(encoders, images, progress=progress)
        if probe is None:
            raise ValueError(f"{data}: a linear probe needs class labels (BRISC 2025 or class folders)")
        table = probe_table(probe)
        files = [write_json(Path(out) / "probe.json", probe), write_text(Path(out) / "probe.md", table + "\n")]
        return {"text": table, "files": files}


FAMILY = SimCLRFamily()
