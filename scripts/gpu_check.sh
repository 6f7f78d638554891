#!/usr/bin/env bash
# The GPU check, as run on the device machine (one H200, its own python3 with torch + CUDA):
#   bash scripts/gpu_check.sh OUT_DIR            (STEPS="smoke perf robustness" by default)
# 1. the smoke suite on CUDA and on the CPU of the same machine: same rows, close values
# 2. `snnxai perf --paper --device cuda`: SAM / SNN Grad-CAM / PGD-10 (+EOT-8) cost at the
#    paper's scale (vgg11_snn_t30, 64x64, T=30)
# 3. the robustness suite on CUDA with N samples (default: the suite's 512), published as OUT/robustness.tgz
#    (results.csv.gz, run.json, examples); the report is built from it with `snnxai report`.
# The device gets a copy of the files whose .git may be stale: write `git rev-parse HEAD >
# .gpu/COMMIT` before sending a clean tree, and run.json records that commit (declared).
# captum is not on that image: a wheel in .gpu/wheels (pip download captum --no-deps) is installed
# into /tmp for the run. Each step logs to OUT/<step>.log and the script goes on after a failure.
set -uo pipefail
OUT=${1:?usage: gpu_check.sh OUT_DIR}
N=${N:-512}
STEPS=${STEPS:-smoke perf robustness}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export SNNXAI_CACHE=${SNNXAI_CACHE:-/tmp/snnxai-cache} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
if ! $PY -c "import captum" 2>/dev/null; then
  $PY -m pip install --no-deps --no-index --target /tmp/gpu-site .gpu/wheels/*.whl -q
  export PYTHONPATH=/tmp/gpu-site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
if [ -f .gpu/COMMIT ]; then export SNNXAI_SOURCE_COMMIT=$(cat .gpu/COMMIT); fi
nvidia-smi -L
$PY -c "import torch, captum; print('torch', torch.__version__, 'captum', captum.__version__, torch.cuda.get_device_name())"

step() {
  local name=$1; shift
  local t0; t0=$(date +%s)
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "== $name: rc=$rc, $(( $(date +%s) - t0 )) s"
  tail -n 30 "$OUT/$name.log"
}

if [[ " $STEPS " == *" smoke "* ]]; then
  step smoke_cuda $PY -m bench run smoke --device cuda --out /tmp/smoke_cuda --quiet --no-report
  step smoke_cpu $PY -m bench run smoke --device cpu --out /tmp/smoke_cpu --quiet --no-report
  step compare $PY scripts/compare_runs.py /tmp/smoke_cpu /tmp/smoke_cuda
fi
if [[ " $STEPS " == *" perf "* ]]; then
  step perf_paper $PY -m bench perf --paper --device cuda --batch 32 --json "$OUT/perf_paper.json"
fi
if [[ " $STEPS " == *" robustness "* ]]; then
  step robustness timeout "${ROB_TIMEOUT:-420}" $PY -m bench run robustness --device cuda --limit "$N" \
    --set run.batch_size=128 --out /tmp/rob --quiet --no-report
fi
if [ -f /tmp/rob/run.json ]; then
  step publish $PY -m bench merge /tmp/rob --out /tmp/rob_pub --compress --no-report
  tar -czf "$OUT/robustness.tgz" -C /tmp rob_pub
  ls -la "$OUT"
fi
