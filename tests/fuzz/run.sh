#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs one libFuzzer harness: run.sh NAME BINARY SECONDS WORKDIR [RUNS]
#
# Without RUNS, the harness runs for SECONDS. With RUNS, it runs for RUNS
# executions, SECONDS being only a bound: reaching fewer is a failure, so
# that a harness grown slow is noticed rather than fuzzed less and less.
#
# The harness fuzzes a fresh copy of tests/fuzz/corpus/NAME under WORKDIR,
# so the corpus in the repository stays as it is, and reads the
# hand-written tests/fuzz/seeds/NAME beside it; tests/fuzz/NAME.dict is its
# dictionary when there is one. Findings (crash-*, leak-*, timeout-*, oom-*)
# land in WORKDIR/artifacts/NAME/. The exit status is non-zero for a crash,
# a leak, a sanitizer report, a timeout, running out of memory, or too few
# executions. Prints libFuzzer's final statistics and one line,
# "fuzz_NAME: N execs in S s (R/s)", which is also appended to
# WORKDIR/summary.
set -eu

name=$1 bin=$2 seconds=$3 work=$4 runs=${5:-}
here=$(dirname "$0")
corpus=$work/corpus/$name
artifacts=$work/artifacts/$name
log=$work/logs/fuzz_$name.log

rm -rf "$corpus"
mkdir -p "$corpus" "$artifacts" "$work/logs" "$work/tmp"
# A new harness has seeds but no corpus yet.
if [ -d "$here/corpus/$name" ]; then
	cp -R "$here/corpus/$name/." "$corpus/"
fi

set -- -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
	-artifact_prefix="$artifacts/"
if [ -n "$runs" ]; then
	set -- "$@" -runs="$runs"
fi
if [ -f "$here/$name.dict" ]; then
	set -- "$@" -dict="$here/$name.dict"
fi

if [ -n "$runs" ]; then
	what="$runs runs (at most $seconds s)"
else
	what="$seconds s"
fi
echo "== fuzz_$name: $what on $(ls "$corpus" | wc -l) inputs and $(ls "$here/seeds/$name" | wc -l) seeds (log: $log)"
status=0
# A harness's scratch files (fuzz_config's directory) stay in WORKDIR/tmp
# even when it dies.
TMPDIR=$(cd "$work/tmp" && pwd) \
ASAN_OPTIONS="detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
	"$bin" "$@" "$corpus" "$here/seeds/$name" >"$log" 2>&1 || status=$?

# The progress lines ("#1234 NEW ...") are many and only matter in the log.
if [ "$status" -ne 0 ]; then
	grep -v '^#[0-9]' "$log" || true
else
	grep '^stat::' "$log" || true
fi

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
if [ "$status" -eq 0 ] && [ -n "$runs" ] && [ "${execs:-0}" -lt "$runs" ]; then
	line="fuzz_$name: FAILED: only ${execs:-0} of $runs execs in ${secs:-?} s (${rate:-?}/s)"
	status=1
elif [ "$status" -eq 0 ]; then
	line="fuzz_$name: ${execs:-?} execs in ${secs:-?} s (${rate:-?}/s)"
else
	line="fuzz_$name: FAILED (exit $status) after ${execs:-?} execs; input saved in $artifacts/"
fi
echo "$line"
echo "$line" >>"$work/summary"
exit "$status"
