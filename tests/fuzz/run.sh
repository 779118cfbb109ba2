#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs one libFuzzer harness for a bounded time: run.sh NAME BINARY SECONDS WORKDIR
#
# The harness fuzzes a fresh copy of tests/fuzz/corpus/NAME under WORKDIR, so
# the seeds in the repository stay as they are, with tests/fuzz/NAME.dict
# when there is one. Findings (crash-*, leak-*, timeout-*, oom-*) land in
# WORKDIR/artifacts/NAME/. The exit status is libFuzzer's: non-zero for a
# crash, a leak, a sanitizer report, a timeout or running out of memory.
# Prints libFuzzer's final statistics and one line,
# "fuzz_NAME: N execs in S s", which is also appended to WORKDIR/summary.
set -eu

name=$1 bin=$2 seconds=$3 work=$4
here=$(dirname "$0")
corpus=$work/corpus/$name
artifacts=$work/artifacts/$name
log=$work/logs/fuzz_$name.log

rm -rf "$corpus"
mkdir -p "$corpus" "$artifacts" "$work/logs" "$work/tmp"
cp -R "$here/corpus/$name/." "$corpus/"

set -- -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
	-artifact_prefix="$artifacts/"
if [ -f "$here/$name.dict" ]; then
	set -- "$@" -dict="$here/$name.dict"
fi

echo "== fuzz_$name: $seconds s on $(ls "$corpus" | wc -l) seeds (log: $log)"
status=0
# Options given by the caller come last and win. A harness's scratch files
# (fuzz_config's directory) stay in WORKDIR/tmp even when it dies.
TMPDIR=$(cd "$work/tmp" && pwd) \
ASAN_OPTIONS="detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
	"$bin" "$@" "$corpus" >"$log" 2>&1 || status=$?

# The progress lines ("#1234 NEW ...") are many and only matter in the log.
if [ "$status" -ne 0 ]; then
	grep -v '^#[0-9]' "$log" || true
else
	grep '^stat::' "$log" || true
fi

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
if [ "$status" -eq 0 ]; then
	line="fuzz_$name: ${execs:-?} execs in ${secs:-?} s"
else
	line="fuzz_$name: FAILED (exit $status) after ${execs:-?} execs; input saved in $artifacts/"
fi
echo "$line"
echo "$line" >>"$work/summary"
exit "$status"
