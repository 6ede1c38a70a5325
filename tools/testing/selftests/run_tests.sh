#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Minimal kselftest runner (POSIX sh, works with busybox):
#   run_tests.sh SUITE [TEST...]
# A TEST named @prog is looked up in $OUTPUT (built programs), any other
# name next to this script or in the current directory. With no TEST
# arguments, the tests listed in tests.list next to this script are run.
# Prints TAP 13; a test exiting 4 is reported as skipped. The per-test
# timeout comes from a "settings" file (timeout=N) when the timeout applet
# is available.

suite=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 0 ] && [ -f "$here/tests.list" ] && set -- $(cat "$here/tests.list")

timeout_s=
if [ -f "$here/settings" ]; then
	timeout_s=$(sed -n 's/^timeout=//p' "$here/settings")
fi

echo "TAP version 13"
echo "1..$#"
n=0
failed=0
for t in "$@"; do
	n=$((n + 1))
	case $t in
	@*) name=${t#@}; path=${OUTPUT:-$here}/$name ;;
	*) name=$t
	   if [ -x "$here/$t" ]; then path=$here/$t; else path=./$t; fi ;;
	esac
	echo "# selftests: $suite: $name"
	rcfile=${TMPDIR:-/tmp}/.kselftest_rc.$$
	{
		if [ -n "$timeout_s" ] && command -v timeout >/dev/null 2>&1; then
			timeout "$timeout_s" "$path" 2>&1
		else
			"$path" 2>&1
		fi
		echo $? >"$rcfile"
	} | sed 's/^/# /'
	rc=$(cat "$rcfile" 2>/dev/null || echo 1)
	rm -f "$rcfile"
	case $rc in
	0) echo "ok $n selftests: $suite: $name" ;;
	4) echo "ok $n selftests: $suite: $name # SKIP" ;;
	*) echo "not ok $n selftests: $suite: $name # exit=$rc"
	   failed=$((failed + 1)) ;;
	esac
done
[ "$failed" -eq 0 ]
