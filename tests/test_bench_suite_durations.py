"""bench/suite_durations.py on hand-made tests/run_all.sh logs: per-file seconds and the drift factor."""

import pytest

from tests.bench_scripts import load_bench_script

suite_durations = load_bench_script("suite_durations")


def write_log(path, tensorflow, jax):
    """A run_all.sh log: each half's pytest durations after its '== KERAS_BACKEND=...' line."""
    lines = ["== both backends started (00:00:00); each one's output follows when it ends",
             "... tensorflow 9% jax 9% (00:01:00)"]
    for backend, rows in (("tensorflow", tensorflow), ("jax", jax)):
        lines += [f"== KERAS_BACKEND={backend}: passed (00:20:00) ==", "....s.. [100%]",
                  "============================= slowest durations ============================="]
        lines += [f"{seconds:.2f}s {phase:<8} {test}" for seconds, phase, test in rows]
        lines += ["(12 durations < 0.005s hidden.  Use -vv to show these durations.)", "700 passed in 1200.00s"]
    path.write_text("\n".join(lines) + "\n")
    return path


OLD_TF = [(10.0, "setup", "tests/a.py::test_one"), (2.0, "call", "tests/a.py::test_one"),
          (4.0, "call", "tests/a.py::test_two[x y]"), (6.0, "call", "tests/b.py::test_three")]
OLD_JAX = [(8.0, "call", "tests/a.py::test_one"), (0.5, "call", "tests/b.py::test_small")]


def test_each_half_is_summed_per_test_and_per_file(tmp_path):
    durations = suite_durations.read_durations(write_log(tmp_path / "old.log", OLD_TF, OLD_JAX))
    assert durations == {("tensorflow", "tests/a.py::test_one"): 12.0,  # setup and call together
                         ("tensorflow", "tests/a.py::test_two[x y]"): 4.0,  # a parameter with a space kept whole
                         ("tensorflow", "tests/b.py::test_three"): 6.0,
                         ("jax", "tests/a.py::test_one"): 8.0, ("jax", "tests/b.py::test_small"): 0.5}
    files = suite_durations.by_file(durations)
    assert list(files) == ["tests/a.py", "tests/b.py"]  # 24 s against 6.5 s
    assert files["tests/a.py"] == {"tensorflow": 16.0, "jax": 8.0}
    table = suite_durations.file_table(durations, top=1)
    assert len(table) == 3 and table[1].split() == ["8.0", "16.0", "tests/a.py"]
    assert table[-1].split()[:2] == ["8.5", "22.0"]  # every test timed, each half


def test_a_uniformly_slower_machine_and_one_slower_test_are_told_apart(tmp_path):
    old = suite_durations.read_durations(write_log(tmp_path / "old.log", OLD_TF, OLD_JAX))
    # every test 1.5x slower, and test_three 20 s more beyond that; the 0.5 s test is under the floor
    new_tf = [(s * 1.5, phase, t) for s, phase, t in OLD_TF[:3]] + [(6.0 * 1.5 + 20, "call", "tests/b.py::test_three")]
    new_jax = [(12.0, "call", "tests/a.py::test_one"), (40.0, "call", "tests/b.py::test_small")]
    new = suite_durations.read_durations(write_log(tmp_path / "new.log", new_tf, new_jax))
    lines = suite_durations.compare(old, new, top=5)
    assert lines[0].startswith("4 tests timed in both (>= 1 s before): median new/old 1.50;")  # not 2.0 or 4.83
    assert len(lines) == 3 and lines[2].split() == ["20.0", "6.0", "->", "29.0", "tensorflow", "tests/b.py::test_three"]


def test_a_file_that_is_not_a_suite_log_is_one_line(tmp_path):
    (tmp_path / "other.log").write_text("pytest output without the halves\n")
    with pytest.raises(SystemExit, match=r"other.log: no '== KERAS_BACKEND=...: passed' line"):
        suite_durations.read_durations(tmp_path / "other.log")
