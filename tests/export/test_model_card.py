"""The model card says what the run folder and the manifest say, and no more."""

import json

from kerasbrain.export.model_card import model_card


def test_a_card_from_the_run_folder(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"family": "multitask", "kerasbrain": "0.9", "keras": "3.15.1",
                                                   "backend": "jax"}))
    (tmp_path / "config.json").write_text(json.dumps({"data": {"image_size": 128}, "training": {"epochs": 3}}))
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "summary.md").write_text("Accuracy 0.9000 | macro F1 0.8800\n")
    manifest = {"name": "brisc", "version": 2, "family": "multitask", "kind": "image_classification",
                "image_size": 128, "calibration_temperature": 1.75}
    card = model_card(manifest, tmp_path)
    assert card.startswith("# brisc, version 2\n")
    for text in ("temperature 1.7500 folded into the class layer", "- image_size: 128", "backend jax",
                 "`data.image_size` = 128", "`training.epochs` = 3", "## Evaluation (test images)",
                 "Accuracy 0.9000 | macro F1 0.8800", "not a medical device"):
        assert text in card, text
    assert "## Calibration" not in card  # no calibration/ folder in this run


def test_a_bare_model_gets_a_short_honest_card():
    card = model_card({"name": "m", "version": 1})
    assert "calibration: none" in card and "## Training configuration" not in card and "volume" in card
