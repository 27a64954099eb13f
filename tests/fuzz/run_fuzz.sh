#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time over its seed corpus.
# Usage: run_fuzz.sh BINARY SEED_DIR WORK_DIR SECONDS [extra libFuzzer flags...]
# New inputs go to WORK_DIR (the seed corpus in the repo is only read); a crash leaves its
# input in WORK_DIR/crash-* and fails. Prints the execution count on the last line.
set -euo pipefail
bin=$1 seeds=$2 work=$3 seconds=$4
shift 4
mkdir -p "$work/corpus" "$work/artifacts"
log="$work/last.log"
# Per-target libFuzzer flags, one file next to this script: <target>.flags.
# wxsim_fuzz: every input triggers libFuzzer's per-input LSan scan (20x slower); leaks in the
# simulator are still caught by the ASan test suite (sim tests, wxsim under the soak).
flags=()
flags_file="$(dirname "$0")/$(basename "$bin").flags"
[ -f "$flags_file" ] && read -r -a flags < "$flags_file"
set +e
# -rss_limit_mb: the targets cap their own input sizes; a parser needing GBs is a bug.
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" ${flags[@]+"${flags[@]}"} "$@" \
  "$work/corpus" "$seeds" >"$log" 2>&1
rc=$?
set -e
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
if [ "$rc" -ne 0 ]; then
  tail -n 60 "$log"
  echo "$(basename "$bin"): FAILED (exit $rc) after ${runs:-?} executions; inputs in $work/artifacts" >&2
  exit 1
fi
echo "$(basename "$bin"): ${runs:-?} executions in ${seconds}s, corpus $(ls "$work/corpus" | wc -l) new + $(ls "$seeds" | wc -l) seeds, no crash"
