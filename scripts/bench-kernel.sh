#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernels bench/mm_series.py compares, for the rows of mm/'s patches:
# Debian's linux-source-6.12 with the debug tier's config less its
# checkers (KASAN, lockdep, DEBUG_VM cost more than what the patches
# save), built as it is (<version>-vmbench) and again with mm/*.patch
# applied (<version>-vmbench-mm). Both keep CONFIG_VIRTIO_MEM=m, so the
# distro's driver and ours (a module built against each, in
# build/<release>/) run on both. A third build adds the driver's own
# patches of the series with CONFIG_VIRTIO_MEM=y: ours in-tree, with mm/
# (<version>-vmbench-builtin).
#
#   scripts/bench-kernel.sh     build (or reuse) them, print the releases
#
# One tree in $VMCACHE/bench/linux: the second build only compiles what
# the patches and the release name change. About 10 minutes on two
# cores the first time; reused while the tarball, the config, the series
# (the driver and mm/) and this script stay as they are; making the series
# to compare takes about 25 s. Not part of make check: only the bench
# uses it.

set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
VMCACHE=${VMCACHE:-/var/cache/virtio-mem}
SRC_TAR=${SRC_TAR:-/usr/src/linux-source-6.12.tar.xz}
FRAGMENT=$HERE/debug-kernel.config
DIR=$VMCACHE/bench
TREE=$DIR/linux

log() { echo "bench-kernel: $*" >&2; }

# What the builds are made from: the series holds the driver (the modules
# and the built-in kernel) and mm/'s patches; any change rebuilds.
stamp() {
	{
		stat -c '%s %Y' "$SRC_TAR"
		cat "$FRAGMENT" "$0" "$HERE/kernel-install.sh" "$1"/*.patch
	} | sha256sum | cut -d' ' -f1
}

test -f "$SRC_TAR" || { log "$SRC_TAR missing: run make deps"; exit 1; }
mkdir -p "$DIR"
exec 9>"$DIR/lock"
if ! flock -n 9; then
	log "waiting for the build already under way"
	flock 9
fi
rm -rf "$DIR/series"
"$HERE/kernel-series.sh" "$DIR/series" 2>/dev/null
want=$(stamp "$DIR/series")
if [ -f "$DIR/stamp" ] && [ "$(cat "$DIR/stamp")" = "$want" ]; then
	cat "$DIR/releases"
	exit 0
fi

# A fresh tree each time: the last build left the patches applied.
rm -rf "$TREE" "$DIR/stamp"
log "unpacking $SRC_TAR"
mkdir -p "$TREE"
tar -xJf "$SRC_TAR" -C "$TREE" --strip-components=1

# The debug tier's fragment without the checkers and with our own name.
checkers='KASAN|PROVE_LOCKING|DEBUG_ATOMIC_SLEEP|DEBUG_VM|DEBUG_LIST'
checkers+='|PAGE_OWNER|DEBUG_OBJECTS|LOCALVERSION='
grep -Ev "^CONFIG_($checkers)" "$FRAGMENT" >"$DIR/bench.config"

# $1: the release's suffix; $2: y for the driver built in
build() {
	local rel
	make -s -C "$TREE" defconfig >/dev/null
	(cd "$TREE" && scripts/kconfig/merge_config.sh -m .config \
		kernel/configs/kvm_guest.config "$DIR/bench.config" >/dev/null)
	"$TREE/scripts/config" --file "$TREE/.config" \
		--set-str LOCALVERSION "$1"
	if [ "${2:-}" = y ]; then
		"$TREE/scripts/config" --file "$TREE/.config" -e VIRTIO_MEM
	fi
	make -s -C "$TREE" olddefconfig >/dev/null
	if grep -q '^CONFIG_KASAN=y' "$TREE/.config"; then
		log "KASAN still on in the bench kernel"
		exit 1
	fi
	rel=$("$HERE/kernel-install.sh" "$TREE" "$DIR/build$1.log")
	if [ "${2:-}" != y ]; then
		make -s -C "$ROOT" modules KVER="$rel" KDIR="$TREE" >/dev/null
	fi
	echo "$rel"
}

# $1: mm for the series' patches that only touch mm/ (mm/*.patch), driver
# for the others.
apply_series() {
	local p kind
	for p in "$DIR"/series/*.patch; do
		kind=driver
		if ! sed -n 's|^diff --git a/\(.*\) b/.*|\1|p' "$p" |
		     grep -qv '^mm/'; then
			kind=mm
		fi
		[ "$kind" = "$1" ] || continue
		log "applying $(basename "$p")"
		patch -s -p1 -d "$TREE" <"$p"
	done
}

t0=$(date +%s)
plain=$(build -vmbench)
log "built $plain in $(( $(date +%s) - t0 )) s"
apply_series mm
t0=$(date +%s)
mm=$(build -vmbench-mm)
log "built $mm in $(( $(date +%s) - t0 )) s"
# ... and the driver built in, as the in-tree series has it: the rest of
# the series and CONFIG_VIRTIO_MEM=y.
apply_series driver
t0=$(date +%s)
builtin=$(build -vmbench-builtin y)
grep -q 'virtio_mem.ko$' "$TREE/modules.builtin" ||
	{ log "virtio_mem is not built in"; exit 1; }
log "built $builtin in $(( $(date +%s) - t0 )) s"
printf '%s\n%s\n%s\n' "$plain" "$mm" "$builtin" >"$DIR/releases"
echo "$want" >"$DIR/stamp"
cat "$DIR/releases"
