"""SimCLR pretraining: an encoder learns from unlabelled slices; a linear probe says what it learned.

The run folder, resume, checkpoints and time budget come from `training.scaffold` like every
family's. Learning rate: linear warm-up then cosine decay (SimCLR's schedule) with AdamW. Batch
norm statistics are recalibrated on unaugmented images at each epoch end, so the saved encoder
behaves in inference mode (linear probe, Grad-CAM, downstream fine-tuning) as it did in training.
At the end the best checkpoint's encoder is written to `encoder.keras` (what `encoder_weights` /
`--encoder-weights` of the 2-D, classifier and multi-task families take) and, where the data has
classes, `probe.json` / `probe.md` hold the linear-probe scores with and without pretraining.
"""

from __future__ import annotations

import keras

from kerasbrain.data.contrastive import discover_unlabelled, two_view_dataset
from kerasbrain.data.tumour_images import load_samples
from kerasbrain.evaluation.linear_probe import linear_probe, probe_data
from kerasbrain.files import atomic_write, write_json, write_text
from kerasbrain.models.backbones import encoder_model
from kerasbrain.models.simclr import SimCLRNet
from kerasbrain.runs import BEST_MODEL
from kerasbrain.runtime import precision_note, precision_policy, resolve_jit_compile
from kerasbrain.training.batchnorm import BatchNormRecalibration, ImageBatches
from kerasbrain.training.config_simclr import SimCLRConfig
from kerasbrain.training.scaffold import (build_training_state, fit_verbosity, removes_unstarted_run, run_callbacks,
                                         start_run)
from kerasbrain.windows import check_window

ENCODER_FILE = "encoder.keras"


def learning_rate_schedule(t, steps_per_epoch: int):
    """Linear warm-up to `t.learning_rate` over `t.warmup_epochs`, then cosine decay to zero."""
    warmup = min(t.warmup_epochs, t.epochs - 1) * steps_per_epoch
    decay = max(1, t.epochs * steps_per_epoch - warmup)
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(t.learning_rate, decay)
    return keras.optimizers.schedules.CosineDecay(0.0, decay, warmup_target=t.learning_rate, warmup_steps=warmup)


@removes_unstarted_run
def train_simclr(data_dir, run_dir, config: SimCLRConfig, family: str = "simclr", verbose="auto", progress=print,
                 time_budget: float | None = None) -> dict:
    """Pretrain (or resume) a SimCLR encoder; returns the run's artefacts plus `encoder` and `probe`."""
    t, size = config.training, config.data.image_size
    check_window((size, size), 32, "image_size")
    run = start_run(run_dir, family, config, t.seed, time_budget, progress)
    samples = discover_unlabelled(data_dir)
    pool = [s for s in samples if s.subset == "train"]
    if config.data.max_images:
        pool = pool[:config.data.max_images]
    progress(f"images: {len(pool)} unlabelled training images at {size} x {size}")
    images = load_samples(pool, size, progress)[0]
    probe_images = probe_data(samples, size, config.probe.max_images, t.seed, progress) if config.probe.enabled else None
    dataset, steps = two_view_dataset(images, t.batch_size, t.seed, config.augmentation)
    with precision_policy(t.precision, training=True) as policy:
        model = SimCLRNet(config.model.encoder, config.model.projection_dims, config.model.temperature)
    progress(precision_note(policy, t.precision))
    optimizer = keras.optimizers.AdamW(learning_rate_schedule(t, steps), weight_decay=t.weight_decay)
    model.compile(optimizer=optimizer, jit_compile=resolve_jit_compile(t.compile_mode))
    build_training_state(model)
    recalibration = BatchNormRecalibration(ImageBatches(images, t.batch_size), t.bn_recalibration_batches)
    callbacks = run_callbacks(run, "loss", metric_callbacks=[recalibration])
    history = model.fit(dataset, epochs=t.epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=fit_verbosity(verbose),
                        shuffle=False)
    if run.out_of_time:
        progress(f"time budget of {time_budget:g} min spent after epoch {len(history.history.get('loss', []))}")
    best = keras.saving.load_model(run.dir / BEST_MODEL, compile=False)
    encoder_path = atomic_write(run.dir / ENCODER_FILE, lambda tmp: best.encoder.save(tmp))
    probe = None
    if config.probe.enabled:
        encoders = {"simclr": best.encoder}
        if config.probe.compare_random:
            keras.utils.set_random_seed(t.seed)
            encoders["random init"] = encoder_model(config.model.encoder)
        probe = linear_probe(encoders, probe_images, t.seed, progress)
        if probe:
            write_json(run.dir / "probe.json", probe)
            write_text(run.dir / "probe.md", probe_table(probe) + "\n")
    return {**run.artefacts(history.history, None), "encoder": encoder_path, "probe": probe}


def probe_table(probe: dict) -> str:
    lines = ["| Encoder | Linear-probe accuracy | Macro F1 | Train / test images |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['n_train']} / {r['n_test']} |"
              for name, r in probe.items()]
    return "\n".join(lines)
