#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The invariants can fail: break the models (or the checker's copy of the
# driver's state) one way at a time with VMH_BREAK and expect the matching
# failure from the random sequences. Prints "ok"/"not ok" per invariant.
#
#   selfcheck.sh VMRANDOM

bin=$1
n=0
while IFS='|' read -r name expect; do
	[ -z "$name" ] && continue
	n=$((n + 1))
	out=$(VMH_BREAK=$name "$bin" -s 1 -r 6 -n 400 2>&1)
	if [ $? -ne 0 ] && printf '%s\n' "$out" | grep -q -E -- "$expect"; then
		echo "ok $n - invariant fires when broken: $name ($expect)"
	else
		echo "not ok $n - invariant did not fire when broken: $name (wanted: $expect)"
	fi
done <<'LIST'
usable|outside the usable region
aligned|aligned device blocks
forget|bytes plugged, the device
swap|the driver thinks (un)?plugged|is already (un)?plugged|which is not plugged
requested|beyond requested_size
counters|mb_count
nr_sbs_plugged|nr_sbs_plugged
added|mm says
online_page|in the buddy, but unplugged
fake_online|not in the buddy, but plugged
fake_offline|still with the page allocator
leak|allocations left
cap|beyond what the host asked for
hold|memory blocks held back
managed|managed pages
refcount|with 2 references
refs|neither in the buddy nor PageOffline without references
end|is in transition, core-mm has
remove_race|user space (on|off)lined mb
LIST
