import json

import keras
import numpy as np
import pytest

from kerasbrain.training.callbacks import ValidationHD95


def _passthrough_model():
    inputs = keras.Input((None, None, None, 3))
    return keras.Model(inputs, keras.layers.Identity()(inputs))


def test_validation_hd95_known_answer():
    y = np.zeros((1, 8, 8, 12, 3), np.float32)
    y[0, 3, 3, 2, :] = 1
    x = np.roll(y, 3, axis=3)  # the "prediction" sits 3 voxels away in every region
    callback = ValidationHD95([(x, y)])
    callback.set_model(_passthrough_model())
    logs = {}
    callback.on_epoch_end(0, logs)
    assert logs == {"val_hd95_WT": 3.0, "val_hd95_TC": 3.0, "val_hd95_ET": 3.0}
    callback = ValidationHD95([(y, y)])
    callback.set_model(_passthrough_model())
    callback.on_epoch_end(0, logs)
    assert logs["val_hd95_ET"] == 0.0


def test_time_budget_ends_the_epoch_in_progress_and_counts_across_fits():
    from kerasbrain.training.callbacks import TimeBudget

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((40, 3), "float32"), np.zeros((40, 1), "float32")
    spent = TimeBudget(minutes=0)  # spent after the first batch
    history = model.fit(x, y, batch_size=4, epochs=5, verbose=0, callbacks=[spent], validation_data=(x, y))
    assert spent.exhausted and len(history.history["loss"]) == 1 and "val_loss" in history.history
    generous = TimeBudget(minutes=10)
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[generous])
    assert not generous.exhausted and len(history.history["loss"]) == 3
    start = generous.start
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[generous])  # a second stage
    assert generous.start == start


def test_budget_cosine_decay_follows_the_clock_and_the_optimizer_obeys():
    from kerasbrain.training.callbacks import ScheduledLearningRate

    schedule = ScheduledLearningRate(0.1, "cosine", minutes=1, alpha=0.0, clock=lambda: 0.0)
    assert [schedule.rate(f) for f in (0, 0.5, 1, 2)] == [0.1, pytest.approx(0.05), pytest.approx(0.0), pytest.approx(0.0)]
    ticks = iter([0.0, 0.0, 30.0, 60.0, 90.0])  # train begin, then each epoch's begin, in seconds
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = np.ones((8, 3), "float32"), np.full((8, 1), 5.0, "float32")
    rates, weights = [], []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

        def on_epoch_end(self, epoch, logs=None):
            weights.append(self.model.get_weights()[0].copy())

    decay = ScheduledLearningRate(0.1, "cosine", minutes=1, alpha=0.0, clock=lambda: next(ticks))
    model.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[decay, Record()])
    assert rates == pytest.approx([0.1, 0.05, 0.0, 0.0], abs=1e-7)
    assert not np.allclose(weights[0], weights[1])  # half the rate still learns
    np.testing.assert_array_equal(weights[2], weights[1])  # the budget is spent: rate 0, nothing moves
    np.testing.assert_array_equal(weights[3], weights[2])


def test_anneal_holds_the_rate_then_falls_linearly_over_the_runs_last_share():
    """Hand-computed: initial 0.1, alpha 0.01, the last 20 %: 0.1 until 80 %, then
    0.1 * (0.01 + 0.99 * (1 - f) / 0.2), so 90 % gives 0.0505 and the end 0.001."""
    from kerasbrain.training.callbacks import ScheduledLearningRate

    anneal = ScheduledLearningRate(0.1, "anneal", minutes=10, anneal_fraction=0.2)
    assert [anneal.rate(f) for f in (0.0, 0.5, 0.8, 0.9, 1.0, 1.5)] == pytest.approx(
        [0.1, 0.1, 0.1, 0.0505, 0.001, 0.001])
    whole = ScheduledLearningRate(0.1, "anneal", epochs=4, anneal_fraction=1.0, alpha=0.0)
    assert [whole.rate(f) for f in (0, 0.25, 0.5)] == pytest.approx([0.1, 0.075, 0.05])
    with pytest.raises(ValueError, match="shape must be one of"):
        ScheduledLearningRate(0.1, "step", epochs=4)
    with pytest.raises(ValueError, match="not both"):
        ScheduledLearningRate(0.1, "anneal", minutes=1, epochs=4)


