"""Shared fixtures: tiny phantom datasets in every supported layout (written once per session)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
