#!/usr/bin/env bash
# Runs the whole suite once per Keras backend (TensorFlow, then JAX); extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=2
export TF_ENABLE_ONEDNN_OPTS=${TF_ENABLE_ONEDNN_OPTS:-1}  # see kerasbrain/__init__.py
for backend in tensorflow jax; do
  echo "== KERAS_BACKEND=$backend =="
  KERAS_BACKEND=$backend python -m pytest -q -p no:cacheprovider "$@"
done
