"""Helpers shared by the benchmark scripts: timing statistics, peak memory, result lines."""

from __future__ import annotations

import json
import resource
import statistics
import time


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def timed(fn, repeats: int, warmup: int = 1) -> list[float]:
    """Run `fn` `warmup` times untimed, then `repeats` times; return the durations in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def report(name: str, times: list[float], unit_per_call: float = 1.0, unit: str = "items") -> None:
    med = statistics.median(times)
    print(f"{name}: median {med:.3f} s/call over {len(times)} calls "
          f"(min {min(times):.3f}, max {max(times):.3f}); {unit_per_call / med:.2f} {unit}/s")


def machine() -> dict:
    """Where and with what a figure was measured: CPU model, count and native bfloat16 instructions,
    date, backend and versions."""
    import datetime
    import os
    import platform

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    line = {"date": datetime.date.today().isoformat(), "cpu": cpu, "cpus": os.cpu_count(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}
    try:
        import keras

        from kerasbrain.runtime import NATIVE_BF16_FLAGS, cpu_flags

        line.update(backend=keras.backend.backend(), keras=keras.__version__,
                    cpu_bf16=sorted(cpu_flags() & set(NATIVE_BF16_FLAGS)))
    except ImportError:
        pass
    return line


def add_precision_option(parser, default: str = "fp32") -> None:
    """`--precision`: the networks' dtype policy (fp32, the earlier rows'; bf16; auto, resolved as
    training or prediction resolves it: kerasbrain.runtime)."""
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=default,
                        help="Dtype policy of the networks (fp32: the earlier rows'; auto: as kerasbrain resolves it).")


def add_json_option(parser) -> None:
    parser.add_argument("--json", help="Append the result as one JSON line to this file (bench/results*/).")


def record(json_path, name: str, **figures) -> dict:
    """Append one result line (the bench's name, its figures and `machine()`) to `json_path`, if given."""
    line = {"bench": name, **figures, **machine()}
    if json_path:
        with open(json_path, "a") as f:
            f.write(json.dumps(line) + "\n")
    return line


def print_result(line: dict, summary: str, json_path=None) -> None:
    """Print a bench's result as one JSON line and a sentence; append the JSON line to `json_path`."""
    print(json.dumps(line))
    print(summary)
    if json_path:
        with open(json_path, "a") as f:
            f.write(json.dumps(line) + "\n")


def run_monai_reference(python: str, kind: str, out, **options) -> dict:
    """Train and predict with bench/monai_reference.py under `python` (an environment with torch and
    MONAI); its output streams through, and its result line is kept in `<out>/reference.json` so a
    second call reuses the predictions in `<out>/predictions`."""
    import subprocess
    import sys
    from pathlib import Path

    out = Path(out)
    done = out / "reference.json"
    if not done.exists():
        out.mkdir(parents=True, exist_ok=True)
        command = [python, str(Path(__file__).with_name("monai_reference.py")), kind, "--out", str(out / "predictions")]
        for key, value in options.items():
            command += [f"--{key.replace('_', '-')}", *map(str, value if isinstance(value, (list, tuple)) else [value])]
        lines = []
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
            for text in process.stdout:
                print(text, end="", flush=True)
                lines.append(text)
        if process.returncode or not lines:
            sys.exit(f"bench/monai_reference.py failed (exit {process.returncode})")
        done.write_text(lines[-1])
    return json.loads(done.read_text())


def forward_flops(model, shape) -> int | None:
    """Floating-point operations of one forward pass of `model` on a batch of `shape` (TensorFlow's graph
    profiler over the frozen graph; a multiply-add counts 2). None on other backends."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec(shape, tf.float32))
    graph = convert_variables_to_constants_v2(function).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder(
        tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()).with_empty_output().build()
    return int(tf.compat.v1.profiler.profile(graph, options=options).total_float_ops)



def optional_rows(package: str, rows, *args) -> None:
    """Run `rows(*args)` if `package` is installed (MONAI's reference rows); a failure inside prints its
    traceback and keeps the rows measured so far."""
    import importlib.util

    if importlib.util.find_spec(package) is None:
        print(f"{package} not installed: no reference rows")
        return
    try:
        rows(*args)
    except Exception:  # noqa: BLE001 - a benchmark keeps what it has measured
        import traceback

        traceback.print_exc()


class FitBatches:
    """A `keras.utils.PyDataset`'s batches as `fit` draws them: through Keras's own adapter (its worker
    threads and queue), not a plain loop over `__getitem__`. `next()` gives a batch; `close()` stops
    the workers. (Keras has no public name for the adapter, hence the private import.)"""

    def __init__(self, stream):
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

        self.adapter = PyDatasetAdapter(stream, shuffle=False)
        self.adapter.on_epoch_begin()
        self._it = iter(self.adapter.get_numpy_iterator())

    def __next__(self):
        return next(self._it)

    def close(self):
        self.adapter.on_epoch_end()



class RowLog(list):
    """A benchmark's result rows; once `path` is set, the JSON file there is rewritten after each new
    row, so a run cut off at its time limit (a lent GPU's call) keeps what it measured."""

    path: str | None = None

    def append(self, row) -> None:
        super().append(row)
        if self.path:
            with open(self.path, "w") as f:
                json.dump(self, f, indent=2)


def comma_choices(parser, flag: str, value: str, choices) -> list[str]:
    """`value` split at commas, each one of `choices`, or the parser's one-line error naming `flag`."""
    names = value.split(",")
    if unknown := [n for n in names if n not in choices]:
        parser.error(f"{flag}: unknown name(s) {', '.join(unknown)}; choose from {', '.join(choices)}")
    return names
