#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The driver as a patch series against Debian's linux-source-6.12, the way
# it would be sent for inclusion: `git am`-able, one change per patch, each
# with a subject, a description and a Signed-off-by.
#
#   scripts/kernel-series.sh [OUTDIR]     write the series (build/series)
#   scripts/kernel-series.sh --check      ... and run checkpatch --strict
#                                         on each patch
#
# SRC_TREE=<dir>: take the upstream files from an unpacked linux-source
# tree instead of the tarball (which takes about 25 s to read).
#
# The series is made in a scratch git repository that holds only the
# upstream files it touches, so it takes seconds and no kernel tree; the
# patches apply to the whole tree (git am, or patch -p1) all the same.
#
# The kernel's include/uapi/linux/virtio_mem.h is left alone: ours keeps
# its names and layout, and 6.12's already has every feature bit the
# driver uses. Our copy exists for the out-of-tree build on 6.1.
#
# mm/ holds the core-mm patches (mm/README); each mm/*.patch there is
# added to the end of the series as it is.

set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SRC_TAR=${SRC_TAR:-/usr/src/linux-source-6.12.tar.xz}
VMCACHE=${VMCACHE:-/var/cache/virtio-mem}
CHECKPATCH=${CHECKPATCH:-$VMCACHE/checkpatch/checkpatch.pl}

check=0
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi
OUT=${1:-$ROOT/build/series}

log() { echo "kernel-series: $*" >&2; }

test -f "$SRC_TAR" || { log "$SRC_TAR missing: run make deps"; exit 1; }

