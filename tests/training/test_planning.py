"""`kerasbrain data plan`: the fingerprint against an independent reader, the planning rules against
hand-computed answers, the planned config read back and trained on."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from kerasbrain.config import config_to_toml, load_config_file
from kerasbrain.data.fingerprint import CaseFingerprint, DatasetFingerprint, fingerprint_dataset
from kerasbrain.data.phantom import write_dataset
from kerasbrain.training import planning
from kerasbrain.training.config import Config, ModelConfig, config_from_dict
from tests.conftest import TINY_SHAPE, once


def fingerprint(spacings, heads):
    cases = tuple(CaseFingerprint(f"c{i}", tuple(map(float, s)), tuple(h), tuple(h), 4)
                  for i, (s, h) in enumerate(zip(spacings, heads)))
    return DatasetFingerprint("data", "msd", cases)


def test_target_spacing_is_the_median_voxel_size():
    fp = fingerprint([(1, 1, 1), (1, 1, 1.5), (0.8, 1, 1.2)], [(100, 120, 90)] * 3)
    spacing, reason = planning.choose_target_spacing(fp)
    assert spacing == (1.0, 1.0, 1.2)
    assert "median" in reason


def test_thick_slices_keep_their_10th_percentile():
    # 0.5 mm in-plane, 3-6 mm slices, ~30 slices against 400 voxels in plane: thick-sliced
    fp = fingerprint([(0.5, 0.5, 5), (0.5, 0.5, 5), (0.5, 0.5, 6), (0.5, 0.5, 3), (0.5, 0.5, 5)], [(400, 400, 30)] * 5)
    spacing, reason = planning.choose_target_spacing(fp)
    assert spacing == (0.5, 0.5, 3.8)  # np.percentile([3, 5, 5, 5, 6], 10) = 3 + 0.4 * (5 - 3)
    assert "thick slices along axis 2" in reason
    # the same spacings over a head as long along z as in plane: not thick-sliced, the median stays
    fp = fingerprint([(0.5, 0.5, 5)] * 4 + [(0.5, 0.5, 3)], [(400, 400, 200)] * 5)
    assert planning.choose_target_spacing(fp)[0] == (0.5, 0.5, 5.0)


def test_a_large_budget_takes_the_whole_median_head():
    fp = fingerprint([(1, 1, 1)] * 3, [(100, 120, 90), (98, 118, 92), (104, 124, 88)])
    plan = planning.plan_training(fp, ModelConfig(), memory_gb=64)
    assert plan.median_shape == (100, 120, 90)
    assert plan.depth == 4  # the base config's: 90 / 16 leaves more than 4 voxels
    assert plan.patch_size == (112, 128, 96)  # each side the next multiple of 16
    assert plan.batch_size == 2  # 5% of three heads holds less than one patch


def test_a_small_budget_shrinks_the_longest_share_first_and_fits():
    fp = fingerprint([(1, 1, 1)] * 400, [(140, 170, 140)] * 400)
    plan = planning.plan_training(fp, ModelConfig(), memory_gb=4)
    model = ModelConfig(depth=plan.depth)
    assert planning.estimate_training_gb(plan.patch_size, plan.batch_size, model) <= 4
    assert all(p % 2**plan.depth == 0 for p in plan.patch_size)
    assert all(p <= m for p, m in zip(plan.patch_size, (144, 176, 144)))
    # one step larger along any axis would not fit at batch 2
    for axis in range(3):
        bigger = list(plan.patch_size)
        bigger[axis] += 2**plan.depth
        assert planning.estimate_training_gb(bigger, 2, model) > 4
    # a bigger budget holds a bigger patch or batch, never a smaller one
    roomy = planning.plan_training(fp, ModelConfig(), memory_gb=16)
    assert np.prod(roomy.patch_size) * roomy.batch_size > np.prod(plan.patch_size) * plan.batch_size


def test_thick_slices_wait_to_be_pooled_and_the_batch_follows_the_memory():
    fp = fingerprint([(0.5, 0.5, 5)] * 2000, [(200, 200, 24)] * 2000)
    plan = planning.plan_training(fp, ModelConfig(), memory_gb=64)
    assert plan.target_spacing == (0.5, 0.5, 5.0)
    # in-plane voxels 0.5 -> 1 -> 2 -> 4 mm while the 5 mm slices wait; at 4 mm they are within 2x: pooled
    assert plan.strides == ((2, 2, 1), (2, 2, 1), (2, 2, 1), (2, 2, 2)) and plan.depth == 4
    assert plan.kernel_sizes == ((3, 3, 1),) * 3 + ((3, 3, 3),) * 2  # 5 mm slices mixed once pixels are 4 mm
    assert plan.patch_size == (208, 208, 24)  # multiples of 16, 16 and 2
    model = ModelConfig(strides=plan.strides)
    per_patch = planning.estimate_training_gb(plan.patch_size, 1, model) - planning.MEMORY_FIT["unet"][0]
    fitting = int((64 - planning.MEMORY_FIT["unet"][0]) // per_patch)
    assert 2 < fitting < 0.05 * 2000 * 200 * 200 * 24 / (208 * 208 * 24)  # the memory, not the 5% rule, decides
    assert plan.batch_size == fitting


def test_strides_pool_what_is_fine_and_long_enough():
    assert planning.choose_strides((64, 64, 64), (1, 1, 1), 4) == ((2, 2, 2),) * 4
    assert planning.choose_strides((32, 32, 32), (1, 1, 1), 5) == ((2, 2, 2),) * 3  # 4 voxels left: stop
    # a short z (6 voxels) is never pooled and does not hold back the in-plane axes
    assert planning.choose_strides((64, 64, 6), (1, 1, 1), 4) == ((2, 2, 1),) * 4
    # 3 mm slices at 1 mm in plane: pooled once the in-plane voxels are 2 mm
    assert planning.choose_strides((128, 128, 40), (1, 1, 3), 4) == ((2, 2, 1),) + ((2, 2, 2),) * 3
    # kernels: 1 voxel wide along 3 mm slices until the in-plane voxels are 2 mm (then within 2x), 3 from then on
    assert planning.choose_kernels(((2, 2, 1), (2, 2, 1), (2, 2, 2), (2, 2, 2)), (0.5, 0.5, 3.0)) == (
        (3, 3, 1), (3, 3, 1), (3, 3, 3), (3, 3, 3), (3, 3, 3))
    assert planning.choose_kernels(((2, 2, 2),) * 3, (1.0, 1.0, 1.0)) == ((3, 3, 3),) * 4
    # with kept values counted at each level's own size
    model = ModelConfig(depth=1, base_filters=2, strides=((2, 2, 1),))
    assert planning.kept_values((4, 4, 3), model) == 4 * 4 * 3 * 2 * 4 + 2 * 2 * 3 * 4 * 2


def test_too_little_memory_is_refused_in_one_sentence():
    fp = fingerprint([(1, 1, 1)] * 3, [(100, 120, 90)] * 3)
    with pytest.raises(ValueError, match="GB of training memory does not hold even batch 2"):
        planning.plan_training(fp, ModelConfig(), memory_gb=planning.MEMORY_FIT["unet"][0])


def test_the_planned_config_keeps_the_base_and_stays_valid():
    base = config_from_dict({"model": {"deep_supervision": 3, "architecture": "resenc", "blocks_per_stage": [1, 2, 2, 3, 3]},
                             "training": {"learning_rate": 1e-3}})
    plan = planning.Plan((1.0, 1.0, 3.0), (60, 60, 20), (64, 64, 16), 2, 3, 8.0, 3.0, ("r",))
    config = planning.planned_config(base, plan)
    assert config.model.depth == 2 and config.model.deep_supervision == 1 and config.model.blocks_per_stage == (1, 2, 2)
    assert config.training.patch_size == config.inference.window == (64, 64, 16)
    assert config.training.batch_size == 3 and config.data.target_spacing == (1.0, 1.0, 3.0)
    assert config.training.learning_rate == 1e-3


def test_a_config_written_as_toml_reads_back_the_same(tmp_path):
    config = config_from_dict({"augment": False, "data": {"target_spacing": [1.0, 1.25, 3.0]},
                               "model": {"norm": "batch", "depth": 3, "strides": [[2, 2, 1], [2, 2, 2], [2, 2, 2]],
                                         "kernel_sizes": [[3, 3, 1], [3, 3, 3], [3, 3, 3], [3, 3, 3]]},
                               "training": {"learning_rate": 3e-4, "patch_size": [64, 64, 32], "optimizer": "sgd"},
                               "inference": {"window": [64, 64, 32], "mirror": False}})
    text = config_to_toml(config, header=("a header", 'with "quotes"'))
    assert text.startswith('# a header\n# with "quotes"\n')
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert load_config_file(Config, path) == config
    assert config_to_toml(Config()) == "\n"  # nothing differs from the defaults


def _phantoms(folder, spacing):
    """The tiny MSD phantoms with voxels of `spacing` mm."""
    return write_dataset(folder / "Task01_BrainTumour", "msd", cases=3, shape=TINY_SHAPE, seed=7, spacings=[spacing])


def test_the_fingerprint_matches_simpleitk(tmp_path):
    import SimpleITK as sitk

    data = _phantoms(tmp_path, (1.0, 1.25, 3.0))
    fp = fingerprint_dataset(data, progress=None)
    assert len(fp.cases) == 3 and fp.modalities == 4
    for case in fp.cases:
        image = sitk.ReadImage(str(data / "imagesTr" / f"{case.case_id}.nii.gz"))
        assert case.spacing == pytest.approx(image.GetSpacing()[:3])
        voxels = sitk.GetArrayFromImage(image)  # (modality, z, y, x)
        head = np.argwhere(np.any(voxels != 0, axis=0))
        assert case.cropped_shape == tuple(int(n) for n in (head.max(0) - head.min(0) + 1)[::-1])
        assert case.shape == tuple(image.GetSize()[:3])
    assert DatasetFingerprint.from_dict(json.loads(json.dumps(fp.to_dict()))) == fp


@once
def test_the_plan_command_writes_a_config_train_reads(tmp_path):
    from cli.main import cli

    data = _phantoms(tmp_path, (1.0, 1.0, 3.0))
    base = tmp_path / "base.toml"
    base.write_text("[model]\nbase_filters = 4\ndepth = 2\ndeep_supervision = 1\n[training]\nepochs = 1\n"
                    "steps_per_epoch = 1\nvalidation_patches = 1\n[postprocessing]\nchoose_on = \"off\"\n")
    out = tmp_path / "plans" / "plan.toml"
    result = CliRunner().invoke(cli, ["data", "plan", str(data), "--out", str(out), "--base", str(base),
                                      "--memory-gb", "2"])
    assert result.exit_code == 0, result.output
    config = load_config_file(Config, out)
    details = json.loads(out.with_suffix(".json").read_text())
    plan = details["plan"]
    assert config.data.target_spacing == tuple(plan["target_spacing"]) == (1.0, 1.0, 3.0)
    # 3 mm slices wait one level: in-plane voxels of 2 mm are within 2x of them
    assert config.model.strides == ((2, 2, 1), (2, 2, 2)) == tuple(map(tuple, plan["strides"]))
    assert config.model.kernel_sizes == ((3, 3, 1), (3, 3, 3), (3, 3, 3))
    assert [p % d for p, d in zip(config.training.patch_size, (4, 4, 2))] == [0, 0, 0]
    assert config.training.patch_size == config.inference.window == tuple(plan["patch_size"])
    assert config.model.base_filters == 4 and config.training.epochs == 1  # the base's settings kept
    assert len(details["fingerprint"]["cases"]) == 3
    assert all(r in out.read_text() for r in plan["reasons"])
    assert out.with_suffix(".png").stat().st_size > 10_000
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "unet3d", "--data", str(data), "--config", str(out), "--out", str(run)])
    assert result.exit_code == 0, result.output
    trained = json.loads((run / "config.json").read_text())
    assert trained["training"]["patch_size"] == plan["patch_size"]
    case = next((data / "imagesTr").glob("*.nii.gz"))  # the network with those strides predicts a whole case
    result = CliRunner().invoke(cli, ["predict", "--model", str(run), "--input", str(case),
                                      "--out", str(tmp_path / "seg.nii.gz")])
    assert result.exit_code == 0, result.output
    # a name that is not *.toml, and a folder that is no dataset, are refused in one line
    result = CliRunner().invoke(cli, ["data", "plan", str(data), "--out", str(tmp_path / "plan.json")])
    assert result.exit_code == 1 and "name it *.toml" in result.output
    result = CliRunner().invoke(cli, ["data", "plan", str(tmp_path / "plans"), "--out", str(tmp_path / "p.toml")])
    assert result.exit_code == 1 and "no dataset found" in result.output and not (tmp_path / "p.toml").exists()


def test_residual_encoders_count_their_blocks():
    # 16^3, depth 4, 16 filters doubling: voxels 4096, 512, 64, 8, 1 at 16, 32, 64, 128, 256 filters;
    # a plain stage keeps 2 convolution outputs (+ 2 in the decoder above the bottleneck), a residual
    # stage 2 per block (ResEnc-M: 1, 3, 4, 6, 6 blocks)
    plain = 4096 * 16 * 4 + 512 * 32 * 4 + 64 * 64 * 4 + 8 * 128 * 4 + 256 * 2
    residual = 4096 * 16 * 4 + 512 * 32 * 8 + 64 * 64 * 10 + 8 * 128 * 14 + 256 * 12
    assert planning.kept_values((16,) * 3, ModelConfig()) == plain == 348_672
    assert planning.kept_values((16,) * 3, ModelConfig(architecture="resenc")) == residual == 451_584
    assert planning.estimate_training_gb((16,) * 3, 2, ModelConfig(architecture="resenc")) == pytest.approx(
        planning.MEMORY_FIT["resenc"][0] + planning.MEMORY_FIT["resenc"][1] * 2 * residual / 1e9)
