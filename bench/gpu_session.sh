#!/usr/bin/env bash
# Issue 31's GPU figures as one prepared command for a lent GPU machine (the device tool's `run`).
#
# Here, once per session (the registries answer here, not there): `bash bench/gpu_wheels.sh` puts the
# wheels the GPU machine lacks (Keras and its needs, nibabel, MONAI) in .whl/ (git-ignored). Then:
#   run(command="bash bench/gpu_session.sh gpu", carry=[".whl"], timeout_s=400)
#   run(command="bash bench/gpu_session.sh training", carry=[".whl"], timeout_s=590)
# back to back on the warm machine (one call for both may pass a call's 10 minutes; each call's rows
# are printed as they are measured, so a cut-off call still returns them). The rows come back under
# $OUT: bench/gpu.py's (training patches/s and whole volumes, plain and with mirror TTA, against
# MONAI) and bench/gpu_training.py's (end to end from the cache, host and device augmentation,
# against MONAI compiled and eager), each as JSON and as its log. No argument runs both.
# A third call, where device minutes are left, races (part `race`): bench/race3d.py's hard phantoms with
# the 25-minute CPU race's recipe (cpu_budget_unet3d) for RACE_MINUTES (4) of training on the GPU, its
# patches through Keras's PyDataset (no TensorFlow there), scored plain and with mirror TTA:
#   run(command="RACE_MINUTES=4 bash bench/gpu_session.sh race", carry=[".whl"], timeout_s=590)
# SMALL=1 checks the script on a CPU (`--small` sizes, a few seconds per row). TensorFlow is not
# there and not needed: `PYTHONPATH=DIR_WITH_A_FAILING_tensorflow_PACKAGE` hides it here to check.
set -uo pipefail
cd "$(dirname "$0")/.."
part=${1:-all}
case "$part" in
  gpu|training|all|race) ;;
  *) echo "bench/gpu_session.sh: unknown part '$part' (gpu, training, race or all)" >&2; exit 2;;
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
seconds=20  # per training row: 12 rows and their compilations should fit one call (estimated, not yet run)
race=(--minutes "${RACE_MINUTES:-4}")
if [[ "${SMALL:-0}" == 1 ]]; then
  small=(--small); seconds=3
  race=(--minutes 0.5 --cases 4 --test-cases 2 --shape 48 48 32 --set model.base_filters=4
        --set "training.patch_size=[32, 32, 32]" --set "inference.window=[32, 32, 32]")
fi
{ nvidia-smi || echo "no nvidia-smi: a CPU check"
  python3 -c "import jax, keras; print(jax.devices(), 'jax', jax.__version__, 'keras', keras.__version__)"
} 2>&1 | tee "$out/machine.txt"
status=0
if [[ "$part" == race ]]; then
  python3 bench/race3d.py "${race[@]}" --config kerasbrain/configs/cpu_budget_unet3d.toml --difficulty hard \
    --inference config,plain --json "$out/race3d.jsonl" 2>&1 | tee "$out/race3d.log"
  exit "${PIPESTATUS[0]}"
fi
if [[ "$part" != training ]]; then
  python3 bench/gpu.py "${small[@]}" --json "$out/gpu.json" 2>&1 | tee "$out/gpu.log" || status=1
fi
if [[ "$part" != gpu ]]; then
  python3 bench/gpu_training.py "${small[@]}" --seconds "$seconds" --json "$out/gpu_training.json" 2>&1 \
    | tee "$out/gpu_training.log" || status=1
fi
exit $status
