"""A dataset refused by a trainer, an experiment or `reproduce` leaves no run folder behind.

Trainers record their config when the run starts and only then read the data; without the
guard (`training/scaffold.removes_unstarted_run`, `runs.removed_if_failed_before_training`) each
of these left `OUT/<run>/config.json` and `run.json` of a run that never trained.
"""

import pytest
from click.testing import CliRunner

from cli.main import cli
from kerasbrain.families import get_family
from kerasbrain.runs import removed_if_failed_before_training
from tests.conftest import once

COMMANDS = {
    **{seed: ("reproduce", seed, "--quick") for seed in ("seed000", "seed001", "seed002", "seed003", "seed004")},
    "lgg-compare": ("experiment", "lgg-compare", "--quick"),
    "multitask-vs-baseline": ("experiment", "multitask-vs-baseline", "--quick"),
    "label-efficient": ("experiment", "label-efficient", "--quick"),
}


@once  # click and the folder guard; nothing trains
@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("out_exists", [False, True])
def test_a_refused_dataset_leaves_no_folder(name, out_exists, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    if out_exists:  # a folder the user already had: kept as it was
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, [*COMMANDS[name], "--data", str(empty), "--out", str(out)])
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: {empty}") and "Traceback" not in result.output, result.output
    assert sorted(p.name for p in out.rglob("*")) == (["notes.txt"] if out_exists else [])
    assert out.exists() == out_exists


@pytest.mark.parametrize("family", ["unet3d", "unet2d", "multitask", "simclr"])
def test_a_trainer_called_from_code_removes_the_run_it_started(family, tmp_path):
    """The library's trainers, without the CLI: a refused dataset, and no run folder."""
    (tmp_path / "empty").mkdir()
    f = get_family(family)
    with pytest.raises(Exception, match="empty"):
        f.train(tmp_path / "empty", tmp_path / "run", f.load_config(None), progress=lambda message: None)
    assert not (tmp_path / "run").exists()


def test_a_folder_with_a_saved_epoch_anywhere_in_it_is_kept(tmp_path):
    """An experiment's folder holds several runs: once one has saved an epoch, a later failure keeps all."""
    for name, saved in (("fresh", None), ("empty_backup", "a/backup"), ("model", "a/best.keras"),
                        ("backup", "b/fold_0/backup/ckpt")):
        out = tmp_path / name
        with pytest.raises(RuntimeError), removed_if_failed_before_training(out):
            (out / "a").mkdir(parents=True)
            (out / "a" / "config.json").write_text("{}")
            if saved:
                (out / saved).parent.mkdir(parents=True, exist_ok=True)
                if saved.endswith("backup"):
                    (out / saved).mkdir(exist_ok=True)
                else:
                    (out / saved).write_text("x")
            raise RuntimeError("bad data")
        assert out.exists() == (name in ("model", "backup")), name


def test_a_run_stopped_by_the_user_keeps_its_folder_and_cache(tmp_path):
    """Ctrl-C before the first epoch is not a refused input: the run and its preprocessing cache stay."""
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt), removed_if_failed_before_training(out):
        (out / "cache" / "case_1").mkdir(parents=True)
        (out / "cache" / "case_1" / "image.npy").write_bytes(b"x")
        raise KeyboardInterrupt
    assert (out / "cache" / "case_1" / "image.npy").exists()
