#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# scripts/phase.sh <name> <command...>: run one phase of make check and
# say how long it and every phase before it took, so that the last lines
# of a CI log that ran out of time still tell where the time went.
#
#   PHASE_LOG    the record of this run (default build/check-phases),
#                emptied by scripts/phase.sh --reset

set -uo pipefail

LOG=${PHASE_LOG:-build/check-phases}

if [ "${1:-}" = --reset ]; then
	mkdir -p "$(dirname "$LOG")"
	: >"$LOG"
	exit 0
fi

name=$1
shift
so_far() {
	[ -s "$LOG" ] || { echo "nothing yet"; return; }
	awk '{ s = s sep $1 " " $2 " s"; sep = ", "; t += $2 }
	     END { print s " (" t " s in all)" }' "$LOG"
}

echo "== check: $name; so far: $(so_far)"
t0=$(date +%s)
"$@"
rc=$?
mkdir -p "$(dirname "$LOG")"
echo "$name $(( $(date +%s) - t0 ))" >>"$LOG"
echo "== check: $name $([ $rc -eq 0 ] && echo passed || echo FAILED)" \
	"in $(( $(date +%s) - t0 )) s; so far: $(so_far)"
exit $rc
