"""`kerasbrain demo`: the whole volumetric pipeline on a small phantom dataset, in a few CPU minutes."""

from __future__ import annotations

import json
from pathlib import Path

from kerasbrain.training.config import config_from_dict

#: A small network and small volumes, so the demo trains for a few minutes on two CPU cores.
DEMO_CONFIG = {
    "model": {"base_filters": 8, "depth": 3},
    "training": {"patch_size": [48, 48, 48], "batch_size": 2, "validation_patches": 8, "learning_rate": 3e-3,
                 "loss": "dice_ce", "fg_fraction": 0.5},
    "inference": {"window": [64, 64, 64], "overlap": 0.25, "batch_size": 2},
    "data": {"validation_fraction": 0.25},
}
DEMO_SHAPE = (64, 64, 48)
#: Training stops after this many minutes if the epochs have not ended first, with the learning rate
#: decayed over the minutes (`ScheduledLearningRate`): the demo takes about as long on any machine (with
#: all 30 epochs it took 3.7 min on one 2-core CPU and 5.8 on another) and a slower one trains fewer epochs.
DEMO_MINUTES = 2.0


def run_demo(out, cases: int = 10, epochs: int = 30, steps_per_epoch: int = 25, progress=print,
             shape: tuple[int, int, int] = DEMO_SHAPE, minutes: float | None = DEMO_MINUTES) -> dict:
    """Synthesise, train, evaluate and predict through the volumetric family's verbs, as the CLI does.
    `minutes`: the training's time budget (None: all the epochs, however long they take)."""
    from kerasbrain.data.layouts import discover
    from kerasbrain.data.phantom import write_dataset
    from kerasbrain.families import PredictRequest, get_family

    family = get_family("unet3d")
    out = Path(out)
    data = out / "Task01_BrainTumour"
    progress(f"1/4 synthesising {cases} MSD-layout phantom cases in {data}")
    write_dataset(data, "msd", cases=cases, shape=tuple(shape), seed=0, test_cases=1)
    config = config_from_dict(DEMO_CONFIG, "demo")
    budget = f" or {minutes:g} min, whichever ends first" if minutes else ""
    progress(f"2/4 training a small 3-D U-Net for {epochs} epochs x {steps_per_epoch} steps{budget}")
    run = out / "run"
    result = family.train(data, run, config, time_budget=minutes, progress=progress, epochs=epochs,
                          steps_per_epoch=steps_per_epoch)
    progress("3/4 evaluating on the held-out validation cases (whole volumes, sliding window)")
    evaluation = family.evaluate(result["best"], data, out / "evaluation", case_ids=result["split"]["validation"],
                                 progress=progress)
    progress("4/4 segmenting an unlabelled test case")
    test_case = discover(data).test_cases[0]
    prediction = out / "prediction" / f"{test_case.case_id}_seg.nii.gz"
    prediction = family.predict(PredictRequest(str(result["best"]), tuple(test_case.images), prediction,
                                            overlay=out / "prediction" / f"{test_case.case_id}_overlay.png"),
                             progress=lambda message: None)
    outputs = {
        "dataset": str(data), "run": str(run), "best_model": str(result["best"]), "tensorboard": str(run / "logs"),
        "evaluation_csv": str(out / "evaluation" / "cases.csv"),
        "evaluation_summary": str(out / "evaluation" / "summary.md"),
        "prediction": str(prediction.mask), "overlay": str(prediction.figure),
    }
    progress("\n" + evaluation["text"] + "\n")
    progress("outputs:\n" + "\n".join(f"  {k:20s} {v}" for k, v in outputs.items()))
    (out / "outputs.json").write_text(json.dumps(outputs, indent=2))
    return outputs
