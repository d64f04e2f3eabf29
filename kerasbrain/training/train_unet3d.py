"""Training the volumetric 3-D U-Net with `model.fit` on random patches (seed 003, nnU-Net style).

The run folder and callbacks come from `kerasbrain.training.scaffold` (resume, best/last models,
TensorBoard, time budget); this module adds the patch pipeline (tf.data or Keras's PyDataset,
augmented on the host or the device), the preprocessed-case `cache/` (its size checked first), the
targets (regions or seed 003's label channels), deep supervision and the validation HD95.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import keras

from kerasbrain.data.cache_space import check_cache_space, plan_cache
from kerasbrain.data.labels import training_targets
from kerasbrain.data.layouts import discover
from kerasbrain.data.patch_batches import patch_stream, resolve_input_pipeline
from kerasbrain.data.pipeline import PatchSampler
from kerasbrain.data.preprocess import cached_labels_present, cached_preprocess, is_cached
from kerasbrain.losses import DiceCELoss, SoftDiceLoss
from kerasbrain.metrics import MeanSoftDice, region_metrics
from kerasbrain.models.label_channels import RegionsFromLabels
from kerasbrain.models.unet import UNet
from kerasbrain.runs import SPLIT_FILE
from kerasbrain.runtime import cpu_backend_note, has_tensorflow, precision_note, precision_policy, resolve_jit_compile
from kerasbrain.training.averaged_weights import AveragedWeights
from kerasbrain.training.callbacks import ScheduledLearningRate, ValidationHD95
from kerasbrain.training.config import Config
from kerasbrain.training.device_augment import DEVICE, DeviceAugmentedTraining, resolve_augment_on
from kerasbrain.training.folds import check_fold, folds_path, load_or_create_folds
from kerasbrain.training.scaffold import (build_training_state, fit_verbosity, removes_unstarted_run, run_callbacks,
                                         start_run)
from kerasbrain.training.split import case_strata, describe_strata, load_or_create_split
from kerasbrain.windows import check_window, stage_strides, stride_divisors

FAMILY_NAME = "unet3d"


def build_model(config: Config):
    """The config's network: the plain U-Net, or nnU-Net's residual-encoder U-Net (`architecture = "resenc"`)."""
    m = config.model
    common = dict(spatial_dims=3, in_channels=4, out_channels=3, base_filters=m.base_filters, depth=m.depth,
                  max_filters=m.max_filters, norm=m.norm, activation=m.activation, final_activation="sigmoid",
                  deep_supervision=m.deep_supervision, strides=m.strides or None, kernel_sizes=m.kernel_sizes or None)
    if m.architecture == "resenc":
        from kerasbrain.models.resenc_unet import ResEncUNet

        return ResEncUNet(blocks_per_stage=tuple(m.blocks_per_stage) or None, **common)
    return UNet(**common)


def build_loss(name: str):
    """Dice + cross-entropy ("dice_ce", also accepted as the 2-D name "dice_bce") or seed 003's soft Dice."""
    if name in ("dice_ce", "dice_bce"):
        return DiceCELoss()
    if name == "soft_dice":
        return SoftDiceLoss(squared=True)  # seed 003's form
    raise ValueError(f"loss must be 'dice_ce' or 'soft_dice'. Received: loss={name!r}")


def build_optimizer(t, total_steps: int, time_budget: float | None = None):
    """The configured optimizer. A cosine schedule over epochs is Keras's, per step; with a time
    budget, and for "anneal", the rate follows the run from a callback (`learning_rate_callbacks`),
    so the optimizer gets the initial rate as a plain value."""
    lr = t.learning_rate
    if t.lr_schedule == "cosine" and not time_budget:
        lr = keras.optimizers.schedules.CosineDecay(t.learning_rate, decay_steps=max(total_steps, 1), alpha=0.01)
    # the moving average of the weights (training/averaged_weights.py), kept inside the compiled step
    averaging = {"use_ema": True, "ema_momentum": t.ema_momentum} if t.ema_momentum else {}
    if t.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=t.weight_decay, **averaging)
    if t.optimizer == "adam":
        return keras.optimizers.Adam(lr, **averaging)
    if t.optimizer == "sgd":  # nnU-Net's choice
        return keras.optimizers.SGD(lr, momentum=0.99, nesterov=True, **averaging)
    raise ValueError(f"optimizer must be 'adamw', 'adam' or 'sgd'. Received: {t.optimizer!r}")


