"""Issue 31's two speed goals read off the rows of `gpu_session.sh goals`, one line each.

    python bench/gpu_goals.py GPU_JSON GPU_TRAINING_JSON

- end-to-end training: kerasbrain with device augmentation at least 1.5x MONAI compiled, at each
  batch size both measured (patches/s of `bench/gpu_training.py`'s rows);
- a whole BraTS-size volume with mirror TTA in at most 0.3 s (`bench/gpu.py`'s default network,
  the fastest precision measured; bf16 is what `[inference] precision = "auto"` picks on a GPU).

Rows a cut-off call did not measure are said missing, not counted as failed.
"""

from __future__ import annotations

import json
import sys

SPEEDUP_GOAL = 1.5
TTA_SECONDS_GOAL = 0.3


def training_lines(rows):
    """One line per batch size: kerasbrain device aug against MONAI compiled."""
    rate = {(r["row"], r["batch"]): r["patches_per_s"] for r in rows}
    lines = []
    for batch in sorted({r["batch"] for r in rows}):
        ours, theirs = rate.get(("kerasbrain device aug", batch)), rate.get(("monai compiled", batch))
        if ours is None or theirs is None:
            missing = "kerasbrain device aug" if ours is None else "monai compiled"
            lines.append(f"training, batch {batch}: {missing} not measured")
            continue
        ratio = ours / theirs
        verdict = "met" if ratio >= SPEEDUP_GOAL else "NOT met"
        lines.append(f"training, batch {batch}: kerasbrain {ours:.1f} vs MONAI compiled {theirs:.1f} patches/s = "
                     f"{ratio:.2f}x (goal {SPEEDUP_GOAL}x): {verdict}")
    return lines or ["training: no rows measured"]


def tta_line(rows):
    """The default network's whole volume with mirror TTA, its fastest precision."""
    tta = [r for r in rows if r["system"] == "kerasbrain" and r["network"] == "default"
           and r["what"] == "volume, mirror TTA"]
    if not tta:
        return "whole volume with mirror TTA: not measured"
    best = min(tta, key=lambda r: r["median_s"])
    verdict = "met" if best["median_s"] <= TTA_SECONDS_GOAL else "NOT met"
    others = ", ".join(f"{r['precision']} {r['median_s']:.3f} s" for r in tta)
    return (f"whole volume with mirror TTA: {best['median_s']:.3f} s ({best['precision']}; measured {others}) "
            f"(goal <= {TTA_SECONDS_GOAL} s): {verdict}")


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    rows = []
    for path in argv:
        try:
            with open(path) as f:
                rows.append(json.load(f))
        except (OSError, json.JSONDecodeError) as error:
            print(f"{path}: no rows ({error})")
            rows.append([])
    for line in [tta_line(rows[0]), *training_lines(rows[1])]:
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
