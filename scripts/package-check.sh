#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-package: the two ways a distribution user installs the driver,
# tried as that user would, for every supported kernel:
#
#   1. DKMS from the source tree (README): dkms add, build, install; the
#      kernel's modinfo then finds ours in updates/dkms, and a guest boots
#      and resizes with exactly that file; dkms remove gives the distro's
#      driver back.
#   2. The Debian package: dpkg-buildpackage -us -uc, lintian (no error or
#      warning), apt install ./virtio-mem-dkms_<version>_all.deb builds it
#      for each kernel with headers; apt purge takes it all away again.
#
# It changes the machine (/usr/src, /var/lib/dkms, /lib/modules/*/updates)
# and undoes what it did; it stops if an earlier install of ours is there.

set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
KVERS=${KVERS:-$(sed -n 's/^SUPPORTED_KVERS *:= *//p' Makefile)}
PYTHON=${PYTHON:-python3}
# A scenario that plugs, unloads and loads the module again.
SCENARIO=${PACKAGE_SCENARIO:-rmmod_insmod}
VER=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' dkms.conf)
OUT=build/package

log() { echo "package-check: $*"; }
die() { echo "package-check: FAIL: $*" >&2; exit 1; }

# The version is written in three places; they must agree.
mver=$(sed -n 's/^MODULE_VERSION("\(.*\)");$/\1/p' \
	drivers/virtio/virtio_mem_core.c)
dver=$(dpkg-parsechangelog -l debian/changelog -SVersion)
[ "$VER" = "$mver" ] && [ "$VER" = "$dver" ] ||
	die "versions differ: dkms.conf $VER, MODULE_VERSION $mver," \
	    "debian/changelog $dver"

# The files the package ships, as git knows them (a checkout with edits
# not yet committed is tried as it is).
sources() {
	git ls-files -co --exclude-standard |
		grep -E '^(Kbuild|Kconfig|dkms.conf|drivers/|include/|debian/)'
}

where() { modinfo -k "$1" -n virtio_mem; }

expect_ours() {
	local k=$1 path version
	path=$(where "$k")
	version=$(modinfo -k "$k" -F version virtio_mem)
	case $path in
	*/updates/dkms/*) ;;
	*) die "$k: modinfo -n virtio_mem is $path, not updates/dkms" ;;
	esac
	[ "$version" = "$VER" ] || die "$k: module version '$version', not $VER"
	log "$k: $path (version $version)"
}

# The kernel's own module again, or none where only that kernel's headers
# are installed (the VM tier takes its images from $VMCACHE instead).
expect_distro() {
	local k=$1 path
	path=$(where "$k" 2>/dev/null) || path=
	case $path in
	*/kernel/drivers/virtio/*) log "$k: back to $path" ;;
	"")
		[ ! -d /lib/modules/"$k"/kernel ] ||
			die "$k: modinfo finds no virtio_mem at all"
		log "$k: no virtio_mem (this machine has only its headers)" ;;
	*) die "$k: modinfo -n virtio_mem is $path, not the kernel's" ;;
	esac
}

if dkms status virtio-mem 2>/dev/null | grep -q . ||
   [ -e /usr/src/virtio-mem-"$VER" ]; then
	die "virtio-mem is already known to DKMS or in /usr/src:" \
	    "remove it first (dkms remove virtio-mem/$VER --all)"
fi
rm -rf "$OUT"
mkdir -p "$OUT"

# -- 1. DKMS from the source tree
log "dkms add/build/install virtio-mem/$VER"
mkdir /usr/src/virtio-mem-"$VER"
sources | grep -v '^debian/' | cpio -pdm --quiet /usr/src/virtio-mem-"$VER"
trap 'dkms remove virtio-mem/$VER --all >/dev/null 2>&1 || true;
      rm -rf /usr/src/virtio-mem-$VER' EXIT
dkms add virtio-mem/"$VER"
for k in $KVERS; do
	dkms build virtio-mem/"$VER" -k "$k" >"$OUT/dkms-build-$k.log" 2>&1 ||
		{ cat "$OUT/dkms-build-$k.log"; die "dkms build for $k"; }
	dkms install virtio-mem/"$VER" -k "$k" >"$OUT/dkms-install-$k.log" \
		2>&1 || { cat "$OUT/dkms-install-$k.log"; die "dkms install $k"; }
	expect_ours "$k"
done
for k in $KVERS; do
	log "$k: $SCENARIO with the DKMS-installed module"
	"$PYTHON" tools/testing/virtio_mem/vmtest.py --kver "$k" \
		--module "$(where "$k")" --tag dkms --only "$SCENARIO" ||
		die "$k: $SCENARIO with the DKMS module"
done
dkms remove virtio-mem/"$VER" --all >"$OUT/dkms-remove.log" 2>&1 ||
	{ cat "$OUT/dkms-remove.log"; die "dkms remove"; }
rm -rf /usr/src/virtio-mem-"$VER"
trap - EXIT
for k in $KVERS; do
	expect_distro "$k"
done

# -- 2. The Debian package
log "dpkg-buildpackage -us -uc"
src=$OUT/virtio-mem-$VER
mkdir -p "$src"
sources | cpio -pdm --quiet "$src"
# As in a checkout the module was built in: kbuild's outputs lie beside
# the sources, and must stay out of the package.
k1=${KVERS%% *}
make -C /lib/modules/"$k1"/build M="$PWD/$src" CONFIG_VIRTIO_MEM=m modules \
	>"$OUT/module-build.log" 2>&1 ||
	{ cat "$OUT/module-build.log"; die "module build in $src"; }
(cd "$src" && dpkg-buildpackage -us -uc) >"$OUT/dpkg-buildpackage.log" 2>&1 ||
	{ cat "$OUT/dpkg-buildpackage.log"; die "dpkg-buildpackage"; }
deb=$OUT/virtio-mem-dkms_${VER}_all.deb
[ -f "$deb" ] || die "$deb was not built"
stray=$(dpkg-deb -c "$deb" | awk '{print $6}' | grep -v '/$' |
	grep -Ev '\.[ch]$|/(Kbuild|Kconfig|Makefile|dkms\.conf)$|/usr/share/doc/' ||
	true)
[ -z "$stray" ] || die "the package holds more than sources: $stray"
log "lintian"
rc=0
lintian --fail-on error,warning --pedantic -I \
	"$OUT"/virtio-mem_"$VER"_*.changes >"$OUT/lintian.log" 2>&1 || rc=$?
grep -v 'root privileges' "$OUT/lintian.log" || true
[ "$rc" -eq 0 ] || die "lintian"
log "apt install ./$deb"
trap 'apt-get -y -q purge virtio-mem-dkms >/dev/null 2>&1 || true' EXIT
apt-get -y -q install "$ROOT/$deb" >"$OUT/apt-install.log" 2>&1 ||
	{ cat "$OUT/apt-install.log"; die "apt install"; }
for k in $KVERS; do
	expect_ours "$k"
done
log "apt purge virtio-mem-dkms"
apt-get -y -q purge virtio-mem-dkms >"$OUT/apt-purge.log" 2>&1 ||
	{ cat "$OUT/apt-purge.log"; die "apt purge"; }
trap - EXIT
for k in $KVERS; do
	expect_distro "$k"
done
[ ! -e /usr/src/virtio-mem-"$VER" ] || die "/usr/src/virtio-mem-$VER stayed"
! dkms status virtio-mem | grep -q . || die "dkms still knows virtio-mem"
log "ok"
