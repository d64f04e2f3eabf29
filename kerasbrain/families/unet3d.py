"""The volumetric family: a 3-D U-Net on multi-modal MRI (MSD Task01 / BraTS), seed 003 / nnU-Net.

Config: `kerasbrain.training.config.Config`; trainer: `training/train_unet3d.py`; evaluation on
whole volumes: `evaluation/segmentation.py`; prediction in the input's own grid:
`inference/predict_volume.py`; serving signature: `export/signatures.volume_segmentation_endpoint`.
The run's `[inference]` settings and target spacing travel into the exported manifest, so a case
predicted through a server matches local prediction with the same model.
Long (~300 lines) but one concern: every verb of this family (train, folds, local and served
sessions, evaluate, predict), each a thin call into the modules named above.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kerasbrain.families.base import (InferenceOverrides, ModelFamily, Prediction, PredictRequest, ScoringOptions,
                                      TrainOption)
from kerasbrain.runs import run_dir_of
from kerasbrain.windows import check_window


@dataclasses.dataclass
class VolumeSession:
    """What prediction needs: a window predictor, its output channels, settings and target spacing."""

    predict: object  # (raw windows, mean, std) -> probabilities; local or remote
    channels: int
    config: object  # InferenceConfig
    spacing: tuple[float, ...] | None
    # False where predict may return a served label map's 0/1 regions instead of probabilities (a server
    # asked for the label map alone): no confidence can be estimated from them
    soft: bool = True


class VolumetricFamily(ModelFamily):
    name = "unet3d"
    description = "Volumetric 3-D U-Net on random patches (seed 003 / nnU-Net recipe), MSD or BraTS layout."
    serving_kind = "volume_segmentation"
    input_kind = "volume"
    capabilities = frozenset({"predict", "predict_folder", "predict_server", "evaluate", "export", "lesion_wise",
                              "uncertainty", "region_calibration"})
    config_class = "kerasbrain.training.config:Config"
    budget_config = "cpu_budget_unet3d"  # README: "Hard cases within a training budget"
    train_options = (
        TrainOption("epochs", int, "Override [training].epochs.", minimum=1),
        TrainOption("steps_per_epoch", int, "Override [training].steps_per_epoch.", minimum=1),
        TrainOption("distribution", str, "Override [distribution].strategy: none, data_parallel (this machine's "
                    "devices) or multi_worker (several machines, JAX: jax.distributed)."),
        TrainOption("devices", int, "Override [distribution].devices: data_parallel over the first N devices.",
                    minimum=1),
        TrainOption("fold", str, "Cross-validation: train fold K (0..k-1, [data] folds) of the dataset's k-fold split "
                    "(written once beside the data, shared by every configuration) into OUT/fold_K, or 'all' "
                    "for every fold in turn; each resumable, each fold's validation cases predicted into "
                    "OUT/fold_K/oof/ (--time-budget applies to each fold)."),
    )

    def why_not(self, capability: str) -> str:
        if capability == "explain":
            return "explanations are of a class decision; `predict --uncertainty` maps where the mask is unsure"
        return ""

    def owns_legacy_config(self, raw: dict) -> bool:
        return "stages" not in raw

    def owns_model(self, model) -> bool:
        return getattr(model, "spatial_dims", None) == 3

    def train(self, data, out, config, time_budget=None, progress=print, epochs=None, steps_per_epoch=None,
              distribution=None, devices=None, fold=None):
        from kerasbrain.training.distribution import DistributionConfig, distributed
        from kerasbrain.training.train_unet3d import train_unet3d

        if distribution or devices:
            strategy = distribution or ("data_parallel" if devices else config.distribution.strategy)
            config = dataclasses.replace(config, distribution=DistributionConfig(strategy, devices or 0))
        if fold is not None:
            return self._train_folds(data, Path(out), config, fold, time_budget, progress, epochs, steps_per_epoch)
        with distributed(config.distribution, config.training.batch_size, progress) as where:
            result = train_unet3d(data, where.run_dir(out), config, epochs, steps_per_epoch, progress=progress,
                                  time_budget=time_budget, data_shard=where.data_shard())
            chief = where.chief
        if chief:  # one process predicts, outside the training's distribution
            result["postprocessing"] = self.choose_postprocessing(out, data, config, progress)
        return result

    def choose_postprocessing(self, run_dir, data, config, progress=print):
        """The run's `[inference]` post-processing chosen on its cases (`[postprocessing]`;
        `evaluation/postprocess_choice.py`); folds leave it to `kerasbrain crossval`."""
        from kerasbrain.evaluation.postprocess_choice import choose_run_postprocessing

        return choose_run_postprocessing(run_dir, data, config.inference,
                                         lambda: self.local_session(Path(run_dir) / "best.keras")[1],
                                         config.postprocessing, config.data.split_seed, progress)

    def _train_folds(self, data, out: Path, config, fold: str, time_budget, progress, epochs, steps_per_epoch):
        """Train fold K or every fold (OUT/fold_K), then predict each fold's validation cases (`oof/`)."""
        from kerasbrain.data.layouts import discover
        from kerasbrain.evaluation.out_of_fold import write_out_of_fold
        from kerasbrain.training.folds import check_fold
        from kerasbrain.training.train_unet3d import train_unet3d

        if fold != "all":
            if not str(fold).isdigit():
                raise ValueError(f"--fold must be a fold number or 'all'. Received: {fold!r}")
            check_fold(int(fold), config.data.folds)  # before any fold folder exists
        folds = range(config.data.folds) if fold == "all" else [int(fold)]
        cases = {c.case_id: c for c in discover(data).labelled()}
        results = []
        for k in folds:
            progress(f"== fold {k} of {config.data.folds}")
            result = train_unet3d(data, out / f"fold_{k}", config, epochs, steps_per_epoch, progress=progress,
                                  time_budget=time_budget, fold=k)
            _, session = self.local_session(result["best"])
            result["oof"] = write_out_of_fold(out / f"fold_{k}", [cases[c] for c in result["split"]["validation"]],
                                              session, progress)
            results.append(result)
        if len(results) == 1:
            return results[0]
        return {"best": ", ".join(str(r["best"]) for r in results), "last": ", ".join(str(r["last"]) for r in results),
                "folds": results}

    # --- inference -----------------------------------------------------------------------------
    def local_session(self, model_path, overrides: InferenceOverrides = InferenceOverrides()):
        """Load the model with its run's inference settings (config.json beside it), overridden by flags.

        `model_path` may be crossval's ensemble.json: its members load as one `EnsembleNet`."""
        from kerasbrain.inference.config import InferenceConfig
        from kerasbrain.inference.model_io import load_model, output_channels
        from kerasbrain.runtime import precision_policy, predictor
        from kerasbrain.windows import axis_divisors

        config = self.run_config(run_dir_of(model_path))
        cfg = config.inference if config else InferenceConfig()
        spacing = (tuple(config.data.target_spacing) or None) if config else None
        cfg = overrides.apply(cfg)
        with precision_policy(cfg.precision):
            model = load_model(model_path)
        check_window(cfg.window, axis_divisors(model))
        return model, VolumeSession(predictor(model, cfg.compile_mode), output_channels(model), cfg, spacing)

    def remote_session(self, request: PredictRequest, progress=print) -> VolumeSession:
        """A session predicting through TF Serving, with the served version's exported settings."""
        import json

        import numpy as np

        from kerasbrain.config import build_section
        from kerasbrain.export.saved_model import DESCRIBE_SIGNATURE, read_manifest
        from kerasbrain.export.signatures import CASE_SIGNATURE
        from kerasbrain.inference.config import InferenceConfig
        from kerasbrain.serving.client import ServingClientError, connect
        from kerasbrain.serving.remote_predictor import RemoteWindowPredictor

        local_only = [g for g in ("compile_mode", "precision") if g in request.overrides.given()]
        if local_only:
            raise ValueError(f"--{local_only[0].replace('_', '-')} applies to local prediction only, not --server")
        client = connect(request.server, request.model, request.model_version, request.model_label)
        try:
            versions = client.available_versions()
            channels = client.output_shape("probabilities")[-1]
        except ServingClientError as exc:
            raise ValueError(f"{request.server}: model {request.model!r} is not available ({exc.message})") from exc
        if not versions:
            raise ValueError(f"{request.server}: model {request.model!r} has no available version")
        signatures = client.signature_names()
        if DESCRIBE_SIGNATURE in signatures:  # the served version says its run settings itself
            where = f"{request.server} {request.model} version {versions[-1]}"
            manifest = json.loads(client.predict({"request": np.asarray([b"manifest"], dtype=object)},
                                                 DESCRIBE_SIGNATURE)["manifest"][0])
        else:  # versions exported before `describe`: read the manifest from the export folder
            where = Path(request.saved_models) / request.model / str(versions[-1])
            manifest = read_manifest(where)
        cfg, spacing = InferenceConfig(), None
        if "inference" in manifest:
            cfg = build_section(InferenceConfig, manifest["inference"], f"{where}: inference")
            spacing = tuple(manifest.get("target_spacing") or ()) or None
        else:
            progress(f"{where}: no exported run settings found; using default inference settings")
        if channels <= 0:
            channels = int(manifest.get("out_channels", 3))
        case = manifest["inference"] if CASE_SIGNATURE in signatures and "inference" in manifest else None
        fetch = request.probabilities  # else the label map alone comes back (it thresholds to the same regions)
        served = case is not None and "expected_dice" in client.output_names(CASE_SIGNATURE)  # newer exports
        predict = RemoteWindowPredictor(client, case_settings=case, fetch_probabilities=fetch, served_estimate=served)
        return VolumeSession(predict, channels, request.overrides.apply(cfg), spacing,
                             soft=fetch or case is None or request.uncertainty)

    def evaluate(self, model_path, data, out, case_ids=None, overrides=InferenceOverrides(),
                 save_predictions=False, progress=print, scoring: ScoringOptions = ScoringOptions()) -> dict:
        from kerasbrain.evaluation.segmentation import evaluate_dataset

        lesion = scoring.lesion_settings()  # a bad preset is refused before the model loads
        _, s = self.local_session(model_path, overrides)
        result = evaluate_dataset(data, s.predict, s.channels, out, s.config, case_ids, save_predictions, s.spacing,
                                  progress=progress, lesion=lesion, postprocess_target=scoring.postprocess_target,
                                  uncertainty=scoring.uncertainty, input_options=dict(scoring.input_options))
        names = ("cases.csv", "lesions.csv", "summary.json") + (
            ("uncertainty.json", "uncertainty.png") if scoring.uncertainty else ())
        return {"text": result["table"], "files": [Path(out) / name for name in names],
                "failed": result["failed"]}

    def predict(self, request: PredictRequest, progress=print) -> Prediction:
        fmt, case = self._load(request, progress)  # a broken input is refused before the model or server is asked
        return self._predict_loaded(request, self._session(request, fmt, progress), fmt, case, progress)

    def predict_many(self, requests, progress=print):
        """As the base class, with the model loaded once and the next case read while this one predicts."""
        from concurrent.futures import ThreadPoolExecutor

        requests, session = list(requests), None
        with ThreadPoolExecutor(1) as reader:
            following = reader.submit(self._load, requests[0], progress) if requests else None
            for i, request in enumerate(requests):
                loading = following
                following = reader.submit(self._load, requests[i + 1], progress) if i + 1 < len(requests) else None
                try:
                    fmt, case = loading.result()
                    session = session or self._session(request, fmt, progress)
                    yield request, self._predict_loaded(request, session, fmt, case, progress)
                except (ValueError, OSError) as exc:
                    yield request, exc

    @staticmethod
    def _load(request: PredictRequest, progress=print):
        """The input's format (checked against --out first) and its case, read and validated."""
        from kerasbrain.data.io import format_of

        fmt = format_of(request.inputs, "volume")
        fmt.check_output(request.out)
        return fmt, fmt.load(request.inputs, request.input_options, progress)

    def _session(self, request: PredictRequest, fmt, progress) -> VolumeSession:
        fmt.check_output(request.out)
        if request.truth is not None:
            raise ValueError("--truth is for slice inputs; a volume's own labels are shown when the case has them")
        if request.server:
            return self.remote_session(request, progress)
        return self.local_session(request.model, request.overrides)[1]

    def _predict_loaded(self, request: PredictRequest, session: VolumeSession, fmt, case, progress) -> Prediction:
        from kerasbrain.data.labels import region_volumes_ml
        from kerasbrain.evaluation.figures import save_overlay
        from kerasbrain.inference.case_report import confidence_line, write_case_report
        from kerasbrain.inference.predict_volume import predict_case, predict_case_uncertain

        windows = lambda d, n: progress(f"{case.case_id}: window {d}/{n}")  # noqa: E731
        if not session.soft:
            session.predict.last_estimate = None  # filled by a served label map's own estimate
        if request.uncertainty:
            labels, uncertainty = predict_case_uncertain(case, session.predict, session.channels, session.config,
                                                         session.spacing, progress=windows)
            probs = uncertainty.probabilities
        else:
            labels, probs = predict_case(case, session.predict, session.channels, session.config, session.spacing,
                                         progress=windows)
        run = "" if request.server else str(run_dir_of(request.model))
        written = fmt.write(case, labels, request.out, probs if request.probabilities else None, request.label_layout,
                            model=self.name, run=run or f"{request.server} {request.model}",
                            options=request.input_options)
        overlay = request.overlay or request.out.with_name(fmt.stem(request.out) + ".png")
        written.append(save_overlay(overlay, case.image, labels, case.labels, title=case.case_id))
        spacing = case.grid.spacing
        volumes = region_volumes_ml(labels, spacing)
        lines = ["volumes: " + ", ".join(f"{r} {v:.1f} mL" for r, v in volumes.items())]
        report, extra = write_case_report(fmt, case, labels, probs if session.soft else None,
                                          uncertainty if request.uncertainty else None, request.out,
                                          None if session.soft else session.predict.last_estimate)
        written[1:1] = extra
        enhancing = [x for x in report["lesions"] if x["region"] == "ET"]
        lines.append("lesions WT/TC/ET: " + "/".join(str(report["lesion_counts"][r]) for r in ("WT", "TC", "ET"))
                     + "".join(f"; ET {x['lesion']}: {x['rano']['longest_mm']:.0f} x {x['rano']['perpendicular_mm']:.0f} mm"
                               f" (slice {x['rano']['slice']})" for x in enhancing[:3]))
        lines.append(confidence_line(report))
        lines += [f"WARNING: {warning}" for warning in report["input_warnings"]]
        if request.uncertainty:
            lines.append(f"uncertainty over {uncertainty.describe_members()}: lowest lesion confidence "
                         + (", ".join(f"{x['region']} {x['lesion']} p={x['mean_probability']:.2f}" for x in
                                      sorted(report["lesions"], key=lambda x: x["mean_probability"])[:3]) or "none"))
        return Prediction(written, mask=written[0], figure=written[-1], region_volumes_ml=volumes, lines=lines,
                          image=case.image, labels=labels, spacing=spacing, report=report)

    # --- serving -------------------------------------------------------------------------------
    def export(self, model_path, name, root, version, warmup) -> Path:
        from kerasbrain.export.saved_model import export_version
        from kerasbrain.inference.config import InferenceConfig
        from kerasbrain.inference.model_io import load_model, output_channels
        from kerasbrain.windows import axis_divisors

        model = load_model(model_path)
        config = self.run_config(run_dir_of(model_path))
        cfg = config.inference if config else InferenceConfig(window=axis_divisors(model))
        spacing = list(config.data.target_spacing) if config else []
        extra = {"family": self.name, "inference": dataclasses.asdict(cfg), "target_spacing": spacing,
                 "out_channels": output_channels(model)}
        return export_version(model, name, root, version, cfg.window if warmup else None, manifest_extra=extra,
                              run_dir=run_dir_of(model_path))


FAMILY = VolumetricFamily()
