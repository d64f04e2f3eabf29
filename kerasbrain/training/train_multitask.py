"""Training the classification families (multitask and classifier) on BRISC 2025 or Kaggle class folders.

The run folder and callbacks come from `kerasbrain.training.scaffold`, like every family's; this
module adds the stratified split (`split.json`: image ids per subset), the image arrays, the
task-weighted losses and the alternating or joint task schedule (`data/image_pipeline.py`).
Validation runs every task on the validation images, so `val_class_accuracy` and `val_mask_dice`
show what evaluation will.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras

from kerasbrain.data.image_pipeline import image_dataset
from kerasbrain.data.tumour_images import discover_tumour_images, load_samples, stratified_split
from kerasbrain.files import atomic_write
from kerasbrain.losses import PerSampleDiceBCELoss
from kerasbrain.metrics import RegionDice
from kerasbrain.models.multitask import MultiTaskNet
from kerasbrain.runs import SPLIT_FILE
from kerasbrain.runtime import precision_note, precision_policy, resolve_jit_compile
from kerasbrain.training.batchnorm import BatchNormRecalibration, ImageBatches
from kerasbrain.training.config_multitask import MultiTaskConfig
from kerasbrain.training.scaffold import (build_training_state, fit_verbosity, removes_unstarted_run, run_callbacks,
                                         start_run)
from kerasbrain.windows import check_window


def build_multitask_model(config: MultiTaskConfig, tasks) -> MultiTaskNet:
    m = config.model
    from kerasbrain.models.presets import build_with_encoder_weights

    return build_with_encoder_weights(MultiTaskNet, m.encoder, m.encoder_weights, tasks=tasks,
                                      decoder_filters=m.decoder_filters, dropout=m.dropout, norm=m.norm)


def multitask_losses(config: MultiTaskConfig, tasks):
    """(losses, loss weights, metrics) keyed by task."""
    t = config.training
    losses = {"class": keras.losses.SparseCategoricalCrossentropy(), "mask": PerSampleDiceBCELoss()}
    weights = {"class": t.class_weight, "mask": t.mask_weight}
    metrics = {"class": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
               "mask": [RegionDice(0, name="dice")]}
    return ({k: losses[k] for k in tasks}, {k: weights[k] for k in tasks}, {k: metrics[k] for k in tasks})


def split_images(data_dir, config: MultiTaskConfig, run_dir: Path, progress=print):
    """Discover, split (saved to split.json, kept on resume) and return samples per subset."""
    samples = discover_tumour_images(data_dir)
    split_file = run_dir / SPLIT_FILE
    if split_file.exists():
        split = json.loads(split_file.read_text())
    else:
        split = stratified_split(samples, config.data.validation_fraction, config.data.split_seed)
        atomic_write(split_file, lambda tmp: Path(tmp).write_text(json.dumps(split, indent=1)))
    by_id = {s.id: s for s in samples}
    missing = [i for ids in split.values() for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"{split_file}: {len(missing)} image(s) of the saved split are not in {data_dir}, "
                         f"e.g. {missing[0]}")
    subsets = {k: [by_id[i] for i in v] for k, v in split.items()}
    cap = config.data.max_images
    if cap:
        subsets = {k: v[:cap] for k, v in subsets.items()}
    progress("images: " + ", ".join(f"{k} {len(v)} ({sum(s.mask is not None for s in v)} with masks)"
                                    for k, v in subsets.items()))
    return subsets, split


@removes_unstarted_run
def train_multitask(data_dir, run_dir, config: MultiTaskConfig, family: str, tasks=("class", "mask"),
                    verbose="auto", progress=print, time_budget: float | None = None) -> dict:
    """Train (or resume) a multi-task or single-task run; returns the run's artefacts."""
    t = config.training
    check_window((config.data.image_size,) * 2, 32, "image_size")
    run = start_run(run_dir, family, config, t.seed, time_budget, progress)
    subsets, split = split_images(data_dir, config, run.dir, progress)
    train = load_samples(subsets["train"], config.data.image_size, progress)
    val = load_samples(subsets["validation"], config.data.image_size, progress) if subsets["validation"] else None
    augment = (config.augmentation.horizontal_flip, config.augmentation.rotation_degrees) if config.augment else None
    train_ds, steps = image_dataset(*train, t.batch_size, tasks, t.schedule, augment, shuffle=True, seed=t.seed)
    val_ds = image_dataset(*val, t.batch_size, tasks, shuffle=False)[0] if val is not None else None
    with precision_policy(t.precision, training=True) as policy:
        model = build_multitask_model(config, tasks)
    progress(precision_note(policy, t.precision))
    losses, loss_weights, metrics = multitask_losses(config, tasks)
    model.compile(optimizer=keras.optimizers.AdamW(t.learning_rate, weight_decay=t.weight_decay), loss=losses,
                  loss_weights=loss_weights, metrics=metrics, jit_compile=resolve_jit_compile(t.compile_mode))
    build_training_state(model, train_ds)
    monitor = "val_loss" if val_ds is not None else "loss"
    plateau = keras.callbacks.ReduceLROnPlateau(monitor=monitor, patience=t.plateau_patience, factor=t.plateau_factor)
    recalibration = BatchNormRecalibration(ImageBatches(train[0], t.batch_size), t.bn_recalibration_batches)
    callbacks = run_callbacks(run, monitor, metric_callbacks=[recalibration], schedule_callbacks=[plateau])
    history = model.fit(train_ds, validation_data=val_ds, epochs=t.epochs, steps_per_epoch=steps,
                        callbacks=callbacks, verbose=fit_verbosity(verbose), shuffle=False)
    if run.out_of_time:
        progress(f"time budget of {time_budget:g} min spent after epoch {len(history.history.get('loss', []))}")
    return run.artefacts(history.history, split)
