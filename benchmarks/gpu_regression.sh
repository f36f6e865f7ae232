#!/usr/bin/env bash
# GPU benchmarks of an earlier tree and of this checkout, interleaved twice: MNIST epochs (CUDA graph and eager, batch
# 64 and 1; benchmarks/bench_mnist_gpu.py) and 3 epochs of TTv2 on SoftBoundsReference (bench_algorithms.py).
# Usage: OLD=dir OLD_COMMIT=sha NEW_COMMIT=sha OUT=dir bash benchmarks/gpu_regression.sh
# (OLD holds the earlier commit's files, e.g. from `git archive`; the checkout travels to the GPU without .git)
set -u
NEW=$(pwd)
for round in 1 2; do
  for tag in old new; do
    if [ $tag = old ]; then dir=$OLD; commit=$OLD_COMMIT; else dir=$NEW; commit=$NEW_COMMIT; fi
    (cd "$dir" && export PYTHONPATH=. CROSSBAR_COMMIT=$commit &&
     python benchmarks/bench_mnist_gpu.py --epochs 3 --batch1-epochs 1 --eager-steps 100 \
       --json "$OUT/mnist_${tag}_$round.json" > "$OUT/mnist_${tag}_$round.log" 2>&1;
     python benchmarks/bench_algorithms.py --algorithm ttv2 --epochs 3 --report 3 \
       --json "$OUT/ttv2_${tag}_$round.json" > "$OUT/ttv2_${tag}_$round.log" 2>&1)
    echo "$tag $round: $(tail -1 "$OUT/mnist_${tag}_$round.log" | cut -c1-150)"
  done
done
