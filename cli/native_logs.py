"""TensorFlow's native start-up lines, held to TF_CPP_MIN_LOG_LEVEL on the command line.

TensorFlow 2.21 logs through absl from its shared libraries' start-up, before anything has called
`absl::InitializeLog()`, and absl then writes every severity to stderr whatever TF_CPP_MIN_LOG_LEVEL
says (abseil/abseil-cpp#1957). On a CPU machine that is six lines ("oneDNN custom operations are
on", "Could not find cuda drivers", the absl warning, twice) before each command's own output, and
before the one line a refused input gets. `install()` wraps the first `import tensorflow` of a
command: the process's stderr (file descriptor 2, where native code writes) goes to a file while
TensorFlow loads, and the lines are then written on, less those below the level asked for. Library
users keep TensorFlow's own behaviour: only `kerasbrain` installs this.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

# absl's prefix: severity letter, MMDD, time, thread id, file:line]  e.g. "I0000 00:00:1796 21024 port.cc:153] "
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\s\]]+:\d+\] ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_BEFORE_INIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def min_level() -> int:
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it (0 = everything, 3 = fatal only)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def kept_lines(text: str, level: int) -> list[str]:
    """The lines of `text` to pass on: absl records of severity >= `level` (a record's unprefixed
    continuation lines go with it) and every other line, less absl's "before InitializeLog" warning
    when `level` > 0."""
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        match = _ABSL_LINE.match(line)
        if match:
            dropping = _SEVERITY[match.group(1)] < level
        elif line.rstrip("\n") == _BEFORE_INIT and level > 0:
            dropping = False
            continue
        if not dropping:
            kept.append(line)
    return kept


@contextlib.contextmanager
def filtered_stderr(level: int):
    """Send file descriptor 2 to a file for the block, then write its lines on through `kept_lines`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in kept_lines(held.read().decode("utf-8", "replace"), level):
                sys.stderr.write(line)
            sys.stderr.flush()


class _FilteredTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` once and loads it inside `filtered_stderr`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        uninstall()
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            with filtered_stderr(min_level()):
                load(module)

        spec.loader.exec_module = exec_module
        return spec


_FINDER = _FilteredTensorFlowImport()


def install() -> None:
    """Filter the start-up lines of this process's first `import tensorflow` (a no-op once loaded,
    or when TF_CPP_MIN_LOG_LEVEL is 0)."""
    if "tensorflow" not in sys.modules and min_level() > 0 and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    """Stop filtering (the finder removes itself at its first `import tensorflow`)."""
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_FINDER)
