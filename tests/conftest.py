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
# The suite compiles hundreds of small programs once each. At LLVM's level 1 instead of 3, XLA compiled
# a tiny multitask training run from an empty cache in ~35 s instead of ~49 s and ran it from a warm
# one as fast (~16 s; level 0: 4 s slower); the JAX half of the suite on an empty cache (CI's case)
# took 23:52 instead of 27:38 (bench/results_cpu_2026-12-06/suite_cold_*.log). Level 0 compiles
# faster still but runs slower: that half took 24:59 instead of 22:59 (suite_cold_level0_e502110.log).
# Float results move by rounding only (~1e-4 at most after a few layers).
# XLA's newer CPU fusion emitters off: a quarter less compile time (9.7 s instead of 13.5 s in that
# run, same warm time). Both only where the caller has not set them.
for flag, value in (("xla_backend_optimization_level", "1"), ("xla_cpu_use_fusion_emitters", "false")):
    if flag not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --{flag}={value}").strip()

import pytest  # noqa: E402

from kerasbrain.data.phantom import write_dataset  # noqa: E402

def once_on(backend: str):
    """Mark a test of backend-independent glue to run on one backend only.

    For glue (experiments, the demo, the chain of CLI verbs, parameter counts) whose training,
    evaluation and model code is tested on both backends elsewhere: running it twice adds minutes
    and no coverage. Most such tests run on TensorFlow (`once`); a few run on JAX to even out
    the two backends' runs, which tests/run_all.sh runs side by side.
    """
    other = {"tensorflow": "JAX", "jax": "TensorFlow"}[backend]
    return pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != backend,
                              reason=f"backend-independent glue, run once on {backend}; its parts are tested on "
                                     f"{other} too")


once = once_on("tensorflow")


# --- no test may skip by accident --------------------------------------------------------------------
#: Skip reasons that are part of the plan: `once` tests on the other backend; outside CI, the browser
#: tests on a machine without Chromium (in CI they fail instead: tests/app/test_browser.py).
EXPECTED_SKIPS = ("backend-independent glue, run once on",
                  # tests/serving/test_contract.py pointed at an external server (KERASBRAIN_CONTRACT_REST)
                  "value checks are kerasbrain's server's own", "the body limit of an external server is its own",
                  # tests/offline/test_no_network.py on a machine without user namespaces (the socket guard runs)
                  "no user network namespace on this machine")
EXPECTED_SKIPS_OUTSIDE_CI = ("needs Debian's chromium and chromium-driver",)
_unexpected_skips = []


def expected_skip(reason: str, in_ci: bool) -> bool:
    allowed = EXPECTED_SKIPS + (() if in_ci else EXPECTED_SKIPS_OUTSIDE_CI)
    return reason.removeprefix("Skipped: ").startswith(allowed)


def pytest_runtest_logreport(report):
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        if not expected_skip(reason, bool(os.environ.get("CI"))):
            _unexpected_skips.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    if _unexpected_skips and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _unexpected_skips:
        terminalreporter.section("unexpected skips (a skip outside tests/conftest.py's EXPECTED_SKIPS fails the run)")
        for line in _unexpected_skips:
            terminalreporter.line(line)

#: The smallest configs `kerasbrain train unet3d` / `multitask|classifier` take (a second per epoch).
TINY_UNET3D_TOML = """
[model]
base_filters = 4
depth = 2
[training]
patch_size = [16, 16, 16]
batch_size = 2
validation_patches = 2
[inference]
window = [32, 32, 32]
"""
TINY_MULTITASK_TOML = """
[data]
image_size = 64
[model]
decoder_filters = [16, 8, 8, 8, 4]
[training]
batch_size = 4
epochs = 1
"""

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


# --- tiny real models in run folders, made in-process (no training; for glue tests) ----------------
def make_run(run_dir, family: str, model, config: dict):
    """A run folder as `kerasbrain train` leaves it: run.json, config.json and best.keras."""
    from kerasbrain.config import parse_config, save_config_json
    from kerasbrain.families import get_family
    from kerasbrain.runs import CONFIG_FILE, write_run_info

    run_dir.mkdir(parents=True, exist_ok=True)
    save_config_json(parse_config(get_family(family)._config_cls(), config), run_dir / CONFIG_FILE)
    write_run_info(run_dir, family)
    model.save(run_dir / "best.keras")
    return run_dir


@pytest.fixture(scope="session")
def volume_run(tmp_path_factory):
    import keras

    from kerasbrain.models.unet import UNet

    keras.utils.set_random_seed(1)
    model = UNet(spatial_dims=3, base_filters=4, depth=2)
    return make_run(tmp_path_factory.mktemp("app-models") / "volume", "unet3d", model,
                    {"inference": {"window": [32, 32, 32], "batch_size": 2, "overlap": 0.25}})


@pytest.fixture(scope="session")
def multitask_run(tmp_path_factory):
    import keras

    from kerasbrain.models.multitask import MultiTaskNet

    keras.utils.set_random_seed(2)
    model = MultiTaskNet(encoder="resnet18", decoder_filters=(16, 8, 8, 8, 4))
    return make_run(tmp_path_factory.mktemp("app-models") / "multitask", "multitask", model,
                    {"data": {"image_size": 64}, "model": {"decoder_filters": [16, 8, 8, 8, 4]}})
