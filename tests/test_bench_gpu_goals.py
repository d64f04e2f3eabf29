"""bench/gpu_goals.py: issue 31's goal lines from hand-made rows, so a GPU session's verdict is right."""

import json
import subprocess
import sys

from tests.bench_scripts import BENCH, load_bench_script

SCRIPT = BENCH / "gpu_goals.py"
gpu_goals = load_bench_script("gpu_goals")


def training_row(row, batch, rate):
    return {"system": row.split()[0], "row": row, "batch": batch, "patches_per_s": rate}


def volume_row(network, what, precision, seconds, system="kerasbrain"):
    return {"system": system, "network": network, "what": what, "precision": precision, "median_s": seconds}


def test_training_ratio_per_batch_and_a_missing_row():
    rows = [training_row("kerasbrain device aug", 1, 30.0), training_row("monai compiled", 1, 20.0),
            training_row("kerasbrain device aug", 2, 40.0), training_row("monai compiled", 2, 32.0),
            training_row("kerasbrain host aug", 4, 99.0), training_row("kerasbrain device aug", 4, 50.0)]
    lines = gpu_goals.training_lines(rows)
    assert lines[0] == ("training, batch 1: kerasbrain 30.0 vs MONAI compiled 20.0 patches/s = 1.50x "
                        "(goal 1.5x): met")  # exactly the goal counts as met
    assert lines[1].endswith("= 1.25x (goal 1.5x): NOT met")
    assert lines[2] == "training, batch 4: monai compiled not measured"
    assert gpu_goals.training_lines([]) == ["training: no rows measured"]


def test_tta_takes_the_default_networks_fastest_precision_only():
    rows = [volume_row("default", "volume, mirror TTA", "fp32", 0.41),
            volume_row("default", "volume, mirror TTA", "bf16", 0.27),
            volume_row("default", "volume", "bf16", 0.05),  # plain volumes are not the goal
            volume_row("wider (28..224)", "volume, mirror TTA", "bf16", 0.01),  # another network
            volume_row("BasicUNet", "volume, mirror TTA", "bf16", 0.02, system="monai")]
    line = gpu_goals.tta_line(rows)
    assert line.startswith("whole volume with mirror TTA: 0.270 s (bf16; measured fp32 0.410 s, bf16 0.270 s)")
    assert line.endswith("(goal <= 0.3 s): met")
    assert gpu_goals.tta_line(rows[:1]).endswith("NOT met")
    assert gpu_goals.tta_line(rows[2:]) == "whole volume with mirror TTA: not measured"


def test_the_script_reads_a_cut_off_sessions_files(tmp_path):
    gpu = tmp_path / "gpu_goals.json"
    gpu.write_text(json.dumps([volume_row("default", "volume, mirror TTA", "bf16", 0.2)]))
    out = subprocess.run([sys.executable, str(SCRIPT), str(gpu), str(tmp_path / "never_written.json")],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0].startswith(f"{tmp_path / 'never_written.json'}: no rows")
    assert out[1].endswith("(goal <= 0.3 s): met")
    assert out[2] == "training: no rows measured"
