#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything the project needs on a Debian 12 (bookworm) machine.
# Run as root (make deps). Idempotent: when everything is already present it
# touches neither the network nor apt and returns in well under a second.
#
# What it provides:
#   - bookworm-backports as an apt source (QEMU 10.0 comes from there);
#   - build, lint and VM-test tools (see PKGS below), and what the debug
#     tier's kernel build needs (flex, bison, bc, libelf, libssl);
#   - the guest kernels: the Debian unsigned image packages for every
#     supported kernel, unpacked to $VMCACHE/<kver>/root (vmlinuz, config,
#     modules tree), outside the repository;
#   - the same for arm64 guests, with QEMU for them (scripts/arm64-guests.sh);
#   - checkpatch.pl and its data files, taken from the linux-source-6.12
#     tarball, in $VMCACHE/checkpatch/;
#   - kexec-tools and the libraries its binary needs, for the guests (the
#     kdump and kexec tests), unpacked to $VMCACHE/kexec/root: never
#     installed on this machine, whose own reboots it would take over.

set -euo pipefail

VMCACHE=${VMCACHE:-/var/cache/virtio-mem}
KVERS=(6.1.0-50-amd64 6.12.95+deb12-amd64)
QEMU_MIN=1:10.0
BACKPORTS=/etc/apt/sources.list.d/backports.sources
LINUX_SRC_TAR=/usr/src/linux-source-6.12.tar.xz

PKGS=(busybox-static cpio python3 sparse gcc libc6-dev make perl clang
      xz-utils kmod linux-source-6.12 gnuplot-nox libclang-rt-14-dev
      flex bison bc libelf-dev libssl-dev util-linux
      dkms dh-dkms debhelper dpkg-dev fakeroot lintian git patch)
for k in "${KVERS[@]}"; do
	PKGS+=("linux-headers-$k")
done

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=900 -o Dpkg::Options::=--force-confdef
	  -o Dpkg::Options::=--force-confold)

log() { echo "deps: $*"; }

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo -E "$0" "$@"
	fi
	echo "deps: must run as root" >&2
	exit 1
fi

apt_updated=0
apt_update() {
	if [ "$apt_updated" -eq 0 ]; then
		log "apt-get update"
		apt-get -q -o DPkg::Lock::Timeout=900 update
		apt_updated=1
	fi
}

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

# 1. bookworm-backports, unless some source already names it.
if ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list \
		/etc/apt/sources.list.d/; then
	log "adding bookworm-backports ($BACKPORTS)"
	cat >"$BACKPORTS" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi

# 2. Packages.
missing=()
for p in "${PKGS[@]}"; do
	installed "$p" || missing+=("$p")
done
qemu_ok=0
if installed qemu-system-x86; then
	v=$(dpkg-query -W -f='${Version}' qemu-system-x86)
	dpkg --compare-versions "$v" ge "$QEMU_MIN" && qemu_ok=1
fi

if [ "${#missing[@]}" -gt 0 ] || [ "$qemu_ok" -eq 0 ]; then
	apt_update
	if [ "$qemu_ok" -eq 0 ]; then
		log "installing qemu-system-x86 from bookworm-backports"
		apt-get "${APT_OPTS[@]}" install --no-install-recommends \
			-t bookworm-backports qemu-system-x86
	fi
	if [ "${#missing[@]}" -gt 0 ]; then
		log "installing ${missing[*]}"
		apt-get "${APT_OPTS[@]}" install --no-install-recommends \
			"${missing[@]}"
	fi
fi

# 3. Guest kernels: vmlinuz + config + modules, unpacked outside the repo.
for k in "${KVERS[@]}"; do
	dir=$VMCACHE/$k
	[ -f "$dir/.unpacked" ] && continue
	pkg=linux-image-$k-unsigned
	mkdir -p "$dir"
	if ! ls "$dir"/"${pkg}"_*.deb >/dev/null 2>&1; then
		apt-cache show "$pkg" >/dev/null 2>&1 || apt_update
		log "downloading $pkg"
		(cd "$dir" && apt-get -q -o APT::Sandbox::User=root download "$pkg")
	fi
	deb=$(ls "$dir"/"${pkg}"_*.deb | head -n 1)
	log "unpacking $(basename "$deb")"
	rm -rf "$dir/root" "$dir/root.tmp"
	dpkg-deb -x "$deb" "$dir/root.tmp"
	test -f "$dir/root.tmp/boot/vmlinuz-$k"
	test -d "$dir/root.tmp/lib/modules/$k/kernel"
	mv "$dir/root.tmp" "$dir/root"
	# The rig only needs root/; keep the .deb out of the way of disk usage.
	rm -f "$deb"
	touch "$dir/.unpacked"
done

# The image packages ship no modules.dep (the postinst makes it): make one,
# so the rig can resolve module dependencies.
for k in "${KVERS[@]}"; do
	dir=$VMCACHE/$k
	[ -f "$dir/root/lib/modules/$k/modules.dep" ] && continue
	log "depmod for $k"
	depmod -b "$dir/root" "$k"
done

# 3b. Cross compilers and other architectures' headers (make modules-all).
"$(dirname "$0")"/cross.sh fetch

# 3c. arm64 guests: qemu-system-aarch64, Debian's arm64 kernels, busybox.
"$(dirname "$0")"/arm64-guests.sh

# 4. checkpatch.pl and its data files from the kernel source tarball.
cp_dir=$VMCACHE/checkpatch
if [ ! -f "$cp_dir/.extracted" ] || [ "$LINUX_SRC_TAR" -nt "$cp_dir/.extracted" ]; then
	log "extracting checkpatch.pl from $LINUX_SRC_TAR"
	rm -rf "$cp_dir" "$cp_dir.tmp"
	mkdir -p "$cp_dir.tmp"
	tar -xJf "$LINUX_SRC_TAR" -C "$cp_dir.tmp" --strip-components=2 \
		--wildcards '*/scripts/checkpatch.pl' '*/scripts/spelling.txt' \
		'*/scripts/const_structs.checkpatch'
	test -x "$cp_dir.tmp/checkpatch.pl"
	mv "$cp_dir.tmp" "$cp_dir"
	touch "$cp_dir/.extracted"
fi

# 5. kexec-tools for the guests. Debian builds kexec with Xen support, so
# the Xen libraries it links come along.
KEXEC_PKGS=(kexec-tools libxenmisc4.17 libxencall1 libxendevicemodel1
	    libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenhypfs1
	    libxenstore4 libxentoolcore1 libxentoollog1 libyajl2 zlib1g)
kx_dir=$VMCACHE/kexec
if [ ! -f "$kx_dir/.unpacked" ]; then
	rm -rf "$kx_dir"
	mkdir -p "$kx_dir/debs"
	apt-cache show kexec-tools >/dev/null 2>&1 || apt_update
	log "downloading ${KEXEC_PKGS[*]}"
	(cd "$kx_dir/debs" &&
	 apt-get -q -o APT::Sandbox::User=root download "${KEXEC_PKGS[@]}")
	for deb in "$kx_dir"/debs/*.deb; do
		dpkg-deb -x "$deb" "$kx_dir/root"
	done
	rm -rf "$kx_dir/debs"
	LD_LIBRARY_PATH=$kx_dir/root/usr/lib/x86_64-linux-gnu:$kx_dir/root/lib/x86_64-linux-gnu \
		"$kx_dir/root/sbin/kexec" --version
	touch "$kx_dir/.unpacked"
fi

log "all present"
