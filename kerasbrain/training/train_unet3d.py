"""Training the volumetric 3-D U-Net with `model.fit` on tf.data patches (seed 003, nnU-Net style).

A run folder holds everything: `config.json`, `split.json`, `cache/`, `logs/` (TensorBoard),
`history.csv`, `best.keras` (lowest validation loss), `last.keras` and `backup/` (Keras
BackupAndRestore), so re-running the same command after an interruption resumes at the last
completed epoch with the optimizer state intact.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import keras

from kerasbrain.data.layouts import discover
from kerasbrain.data.pipeline import PatchSampler, patch_dataset
from kerasbrain.data.preprocess import cached_preprocess
from kerasbrain.losses import DiceCELoss, SoftDiceLoss
from kerasbrain.metrics import region_metrics
from kerasbrain.models.unet import UNet
from kerasbrain.runtime import precision_policy, resolve_jit_compile
from kerasbrain.training.callbacks import AtomicCheckpoint, ValidationHD95, completed_epochs
from kerasbrain.training.config import Config, save_config
from kerasbrain.training.split import load_or_create_split


def build_model(config: Config) -> UNet:
    m = config.model
    return UNet(spatial_dims=3, in_channels=4, out_channels=3, base_filters=m.base_filters, depth=m.depth,
                max_filters=m.max_filters, norm=m.norm, activation=m.activation, final_activation="sigmoid",
                deep_supervision=m.deep_supervision)


def build_loss(name: str):
    if name == "dice_ce":
        return DiceCELoss()
    if name == "soft_dice":
        return SoftDiceLoss(squared=True)  # seed 003's form
    raise ValueError(f"loss must be 'dice_ce' or 'soft_dice'. Received: loss={name!r}")


def build_optimizer(t, total_steps: int):
    lr = t.learning_rate
    if t.lr_schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(t.learning_rate, decay_steps=max(total_steps, 1), alpha=0.01)
    elif t.lr_schedule != "constant":
        raise ValueError(f"lr_schedule must be 'cosine' or 'constant'. Received: {t.lr_schedule!r}")
    if t.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=t.weight_decay)
    if t.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    if t.optimizer == "sgd":  # nnU-Net's choice
        return keras.optimizers.SGD(lr, momentum=0.99, nesterov=True)
    raise ValueError(f"optimizer must be 'adamw', 'adam' or 'sgd'. Received: {t.optimizer!r}")


def deep_supervision_targets(levels: int):
    """Map a full-resolution region target to [full, 1/2, 1/4, ...] by nearest (strided) sampling."""

    def to_targets(image, target):
        return image, tuple(target[:, :: 2**k, :: 2**k, :: 2**k, :] for k in range(levels + 1))

    return to_targets


def prepare_cases(data_dir, run_dir: Path, config: Config, progress=print):
    """Discover, split and cache the dataset; returns (train folders, validation folders, split)."""
    dataset = discover(data_dir)
    cases = {c.case_id: c for c in dataset.labelled()}
    if not cases:
        raise ValueError(f"{data_dir}: no labelled cases to train on")
    split = load_or_create_split(run_dir / "split.json", list(cases), config.data.validation_fraction,
                                 config.data.split_seed)
    cache = Path(config.data.cache_dir) if config.data.cache_dir else run_dir / "cache"
    spacing = tuple(config.data.target_spacing) or None
    folders = {}
    for i, cid in enumerate(sorted(cases), 1):
        folders[cid] = cached_preprocess(cases[cid], cache, spacing)
        progress(f"preprocess {i}/{len(cases)} {cid}")
    return [folders[c] for c in split["train"]], [folders[c] for c in split["validation"]], split


def train_unet3d(data_dir, run_dir, config: Config, epochs: int | None = None, steps_per_epoch: int | None = None,
                 verbose="auto", progress=print) -> dict:
    """Train (or resume) a 3-D U-Net run; returns paths of the artefacts and the history."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t = config.training
    t = replace(t, epochs=epochs or t.epochs, steps_per_epoch=steps_per_epoch or t.steps_per_epoch)
    config = replace(config, training=t)
    save_config(config, run_dir / "config.json")
    keras.utils.set_random_seed(t.seed)

    train_folders, val_folders, split = prepare_cases(data_dir, run_dir, config, progress)
    divisor = 2**config.model.depth
    if any(p % divisor for p in t.patch_size):
        raise ValueError(f"patch_size sides must be multiples of 2**depth={divisor}. Received: {t.patch_size}")

    backup_dir = run_dir / "backup"
    start_epoch = completed_epochs(backup_dir)
    if start_epoch:
        progress(f"resuming after epoch {start_epoch} from {backup_dir}")
    sampler = PatchSampler(train_folders, t.patch_size, t.fg_fraction,
                           config.augmentation if config.augment else None, seed=t.seed)
    workers = t.workers or None
    import tensorflow as tf

    parallel = workers or tf.data.AUTOTUNE
    train_ds = patch_dataset(sampler, t.batch_size, num_parallel_calls=parallel)
    # skip the patches an interrupted run already consumed, so a resumed run sees new ones
    train_ds = train_ds.skip(start_epoch * t.steps_per_epoch)
    val_ds = None
    if val_folders:
        val_sampler = PatchSampler(val_folders, t.patch_size, t.fg_fraction, None, seed=t.seed + 1)
        val_ds = patch_dataset(val_sampler, t.batch_size, num_patches=t.validation_patches,
                               num_parallel_calls=parallel, cache=True)

    with precision_policy(t.precision):
        model = build_model(config)
    loss = build_loss(t.loss)
    metrics = region_metrics()
    if config.model.deep_supervision:
        levels = config.model.deep_supervision
        train_ds = train_ds.map(deep_supervision_targets(levels))
        val_ds = val_ds.map(deep_supervision_targets(levels)) if val_ds is not None else None
        weights = [0.5**k for k in range(levels + 1)]
        loss = [loss] + [build_loss(t.loss) for _ in range(levels)]
        metrics = [metrics] + [[] for _ in range(levels)]
        loss_weights = [w / sum(weights) for w in weights]
    else:
        loss_weights = None
    model.compile(optimizer=build_optimizer(t, t.epochs * t.steps_per_epoch), loss=loss, loss_weights=loss_weights,
                  metrics=metrics, jit_compile=resolve_jit_compile(t.compile_mode))

    monitor = "val_loss" if val_ds is not None else "loss"
    callbacks = [ValidationHD95(val_ds)] if val_ds is not None else []
    callbacks += [
        keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False),
        AtomicCheckpoint(run_dir / "best.keras", monitor=monitor, mode="min"),
        AtomicCheckpoint(run_dir / "last.keras"),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False, profile_batch=0),
        keras.callbacks.TerminateOnNaN(),
    ]
    history = model.fit(train_ds, validation_data=val_ds, epochs=t.epochs, steps_per_epoch=t.steps_per_epoch,
                        callbacks=callbacks, verbose=verbose, shuffle=False)
    return {
        "run": run_dir, "best": run_dir / "best.keras", "last": run_dir / "last.keras",
        "history": history.history, "split": split,
    }


__all__ = ["train_unet3d", "build_model", "build_loss", "prepare_cases"]
