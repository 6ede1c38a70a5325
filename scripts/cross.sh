#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Cross-builds of the module against Debian's own headers of other
# architectures, the way the in-tree driver is built there:
#
#   scripts/cross.sh fetch   install the cross compilers, download and
#                            unpack the headers (make deps runs this)
#   scripts/cross.sh build   build each target W=1, fail on any warning
#                            (make modules-all runs this)
#
# The headers go to $VMCACHE/cross/root, never into the host's /usr/src.
# Their scripts/ are the host's linux-kbuild of the same version (Debian
# builds those tools for the machine that compiles, not for the target).

set -euo pipefail

cd "$(dirname "$0")/.."
VMCACHE=${VMCACHE:-/var/cache/virtio-mem}
DIR=$VMCACHE/cross
ROOT=$DIR/root

# <kbuild ARCH>:<Debian architecture>:<kernel release>. arm64-16k: 16 KiB
# pages, so 32 MiB pageblocks and subblocks. Debian 12 has no riscv64
# port and no 64 KiB-page arm64 flavour.
TARGETS=(
	arm64:arm64:6.12.95+deb12-arm64
	arm64:arm64:6.1.0-50-arm64
	arm64:arm64:6.12.95+deb12-arm64-16k
	s390:s390x:6.12.95+deb12-s390x
	s390:s390x:6.1.0-50-s390x
)

log() { echo "cross: $*"; }

cross_compile() {
	case $1 in
	arm64) echo aarch64-linux-gnu- ;;
	s390) echo s390x-linux-gnu- ;;
	esac
}

fetch() {
	local t arch deb k pkgs=() updated=0 gcc
	[ -f "$DIR/.unpacked" ] && return 0
	for t in "${TARGETS[@]}"; do
		IFS=: read -r arch deb k <<<"$t"
		dpkg --print-foreign-architectures | grep -qx "$deb" || {
			log "dpkg --add-architecture $deb"
			dpkg --add-architecture "$deb"
			updated=1
		}
		gcc=gcc-$(cross_compile "$arch" | sed 's/-$//')
		dpkg-query -W -f='${Status}' "$gcc" 2>/dev/null |
			grep -q 'install ok installed' || pkgs+=("$gcc")
	done
	if [ "$updated" -eq 1 ] || [ "${#pkgs[@]}" -gt 0 ]; then
		apt-get -q -o DPkg::Lock::Timeout=900 update
	fi
	if [ "${#pkgs[@]}" -gt 0 ]; then
		log "installing ${pkgs[*]}"
		apt-get -y -q -o DPkg::Lock::Timeout=900 install \
			--no-install-recommends $(printf '%s\n' "${pkgs[@]}" | sort -u)
	fi
	rm -rf "$DIR"
	mkdir -p "$DIR/debs"
	for t in "${TARGETS[@]}"; do
		IFS=: read -r arch deb k <<<"$t"
		log "downloading linux-headers-$k:$deb"
		(cd "$DIR/debs" && apt-get -q -o APT::Sandbox::User=root \
			download "linux-headers-$k:$deb")
	done
	for f in "$DIR"/debs/*.deb; do
		dpkg-deb -x "$f" "$ROOT"
	done
	rm -rf "$DIR/debs"
	# scripts/ and tools/ point at ../../lib/linux-kbuild-<ver>: the host's.
	mkdir -p "$ROOT/usr/lib"
	for f in "$ROOT"/usr/src/linux-headers-*/scripts; do
		k=$(readlink "$f" | sed -n 's|^\.\./\.\./lib/\([^/]*\)/scripts$|\1|p')
		[ -n "$k" ] && [ -d /usr/lib/"$k" ] || {
			echo "cross: $f: no host /usr/lib/$k (linux-kbuild)" >&2
			exit 1
		}
		ln -sfn /usr/lib/"$k" "$ROOT/usr/lib/$k"
	done
	touch "$DIR/.unpacked"
}

build() {
	local t arch deb k kdir out log
	for t in "${TARGETS[@]}"; do
		IFS=: read -r arch deb k <<<"$t"
		kdir=$ROOT/usr/src/linux-headers-$k
		[ -f "$kdir/Makefile" ] || {
			echo "cross: $kdir missing: run 'make deps'" >&2
			exit 1
		}
		echo "== build for $k (ARCH=$arch)"
		out=build/cross/$k
		log=build/build-$k.log
		mkdir -p "$out"
		make -C "$kdir" M="$PWD/drivers/virtio" ARCH="$arch" clean \
			>/dev/null
		if ! make -C "$kdir" M="$PWD" ARCH="$arch" \
			CROSS_COMPILE="$(cross_compile "$arch")" W=1 \
			CONFIG_VIRTIO_MEM=m modules >"$log" 2>&1 ||
		   grep -E 'warning:|error:' "$log"; then
			cat "$log"
			echo "cross: build for $k failed or has warnings"
			exit 1
		fi
		cp drivers/virtio/virtio_mem.ko "$out/"
		readelf -h "$out/virtio_mem.ko" | sed -n 's/^ *Machine: *//p'
		make -C "$kdir" M="$PWD/drivers/virtio" ARCH="$arch" clean \
			>/dev/null
		rm -f Module.symvers modules.order
	done
}

case ${1:-} in
fetch) fetch ;;
build) build ;;
*) echo "usage: $0 fetch|build" >&2; exit 2 ;;
esac
