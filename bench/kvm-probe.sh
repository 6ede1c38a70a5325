#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Can this machine run the bench's guests under KVM? Boots the guest
# kernels the rig uses with -accel kvm and a few CPU models, without a
# root file system, and prints for each how far it got: a kernel that
# boots ends in "VFS: Unable to mount root fs", which is success here.
#
#   bench/kvm-probe.sh [SECONDS]    # per attempt, default 60
#
# The same attempt under TCG is printed last, for the time it takes.
# Needs `make deps` (QEMU and the Debian kernels in $VMCACHE).

set -u
limit=${1:-60}
cache=${VMCACHE:-/var/cache/virtio-mem}
kernels="$cache/6.12.95+deb12-amd64/root/boot/vmlinuz-6.12.95+deb12-amd64"
[ -f "$cache/debug/linux/arch/x86/boot/bzImage" ] &&
	kernels="$kernels $cache/debug/linux/arch/x86/boot/bzImage"

echo "/dev/kvm: $(ls -l /dev/kvm 2>&1)"
echo "host CPU: $(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1)," \
	"virtualisation flags: $(grep -o -w -e svm -e vmx /proc/cpuinfo |
	sort -u | tr '\n' ' ')"

# One attempt: the last console line that says where it got, and when.
try() {
	kernel=$1
	shift
	start=$(date +%s)
	out=$(timeout "$limit" qemu-system-x86_64 "$@" -m 1024 -smp 1 \
		-nographic -no-reboot -kernel "$kernel" \
		-append 'console=ttyS0 earlyprintk=serial,ttyS0 panic=-1 no5lvl' \
		2>&1 | tr -d '\r') 2>/dev/null
	end=$(date +%s)
	# The most telling line: an error, else the furthest boot stage.
	what=
	for pat in 'Unable to mount root fs' 'KVM internal error.*' \
		'Assertion.*' 'Linux version [^ ]*' 'Booting the kernel' \
		'Decompressing Linux'; do
		what=$(printf '%s\n' "$out" | grep -a -o -E -m1 "$pat")
		[ -n "$what" ] && break
	done
	case $what in
	"Unable to mount root fs") verdict="boots" ;;
	*) verdict="fails" ;;
	esac
	echo "  $verdict after $((end - start)) s: ${what:-no output}"
}

for kernel in $kernels; do
	echo "== $kernel"
	for cpu in host max host,-arch-capabilities qemu64 EPYC; do
		printf '%s' "kvm -cpu $cpu:"
		try "$kernel" -accel kvm -cpu "$cpu"
	done
	printf '%s' "tcg -cpu max:"
	try "$kernel" -accel tcg -cpu max
done
