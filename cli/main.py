"""The `kerasbrain` command line: one click group; each verb lives in its own small module.

Verbs are thin wrappers over library functions a script can call directly. Verbs that depend on
the kind of model (train, evaluate, predict, export) find its family through
`kerasbrain.families`, so a new family needs no edit here.
"""

from __future__ import annotations

import gc
import os
import sys

import click

# Quiet TensorFlow's C++ start-up chatter before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # fast CPU kernels: kerasbrain/__init__.py
# On JAX every new shape compiles, weight initialisers included (building a ResNet18 encoder took
# 31 s on a 2-core CPU, 6 s from this cache); keep compiled programs between commands.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(os.path.expanduser("~"), ".cache", "kerasbrain", "jax-compilation"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

from cli.analysis import calibrate, pseudomask, robustness  # noqa: E402
from cli.app import app  # noqa: E402
from cli.common import KerasbrainGroup  # noqa: E402
from cli.crossval import crossval  # noqa: E402
from cli.data import data  # noqa: E402
from cli.encoders import encoders  # noqa: E402
from cli.experiments import demo, experiment, reproduce  # noqa: E402
from cli.explain import explain  # noqa: E402
from cli.inference import evaluate, predict  # noqa: E402
from cli.longitudinal import compare  # noqa: E402
from cli.serving import export_cmd, serve, serving  # noqa: E402
from cli.synth import synth  # noqa: E402
from cli.train import pretrain, train  # noqa: E402


@click.group(cls=KerasbrainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kerasbrain")
def cli():
    """kerasbrain: brain-tumour MRI models in Keras 3.

    Stages: `synth` (phantom data in the real layouts), `pretrain`, `train`, `evaluate`, `predict`, `export`,
    `serve`, `app` (the web app); `demo` runs the first four on a small phantom dataset.
    """


for command in (synth, data, encoders, pretrain, train, crossval, evaluate, predict, compare, explain, pseudomask, calibrate, robustness, export_cmd,
                serving, serve, experiment, reproduce, demo, app):
    cli.add_command(command)


def main():
    from cli.native_logs import install

    install()  # TensorFlow's start-up lines held to TF_CPP_MIN_LOG_LEVEL (cli/native_logs.py)
    try:
        cli(prog_name="kerasbrain")
    finally:
        # On the way out Python's collector walks every object TensorFlow and Keras made once more,
        # ~1.4 s of a 2-core CPU per command; frozen objects are left to the operating system. Files,
        # `atexit` handlers and reference-counted destructors still run as usual.
        gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
