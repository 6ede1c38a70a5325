#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the debug tier's guest kernel, once, outside the repository.
#
#   scripts/debug-kernel.sh            build (or reuse) it, print its release
#   scripts/debug-kernel.sh --kver     print the release it has or will have
#
# Source: Debian's linux-source-6.12 tarball. Config: x86_64 defconfig,
# kernel/configs/kvm_guest.config and scripts/debug-kernel.config (KASAN,
# lockdep, DEBUG_VM and the memory hotplug options). The tree stays in
# $VMCACHE/debug/linux, so modules can be built against it (KDIR) and a
# changed config rebuilds only what it touches. The rig finds the result
# where it finds Debian's kernels: $VMCACHE/<release>/root with
# boot/vmlinuz-<release>, boot/config-<release> and lib/modules/<release>.
#
# Takes 14-19 minutes on two cores the first time; afterwards, while the
# tarball, the config fragment and this script stay as they are, well
# under a second. One build at a time: a second caller waits for the
# first (make check starts one early, niced, beside the distro suites).

set -euo pipefail

VMCACHE=${VMCACHE:-/var/cache/virtio-mem}
SRC_TAR=${SRC_TAR:-/usr/src/linux-source-6.12.tar.xz}
HERE=$(cd "$(dirname "$0")" && pwd)
FRAGMENT=$HERE/debug-kernel.config
DIR=$VMCACHE/debug
TREE=$DIR/linux

log() { echo "debug-kernel: $*" >&2; }

# What the cached build was made from; any change rebuilds.
stamp() {
	{
		stat -c '%s %Y' "$SRC_TAR"
		cat "$FRAGMENT" "$0" "$HERE/kernel-install.sh"
	} | sha256sum | cut -d' ' -f1
}

release() {
	local v
	v=$(tar -xJOf "$SRC_TAR" --wildcards '*/Makefile' 2>/dev/null |
	    awk -F' = ' '/^VERSION/{a=$2} /^PATCHLEVEL/{b=$2}
			 /^SUBLEVEL/{c=$2; print a "." b "." c; exit}')
	echo "$v-vmdebug"
}

if [ "${1:-}" = --kver ]; then
	if [ -f "$DIR/release" ]; then
		cat "$DIR/release"
	else
		release
	fi
	exit 0
fi

test -f "$SRC_TAR" || { log "$SRC_TAR missing: run make deps"; exit 1; }

# make check starts a build in the background early; a second caller
# waits for it here and then finds the result made.
mkdir -p "$DIR"
exec 9>"$DIR/lock"
if ! flock -n 9; then
	log "waiting for the build already under way"
	flock 9
fi

want=$(stamp)
if [ -f "$DIR/stamp" ] && [ "$(cat "$DIR/stamp")" = "$want" ] &&
   [ -f "$DIR/release" ] &&
   [ -f "$VMCACHE/$(cat "$DIR/release")/root/.installed" ]; then
	cat "$DIR/release"
	exit 0
fi

mkdir -p "$DIR"
if [ ! -f "$TREE/.extracted" ]; then
	log "unpacking $SRC_TAR"
	rm -rf "$TREE" "$TREE.tmp"
	mkdir -p "$TREE.tmp"
	tar -xJf "$SRC_TAR" -C "$TREE.tmp" --strip-components=1
	mv "$TREE.tmp" "$TREE"
	touch "$TREE/.extracted"
fi

t0=$(date +%s)
log "configuring (defconfig + kvm_guest.config + $(basename "$FRAGMENT"))"
make -s -C "$TREE" defconfig >/dev/null
(cd "$TREE" && scripts/kconfig/merge_config.sh -m .config \
	kernel/configs/kvm_guest.config "$FRAGMENT" >/dev/null)
make -s -C "$TREE" olddefconfig >/dev/null

# A request the fragment makes that Kconfig dropped is a mistake there.
missing=0
while read -r line; do
	name=${line%%=*}
	case "$line" in
	*=n)	if grep -q "^$name=[ym]" "$TREE/.config"; then
			log "not off: $line"; missing=1
		fi ;;
	*)	if ! grep -qx "$line" "$TREE/.config"; then
			log "not in .config: $line"; missing=1
		fi ;;
	esac
done < <(grep '^CONFIG_' "$FRAGMENT")
[ "$missing" -eq 0 ] || { log "config fragment not applied"; exit 1; }

rel=$("$HERE/kernel-install.sh" "$TREE" "$DIR/build.log")
echo "$rel" >"$DIR/release"
echo "$want" >"$DIR/stamp"
log "built $rel in $(( $(date +%s) - t0 )) s"
echo "$rel"
