#!/usr/bin/env bash
# Mutation testing of crossbar/devices/base.py (every mutant) and a fixed random sample of crossbar/transfer.py's
# mutants (benchmarks/results/mutmut_transfer_sample.txt, 240 of 2126, shuffled with seed 2026) on a many-core
# machine, time-boxed. Wheels for mutmut and its dependencies in .whl/ (offline machine).
# Usage: OUT=dir SECONDS_BOX=480 bash benchmarks/mutmut_session.sh
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
sed -i 's|^only_mutate = .*|only_mutate = ["crossbar/devices/base.py", "crossbar/transfer.py"]|' pyproject.toml
sed -i 's|^pytest_add_cli_args_test_selection = .*|pytest_add_cli_args_test_selection = ["tests/physics", "tests/unit/test_tile.py"]|' pyproject.toml
rm -rf mutants
# mutant names as mutmut spells them: module path + the mangled function name
timeout 120 python3 -m mutmut run "none_zzz" > /dev/null 2>&1 &
until [ -s mutants/crossbar/devices/base.py ] && [ -s mutants/crossbar/transfer.py ]; do sleep 2; done; sleep 5; kill %1; wait
base=$(python3 -c 'import re;print(" ".join(sorted("crossbar.devices.base."+n for n in set(re.findall(r"def (x\w*?__mutmut_\d+)\(",open("mutants/crossbar/devices/base.py").read())))))')
sample=$(cat benchmarks/results/mutmut_transfer_sample.txt)
start=$(date +%s)
timeout -s INT ${SECONDS_BOX:-500} python3 -m mutmut run --max-children $(nproc) $base $sample > $OUT/run.log 2>&1
echo "run rc=$? seconds=$(( $(date +%s) - start )) nproc=$(nproc)" | tee -a $OUT/summary.txt
python3 -m mutmut results --all true > $OUT/results.txt 2>&1
grep -c ": killed" $OUT/results.txt; grep -v ": killed" $OUT/results.txt | tee -a $OUT/summary.txt | head -100
tar czf $OUT/meta.tgz $(find mutants -name "*.meta") mutants/mutmut-stats.json 2>/dev/null
