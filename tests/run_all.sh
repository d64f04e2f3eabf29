#!/usr/bin/env bash
# Runs the whole suite once per Keras backend (TensorFlow and JAX); extra arguments go to pytest.
#
# The two backends run side by side: each half keeps about one core busy (Python, tracing and
# compiling more than arithmetic; the pair used 184% of a 2-core machine), so the pair takes about
# as long as the longer half alone. Each backend's output is printed when it ends; the exit status
# is non-zero if either failed. KERASBRAIN_SUITE_SEQUENTIAL=1 runs them one after the other instead.
# Each half ends with its 25 slowest setups and calls (pytest --durations), so a log from CI or a slow
# machine says where the time went (a stall shows as one test far above its usual time). Run with
# --durations=0, a log is summarised per file by bench/suite_durations.py, which also compares two logs.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=2
export TF_ENABLE_ONEDNN_OPTS=${TF_ENABLE_ONEDNN_OPTS:-1}  # see kerasbrain/__init__.py
backends=(tensorflow jax)

if [[ "${KERASBRAIN_SUITE_SEQUENTIAL:-0}" == 1 ]]; then
  for backend in "${backends[@]}"; do
    echo "== KERAS_BACKEND=$backend =="
    KERAS_BACKEND=$backend python -m pytest -q -rs -p no:cacheprovider --durations=25 "$@"
  done
  exit 0
fi

logs=$(mktemp -d)
declare -A pids
for backend in "${backends[@]}"; do
  KERAS_BACKEND=$backend python -m pytest -q -rs -p no:cacheprovider --durations=25 "$@" >"$logs/$backend.log" 2>&1 &
  pids[$backend]=$!
done
echo "== both backends started ($(date +%H:%M:%S)); each one's output follows when it ends"
progress() {  # one line a minute, so a long quiet run is seen to move
  while sleep 60; do
    line="..."
    for backend in "${backends[@]}"; do
      line+=" $backend $(grep -o '\[ *[0-9]*%\]' "$logs/$backend.log" 2>/dev/null | tail -1 | tr -d ' []' || true)"
    done
    echo "$line ($(date +%H:%M:%S))"
  done
}
progress &
ticker=$!
trap 'kill $ticker 2>/dev/null; rm -rf "$logs"' EXIT
status=0
for backend in "${backends[@]}"; do
  if wait "${pids[$backend]}"; then result=passed; else result=FAILED; status=1; fi
  echo "== KERAS_BACKEND=$backend: $result ($(date +%H:%M:%S)) =="
  cat "$logs/$backend.log"
done
exit $status
