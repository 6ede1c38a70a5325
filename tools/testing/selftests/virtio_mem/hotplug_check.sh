#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Check the guest side of a virtio-mem hot-plug expectation (busybox sh).
#
#   hotplug_check.sh baseline
#	Remember the current MemTotal (in $VIRTIO_MEM_STATE, default
#	/tmp/virtio_mem.baseline) for a later --delta-kb check.
#
#   hotplug_check.sh [check] [--delta-kb N] [--zone Z] [--region START-END]...
#		     [--node N] [--min-blocks N]
#	--delta-kb N   MemTotal must have grown by exactly N kB since baseline
#	--zone Z       every memory block in the region(s) must be in state and
#		       zone Z: Normal, Movable (online in that zone), online
#		       (online, any zone), offline, or any (default: online)
#	--region S-E   device region, hex or decimal, end exclusive; repeatable.
#		       Default: every "System RAM (virtio_mem)" range in
#		       /proc/iomem.
#	--node N       every block in the region(s) must belong to node N
#	--min-blocks N at least N memory blocks must lie in the region(s)
#
# Without arguments (as run by run_tests.sh): the default checks against
# whatever virtio_mem memory exists; skip (exit 4) if there is none.
# Output is TAP; exit 0 pass, 1 fail, 4 skip.

KSFT_SKIP=4
STATE=${VIRTIO_MEM_STATE:-/tmp/virtio_mem.baseline}
# Another tree in its place: the userspace tier tests this script so.
MEMDIR=${VIRTIO_MEM_MEMDIR:-/sys/devices/system/memory}

memtotal_kb() {
	sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo
}

if [ "$1" = baseline ]; then
	memtotal_kb >"$STATE" || exit 1
	echo "# baseline MemTotal $(cat "$STATE") kB"
	exit 0
fi
[ "$1" = check ] && shift

delta_kb=
zone=online
regions=
node=
min_blocks=0
explicit=0
while [ $# -gt 0 ]; do
	case $1 in
	--delta-kb) delta_kb=$2; shift ;;
	--zone) zone=$2; shift ;;
	--region) regions="$regions $2"; explicit=1; shift ;;
	--node) node=$2; shift ;;
	--min-blocks) min_blocks=$2; shift ;;
	*) echo "usage: $0 [baseline | check [options]]" >&2; exit 1 ;;
	esac
	shift
done

echo "TAP version 13"

if [ ! -d "$MEMDIR" ]; then
	echo "1..0 # SKIP no $MEMDIR (CONFIG_MEMORY_HOTPLUG=n?)"
	exit $KSFT_SKIP
fi

if [ -z "$regions" ]; then
	# "  140000000-147ffffff : System RAM (virtio_mem)" -> 0x..-0x..
	regions=$(sed -n 's/^ *\([0-9a-f]*\)-\([0-9a-f]*\) : System RAM (virtio_mem)$/0x\1-0x\2/p' \
		/proc/iomem | while IFS=- read -r s e; do
			echo "$s-$((e + 1))"
		done)
fi
if [ -z "$regions" ] && [ -z "$delta_kb" ] && [ $explicit -eq 0 ]; then
	echo "1..0 # SKIP no virtio_mem memory in /proc/iomem"
	exit $KSFT_SKIP
fi

bs=$((0x$(cat $MEMDIR/block_size_bytes)))

ntests=3
[ -n "$delta_kb" ] && ntests=$((ntests + 1))
[ -n "$node" ] && ntests=$((ntests + 1))
echo "1..$ntests"

n=0
fails=0
result() {	# result OK|FAIL description
	n=$((n + 1))
	if [ "$1" = OK ]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2"
		fails=$((fails + 1))
	fi
}

if [ -n "$delta_kb" ]; then
	base=$(cat "$STATE" 2>/dev/null)
	cur=$(memtotal_kb)
	if [ -z "$base" ]; then
		result FAIL "MemTotal delta: no baseline in $STATE"
	elif [ $((cur - base)) -eq "$delta_kb" ]; then
		result OK "MemTotal grew by $delta_kb kB ($base -> $cur)"
	else
		got="MemTotal grew by $((cur - base)) kB"
		result FAIL "$got, expected $delta_kb kB ($base -> $cur)"
	fi
fi

# Collect the blocks that lie in the region(s).
blocks=
count=0
for r in $regions; do
	rs=$((${r%-*}))
	re=$((${r#*-}))
	first=$(((rs + bs - 1) / bs))
	last=$(((re / bs) - 1))
	id=$first
	while [ "$id" -le "$last" ]; do
		if [ -d "$MEMDIR/memory$id" ]; then
			blocks="$blocks $id"
			count=$((count + 1))
		fi
		id=$((id + 1))
	done
done

if [ "$count" -ge "$min_blocks" ]; then
	result OK "$count memory blocks in region(s)$regions (at least $min_blocks)"
else
	result FAIL "$count memory blocks in region(s)$regions, expected at least $min_blocks"
fi

# State and zone of every block.
bad_state=
bad_zone=
# read, not $(cat): a fork per file costs seconds per hundred blocks
# in an emulated guest.
for id in $blocks; do
	read -r st <"$MEMDIR/memory$id/state"
	# going-offline: an offline is under way, e.g. the driver retrying a
	# stalled unplug tries one to see whether the last pages move now.
	# The block's state is known at its end; the driver gives such an
	# offline 60 s at most, so wait that long (and a little more).
	waited=0
	while [ "$st" = going-offline ] && [ "$waited" -lt 65 ]; do
		sleep 1
		waited=$((waited + 1))
		read -r st <"$MEMDIR/memory$id/state"
	done
	[ "$waited" -eq 0 ] ||
		echo "# memory$id was going offline; waited $waited s: $st"
	{ read -r zn <"$MEMDIR/memory$id/valid_zones"; } 2>/dev/null || zn=
	case $zone in
	offline) [ "$st" = offline ] || bad_state="$bad_state memory$id:$st" ;;
	any) ;;
	*) [ "$st" = online ] || bad_state="$bad_state memory$id:$st" ;;
	esac
	case $zone in
	Normal|Movable)
		[ "$st" = online ] && [ "$zn" != "$zone" ] &&
			bad_zone="$bad_zone memory$id:$zn" ;;
	esac
done
if [ -z "$bad_state" ]; then
	result OK "all $count blocks have state '$zone'"
else
	result FAIL "blocks in the wrong state (want $zone):$bad_state"
fi
if [ -z "$bad_zone" ]; then
	result OK "zone of online blocks matches '$zone'"
else
	result FAIL "blocks in the wrong zone (want $zone):$bad_zone"
fi

if [ -n "$node" ]; then
	bad_node=
	for id in $blocks; do
		[ -e "/sys/devices/system/node/node$node/memory$id" ] ||
			bad_node="$bad_node memory$id"
	done
	if [ -z "$bad_node" ]; then
		result OK "all $count blocks on node $node"
	else
		result FAIL "blocks not on node $node:$bad_node"
	fi
fi

[ "$fails" -eq 0 ] || exit 1
exit 0
