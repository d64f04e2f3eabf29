"""The model-family registry: lookup by run, legacy runs, bare models, and a plug-in family."""

import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from kerasbrain import families
from kerasbrain.families import family_of_run, get_family
from kerasbrain.training.config import Config, save_config
from kerasbrain.training.config2d import SliceConfig, save_slice_config


def test_registered_families_answer_to_their_names():
    assert families.family_names()[:2] == ["unet3d", "unet2d"]
    assert get_family("unet3d").serving_kind == "volume_segmentation"
    assert get_family("unet2d").serving_kind == "slice_segmentation"
    with pytest.raises(ValueError, match="unknown model family 'unet4d'; known: unet3d, unet2d"):
        get_family("unet4d")


def test_run_json_names_the_family(tmp_path):
    save_config(Config(), tmp_path / "config.json")  # a 3-D config ...
    (tmp_path / "run.json").write_text(json.dumps({"family": "unet2d"}))  # ... but run.json decides
    assert family_of_run(tmp_path / "best.keras").name == "unet2d"
    (tmp_path / "run.json").write_text(json.dumps({"family": "nope"}))
    with pytest.raises(ValueError, match="unknown model family 'nope'"):
        family_of_run(tmp_path)


def test_runs_made_before_run_json_are_recognised_by_their_config(tmp_path):
    volume, slices = tmp_path / "v", tmp_path / "s"
    volume.mkdir(), slices.mkdir()
    save_config(Config(), volume / "config.json")
    save_slice_config(SliceConfig(), slices / "config.json")
    assert family_of_run(volume / "best.keras").name == "unet3d"
    assert family_of_run(slices).name == "unet2d"


@pytest.mark.parametrize("dims,expected", [(2, "unet2d"), (3, "unet3d")])
def test_a_bare_model_is_recognised_by_what_it_is(tmp_path, dims, expected):
    from kerasbrain.models.unet import UNet

    path = tmp_path / "bare" / "model.keras"
    path.parent.mkdir()
    UNet(spatial_dims=dims, in_channels=3, out_channels=1, base_filters=2, depth=1).save(path)
    assert family_of_run(path).name == expected


def test_the_run_folder_written_by_training_records_its_family(tmp_path):
    from kerasbrain.runs import read_run_info
    from kerasbrain.training.scaffold import start_run

    run = start_run(tmp_path / "run", "unet2d", SliceConfig(), seed=0)
    info = read_run_info(run.dir)
    assert info["family"] == "unet2d" and info["backend"] in ("tensorflow", "jax")
    assert json.loads((run.dir / "config.json").read_text())["stages"][0]["epochs"] == 20
    assert run.completed_epochs == 0 and run.budget is None


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setattr(families, "_FAMILIES", dict(families._FAMILIES))
    families.register_family("toy", "tests.toy_family")
    yield


def test_a_new_family_is_one_registration_away_from_the_cli(toy_registered, tmp_path):
    runner = CliRunner()
    listing = runner.invoke(cli, ["train", "--help"])
    assert "toy" in listing.output and "A test family" in listing.output
    assert "--widgets" in runner.invoke(cli, ["train", "toy", "--help"]).output
    result = runner.invoke(cli, ["train", "toy", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                                 "--config", "c.toml", "--widgets", "3", "--time-budget", "1.5"])
    assert result.exit_code == 0, result.output
    called = json.loads((tmp_path / "run" / "called.json").read_text())
    assert called == {"data": str(tmp_path), "config": {"config": "c.toml"}, "widgets": 3, "time_budget": 1.5}
    assert "best model:" in result.output
    bad = runner.invoke(cli, ["train", "toy", "--data", str(tmp_path), "--out", str(tmp_path / "r2"), "--widgets", "0"])
    assert bad.exit_code == 2 and "--widgets" in bad.output


