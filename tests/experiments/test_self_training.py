"""Self-training's stop rules and drawn-mask choice, worked out by hand (the rounds themselves run in
tests/cli/test_cli_label_efficient.py)."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from kerasbrain.experiments.self_training import SelfTraining, pick_drawn, round_decision

RULES = SelfTraining(rounds=3, min_gain=0.01, stable_dice=0.95)


def test_a_round_must_beat_the_best_validation_dice_by_min_gain():
    assert round_decision(0.40, 0.42, 0.5, RULES) == (True, None)
    keep, stop = round_decision(0.40, 0.405, 0.99, RULES)  # not better: dropped, however stable its masks
    assert not keep and "does not beat" in stop
    assert round_decision(None, 0.02, 0.1, RULES) == (True, None)  # round 0 had no score: anything above 0.01


def test_a_kept_round_whose_masks_stop_changing_ends_the_loop():
    keep, stop = round_decision(0.40, 0.42, 0.96, RULES)
    assert keep and "agree" in stop


def test_without_any_validation_reference_only_stability_stops_the_loop():
    assert round_decision(None, None, 0.90, RULES) == (True, None)
    keep, stop = round_decision(None, None, 0.96, RULES)
    assert keep and "agree" in stop


@dataclass
class Sample:
    id: str
    label: int | None
    mask: Path | None


def test_drawn_masks_are_a_seeded_share_of_train_and_validation_tumour_images():
    samples = ([Sample(f"t{i}", 0, Path("m")) for i in range(20)] + [Sample(f"v{i}", 1, Path("m")) for i in range(5)]
               + [Sample("x0", 0, Path("m")), Sample("n0", 2, Path("m")), Sample("u0", 0, None)])
    split = {"train": [f"t{i}" for i in range(20)] + ["n0", "u0"], "validation": [f"v{i}" for i in range(5)],
             "test": ["x0"]}
    chosen = pick_drawn(samples, split, 0.2, seed=3)
    assert chosen <= {s.id for s in samples[:25]}  # no test, no-tumour or mask-less image
    assert len([c for c in chosen if c.startswith("t")]) == 4 and len([c for c in chosen if c.startswith("v")]) == 1
    assert chosen == pick_drawn(samples, split, 0.2, seed=3) != pick_drawn(samples, split, 0.2, seed=4)
    assert len(pick_drawn(samples, split, 0.01)) == 2  # one of each subset, so the stop rule has a drawing
    assert pick_drawn(samples, split, 0.0) == frozenset()
    with pytest.raises(ValueError):
        SelfTraining(confidence=1.0)
