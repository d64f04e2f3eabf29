#!/usr/bin/env bash
# The wheels bench/gpu_session.sh installs on the GPU machine, downloaded here into .whl/ (git-ignored).
# That machine has Python 3.12, JAX, PyTorch, h5py, ml-dtypes, rich, numpy and scipy, and no
# registry (/work/.library/device/README.md); these are what kerasbrain's benches need beside them.
# Versions: Keras as here (its saved files and our tests), MONAI as bench/results_h100_2026-11-26 ran.
set -euo pipefail
cd "$(dirname "$0")/.."
keras_version=$(python3 -c "from importlib.metadata import version; print(version('keras'))")
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
  "keras==$keras_version" namex optree nibabel "monai==1.6.1"
ls -l .whl
