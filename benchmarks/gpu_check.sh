#!/usr/bin/env bash
# The GPU check (issue 24), one short prepared script for a lent GPU machine (about 8 minutes):
#
#   bash benchmarks/gpu_check.sh            # writes its figures under ${OUT:-benchmarks/results/gpu}
#
# 1. a virtual environment with torch 2.13.0 from the package registry (the CUDA build on a GPU machine)
#    and the project;
# 2. the GPU-marked tests: CUDA bf16 and fp16 scoring give fp32's labels on a fine-tuned tiny model,
#    and one epoch of training on CUDA;
# 3. benchmarks/bench_scoring.py --device cuda at AraBERT-base size on ${ARTICLES:-3000} articles (a steady
#    state), with the two-pipeline baseline on the same GPU.
#
# Without a CUDA device it still runs the CPU-side steps (set-up, the tests' collection) and says which GPU
# steps it skipped and why; it exits 0 then, so that a CPU machine can check the script itself.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
VENV=${GPU_VENV:-/tmp/aranews-gpu-venv}
ARTICLES=${ARTICLES:-3000}
mkdir -p "$OUT"
log() { echo "[gpu_check $(date +%H:%M:%S)] $*" | tee -a "$OUT/gpu_check.log"; }

log "machine: $(uname -m), $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$OUT/gpu_check.log"
else
  log "no nvidia-smi on this machine"
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
  "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
fi
PY="$VENV/bin/python"
CUDA=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))")
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" \
  | tee -a "$OUT/gpu_check.log"

if [ "$CUDA" != "1" ]; then
  "$PY" -m pytest -q -m gpu tests/test_gpu.py 2>&1 | tail -3 | tee -a "$OUT/gpu_check.log"
  log "SKIPPED the GPU steps: torch sees no CUDA device here (a CPU build of torch, or no GPU)"
  exit 0
fi

log "GPU-marked tests"
"$PY" -m pytest -q -m gpu tests/test_gpu.py 2>&1 | tee "$OUT/gpu_tests.log" | tail -5
log "bench_scoring on CUDA, $ARTICLES articles"
HF_HUB_OFFLINE=1 timeout 420 "$PY" benchmarks/bench_scoring.py --device cuda --articles "$ARTICLES" --rounds 1 \
  --out "$OUT/scoring-cuda.json" 2>&1 | tee "$OUT/bench_scoring.log" | tail -8
log "done: figures in $OUT"
