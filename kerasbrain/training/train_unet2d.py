"""Training 2-D slice U-Nets on the LGG layout (seed 002 from scratch, seed 004 with encoders).

The run folder and callbacks come from `kerasbrain.training.scaffold`, as for every family;
`split.json` holds patients per subset and `best.keras` is the lowest validation loss over all
stages. Stages run one after another; a stage with `freeze_encoder` trains the decoder only.
Re-running the same command after an interruption skips finished stages and resumes the current
one after its last completed epoch.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from kerasbrain.data.lgg import discover_lgg, patient_split, save_split
from kerasbrain.data.slices import load_slices, slice_dataset
from kerasbrain.losses import DiceCELoss, SoftDiceLoss
from kerasbrain.metrics import RegionDice
from kerasbrain.models.encoder_unet import EncoderUNet
from kerasbrain.models.unet import UNet
from kerasbrain.runs import SPLIT_FILE
from kerasbrain.runtime import precision_note, precision_policy, resolve_jit_compile
from kerasbrain.training.batchnorm import BatchNormRecalibration
from kerasbrain.training.config2d import SliceConfig
from kerasbrain.training.scaffold import (build_training_state, fit_verbosity, removes_unstarted_run, run_callbacks,
                                         start_run)

FAMILY_NAME = "unet2d"


def slice_norm(config: SliceConfig) -> str:
    """The scratch U-Net's / decoder's normalisation; "auto" is batch norm, recalibrated before validation.

    Measured with bench/race2d.py (10 CPU-minutes, same data and seed): batch norm with precise
    recalibration reached held-out Dice 0.932, instance norm (MONAI's and nnU-Net's choice) 0.864,
    and batch norm without recalibration predicted nearly everything as tumour (training/batchnorm.py).
    """
    return "batch" if config.model.norm == "auto" else config.model.norm


def build_slice_model(config: SliceConfig) -> keras.Model:
    m = config.model
    if m.encoder == "none":
        return UNet(spatial_dims=2, in_channels=3, out_channels=1, base_filters=m.base_filters, depth=m.depth,
                    norm=slice_norm(config), activation="relu", final_activation="sigmoid",
                    output_prior=m.output_prior or None, name="unet2d")
    from kerasbrain.models.presets import build_with_encoder_weights

    return build_with_encoder_weights(EncoderUNet, m.encoder, m.encoder_weights, norm=slice_norm(config),
                                      stem_skip=m.stem_skip, image_skip_filters=m.image_skip_filters,
                                      output_prior=m.output_prior or None)


def slice_metrics():
    return [RegionDice(0, name="dice"), keras.metrics.BinaryIoU(target_class_ids=[1], name="iou"),
            keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall")]


def slice_loss(name: str):
    """Seed 004's Dice + BCE ("dice_bce", also accepted as the 3-D name "dice_ce") or soft Dice alone."""
    if name in ("dice_bce", "dice_ce"):
        return DiceCELoss(batch_dice=True)
    if name in ("dice", "soft_dice"):
        return SoftDiceLoss(batch_dice=True)
    raise ValueError(f"loss must be 'dice_bce' or 'dice'. Received: loss={name!r}")


class SliceBatches:
    """Re-iterable numpy batches of training images in one seeded random order (no augmentation)."""

    def __init__(self, images, batch_size: int, seed: int = 0):
        self.images, self.batch_size = images, batch_size
        self.order = np.random.default_rng(seed).permutation(len(images))

    def __iter__(self):
        for i in range(0, len(self.order), self.batch_size):
            yield self.images[np.sort(self.order[i:i + self.batch_size])]


def split_slices(data_dir, config: SliceConfig, run_dir: Path):
    """Discover, split by patient (saved to split.json) and return the slice lists per subset."""
    slices = discover_lgg(data_dir)
    d = config.data
    split = patient_split(slices, d.n_splits, d.fold, d.split_seed, None if d.test_fold < 0 else d.test_fold)
    save_split(split, run_dir / SPLIT_FILE)
    by_subset = {k: [s for s in slices if s.patient in set(v)] for k, v in split.items()}
    cap = config.training.max_slices
    if cap:
        by_subset = {k: v[:cap] for k, v in by_subset.items()}
    return by_subset, split


@removes_unstarted_run
def train_unet2d(data_dir, run_dir, config: SliceConfig, verbose="auto", progress=print,
                 time_budget: float | None = None) -> dict:
    """Train (or resume) a slice U-Net run; `time_budget` (minutes) ends it cleanly when the time is spent."""
    t = config.training
    run = start_run(run_dir, FAMILY_NAME, config, t.seed, time_budget, progress)
    subsets, split = split_slices(data_dir, config, run.dir)
    progress(f"slices: train {len(subsets['train'])}, validation {len(subsets['validation'])}, "
             f"test {len(subsets['test'])} (patients {len(split['train'])}/{len(split['validation'])}/"
             f"{len(split['test'])})")
    x_train, y_train = load_slices(subsets["train"], config.data.enhance)
    x_val, y_val = load_slices(subsets["validation"], config.data.enhance)
    train_ds = slice_dataset(x_train, y_train, t.batch_size, config.augmentation if config.augment else None,
                             seed=t.seed)
    val_ds = slice_dataset(x_val, y_val, t.batch_size, shuffle=False)
    with precision_policy(t.precision, training=True) as policy:
        model = build_slice_model(config)
    progress(precision_note(policy, t.precision))
    done = run.completed_epochs
    recalibration = BatchNormRecalibration(SliceBatches(x_train, t.batch_size, seed=t.seed), t.bn_recalibration_batches)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=t.plateau_patience,
                                                factor=t.plateau_factor)
    callbacks = run_callbacks(run, "val_loss", metric_callbacks=[recalibration], schedule_callbacks=[plateau])
    history, epoch = {}, 0
    for i, stage in enumerate(config.stages, 1):
        if epoch + stage.epochs <= done:  # finished before an interruption
            epoch += stage.epochs
            continue
        if isinstance(model, EncoderUNet):
            model.encoder.trainable = not stage.freeze_encoder
        elif stage.freeze_encoder:
            raise ValueError("freeze_encoder needs a model with an encoder ([model] encoder = ...)")
        model.compile(optimizer=keras.optimizers.AdamW(stage.learning_rate, weight_decay=t.weight_decay),
                      loss=slice_loss(t.loss), metrics=slice_metrics(), jit_compile=resolve_jit_compile(t.compile_mode))
        build_training_state(model, train_ds)
        progress(f"stage {i}/{len(config.stages)}: {stage.epochs} epochs, lr {stage.learning_rate:g}, "
                 f"encoder {'frozen' if stage.freeze_encoder else 'trainable'}")
        result = model.fit(train_ds, validation_data=val_ds, initial_epoch=epoch, epochs=epoch + stage.epochs,
                           callbacks=callbacks, verbose=fit_verbosity(verbose), shuffle=False)
        epoch += stage.epochs
        for k, v in result.history.items():
            history.setdefault(k, []).extend(v)
        if run.out_of_time:
            progress(f"time budget of {time_budget:g} min spent during stage {i}")
            break
    return run.artefacts(history, split)


__all__ = ["train_unet2d", "build_slice_model"]
