#!/usr/bin/env bash
# Issue 31's GPU figures as prepared commands for a lent GPU machine (the device tool's `run`), in the
# order of what they are for, so that one lent session (15 device minutes) measures the issue's goals.
#
# Here, once per session (the registries answer here, not there): `bash bench/gpu_wheels.sh` puts the
# wheels the GPU machine lacks (Keras and its needs, nibabel, MONAI) in .whl/ (git-ignored). Then, back
# to back on the warm machine (the time between calls counts too, and an idle machine goes back after
# 30 s: a later call starts a fresh one, a minute and a half of the budget):
#   run(command="bash bench/gpu_session.sh goals", carry=[".whl"], timeout_s=540)
#     the two speed goals: bench/gpu.py's default network (training, the whole volume plain and with
#     mirror TTA: the 0.3 s goal), then bench/gpu_training.py's pair at batch 1, 2 and 4 (kerasbrain
#     with device augmentation as `kerasbrain train` feeds it there, against MONAI compiled: the 1.5x goal)
#   run(command="RACE_MINUTES=M bash bench/gpu_session.sh race", carry=[".whl"], timeout_s=60 * M + 180)
#     with M the whole minutes `status` leaves after the first call, less 3 (at least 2): bench/race3d.py's
#     hard phantoms with the 25-minute CPU race's recipe (cpu_budget_unet3d) for M minutes of training on
#     the GPU, its patches through Keras's PyDataset (no TensorFlow there), scored plain and with mirror TTA
#   run(command="bash bench/gpu_session.sh rest", carry=[".whl"], timeout_s=590)
#     in a later lent session: the other rows (gpu.py's transposed, wider and ResEnc-M networks and MONAI
#     with its whole volumes, eager and, in bf16, compiled; gpu_training.py's host-augmentation and MONAI
#     eager rows)
# Each row is printed, and its script's JSON rewritten, as it is measured, so a call cut off at its limit
# still returns what it measured, under $OUT: each script's JSON and log, and machine.txt; `goals` ends
# with goals.txt, the two goals met or not (bench/gpu_goals.py, which also reads the JSON of a cut-off call).
# SMALL=1 checks the script on a CPU (`--small` sizes, a few seconds per row). TensorFlow is not
# there and not needed: `PYTHONPATH=DIR_WITH_A_FAILING_tensorflow_PACKAGE` hides it here to check.
set -uo pipefail
cd "$(dirname "$0")/.."
part=${1:-}
case "$part" in
  goals|race|rest) ;;
  *) echo "bench/gpu_session.sh: name one part, goals, race or rest (got '$part')" >&2; exit 2;;
esac
out=${OUT:-/tmp/gpu_session}
mkdir -p "$out"
# the wheels are for the GPU machine's Python 3.12; a CPU check (SMALL=1) uses this machine's packages
if [[ "${SMALL:-0}" != 1 ]] && compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "bench/gpu_session.sh: the wheels in .whl/ did not install" >&2; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
small=()
seconds=10  # per training row, after its warm-up (compilation): 300+ patches at the last GPU's speed
race=(--minutes "${RACE_MINUTES:-3}")
if [[ "${SMALL:-0}" == 1 ]]; then
  small=(--small); seconds=3
  race=(--minutes 0.5 --cases 4 --test-cases 2 --shape 48 48 32 --set model.base_filters=4
        --set "training.patch_size=[32, 32, 32]" --set "inference.window=[32, 32, 32]")
fi
{ nvidia-smi || echo "no nvidia-smi: a CPU check"
  python3 -c "import jax, keras; print(jax.devices(), 'jax', jax.__version__, 'keras', keras.__version__)"
} 2>&1 | tee "$out/machine.txt"
status=0
run() {  # NAME SCRIPT ARGS...: the script's log and JSON under $out
  local name=$1 script=$2; shift 2
  python3 "$script" "$@" --json "$out/$name.json" 2>&1 | tee "$out/$name.log"
  [[ ${PIPESTATUS[0]} == 0 ]] || status=1
}
case "$part" in
  goals)
    run gpu_goals bench/gpu.py "${small[@]}" --only keras --networks default
    run gpu_training_goals bench/gpu_training.py "${small[@]}" --seconds "$seconds" --rows keras-device,monai-compiled
    python3 bench/gpu_goals.py "$out/gpu_goals.json" "$out/gpu_training_goals.json" | tee "$out/goals.txt"
    ;;
  race)
    python3 bench/race3d.py "${race[@]}" --config kerasbrain/configs/cpu_budget_unet3d.toml --difficulty hard \
      --inference config,plain --json "$out/race3d.jsonl" 2>&1 | tee "$out/race3d.log"
    status=${PIPESTATUS[0]}
    ;;
  rest)
    run gpu_rest bench/gpu.py "${small[@]}" --networks transposed,wider,resenc
    run gpu_training_rest bench/gpu_training.py "${small[@]}" --seconds "$seconds" --rows keras-host,monai-eager
    ;;
esac
exit $status
