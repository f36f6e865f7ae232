#!/usr/bin/env bash
# One GPU session: the GPU tests, the MVM agreement measurement, the kernel benchmarks and MNIST epochs.
# Raw outputs go to $OUT (default benchmarks/results). On the lent machine, set CROSSBAR_COMMIT to the
# commit that was sent (the checkout travels without .git).
set -u
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
export PYTHONPATH=.
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu_machine.txt" 2>&1
python -m pytest -q -rs tests/gpu -p no:cacheprovider > "$OUT/gpu_tests.log" 2>&1
echo "pytest exit $?" >> "$OUT/gpu_tests.log"
tail -3 "$OUT/gpu_tests.log"
python benchmarks/gpu_agreement.py --json "$OUT/gpu_mvm_agreement.json" 2>&1 | tail -2
python benchmarks/bench_gpu.py --json "$OUT/gpu_kernels.json" > "$OUT/gpu_kernels.log" 2>&1
tail -25 "$OUT/gpu_kernels.log"
python benchmarks/bench_mnist_gpu.py --epochs 3 --batch1-epochs 1 --eager-steps 100 \
    --json "$OUT/gpu_mnist_epochs.json" > "$OUT/gpu_mnist_epochs.log" 2>&1
tail -8 "$OUT/gpu_mnist_epochs.log"
