#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What the VM rig needs to boot arm64 guests (make deps runs this):
#   - qemu-system-arm (it has qemu-system-aarch64) from bookworm-backports;
#   - libc6-dev-arm64-cross, so that the in-guest selftests link statically
#     for arm64 (gcc-aarch64-linux-gnu comes with scripts/cross.sh);
#   - busybox-static:arm64, unpacked to $VMCACHE/arm64/busybox;
#   - Debian's arm64 kernel images, each unpacked to $VMCACHE/arm64/<kver>/root
#     the way deps.sh keeps the amd64 ones (with a modules.dep).
# Idempotent: with everything present it touches neither apt nor the network.

set -euo pipefail

VMCACHE=${VMCACHE:-/var/cache/virtio-mem}
DIR=$VMCACHE/arm64
KVERS=(6.12.95+deb12-arm64 6.1.0-50-arm64 6.12.95+deb12-arm64-16k)
QEMU_MIN=1:10.0
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=900)
export DEBIAN_FRONTEND=noninteractive

log() { echo "arm64-guests: $*"; }

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

updated=0
apt_update() {
	[ "$updated" -eq 1 ] && return 0
	apt-get -q -o DPkg::Lock::Timeout=900 update
	updated=1
}

# $1: package (with :arch), $2: directory it is unpacked as, once.
unpack() {
	local tmp
	[ -f "$2/.unpacked" ] && return 0
	apt-cache show "$1" >/dev/null 2>&1 || apt_update
	log "downloading and unpacking $1"
	mkdir -p "$DIR"
	tmp=$(mktemp -d "$DIR/dl.XXXXXX")
	(cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download "$1")
	rm -rf "$2"
	# dpkg-deb -x makes the last directory only.
	mkdir -p "${2%/*}"
	dpkg-deb -x "$tmp"/*.deb "$2"
	rm -rf "$tmp"
	touch "$2/.unpacked"
}

dpkg --print-foreign-architectures | grep -qx arm64 || {
	log "dpkg --add-architecture arm64"
	dpkg --add-architecture arm64
	apt_update
}

qemu_ok=0
if installed qemu-system-arm; then
	v=$(dpkg-query -W -f='${Version}' qemu-system-arm)
	dpkg --compare-versions "$v" ge "$QEMU_MIN" && qemu_ok=1
fi
if [ "$qemu_ok" -eq 0 ]; then
	apt_update
	log "installing qemu-system-arm from bookworm-backports"
	apt-get "${APT_OPTS[@]}" install --no-install-recommends \
		-t bookworm-backports qemu-system-arm
fi
if ! installed libc6-dev-arm64-cross; then
	apt_update
	log "installing libc6-dev-arm64-cross"
	apt-get "${APT_OPTS[@]}" install --no-install-recommends \
		libc6-dev-arm64-cross
fi

unpack busybox-static:arm64 "$DIR/busybox"
for k in "${KVERS[@]}"; do
	unpack "linux-image-$k-unsigned:arm64" "$DIR/$k/root"
	[ -f "$DIR/$k/root/lib/modules/$k/modules.dep" ] ||
		depmod -b "$DIR/$k/root" "$k"
done
