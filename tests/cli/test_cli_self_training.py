"""The label-efficient chain with the issue-32 options from the command line: the healthy atlas (the
default seed map), GrabCut, a share of drawn masks, self-training rounds and the drawn-mask sweep,
checked against the files each stage wrote (tiny phantoms; the methods' known answers are in
tests/evaluation and tests/experiments)."""

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import once_on

pytestmark = once_on("jax")  # with the plain chain (test_cli_label_efficient.py): TensorFlow carries more once tests


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("self_training")
    assert run("synth", "brisc", "--out", root / "data", "--per-class", 4, "--seed", 9).exit_code == 0
    result = run("experiment", "label-efficient", "--data", root / "data", "--out", root / "run", "--quick",
                 "--refine", "grabcut",  # the default seed map (the healthy atlas), refined
                 "--self-training-rounds", 2, "--drawn-fraction", 0.3, "--drawn-sweep", 0.6)
    assert result.exit_code == 0, result.output
    return root, json.loads((root / "run" / "results.json").read_text()), result.output


def test_drawn_masks_are_kept_as_drawn(chain):
    from kerasbrain.data.tumour_images import discover_tumour_images, read_binary_mask

    root, report, _ = chain
    with open(root / "run" / "pseudomasks" / "pseudomasks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    drawn = [r for r in rows if r["mask_source"] == "drawn"]
    assert len(drawn) == report["drawn_images"] > 0 and report["drawn_fraction"] == 0.3
    samples = {s.id: s for s in discover_tumour_images(root / "data")}
    for row in drawn:  # the written mask is the drawing, pixel for pixel
        source = samples[row["id"]]
        written = cv2.imread(str(root / "run" / "pseudomasks" / "brisc2025" / "segmentation_task" / row["subset"]
                                 / "masks" / f"{row['stem']}.png"), cv2.IMREAD_GRAYSCALE) > 0
        np.testing.assert_array_equal(written, read_binary_mask(source.mask, written.shape))
        assert row["subset"] == "train"  # validation images are training-set images, never the test set's
    summary = json.loads((root / "run" / "pseudomasks" / "summary.json").read_text())
    assert summary["settings"]["method"] == "atlas" and summary["settings"]["refine"] == "grabcut"
    assert summary["seeds_vs_drawn"]["n"] == summary["vs_drawn"]["n"]  # the seeds and the refined masks, each scored


def test_rounds_follow_the_stop_rule_and_the_chosen_network_is_evaluated(chain):
    from kerasbrain.experiments.self_training import SelfTraining, round_decision

    root, report, output = chain
    rows = report["self_training"]
    assert rows[0]["round"] == 0 and 2 <= len(rows) <= 3
    best = 0
    for row in rows[1:]:  # replay the decisions from the recorded numbers
        keep, stop = round_decision(rows[best]["validation_dice"], row["validation_dice"],
                                    row["agreement_with_previous"], SelfTraining(rounds=2))
        best = row["round"] if keep else best
        assert bool(stop) == ("decision" in row)
        if stop:
            break
    chosen = [r["round"] for r in rows if r.get("chosen")]
    assert chosen == [best] and report["final_run"] == rows[best]["run"]
    assert "## Self-training rounds" in output and "(chosen)" in output
    # each round's score is its network's pooled Dice on every validation tumour image against its drawn
    # mask where the fixture drew it and its first pseudo-mask elsewhere, recomputed here from the files
    from kerasbrain.data.tumour_images import discover_tumour_images, load_samples
    from kerasbrain.families import get_family
    from kerasbrain.families.base import InferenceOverrides

    with open(root / "run" / "pseudomasks" / "pseudomasks.csv", newline="") as f:
        first = {r["id"]: r for r in csv.DictReader(f)}
    split = json.loads((root / "run" / "classifier" / "split.json").read_text())
    by_stem = {s.id: s for s in discover_tumour_images(root / "run" / "pseudomasks" / "brisc2025")}
    validation = sorted(i for i in split["validation"] if first[i]["class"] != "no_tumor")
    drawn = sum(first[i]["mask_source"] == "drawn" for i in validation)
    assert 0 < drawn < len(validation)  # the fixture's share reaches some validation images, not all
    for row in rows:
        model, size = get_family("multitask").load_with_size(f"{row['run']}/best.keras", InferenceOverrides())
        images, _, masks, _ = load_samples([by_stem[first[i]["stem"]] for i in validation], size)
        predicted = np.asarray(model.predict_on_batch(images.astype(np.float32) / 255.0)["mask"])[..., 0] >= 0.5
        truth = masks[..., 0] > 0
        total = truth.sum() + predicted.sum()
        expected = 1.0 if total == 0 else 2 * (truth & predicted).sum() / total
        assert row["validation_dice"] == pytest.approx(expected, abs=1e-6), row["round"]
        against = f"{drawn} drawn + {len(validation) - drawn} pseudo"
        assert row["validation_against"] == against
        # the threshold was chosen against the same reference and folded into the scored best.keras
        assert json.loads((Path(row["run"]) / "mask_threshold.json").read_text())["against"] == against


def test_the_drawn_sweep_repeats_the_mask_stages_with_more_drawings(chain):
    from kerasbrain.data.tumour_images import discover_tumour_images
    from kerasbrain.experiments.self_training import pick_drawn

    root, report, output = chain
    rows = report["drawn_sweep"]
    assert [r["fraction"] for r in rows] == [0.3, 0.6]  # the chain's own share, then the sweep's
    split = json.loads((root / "run" / "classifier" / "split.json").read_text())
    seed = json.loads((root / "run" / "classifier" / "config.json").read_text())["training"]["seed"]
    expected = pick_drawn(discover_tumour_images(root / "data"), split, 0.6, seed)
    assert rows[1]["drawn_images"] == len(expected) > rows[0]["drawn_images"]
    folder = root / "run" / "drawn_0.6"
    assert not (folder / "simclr").exists() and not (folder / "classifier").exists()  # shared with the chain
    with open(folder / "pseudomasks" / "pseudomasks.csv", newline="") as f:
        assert {r["id"] for r in csv.DictReader(f) if r["mask_source"] == "drawn"} == expected
    for row in rows:  # each row is its network's evaluation against the drawn test masks
        summary = json.loads((Path(row["run"]) / "evaluation_drawn" / "summary.json").read_text())
        assert row["dice_vs_drawn"] == summary["masks"]["dice"] and row["accuracy"] == summary["classes"]["accuracy"]
    assert rows[0]["run"] == report["final_run"] and Path(rows[1]["run"]).is_relative_to(folder)
    assert "## What a few drawings buy" in output and "| 60% | " in output


def test_a_finished_chain_is_swept_with_its_own_settings(chain, tmp_path):
    root, report, _ = chain
    result = run("experiment", "drawn-sweep", "--chain", root / "run", "--data", root / "data", "--shares", 0.9)
    assert result.exit_code == 0, result.output
    rows = json.loads((root / "run" / "drawn_sweep.json").read_text())["rows"]
    assert [r["fraction"] for r in rows] == [0.9] and rows[0]["drawn_images"] > report["drawn_sweep"][1]["drawn_images"]
    summary = json.loads((root / "run" / "drawn_0.9" / "pseudomasks" / "summary.json").read_text())
    assert summary["settings"] == report["pseudomasks"]["settings"]  # the chain's seed map, atlas + GrabCut
    config = json.loads((root / "run" / "drawn_0.9" / "multitask" / "config.json").read_text())
    assert config == json.loads((root / "run" / "multitask" / "config.json").read_text())  # SimCLR encoder too
    assert "| 90% | " in (root / "run" / "drawn_sweep.md").read_text()
    for args in (("--chain", tmp_path, "--data", root / "data"),  # not a chain
                 ("--chain", root / "run", "--data", root / "data", "--shares", "0.1,x")):
        result = CliRunner().invoke(cli, ["experiment", "drawn-sweep", *[str(a) for a in args]])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert result.output.strip().splitlines()[-1].startswith("Error: "), result.output
