#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make lint: checkpatch --strict over our kernel sources, then sparse (C=2)
# for every supported kernel. Exits non-zero on any checkpatch message or on
# any sparse warning/error that points into our files.
#
# Needs scripts/deps.sh to have run (checkpatch is taken from the
# linux-source-6.12 tarball into $VMCACHE/checkpatch).

set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
VMCACHE=${VMCACHE:-/var/cache/virtio-mem}
CHECKPATCH=${CHECKPATCH:-$VMCACHE/checkpatch/checkpatch.pl}
KVERS=${KVERS:-$(sed -n 's/^SUPPORTED_KVERS *:= *//p' Makefile)}
fail=0

shopt -s nullglob
files=(drivers/virtio/*.[ch] include/uapi/linux/virtio_mem.h \
       include/trace/events/virtio_mem*.h \
       tools/testing/virtio_mem/kmod/*.c)
shopt -u nullglob

if [ "${#files[@]}" -eq 0 ]; then
	echo "lint: no sources found under drivers/virtio or include/" >&2
	exit 1
fi

# Generated files are not ours to lint.
files=($(printf '%s\n' "${files[@]}" | grep -v '\.mod\.c$'))

echo "== checkpatch --strict (${#files[@]} files)"
if [ ! -x "$CHECKPATCH" ]; then
	echo "lint: $CHECKPATCH missing: run 'make deps'" >&2
	exit 1
fi
# CAMELCASE: with --no-tree checkpatch cannot know that __SetPageOffline()
# and friends are the kernel's own names. The compat header is the one file
# allowed to test LINUX_VERSION_CODE (that is what it is for).
cp_opts=(--strict --no-tree --quiet --show-types --color=never
	 --ignore CAMELCASE)
compat=drivers/virtio/virtio_mem_compat.h
others=($(printf '%s\n' "${files[@]}" | grep -vx "$compat" | grep -v '^include/trace/'))
traces=($(printf '%s\n' "${files[@]}" | grep '^include/trace/' || true))
if ! "$CHECKPATCH" "${cp_opts[@]}" -f "${others[@]}"; then
	echo "lint: checkpatch found problems"
	fail=1
fi
# checkpatch leaves a CamelCase cache in a git tree's top directory.
rm -f .checkpatch-camelcase.git.*
# TRACE_EVENT() has its own layout, the same in every kernel trace header.
if [ "${#traces[@]}" -gt 0 ] && ! "$CHECKPATCH" "${cp_opts[@]}" \
		--ignore OPEN_ENDED_LINE,PARENTHESIS_ALIGNMENT -f "${traces[@]}"; then
	echo "lint: checkpatch found problems"
	fail=1
fi
if [ -f "$compat" ] && ! "$CHECKPATCH" "${cp_opts[@]}" \
		--ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON -f "$compat"; then
	echo "lint: checkpatch found problems"
	fail=1
fi
# checkpatch leaves a CamelCase cache in a git tree's top directory.
rm -f .checkpatch-camelcase.git.*

export CONFIG_VIRTIO_MEM=m
for k in $KVERS; do
	echo "== sparse (C=2) for $k"
	kdir=/lib/modules/$k/build
	if [ ! -d "$kdir" ]; then
		echo "lint: $kdir missing: run 'make deps'" >&2
		fail=1
		continue
	fi
	log=$(mktemp)
	if ! make -C "$kdir" M="$ROOT" C=2 modules >"$log" 2>&1; then
		cat "$log"
		echo "lint: build with sparse failed for $k"
		fail=1
	fi
	# Sparse and compiler diagnostics that point into our tree, whether
	# printed relative to M= or as absolute paths.
	hits=$(grep -E "^(\\.\\./)*($ROOT/)?(drivers|include|mm)/[^:]*:[0-9]+(:[0-9]+)?: (warning|error):" "$log" || true)
	if [ -n "$hits" ]; then
		echo "$hits"
		echo "lint: sparse reported problems for $k"
		fail=1
	fi
	rm -f "$log"
done

if [ "$fail" -ne 0 ]; then
	echo "lint: FAILED"
	exit 1
fi
echo "lint: OK"