def test_a_verb_the_family_lacks_is_one_clear_line(toy_registered, tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"family": "toy"}))
    (tmp_path / "best.keras").write_text("not used")
    result = CliRunner().invoke(cli, ["evaluate", "--model", str(tmp_path), "--data", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: the toy family has no evaluation yet"
    assert not (tmp_path.parent / "evaluation").exists()


def test_registering_a_taken_name_is_refused(toy_registered):
    with pytest.raises(ValueError, match="already registered"):
        families.register_family("unet3d", "somewhere.else")


def test_a_budgeted_run_without_a_config_starts_from_the_familys_budget_recipe(toy_registered, tmp_path, monkeypatch):
    import kerasbrain.runtime
    from tests import toy_family

    monkeypatch.setattr(toy_family.ToyFamily, "budget_config", "toy_budget")
    monkeypatch.setattr(kerasbrain.runtime, "has_gpu", lambda: False)  # the same answer on a GPU machine
    runner = CliRunner()
    budgeted = runner.invoke(cli, ["train", "toy", "--data", str(tmp_path), "--out", str(tmp_path / "a"),
                                   "--time-budget", "5"])
    assert budgeted.exit_code == 0, budgeted.output
    assert json.loads((tmp_path / "a" / "called.json").read_text())["config"] == {"config": "toy_budget"}
    assert "no --config: using toy_budget" in budgeted.output
    for extra, expected in (([], None), (["--config", "mine.toml", "--time-budget", "5"], "mine.toml")):
        result = runner.invoke(cli, ["train", "toy", "--data", str(tmp_path), "--out", str(tmp_path / "b"), *extra])
        assert result.exit_code == 0, result.output
        assert json.loads((tmp_path / "b" / "called.json").read_text())["config"] == {"config": expected}
        assert "no --config" not in result.output


def test_the_volumetric_budget_recipe_is_for_cpus(monkeypatch):
    import kerasbrain.runtime

    family = families.get_family("unet3d")
    monkeypatch.setattr(kerasbrain.runtime, "has_gpu", lambda: False)
    assert family.default_config_name(25.0) == "cpu_budget_unet3d" and family.default_config_name(None) is None
    assert family.load_config(family.default_config_name(25.0)).training.patch_size == (48, 48, 48)
    monkeypatch.setattr(kerasbrain.runtime, "has_gpu", lambda: True)
    assert family.default_config_name(25.0) is None  # a GPU trains the long-run defaults


def test_the_slice_budget_recipe_is_the_races_and_for_cpus(monkeypatch):
    import kerasbrain.runtime

    family = families.get_family("unet2d")
    monkeypatch.setattr(kerasbrain.runtime, "has_gpu", lambda: False)
    assert family.default_config_name(10.0) == "cpu_budget_unet2d" and family.default_config_name(None) is None
    assert families.get_family("multitask").default_config_name(10.0) is None  # no budget recipe measured yet
    budget = family.load_config("cpu_budget_unet2d")  # bench/race2d.py's 10-minute settings at batch 4
    assert (budget.model.encoder, budget.training.batch_size, budget.training.loss) == ("none", 4, "dice_bce")
    assert [(s.learning_rate, s.freeze_encoder) for s in budget.stages] == [(1e-3, False)]
    assert (budget.augmentation.flip, budget.augmentation.rotation_degrees, budget.augmentation.elastic) == (
        True, 0.0, False)
    assert budget.model.norm == "auto" and budget.training.bn_recalibration_batches > 0
    monkeypatch.setattr(kerasbrain.runtime, "has_gpu", lambda: True)
    assert family.default_config_name(10.0) is None


def test_declared_capabilities_match_what_each_family_implements():
    """A family declares what it can do; the declaration and the methods it overrides agree."""
    from kerasbrain.families.base import CAPABILITIES, ModelFamily

    implemented_by = {"evaluate": "evaluate", "explain": "explain", "export": "export", "predict": "predict",
                      "predict_folder": "predict", "image_analysis": "load_with_size"}
    for name in families.family_names():
        family = get_family(name)
        assert family.capabilities <= set(CAPABILITIES), name
        for capability, method in implemented_by.items():
            overridden = getattr(type(family), method, None) is not getattr(ModelFamily, method, None)
            if family.can(capability):
                assert overridden, f"{name} declares {capability} without {method}"
    assert get_family("unet3d").can("predict_server") and not get_family("unet2d").can("predict_server")
    assert get_family("classifier").can("explain") and not get_family("segmenter").can("explain")
    with pytest.raises(KeyError, match="unknown capability 'fly'"):
        get_family("unet3d").can("fly")


def test_a_served_slice_model_is_refused_before_anything_runs_and_not_offered_by_the_app(tmp_path):
    """A 2-D slice family cannot predict through a server yet: predict says so, the app does not list it."""
    from kerasbrain.app.catalogue import find_served_models

    version = tmp_path / "saved_models" / "slices" / "1"
    (version / "assets.extra").mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    (version / "assets.extra" / "kerasbrain.json").write_text(json.dumps({"family": "unet2d",
                                                                          "kind": "slice_segmentation"}))
    picture = tmp_path / "slice.png"
    picture.write_bytes(b"\x89PNG")
    result = CliRunner().invoke(cli, ["predict", "--server", "http://127.0.0.1:9", "--model", "slices",
                                      "--saved-models", str(tmp_path / "saved_models"), "--input", str(picture),
                                      "--out", str(tmp_path / "out.png")])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: slices: a unet2d model cannot predict through a served model (--server)"
    assert find_served_models("http://127.0.0.1:9", tmp_path / "saved_models", warn=print) == []
