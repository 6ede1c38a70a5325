#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The in-guest hotplug_check.sh against a made-up memory block tree
# (VIRTIO_MEM_MEMDIR): its verdicts on block states, including a block
# that is going offline while it looks.

CHECK=$(dirname "$0")/../../selftests/virtio_mem/hotplug_check.sh
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0

# Blocks of 128 MiB, all online; memory8..memory10 make the region
# 1G-1.375G.
blocks_online() {
	rm -rf "$T/mem"
	mkdir -p "$T/mem"
	echo 8000000 >"$T/mem/block_size_bytes"
	for id in 8 9 10; do
		mkdir "$T/mem/memory$id"
		echo online >"$T/mem/memory$id/state"
		echo Normal >"$T/mem/memory$id/valid_zones"
	done
}

check() {
	VIRTIO_MEM_MEMDIR=$T/mem sh "$CHECK" check \
		--region 0x40000000-0x58000000 --zone online >"$T/out" 2>&1
}

expect() {	# expect <exit status> <0|1 wanted> <what>
	n=$((n + 1))
	if [ "$1" -eq "$2" ]; then
		echo "ok $n - hotplug_check.sh: $3"
	else
		echo "not ok $n - hotplug_check.sh: $3 (exit $1, want $2)"
		sed 's/^/#   /' "$T/out"
	fi
}

blocks_online
check
expect $? 0 "all online passes"

blocks_online
echo offline >"$T/mem/memory9/state"
check
expect $? 1 "an offline block fails --zone online"

# The driver retrying a stalled unplug offlines a block to see whether
# its last pages move; usually the offline fails and the block stays
# online. going_offline <state>: memory9 goes offline for 2 s, then is
# in <state>; the check's exit status.
going_offline() {
	blocks_online
	echo going-offline >"$T/mem/memory9/state"
	(sleep 2; echo "$1" >"$T/mem/memory9/state") &
	check
	rc=$?
	wait
	return $rc
}

going_offline online
expect $? 0 "a block going offline that comes back online passes"
going_offline offline
expect $? 1 "a block going offline that ends offline fails"
