"""The suite's own guards: a skip nobody planned fails the run (tests/conftest.py, EXPECTED_SKIPS)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _run_pytest(folder: Path, body: str, ci: bool = False):
    (folder / "conftest.py").write_text("from tests.conftest import (pytest_runtest_logreport, pytest_sessionfinish,"
                                        " pytest_terminal_summary)  # noqa: F401\n")
    (folder / "test_some.py").write_text("import pytest\n\n\ndef test_ok():\n    pass\n\n\n" + body)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CI", None)
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)], cwd=folder,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("reason, ci, fails", [
    ("a broken install", False, True),
    ("backend-independent glue, run once on jax; its parts are tested on TensorFlow too", False, False),
    ("needs Debian's chromium and chromium-driver (installed by .ci/run)", False, False),
    ("needs Debian's chromium and chromium-driver (installed by .ci/run)", True, True),
])
def test_only_planned_skips_pass(tmp_path, reason, ci, fails):
    result = _run_pytest(tmp_path, f"def test_skipped():\n    pytest.skip({reason!r})\n", ci)
    assert (result.returncode == 1) == fails, result.stdout[-2000:]
    assert ("unexpected skips" in result.stdout) == fails
    if fails:
        assert f"test_some.py::test_skipped: Skipped: {reason}" in result.stdout


def test_a_hanging_test_is_stopped(pytestconfig, tmp_path):
    """pytest-timeout is installed and in force (setup.cfg: 20 minutes a test); a hang fails, never holds CI."""
    assert float(pytestconfig.getini("timeout")) == 1200
    (tmp_path / "test_hang.py").write_text("import time\n\n\ndef test_hang():\n    time.sleep(60)\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "2",
                             str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Timeout" in result.stdout + result.stderr
