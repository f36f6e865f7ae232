#!/usr/bin/env bash
# GPU check of the main job: the GPU tests, the main job tests, and the README main command on the GPU (--backend auto).
# Usage: OUT=dir bash benchmarks/gpu_main_check.sh
export PYTHONPATH=.
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/gpu.txt
(timeout 400 python -m pytest -q tests/gpu tests/unit/test_device_registry.py tests/models/test_mnist.py -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1; echo "rc=$?" >> $OUT/gpu_tests.txt)
timeout 200 python -m models.mnist --epochs 2 --lr 0.2 --baseline --out /tmp/g --no-progress > $OUT/main_gpu.txt 2>&1
echo "rc=$?" >> $OUT/main_gpu.txt
cp /tmp/g/curves.png $OUT/ 2>/dev/null
tail -3 $OUT/gpu_tests.txt; tail -4 $OUT/main_gpu.txt