def learning_rate_callbacks(t, time_budget: float | None = None) -> list:
    """The callback that moves the rate along the run where the optimizer's own schedule cannot:
    any schedule over a wall-clock budget, and "anneal" over the configured epochs."""
    if t.lr_schedule == "constant" or (t.lr_schedule == "cosine" and not time_budget):
        return []
    length = {"minutes": time_budget} if time_budget else {"epochs": t.epochs}
    return [ScheduledLearningRate(t.learning_rate, t.lr_schedule, anneal_fraction=t.anneal_fraction, **length)]


def deep_supervision_targets(levels: int, strides=()):
    """Map a full-resolution region target to [full, 1/2, 1/4, ...] by nearest (strided) sampling; with
    per-axis `strides` (the model's poolings), each level is sampled as the network pooled it."""
    stages = stage_strides(strides, levels) if strides else ((2, 2, 2),) * levels
    steps = [(1, 1, 1)]
    for stage in stages[:levels]:
        steps.append(tuple(a * s for a, s in zip(steps[-1], stage)))

    def to_targets(image, target):
        return image, tuple(target[:, ::x, ::y, ::z, :] for x, y, z in steps)

    return to_targets


def prepare_cases(data_dir, run_dir: Path, config: Config, progress=print, fold: int | None = None):
    """Discover, split and cache the dataset; returns (train folders, validation folders, split).

    With `fold`, the split is that fold of the dataset's k-fold split (`training/folds.py`), shared by
    every run on the dataset; else the run's own seeded split.
    """
    dataset = discover(data_dir)
    cases = {c.case_id: c for c in dataset.labelled()}
    if not cases:
        raise ValueError(f"{data_dir}: no labelled cases to train on")
    if fold is not None:
        check_fold(fold, config.data.folds)  # before the cache, so a wrong --fold costs nothing
    cache = Path(config.data.cache_dir) if config.data.cache_dir else run_dir / "cache"
    spacing = tuple(config.data.target_spacing) or None
    plan = plan_cache(list(cases.values()), cache, spacing, lambda c: is_cached(c, cache, spacing))
    if plan.cases:
        progress(plan.describe())
    check_cache_space(plan)
    folders = {}
    for i, cid in enumerate(sorted(cases), 1):
        folders[cid] = cached_preprocess(cases[cid], cache, spacing)
        progress(f"preprocess {i}/{len(cases)} {cid}")
    # the split holds out each kind of case (which labels it holds) in proportion: training/split.py
    strata = (case_strata({cid: set(cached_labels_present(folder)) for cid, folder in folders.items()})
              if config.data.stratify_split else {})
    if fold is None:
        split = load_or_create_split(run_dir / SPLIT_FILE, list(cases), config.data.validation_fraction,
                                     config.data.split_seed, strata)
    else:
        split = fold_split(data_dir, run_dir, config, list(cases), fold, strata)
    if len(set(strata.values())) > 1:
        progress(describe_strata(strata, split))
    return [folders[c] for c in split["train"]], [folders[c] for c in split["validation"]], split


def fold_split(data_dir, run_dir: Path, config: Config, case_ids: list[str], fold: int,
               strata: dict[str, str] | None = None) -> dict:
    """Fold `fold` of the dataset's shared k-fold split, also written to the run's split.json (a resumed run
    checks it is still the same)."""
    d = config.data
    split = load_or_create_folds(folds_path(data_dir, d.folds_file), case_ids, d.folds, d.split_seed, strata)[fold]
    path = Path(run_dir) / SPLIT_FILE
    if path.exists() and json.loads(path.read_text()) != split:
        raise ValueError(f"{path}: this run was trained on another split than fold {fold} of "
                         f"{folds_path(data_dir, d.folds_file)}")
    path.write_text(json.dumps(split, indent=2))
    return split