# The upstream files the series changes or removes.
touched=(
	MAINTAINERS
	drivers/virtio/Kconfig
	drivers/virtio/Makefile
	drivers/virtio/virtio_mem.c
	Documentation/admin-guide/mm/index.rst
	Documentation/driver-api/virtio/index.rst
	tools/testing/selftests/Makefile
)
# ... and the files the mm/ patches change (not those they create).
shopt -s nullglob
for p in "$ROOT"/mm/*.patch; do
	mapfile -t -O "${#touched[@]}" touched < <(sed -n 's|^--- a/||p' "$p")
done
shopt -u nullglob
mapfile -t touched < <(printf '%s\n' "${touched[@]}" | sort -u)

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
if [ -n "${SRC_TREE:-}" ]; then
	# An unpacked tarball (the debug kernel's tree): no unpacking.
	(cd "$SRC_TREE" && cp --parents -t "$W" "${touched[@]}")
else
	# (head ends tar early: its SIGPIPE is not a failure.)
	top=$(tar -tJf "$SRC_TAR" 2>/dev/null | head -n 1 | cut -d/ -f1 ||
	      true)
	tar -xJf "$SRC_TAR" -C "$W" --strip-components=1 \
		"${touched[@]/#/$top/}"
fi

name=$(git -C "$ROOT" log -1 --format=%an 2>/dev/null || true)
email=$(git -C "$ROOT" log -1 --format=%ae 2>/dev/null || true)
export GIT_AUTHOR_NAME=${name:-virtio-mem maintainers}
export GIT_AUTHOR_EMAIL=${email:-virtio-mem@localhost}
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME
export GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
# Fixed dates: the same tree gives the same series.
export GIT_AUTHOR_DATE='2026-01-01T00:00:00Z'
export GIT_COMMITTER_DATE=$GIT_AUTHOR_DATE

g() { git -C "$W" -c core.autocrlf=false "$@"; }
g init -q
g add -A
g commit -q -m "Debian linux-source-6.12 (the files this series touches)"
base=$(g rev-parse HEAD)

# commit SUBJECT BODY: everything staged, signed off.
commit() {
	g add -A
	g commit -q -s -F - <<-EOF
	$1

	$2
	EOF
}

# maintainers_add PATTERN: one more F: line in the VIRTIO MEM DRIVER
# entry, kept in order.
maintainers_add() {
	python3 - "$W/MAINTAINERS" "$1" <<-'EOF'
	import sys
	path, pattern = sys.argv[1], sys.argv[2]
	lines = open(path).read().split('\n')
	start = lines.index('VIRTIO MEM DRIVER')
	end = lines.index('', start)
	files = [l for l in lines[start:end] if l.startswith('F:\t')]
	files = sorted(set(files) | {'F:\t' + pattern})
	head = [l for l in lines[start:end] if not l.startswith('F:\t')]
	lines[start:end] = head + files
	open(path, 'w').write('\n'.join(lines))
	EOF
}

# --- 1: the driver
rm "$W/drivers/virtio/virtio_mem.c"
# What git tracks: a build in the checkout leaves generated sources.
git -C "$ROOT" ls-files -z 'drivers/virtio/virtio_mem*.[ch]' |
	(cd "$ROOT" && xargs -0 cp -t "$W/drivers/virtio/")
mkdir -p "$W/include/trace/events"
cp "$ROOT/include/trace/events/virtio_mem.h" "$W/include/trace/events/"
python3 - "$W/drivers/virtio/Kconfig" "$ROOT/drivers/virtio/Kconfig" \
	  "$W/drivers/virtio/Makefile" "$ROOT/drivers/virtio/Makefile" <<-'EOF'
import re
import sys
kconfig, ours, makefile, our_make = sys.argv[1:]
text = open(kconfig).read()
entry = re.search(r'^config VIRTIO_MEM\n.*?(?=^config |\Z)',
                  open(ours).read(), re.M | re.S).group(0)
old = re.search(r'^config VIRTIO_MEM\n.*?(?=^config |\Z)', text, re.M | re.S)
text = text[:old.start()] + entry.rstrip('\n') + '\n\n' + text[old.end():]
open(kconfig, 'w').write(text)
# Our Makefile's rules for the driver replace the one-file rule.
rules = [l for l in open(our_make).read().split('\n')
         if l and not l.startswith('#')]
text = open(makefile).read()
one = 'obj-$(CONFIG_VIRTIO_MEM) += virtio_mem.o\n'
assert one in text, 'drivers/virtio/Makefile: no virtio_mem rule'
open(makefile, 'w').write(text.replace(one, '\n'.join(rules) + '\n'))
EOF
sed -i 's|^F:\tdrivers/virtio/virtio_mem\.c$|F:\tdrivers/virtio/virtio_mem*|' \
	"$W/MAINTAINERS"
maintainers_add include/trace/events/virtio_mem.h
commit "virtio-mem: split the driver into state, policy and acting layers" \
"The driver was one file of about 3,000 lines in which deciding what to
do next, asking the device and changing core-mm state were interleaved.
Replace it with a driver of the same name and the same device ID, split
by what each part may touch:

- virtio_mem_state.c and virtio_mem_policy.c: the block and subblock
  state and every decision (what to plug or unplug next, when to retry,
  the OOM guard), with no mm or virtio calls, so that they can be tested
  in userspace as they are.
- virtio_mem_device.c: config space and requests.
- virtio_mem_mm.c and virtio_mem_notify.c: adding, onlining, offlining
  and removing memory, fake-offline pages, the memory notifier.
- virtio_mem_sbm.c, virtio_mem_bbm.c and virtio_mem_modes.c: Sub Block
  Mode, Big Block Mode and what the two share.
- virtio_mem_core.c and virtio_mem_lifecycle.c: probe and remove, the
  one worker with its retry policy, kdump, suspend and kexec.
- virtio_mem_sysfs.c: a sysfs directory per device and a debugfs map.

Behaviour a user sees, beyond the old driver: unplug of online memory
is bounded in time and never takes available memory below a floor (no
OOM kills from unplug), fully unplugged blocks are removed in one sweep,
the driver can be unbound and loaded again and adopts what it left
added, suspend-to-idle works with memory plugged, and each change of
state is visible in sysfs, debugfs, tracepoints and one log line.

The uapi header is unchanged."

# --- 2: the device's rules
mkdir -p "$W/Documentation/driver-api/virtio"
cp "$ROOT/Documentation/driver-api/virtio/virtio-mem.rst" \
	"$W/Documentation/driver-api/virtio/"
sed -i 's|^   writing_virtio_drivers$|&\n   virtio-mem|' \
	"$W/Documentation/driver-api/virtio/index.rst"
maintainers_add Documentation/driver-api/virtio/virtio-mem.rst
commit "Documentation: virtio-mem: the rules the device sets for a driver" \
"The virtio specification's Memory Device chapter spreads what a driver
must and must not do over requirements, the config layout and the
request descriptions. Collect the rules the driver follows in one
numbered list (C1..C11) that the code's comments refer to."

# --- 3: the admin guide
cp "$ROOT/Documentation/admin-guide/mm/virtio-mem.rst" \
	"$W/Documentation/admin-guide/mm/"
sed -i 's|^   userfaultfd$|&\n   virtio-mem|' \
	"$W/Documentation/admin-guide/mm/index.rst"
maintainers_add Documentation/admin-guide/mm/virtio-mem.rst
commit "Documentation: admin-guide: virtio-mem" \
"How to use the driver as a guest's administrator: its module
parameters, how added memory is onlined, what unplug takes and in
which order, the OOM guard, what happens on kdump, suspend, kexec,
unbind and reload, and how to watch it."

# --- 4: the sysfs ABI
mkdir -p "$W/Documentation/ABI/testing"
cp "$ROOT/Documentation/ABI/testing/sysfs-driver-virtio_mem" \
	"$W/Documentation/ABI/testing/"
maintainers_add Documentation/ABI/testing/sysfs-driver-virtio_mem
commit "Documentation/ABI: virtio-mem: the per-device sysfs directory" \
"Describe the attributes under /sys/bus/virtio/drivers/virtio_mem/<dev>/
that the driver added in the first patch of this series."

# --- 5: the in-guest selftests (our lib.mk stands in for the kernel's)
mkdir -p "$W/tools/testing/selftests/virtio_mem"
git -C "$ROOT" ls-files -z tools/testing/selftests/virtio_mem |
	(cd "$ROOT" && xargs -0 cp -t "$W/tools/testing/selftests/virtio_mem/")
sed -i 's|^TARGETS += vDSO$|&\nTARGETS += virtio_mem|' \
	"$W/tools/testing/selftests/Makefile"
maintainers_add tools/testing/selftests/virtio_mem/
commit "selftests: virtio_mem: tests that run in a guest with a device" \
"hotplug_check.sh compares what the driver says in sysfs with
/sys/devices/system/memory and /proc/iomem; memfill writes and checks a
pattern over the memory the guest has, so that plugged memory is known
to be usable; pinmem pins memory long-term (io_uring registered
buffers), which unplug must stop short of instead of retrying for ever;
dumpcheck reads a device's region from /proc/vmcore in a crash kernel.
The host side (QEMU, QMP and the scenarios that drive these) lives with
the driver's out-of-tree test rig."

# --- 6..: core-mm, from mm/
shopt -s nullglob
for p in "$ROOT"/mm/*.patch; do
	g am -q --keep-cr "$p"
done
shopt -u nullglob

rm -rf "$OUT"
mkdir -p "$OUT"
g format-patch -q --no-signature -o "$OUT" "$base"
log "$(ls "$OUT" | wc -l) patches in $OUT"

if [ "$check" = 1 ]; then
	test -x "$CHECKPATCH" || { log "$CHECKPATCH missing: run make deps"; exit 1; }
	# As in make lint: no tree for CamelCase lookups, and the compat
	# header's version tests and TRACE_EVENT()'s layout are what they are.
	# In user space (the selftests), volatile sig_atomic_t is what a
	# signal handler needs and BIT_ULL() does not exist.
	ignore=CAMELCASE,LINUX_VERSION_CODE,CONSTANT_COMPARISON
	ignore+=,OPEN_ENDED_LINE,PARENTHESIS_ALIGNMENT
	bad=0
	for p in "$OUT"/*.patch; do
		extra=
		case $(basename "$p") in
		*-selftests-*) extra=,VOLATILE,BIT_MACRO ;;
		esac
		# (In the scratch repository: checkpatch leaves a cache in
		# the top directory of the git tree it runs in.)
		(cd "$W" && "$CHECKPATCH" --strict --no-tree --quiet \
			--show-types --color=never --ignore "$ignore$extra" \
			"$p") || bad=1
	done
	if [ "$bad" = 1 ]; then
		log "checkpatch found problems"
		exit 1
	fi
	log "checkpatch --strict: clean"
fi
