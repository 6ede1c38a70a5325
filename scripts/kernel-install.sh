#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build a configured kernel tree and install it where the VM rig finds
# kernels, as Debian's are unpacked: $VMCACHE/<release>/root with
# boot/vmlinuz-<release>, boot/config-<release> and lib/modules/<release>.
# Shared by debug-kernel.sh and builtin-kernel.sh.
#
#   scripts/kernel-install.sh TREE LOG    prints the release
#
# The root appears whole or not at all: it is put together next to its
# place and renamed, then marked .installed.

set -euo pipefail

VMCACHE=${VMCACHE:-/var/cache/virtio-mem}
JOBS=${JOBS:-$(nproc)}
TREE=$1
LOG=$2

log() { echo "kernel-install: $*" >&2; }

log "building with $JOBS jobs (log: $LOG)"
if ! make -C "$TREE" -j"$JOBS" bzImage modules >"$LOG" 2>&1; then
	tail -n 40 "$LOG" >&2
	log "build failed"
	exit 1
fi

rel=$(cat "$TREE/include/config/kernel.release")
root=$VMCACHE/$rel/root
rm -rf "$root.tmp"
mkdir -p "$root.tmp/boot"
cp "$TREE/arch/x86/boot/bzImage" "$root.tmp/boot/vmlinuz-$rel"
cp "$TREE/.config" "$root.tmp/boot/config-$rel"
make -s -C "$TREE" INSTALL_MOD_PATH="$root.tmp" INSTALL_MOD_STRIP=1 \
	modules_install >>"$LOG" 2>&1
rm -f "$root.tmp/lib/modules/$rel/build" "$root.tmp/lib/modules/$rel/source"
rm -rf "$root"
mv "$root.tmp" "$root"
touch "$root/.installed"
echo "$rel"
