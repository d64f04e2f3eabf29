"""A model family defined outside kerasbrain, to show a new family needs no edit to the CLI."""

import json
from pathlib import Path

from kerasbrain.families import ModelFamily, TrainOption


class ToyFamily(ModelFamily):
    name = "toy"
    description = "A test family that records how it was called."
    train_options = (TrainOption("widgets", int, "How many widgets to make.", minimum=1),)

    def load_config(self, path):
        return {"config": path}

    def train(self, data, out, config, time_budget=None, progress=print, widgets=None):
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps({"family": self.name}))
        (out / "called.json").write_text(json.dumps({"data": str(data), "config": config, "widgets": widgets,
                                                     "time_budget": time_budget}))
        return {"best": out / "best.keras", "last": out / "last.keras"}


FAMILY = ToyFamily()
