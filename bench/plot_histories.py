"""Per-epoch curves of several runs side by side, from their `history.csv`: one picture to compare schedules.

    python bench/plot_histories.py NAME=RUN_DIR [NAME=RUN_DIR ...] --out curves.png [--metrics dice val_dice]

Each RUN_DIR is a kerasbrain run folder (or a history CSV); each metric is one panel (a column of
`history.csv`, e.g. `val_dice`, `loss`, `val_class_accuracy`). A run that lacks a metric leaves it out.
"""

import argparse
import csv
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from kerasbrain.evaluation.figures import save_history_curves  # noqa: E402

TITLES = {"dice": "training Dice", "val_dice": "validation Dice", "loss": "training loss", "val_loss": "validation loss"}


def read_history(path: Path) -> list[dict]:
    path = path / "history.csv" if path.is_dir() else path
    if not path.is_file():
        sys.exit(f"{path}: no such history file")
    return list(csv.DictReader(path.open()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    parser.add_argument("--metrics", nargs="+", default=["dice", "val_dice"])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    series = {}
    for item in args.runs:
        name, _, run = item.rpartition("=")
        rows = read_history(Path(run))
        series[name or run] = [[float(r[m]) for r in rows if r.get(m)] for m in args.metrics]
    print(save_history_curves(args.out, series, tuple(TITLES.get(m, m) for m in args.metrics)))


if __name__ == "__main__":
    main()
