"""Shared fixtures: tiny phantom datasets in every supported layout (written once per session)."""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
# JAX compiles every new shape, even a weight initialiser's; building a ResNet18 costs ~30 s on
# this CPU without a cache and ~6 s with one. The cache is shared by the fresh-process tests too.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "kerasbrain-test-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pytest  # noqa: E402

from kerasbrain.data.phantom import write_dataset  # noqa: E402

#: For tests of backend-independent glue (experiments, the demo, parameter counts) whose training,
#: evaluation and model code is also tested on JAX elsewhere: run once, on TensorFlow, to keep the
#: two-backend suite short.
once = pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
                          reason="backend-independent glue, run once on TensorFlow; its parts are tested on JAX")

#: Odd sizes, so padding and cropping bugs show (MONAI's habit).
TINY_SHAPE = (41, 38, 35)


@pytest.fixture(scope="session")
def msd_dir(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("msd") / "Task01_BrainTumour", "msd", cases=3, shape=TINY_SHAPE,
                         seed=7, test_cases=1)


@pytest.fixture(scope="session")
def brats2021_dir(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("brats2021"), "brats2021", cases=2, shape=TINY_SHAPE, seed=7)


@pytest.fixture(scope="session")
def brats2023_dir(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("brats2023"), "brats2023", cases=2, shape=TINY_SHAPE, seed=7)
