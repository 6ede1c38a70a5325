#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run the userspace tier and sum it up. Each program prints TAP-like
# "ok N - ..." / "not ok N - ..." lines; a program that dies without saying
# "not ok" (sanitizer report, crash) counts as one more failure.
# Ends with exactly: "unit: N passed, N failed".

pass=0
fail=0
log=$B/unit.log
: >"$log"

run() {
	name=$1
	shift
	echo "== $name: $*"
	"$@" >"$B/$name.out" 2>&1
	rc=$?
	cat "$B/$name.out"
	cat "$B/$name.out" >>"$log"
	p=$(grep -c '^ok ' "$B/$name.out")
	f=$(grep -c '^not ok ' "$B/$name.out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited with status $rc"
		f=1
	fi
	pass=$((pass + p))
	fail=$((fail + f))
}

run table "$B/vmunit"
if [ -n "$SEED" ]; then
	run random "$B/vmrandom" -s "$SEED" -n "$STEPS" -r "$RUNS"
else
	run random "$B/vmrandom" -n "$STEPS" -r "$RUNS"
fi
run selfcheck sh "$H/selfcheck.sh" "$B/vmrandom"
run console python3 "$H/../test_vmrig.py"
run bench_goals python3 "$H/../../../../bench/test_goals.py"
run hotplug_check sh "$H/hotplug_check_test.sh"
mkdir -p "$B/fuzz-corpus" "$B/fuzz-artifacts"
run fuzz sh -c "'$B/vmfuzz' -max_total_time=$FUZZ_TIME -print_final_stats=1 \
	-artifact_prefix='$B/fuzz-artifacts/' '$B/fuzz-corpus' '$H/corpus' \
	&& echo 'ok 1 - fuzz smoke run, $FUZZ_TIME s, no crash' \
	|| { echo 'not ok 1 - fuzz smoke run: crash, see $B/fuzz-artifacts'; exit 1; }"

echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