@removes_unstarted_run
def train_unet3d(data_dir, run_dir, config: Config, epochs: int | None = None, steps_per_epoch: int | None = None,
                 verbose="auto", progress=print, time_budget: float | None = None,
                 data_shard: tuple[int, int] = (0, 1), fold: int | None = None) -> dict:
    """Train (or resume) a 3-D U-Net run; `time_budget` (minutes) ends it cleanly when the time is spent.

    `data_shard` = (index, count): this process feeds 1/count of each global batch from its own
    patch stream (JAX's multi-process training, `training/distribution.py`).
    """
    t = config.training
    t = replace(t, epochs=epochs or t.epochs, steps_per_epoch=steps_per_epoch or t.steps_per_epoch)
    config = replace(config, training=t)
    check_window(t.patch_size, stride_divisors(stage_strides(config.model.strides, config.model.depth)), "patch_size")
    run = start_run(run_dir, FAMILY_NAME, config, t.seed, time_budget, progress)
    train_folders, val_folders, split = prepare_cases(data_dir, run.dir, config, progress, fold)
    start_epoch = run.completed_epochs
    shard, shards = data_shard
    batch_size = t.batch_size // shards
    on_device = config.augment and resolve_augment_on(t.augment_on) == DEVICE
    targets = config.model.targets
    sampler = PatchSampler(train_folders, t.patch_size, t.fg_fraction,
                           config.augmentation if config.augment else None, seed=t.seed + 1000 * shard,
                           augment_on_device=on_device, targets=targets, fg_sampling=t.fg_sampling)
    pipeline = resolve_input_pipeline(t.input_pipeline)
    if pipeline == "pydataset":
        progress("patches through Keras's PyDataset (data/patch_batches.py)"
                 + ("" if has_tensorflow() else "; no TensorFlow here, so no TensorBoard logs: history.csv has them"))
    levels = config.model.deep_supervision
    pyramid = deep_supervision_targets(levels, config.model.strides[:levels]) if levels else None
    # first_batch skips the patches an interrupted run already consumed, so a resumed run sees new ones
    train_ds = patch_stream(sampler, batch_size, pipeline, first_batch=start_epoch * t.steps_per_epoch,
                            to_targets=pyramid, workers=t.workers)
    val_ds = None
    if val_folders:
        val_sampler = PatchSampler(val_folders, t.patch_size, t.fg_fraction, None, seed=t.seed + 1, targets=targets,
                                   fg_sampling=t.fg_sampling)
        val_ds = patch_stream(val_sampler, batch_size, pipeline, num_patches=t.validation_patches // shards,
                              to_targets=pyramid, cache=True, workers=t.workers)

    with precision_policy(t.precision, training=True) as policy:
        model = network = build_model(config)
        if on_device:
            model = DeviceAugmentedTraining(network)
            progress("augmenting patches on the device")
    progress(precision_note(policy, t.precision))
    if note := cpu_backend_note():
        progress(note)
    loss = build_loss(t.loss)
    channels, _ = training_targets(targets)
    metrics = region_metrics(channels) + [MeanSoftDice()]
    # the checkpoints hold the network, not its training wrapper; seed 003's label channels answer in
    # regions there (models/label_channels.py)
    saved_model = RegionsFromLabels(network) if targets == "labels" else network
    if levels:
        weights = [0.5**k for k in range(levels + 1)]
        loss = [loss] + [build_loss(t.loss) for _ in range(levels)]
        metrics = [metrics] + [[] for _ in range(levels)]
        loss_weights = [w / sum(weights) for w in weights]
    else:
        loss_weights = None
    model.compile(optimizer=build_optimizer(t, t.epochs * t.steps_per_epoch, time_budget), loss=loss,
                  loss_weights=loss_weights, metrics=metrics, jit_compile=resolve_jit_compile(t.compile_mode))

    build_training_state(model, train_ds)
    monitor = "val_loss" if val_ds is not None else "loss"
    schedule = learning_rate_callbacks(t, time_budget)
    callbacks = run_callbacks(run, monitor, metric_callbacks=[
        ValidationHD95(val_ds, channels, spacing=config.data.target_spacing or None)] if val_ds is not None else [],
        schedule_callbacks=schedule, saved_model=saved_model, averaged=AveragedWeights() if t.ema_momentum else None)
    history = model.fit(train_ds, validation_data=val_ds, epochs=t.epochs, steps_per_epoch=t.steps_per_epoch,
                        callbacks=callbacks, verbose=fit_verbosity(verbose), shuffle=False)
    if run.out_of_time:
        progress(f"time budget of {time_budget:g} min spent after epoch {len(history.history.get('loss', []))}")
    return run.artefacts(history.history, split)


__all__ = ["train_unet3d", "build_model", "build_loss", "prepare_cases"]
