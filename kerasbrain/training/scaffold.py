"""The trainer scaffold every family shares: the run folder, seeding, resume and the callbacks.

A family's trainer builds its data, model, loss and metrics, then calls `start_run`,
`build_training_state` and `run_callbacks` and hands them to `model.fit`. What every run therefore
gets, whatever the family: `run.json` + `config.json`, a fixed seed, `backup/` (Keras
BackupAndRestore made safe against `kill -9`: re-running the same command resumes after the last
completed epoch, optimizer state included, and never reads a half-written backup), `best.keras`
(lowest monitored value, kept across resumes), `last.keras`, `history.csv`, TensorBoard logs in
`logs/` (where TensorFlow is installed), a stop on NaN loss and an optional wall-clock time budget
that ends the run cleanly.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import keras

from kerasbrain.config import save_config_json
from kerasbrain.runs import (BEST_MODEL, CONFIG_FILE, HISTORY_FILE, LAST_MODEL, removed_if_failed_before_training,
                             write_run_info)
from kerasbrain.runtime import has_tensorflow
from kerasbrain.training.averaged_weights import AveragedWeights
from kerasbrain.training.callbacks import AtomicBackup, AtomicCheckpoint, TimeBudget, completed_epochs, trim_history


@dataclass
class Run:
    """A started run: its folder, how many epochs an interrupted attempt already completed, its budget."""

    dir: Path
    completed_epochs: int
    budget: TimeBudget | None

    @property
    def backup_dir(self) -> Path:
        return self.dir / "backup"

    @property
    def out_of_time(self) -> bool:
        return bool(self.budget and self.budget.exhausted)

    def artefacts(self, history: dict, split) -> dict:
        """What a trainer returns: paths of the models and logs, the history and the split."""
        return {"run": self.dir, "best": self.dir / BEST_MODEL, "last": self.dir / LAST_MODEL,
                "logs": self.dir / "logs", "history": history, "split": split}


def removes_unstarted_run(trainer):
    """Decorate a trainer `(data_dir, run_dir, config, ...)`: a run folder it creates is removed again
    if it fails before an epoch is saved (`runs.removed_if_failed_before_training`).

    A trainer records its config as soon as the run starts and finds bad data only afterwards, so
    without this every caller (`train`, the experiments, `reproduce`, the library) would leave a run
    folder that never trained behind a refused dataset.
    """

    @functools.wraps(trainer)
    def guarded(data_dir, run_dir, *args, **kwargs):
        with removed_if_failed_before_training(run_dir):
            return trainer(data_dir, run_dir, *args, **kwargs)

    return guarded


def start_run(run_dir, family: str, config, seed: int, time_budget: float | None = None, progress=print) -> Run:
    """Create (or reopen) a run folder, record family and config, seed everything, find resume state."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config_json(config, run_dir / CONFIG_FILE)
    write_run_info(run_dir, family)
    keras.utils.set_random_seed(seed)
    done = completed_epochs(run_dir / "backup")
    trim_history(run_dir / HISTORY_FILE, done)  # an epoch logged but not backed up runs again
    if done:
        progress(f"resuming after epoch {done} from {run_dir / 'backup'}")
    return Run(run_dir, done, TimeBudget(time_budget) if time_budget else None)


def build_training_state(model, dataset=None) -> None:
    """Create the optimizer's slots and the compiled losses' and metrics' state now, before `fit`.

    Left to `fit`, TensorFlow creates them while tracing the training step, and a `tf.function`
    that creates variables is traced twice: building them first saves one trace of the step per
    `fit` (~3 s of a tiny 3-D U-Net's 18 s run on 2 cores, more for larger models). With the
    `tf.data` stream `dataset`, this is Keras's own symbolic build from its element spec, which
    `fit` runs itself only under a distribution strategy; without one (a custom `train_step` with
    no compiled loss) only the optimizer is built. JAX builds all of it before tracing anyway.
    """
    symbolic_build = getattr(model, "_symbolic_build", None)
    if dataset is not None and symbolic_build is not None:
        symbolic_build(data_batch=dataset.element_spec)
    elif model.built and model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def run_callbacks(run: Run, monitor: str, metric_callbacks=(), schedule_callbacks=(), saved_model=None,
                  averaged: AveragedWeights | None = None) -> list:
    """The callback list of a run, in the order that keeps its files consistent.

    `metric_callbacks` add to the epoch's logs (they run before anything records the logs);
    `schedule_callbacks` act on the recorded values (learning-rate schedules, early stopping);
    `saved_model` is what best.keras / last.keras hold where it is not the trained model itself;
    `averaged` (the optimizer's moving average of the weights): validation, the metric callbacks and
    the checkpoints see the average, the backup and the next step the trained weights.
    """
    callbacks = [run.budget] if run.budget else []
    callbacks += [averaged.before_logs] if averaged else []
    callbacks += list(metric_callbacks)
    best = AtomicCheckpoint(run.dir / BEST_MODEL, monitor=monitor, mode="min", saved_model=saved_model)
    callbacks += [  # the history row first, the backup last: a kill in between repeats the epoch
        keras.callbacks.CSVLogger(str(run.dir / HISTORY_FILE), append=True),
        *tensorboard_logs(run.dir / "logs"),
        best,
        AtomicCheckpoint(run.dir / LAST_MODEL, saved_model=saved_model, copy_of=best),  # best's file when it saved
    ]
    callbacks += [averaged.after_checkpoints] if averaged else []
    callbacks += [AtomicBackup(str(run.backup_dir), delete_checkpoint=False)]
    callbacks += list(schedule_callbacks)
    callbacks.append(keras.callbacks.TerminateOnNaN())
    return callbacks


def tensorboard_logs(log_dir: Path) -> list:
    """TensorBoard's callback where TensorFlow is installed (it writes the summaries); none where only
    JAX is (history.csv still holds every epoch's values)."""
    if not has_tensorflow():
        return []
    return [keras.callbacks.TensorBoard(str(log_dir), write_graph=False, profile_batch=0)]


def fit_verbosity(verbose="auto"):
    """`model.fit`'s `verbose`: "auto" is Keras's live bar on a terminal and one line per epoch
    anywhere else. Keras redraws its bar with carriage returns even into a file (it counts any POSIX
    system as a terminal), so a log or CI output would keep every step's redraw: 13 KB per epoch of
    25 steps of the demo, where one line per epoch keeps ~0.5 KB."""
    if verbose != "auto":
        return verbose
    return 1 if getattr(sys.stdout, "isatty", lambda: False)() else 2
