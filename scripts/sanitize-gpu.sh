#!/usr/bin/env bash
# The GPU half of docs/RELIABILITY.md: launch_safety, gpu_check --buckets and
# compute-sanitizer (memcheck with leak check, initcheck, racecheck) over
# every bucket of the device's dispatch tables. Run on the device machine
# from the repository root with the fixture's examples in $B (default
# gpu-bin: launch_safety, gpu_check) and $OUT for the logs:
#   bash scripts/sanitize-gpu.sh 1   # launch_safety; gpu_check; the three tools side by side
#   bash scripts/sanitize-gpu.sh 2   # racecheck of the workloads phase 1's racecheck
#                                    # had no time for (it is ~10x slower), in three parts
# Each phase fits the device tool's 10-minute limit on an H200.
set -u
B=${B:-gpu-bin}
OUT=${OUT:?set OUT to a directory for the logs}
S="compute-sanitizer --error-exitcode 99 --print-limit 200"
phase=${1:?phase 1 or 2}
if [ "$phase" = 1 ]; then
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  compute-sanitizer --version | tail -2
  $B/launch_safety $OUT/launch-safety.json > $OUT/launch-safety.log 2>&1; echo "launch_safety rc=$?"
  tail -3 $OUT/launch-safety.log
  run_tool() {
    tool=$1; shift
    log=$OUT/sanitizer-$tool.log
    start=$(date +%s)
    { echo "## $S --tool $tool $* $B/launch_safety"; timeout 100 $S --tool $tool "$@" $B/launch_safety /tmp/ls-$tool.json; echo "rc=$?";
      echo "## $S --tool $tool $* $B/gpu_check --buckets"; timeout 470 $S --tool $tool "$@" $B/gpu_check /tmp/gc-$tool.json --buckets; echo "rc=$?"; } > $log 2>&1
    echo "$tool: $(( $(date +%s) - start )) s; $(grep 'ERROR SUMMARY' $log | tr '\n' ' ') $(grep '^rc=\|passed,' $log | tr '\n' ' ')"
  }
  run_tool memcheck --leak-check full &
  run_tool initcheck &
  run_tool racecheck --racecheck-report all &
  $B/gpu_check $OUT/gpu-check-buckets.json --buckets > $OUT/gpu-check-buckets.log 2>&1; echo "gpu_check --buckets rc=$?"; tail -2 $OUT/gpu-check-buckets.log
  wait
else
  part() {
    name=$1; only=$2
    log=$OUT/sanitizer-racecheck-$name.log
    start=$(date +%s)
    { echo "## $S --tool racecheck --racecheck-report all $B/gpu_check --buckets --only $only";
      timeout 575 $S --tool racecheck --racecheck-report all $B/gpu_check /tmp/gc-$name.json --buckets --only $only; echo "rc=$?"; } > $log 2>&1
    echo "$name: $(( $(date +%s) - start )) s; $(grep -c '^PASS' $log) PASS; $(grep -c '^FAIL' $log) FAIL; $(grep 'RACECHECK SUMMARY' $log) $(grep '^rc=\|passed,' $log | tr '\n' ' ')"
  }
  part gqa gqa_decode &
  part gated gated_mlp &
  part lora-ntrans lora,ntrans &
  wait
fi
