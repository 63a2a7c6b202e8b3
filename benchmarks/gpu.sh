#!/usr/bin/env bash
# Everything this project checks on a CUDA machine, in one go (a lent GPU's time is short): the GPU tests, the
# whole suite, the bench harness against torch.utils.benchmark.Timer, a bf16 sweep of four baselines, and one
# torch.compile benchmark. Each step has its own time cap; outputs land in $OUT (default /tmp/blockstitch-gpu).
#   bash benchmarks/gpu.sh            # from the repository root, with blockstitch importable
set -u
out=${OUT:-/tmp/blockstitch-gpu}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
step() {  # step NAME SECONDS CMD...: run, keep its output in $out/NAME.txt, go on whatever happens
  local name=$1 limit=$2; shift 2
  echo "== $name (cap ${limit}s): $*"
  local t0=$SECONDS
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1
  echo "   rc=$? in $((SECONDS - t0)) s"; tail -n 4 "$out/$name.txt"
}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $py -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
} > "$out/machine.txt" 2>&1; cat "$out/machine.txt"
step gpu-tests 90 $py -m pytest -q -p no:cacheprovider -rs tests/gpu
# the suite on many workers: one thread each (16 threads per worker oversubscribe the cores many times over)
step suite 180 env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $py -m pytest -q -p no:cacheprovider -n 14 -rfE --tb=short tests
step harness 100 $py benchmarks/harness_vs_timer.py --device cuda
step sweep 100 $py -m blockstitch.cli sweep benchmarks/gpu_sweep.yaml --out "$out/sweep.jsonl" --no-plots
step compile 50 $py -m blockstitch.cli bench resnet50 --device cuda --dtype bfloat16 --channels-last --batch 64 \
  --compile --budget 1