def test_anneal_over_epochs_sets_each_epochs_rate_and_resumes_at_the_right_one(tmp_path):
    """Without a budget the share is epochs done / epochs: 10 epochs, the last half annealed (alpha 0)
    -> 0.1 x 5, then 0.1, 0.08, 0.06, 0.04, 0.02. Keras's BackupAndRestore resumes at epoch 6 with
    that epoch's rate, not the first one's."""
    from kerasbrain.training.callbacks import ScheduledLearningRate

    keras.utils.set_random_seed(0)
    x, y = np.ones((8, 3), "float32"), np.full((8, 1), 5.0, "float32")
    expected = [0.1] * 5 + [0.1, 0.08, 0.06, 0.04, 0.02]

    def fit(epochs_run_until=None):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        rates = []

        class Record(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                rates.append((epoch, float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))))

            def on_epoch_end(self, epoch, logs=None):
                if epochs_run_until is not None and epoch + 1 == epochs_run_until:
                    raise KeyboardInterrupt  # killed after this epoch's backup

        schedule = ScheduledLearningRate(0.1, "anneal", epochs=10, alpha=0.0, anneal_fraction=0.5)
        backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
        try:
            model.fit(x, y, epochs=10, batch_size=4, verbose=0, callbacks=[schedule, backup, Record()])
        except KeyboardInterrupt:
            pass
        return rates

    first = fit(epochs_run_until=6)
    assert [r for _, r in first] == pytest.approx(expected[:6])
    resumed = fit()
    assert [e for e, _ in resumed] == [6, 7, 8, 9]
    assert [r for _, r in resumed] == pytest.approx(expected[6:])


@pytest.mark.parametrize("schedule, expected", [("constant", None), ("cosine", None), ("anneal", "epochs")])
def test_only_schedules_the_optimizer_cannot_follow_get_a_callback(schedule, expected):
    """Keras's CosineDecay follows steps on its own; a budget (minutes) or "anneal" needs the callback."""
    from kerasbrain.training.config import TrainingConfig
    from kerasbrain.training.train_unet3d import learning_rate_callbacks

    t = TrainingConfig(lr_schedule=schedule, epochs=7, anneal_fraction=0.3)
    found = learning_rate_callbacks(t)
    assert (found[0].epochs if found else None) == (7 if expected else None)
    budgeted = learning_rate_callbacks(t, time_budget=3)
    if schedule == "constant":
        assert budgeted == []
    else:
        assert (budgeted[0].seconds, budgeted[0].shape) == (180, schedule)
    if schedule == "anneal":
        assert found[0].anneal_fraction == 0.3


def test_a_budgeted_run_with_the_cosine_schedule_trains_and_lowers_the_rate(msd_dir, tmp_path, monkeypatch):
    """`--time-budget` with `lr_schedule = "cosine"` (the default): the rate follows the clock. The clock
    is driven by the test (2 s a reading), so the run ends after the same epochs on any machine."""
    import csv
    import itertools

    from click.testing import CliRunner

    from cli.main import cli
    from kerasbrain.training import callbacks
    from tests.conftest import TINY_UNET3D_TOML

    ticks = itertools.count(0.0, 2.0)
    monkeypatch.setattr(callbacks, "monotonic_seconds", lambda: next(ticks))
    (tmp_path / "tiny.toml").write_text(TINY_UNET3D_TOML)
    result = CliRunner().invoke(cli, ["train", "unet3d", "--data", str(msd_dir), "--config", str(tmp_path / "tiny.toml"),
                                      "--out", str(tmp_path / "run"), "--epochs", "1000", "--steps-per-epoch", "2",
                                      "--time-budget", "0.4"])
    assert result.exit_code == 0, result.output
    assert "time budget of 0.4 min spent" in result.output and (tmp_path / "run" / "best.keras").exists()
    epochs = len(list(csv.DictReader(open(tmp_path / "run" / "history.csv"))))
    assert 2 <= epochs < 1000, epochs  # the budget (24 s of the test's clock), not --epochs, ended it
    last = keras.saving.load_model(tmp_path / "run" / "last.keras")
    rate = float(keras.ops.convert_to_numpy(last.optimizer.learning_rate))
    assert 3e-6 <= rate < 0.9 * 3e-4, rate  # decayed from [training] learning_rate toward 1% of it


@pytest.mark.parametrize("mode", ["min", "max"])
def test_last_checkpoint_copies_the_best_ones_file_in_an_epoch_where_it_saved(tmp_path, monkeypatch, mode):
    """min: the loss falls every epoch, so best saves each one and last copies it; max: only the first
    epoch is "best", so last serialises the model itself afterwards and holds the final weights."""
    from kerasbrain.training.callbacks import AtomicCheckpoint

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    serialised = []
    real_save = keras.Model.save
    monkeypatch.setattr(keras.Model, "save", lambda self, path, *a, **k: (serialised.append(path),
                                                                         real_save(self, path, *a, **k))[1])
    best = AtomicCheckpoint(tmp_path / "best.keras", monitor="loss", mode=mode)
    last = AtomicCheckpoint(tmp_path / "last.keras", copy_of=best)
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[best, last])
    assert np.all(np.diff(history.history["loss"]) < 0)  # so "min" improves every epoch and "max" never again
    assert len(serialised) == (3 if mode == "min" else 1 + 2)  # min: best only; max: best once, then last twice
    same_file = (tmp_path / "best.keras").read_bytes() == (tmp_path / "last.keras").read_bytes()
    assert same_file == (mode == "min")
    final = keras.saving.load_model(tmp_path / "last.keras")
    for saved, trained in zip(final.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(saved, trained)
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == (3 if mode == "min" else 1)
