#!/usr/bin/env bash
# Mutation testing on a many-core machine, time-boxed, two runs side by side in copies of the checkout:
#   base:     every mutant of crossbar/physics/devices/base.py, against the device and update tests (the tests that
#             exercise the pulse engine; the Tiki-Taka tests reach it too but take minutes per mutant);
#   transfer: a fixed random sample of crossbar/tiles/transfer.py's mutants (benchmarks/results/mutmut_transfer_sample.txt:
#             240 names, the sorted list of all mutants shuffled with random.Random(2026)), against
#             tests/physics and tests/unit/test_tile.py.
# mutmut and its dependencies are installed from wheels in .whl/ (the machine is offline).
# Usage: OUT=dir SECONDS_BOX=540 bash benchmarks/mutmut_session.sh
# Re-check chosen mutants only: BASE_LIST=file TRANSFER_LIST=file (one name per line, paths from the repo root)
set -u
box=${SECONDS_BOX:-540}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
half=$(( $(nproc) / 2 ))
src=$(pwd)

phase() {  # name, only_mutate, test selection, file whose mutants to run ("all") or a list file
    local name=$1 dir=/tmp/mut_$1
    rm -rf "$dir" && cp -r "$src" "$dir" && cd "$dir" || return 1
    sed -i "s|^only_mutate = .*|only_mutate = $2|" pyproject.toml
    sed -i "s|^pytest_add_cli_args_test_selection = .*|pytest_add_cli_args_test_selection = $3|" pyproject.toml
    rm -rf mutants
    # generate the mutants (a filter that matches nothing stops mutmut right after generating them)
    python3 -m mutmut run "none_zzz" > /dev/null 2>&1
    local names
    if [ "$4" = all ]; then
        names=$(python3 -c 'import re,sys;print(" ".join(sorted("crossbar.physics.devices.base."+n for n in set(re.findall(r"def (x\w*?__mutmut_\d+)\(",open("mutants/crossbar/physics/devices/base.py").read())))))')
    else
        names=$(cat "$src/$4" 2>/dev/null || cat "$4")
    fi
    local start=$(date +%s)
    timeout -s INT $((box - 20)) python3 -m mutmut run --max-children $half $names > "$OUT/$name.log" 2>&1
    echo "$name: rc=$? seconds=$(( $(date +%s) - start )) children=$half mutants=$(echo $names | wc -w)" >> "$OUT/summary.txt"
    python3 -m mutmut results --all true > "$OUT/$name.results.txt" 2>&1
    for m in $(grep -E ": (survived|no tests|timeout|suspicious|segfault)" "$OUT/$name.results.txt" | cut -d: -f1); do
        python3 -m mutmut show "$m" 2>/dev/null | grep "^[-+] " | sed "s|^|$m |"
    done > "$OUT/$name.survivors.txt"
}

phase base '["crossbar/physics/devices/base.py"]' '["tests/physics/test_devices.py", "tests/physics/test_pin_devices.py", "tests/physics/test_mutants_devices.py", "tests/physics/test_update.py", "tests/physics/test_pin_update.py", "tests/unit/test_tile.py"]' "${BASE_LIST:-all}" &
phase transfer '["crossbar/tiles/transfer.py"]' '["tests/physics", "tests/unit/test_tile.py"]' "${TRANSFER_LIST:-$src/benchmarks/results/mutmut_transfer_sample.txt}" &
wait
cd "$src"
for n in base transfer; do
    echo "$n: $(grep -c ': killed' $OUT/$n.results.txt) killed of $(grep -c ': ' $OUT/$n.results.txt) listed" >> "$OUT/summary.txt"
    grep -v ": killed" "$OUT/$n.results.txt" | cut -d: -f2 | sort | uniq -c | sed "s|^|$n |" >> "$OUT/summary.txt"
done
cat "$OUT/summary.txt"
