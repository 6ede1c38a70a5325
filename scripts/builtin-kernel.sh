#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The driver built into the kernel: the debug tier's kernel tree with the
# patch series (scripts/kernel-series.sh) applied and CONFIG_VIRTIO_MEM=y.
#
#   scripts/builtin-kernel.sh          build (or reuse) it, print its release
#   scripts/builtin-kernel.sh --kver   print the release it has or will have
#
# The tree is the debug kernel's ($VMCACHE/debug/linux, built by
# scripts/debug-kernel.sh) seen through an overlay mount: what this build
# writes lands in $VMCACHE/builtin/upper, and the debug tree, objects and
# all, stays as it is. So only what the series and the config change is
# compiled again: the driver, the files that test CONFIG_VIRTIO_MEM or
# the release, and the link. (Copying the tree instead took 9 minutes
# here.) A new series (any change to the driver) first drops the files
# the last one touched from the upper layer, which brings back the debug
# tree's, then applies the new one, one patch at a time: each patch that
# touches code must build (W=1, no warnings in drivers/virtio/; the
# selftests with the kernel's own lib.mk), so the series stays
# bisectable. The result is installed where the rig finds kernels:
# $VMCACHE/<release>/root.

set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
VMCACHE=${VMCACHE:-/var/cache/virtio-mem}
DEBUG_TREE=$VMCACHE/debug/linux
DIR=$VMCACHE/builtin
TREE=$DIR/linux
UPPER=$DIR/upper
JOBS=${JOBS:-$(nproc)}

log() { echo "builtin-kernel: $*" >&2; }

release() {
	local dbg
	dbg=$("$HERE/debug-kernel.sh" --kver)
	echo "${dbg%-vmdebug}-vmbuiltin"
}

if [ "${1:-}" = --kver ]; then
	release
	exit 0
fi

"$HERE/debug-kernel.sh" >/dev/null
debug_stamp=$(cat "$VMCACHE/debug/stamp")
rel=$(release)

new=$(mktemp -d)
cleanup() {
	mountpoint -q "$TREE" && umount "$TREE"
	rm -rf "$new"
}
trap cleanup EXIT
SRC_TREE=$DEBUG_TREE "$HERE/kernel-series.sh" "$new/series"

want=$({ echo "$debug_stamp"; cat "$new"/series/*.patch "$0" \
	   "$HERE/kernel-install.sh"; } |
       sha256sum | cut -d' ' -f1)
if [ -f "$DIR/stamp" ] && [ "$(cat "$DIR/stamp")" = "$want" ] &&
   [ -f "$VMCACHE/$rel/root/.installed" ]; then
	echo "$rel"
	exit 0
fi
rm -f "$DIR/stamp"

t0=$(date +%s)
mkdir -p "$DIR"
mountpoint -q "$TREE" && umount "$TREE"
# An upper layer over another debug build means nothing.
if [ "$(cat "$DIR/lower" 2>/dev/null)" != "$debug_stamp" ]; then
	rm -rf "$UPPER" "$DIR/work" "$DIR/applied" "$DIR/applying"
	echo "$debug_stamp" >"$DIR/lower"
fi

# The files a series touches, from its diff headers.
series_files() {
	sed -n 's|^diff --git a/\(.*\) b/.*|\1|p' "$@" | sort -u
}

# The debug tree's files back before the new series goes on: out of the
# upper layer with what the last series did to them (whiteouts of the
# files it removed too). A patch is listed in applying/ before it is
# applied, so a run that stopped half way is undone as well.
shopt -s nullglob
old=("$DIR"/applied/*.patch "$DIR"/applying/*.patch)
shopt -u nullglob
if [ "${#old[@]}" -gt 0 ]; then
	for f in $(series_files "${old[@]}"); do
		rm -f "$UPPER/$f"
	done
fi
rm -rf "$DIR/applied" "$DIR/applying"

mkdir -p "$UPPER" "$DIR/work" "$TREE"
mount -t overlay overlay \
	-o "lowerdir=$DEBUG_TREE,upperdir=$UPPER,workdir=$DIR/work" \
	"$TREE"

# What the series changes in the config; the rest is the debug kernel's.
cp -p "$DEBUG_TREE/.config" "$TREE/.config"
"$TREE/scripts/config" --file "$TREE/.config" -e VIRTIO_MEM \
	--set-str LOCALVERSION -vmbuiltin

mkdir -p "$DIR/applying"
for p in "$new"/series/*.patch; do
	log "applying $(basename "$p")"
	cp "$p" "$DIR/applying/"
	if ! patch -d "$TREE" -p1 -s --no-backup-if-mismatch <"$p"; then
		log "$(basename "$p") does not apply"
		exit 1
	fi
	if series_files "$p" | grep -q '^tools/testing/selftests/'; then
		out=$(make -C "$TREE/tools/testing/selftests" TARGETS=virtio_mem \
			  2>&1) || {
			echo "$out" | tail -n 40 >&2
			log "$(basename "$p"): the selftests do not build"
			exit 1
		}
	fi
	if series_files "$p" | grep -v '^tools/testing/selftests/' |
	   grep -qv '^Documentation/\|^MAINTAINERS$'; then
		make -s -C "$TREE" olddefconfig >/dev/null
		out=$(make -C "$TREE" -j"$JOBS" W=1 drivers/virtio/ 2>&1) || {
			echo "$out" | tail -n 40 >&2
			log "$(basename "$p"): drivers/virtio/ does not build"
			exit 1
		}
		if echo "$out" | grep -E 'virtio_mem[^ ]*: (warning|error):'; then
			log "$(basename "$p"): warnings in the driver (W=1)"
			exit 1
		fi
	fi
done
mv "$DIR/applying" "$DIR/applied"

make -s -C "$TREE" olddefconfig >/dev/null
grep -qx 'CONFIG_VIRTIO_MEM=y' "$TREE/.config" ||
	{ log "CONFIG_VIRTIO_MEM=y did not stick"; exit 1; }

# A build that fails must not leave a root the rig would boot.
got=$("$HERE/kernel-install.sh" "$TREE" "$DIR/build.log")
if [ "$got" != "$rel" ] ||
   ! grep -q 'virtio_mem.ko$' "$TREE/modules.builtin"; then
	rm -rf "$VMCACHE/$got/root"
	log "built $got, expected $rel with virtio_mem in modules.builtin"
	exit 1
fi
echo "$want" >"$DIR/stamp"
log "built $rel in $(( $(date +%s) - t0 )) s"
echo "$rel"
