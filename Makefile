# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of the in-tree virtio-mem driver, plus the project's
# test tiers. See README.md.
#
#   make                    build drivers/virtio/virtio_mem.ko for $(KVER)
#   make KVER=<release>     ... for another installed kernel
#   make modules-all        build for every supported kernel into build/<kver>/,
#                           and cross-build for arm64 and s390x (build/cross/)
#   make deps               install everything the project needs (idempotent)
#   make lint               checkpatch --strict + sparse over our sources
#   make unit               userspace tier (make fuzz, make coverage: more of it)
#   make vmtest [KVER=..]   VM tier (default: every supported kernel)
#   make check              lint + unit + build + vmtest, every kernel,
#                           check-arm64, check-package, check-debug,
#                           check-builtin
#   make check-debug        the VM suite on a KASAN + lockdep + DEBUG_VM
#                           kernel built from linux-source-6.12 (cached)
#   make check-builtin      the driver built into that kernel (the patch
#                           series of make kernel-series), VM suite on it
#   make kernel-series      the driver as patches against linux-source-6.12
#                           (build/series), checkpatch --strict on each
#   make check-package      DKMS and the Debian package, installed and
#                           removed again on this machine
#   make check-arm64        the cross-built module in Debian's arm64 kernels
#                           under qemu-system-aarch64: the VM suite's core
#   make run                the demo: a guest that follows the host's resizes
#   make vm [KVER=..]       boot a guest by hand (see tools/testing/virtio_mem)

SUPPORTED_KVERS := 6.12.95+deb12-amd64 6.1.0-50-amd64
VMCACHE ?= /var/cache/virtio-mem
export VMCACHE
# The debug tier's kernel tree (scripts/debug-kernel.sh builds it there).
DEBUG_KDIR := $(VMCACHE)/debug/linux
# VM scenarios side by side: a guest mostly keeps one of its two vCPUs
# busy, so two of them use a two-core machine about fully.
VMTEST_JOBS ?= 2
export VMTEST_JOBS
KVER ?= $(firstword $(SUPPORTED_KVERS))
KDIR ?= /lib/modules/$(KVER)/build
PYTHON ?= python3
RIG := tools/testing/virtio_mem
BUILD := build

# The in-tree Makefile keys on this, as Kconfig would.
export CONFIG_VIRTIO_MEM := m

.PHONY: all modules modules-all clean clean-tree deps lint unit fuzz coverage \
	vmtest check check-debug check-builtin check-package debug-kernel \
	kernel-series run vm bench check-arm64

all: modules

# The VM tier's test modules are built beside the driver, never by DKMS.
modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) W=1 CONFIG_VIRTIO_MEM_TEST=m modules
	mkdir -p $(BUILD)/$(KVER)
	cp drivers/virtio/virtio_mem.ko $(BUILD)/$(KVER)/virtio_mem.ko
	cp tools/testing/virtio_mem/kmod/virtio_mem_test_*.ko $(BUILD)/$(KVER)/

# Build for each supported kernel in turn, failing on any compiler warning.
modules-all:
	@set -e; for k in $(SUPPORTED_KVERS); do \
		echo "== build for $$k"; \
		$(MAKE) --no-print-directory clean-tree KVER=$$k; \
		$(MAKE) --no-print-directory modules KVER=$$k 2>&1 | \
			tee $(BUILD)/build-$$k.log; \
		if grep -E 'warning:|error:' $(BUILD)/build-$$k.log; then \
			echo "build for $$k has warnings"; exit 1; fi; \
	done
	scripts/cross.sh build

# Kbuild's clean would take every *.ko under M=, build/<kver>/ too.
clean-tree:
	mkdir -p $(BUILD)
	$(MAKE) -C $(KDIR) M=$(CURDIR)/drivers/virtio clean >/dev/null
	$(MAKE) -C $(KDIR) M=$(CURDIR)/tools/testing/virtio_mem/kmod \
		clean >/dev/null
	rm -f Module.symvers modules.order .module-common.o .*.cmd

clean: clean-tree
	rm -rf $(BUILD)
	$(MAKE) -C $(RIG) clean

deps:
	scripts/deps.sh

lint:
	scripts/lint.sh

unit:
	$(MAKE) -C $(RIG) unit

fuzz coverage:
	$(MAKE) -C $(RIG) $@

vmtest:
	@set -e; for k in $(if $(filter command line,$(origin KVER)),$(KVER),$(SUPPORTED_KVERS)); do \
		test -f $(BUILD)/$$k/virtio_mem.ko || \
			$(MAKE) --no-print-directory modules KVER=$$k; \
		$(PYTHON) $(RIG)/vmtest.py --kver $$k \
			--module $(BUILD)/$$k/virtio_mem.ko; \
	done

# Each phase says how long it and those before it took (scripts/phase.sh).
# The debug kernel (13 minutes the first time, alone) is built in the
# background from the start, on the CPU the guests leave idle. The
# debug-kernel phase waits for it (a lock in scripts/debug-kernel.sh), or
# builds it again if it failed ($(BUILD)/debug-kernel-early.log).
# setsid gives the build a process group, killed if a phase fails, and a
# scheduler autogroup of its own. Nice ranks only inside an autogroup, so
# the new session nices its autogroup itself: from here, before setsid
# has run, that would be make's own.
check:
	@scripts/phase.sh --reset
	@scripts/phase.sh deps $(MAKE) --no-print-directory deps
	@set -e; \
	setsid sh -c 'echo 19 >/proc/self/autogroup 2>/dev/null; \
		exec nice -n 19 ionice -c 3 scripts/debug-kernel.sh' \
		>$(BUILD)/debug-kernel-early.log 2>&1 & bg=$$!; \
	trap 'kill -- -$$bg 2>/dev/null || true' EXIT; \
	scripts/phase.sh lint $(MAKE) --no-print-directory lint; \
	scripts/phase.sh unit $(MAKE) --no-print-directory unit; \
	scripts/phase.sh modules-all $(MAKE) --no-print-directory modules-all; \
	scripts/phase.sh vmtest $(MAKE) --no-print-directory vmtest; \
	scripts/phase.sh check-arm64 $(MAKE) --no-print-directory check-arm64; \
	scripts/phase.sh check-package $(MAKE) --no-print-directory \
		check-package; \
	scripts/phase.sh debug-kernel scripts/debug-kernel.sh; \
	scripts/phase.sh check-debug $(MAKE) --no-print-directory check-debug; \
	scripts/phase.sh check-builtin $(MAKE) --no-print-directory \
		check-builtin BUILTIN_ONLY=$(CHECK_BUILTIN_ONLY)

debug-kernel:
	scripts/debug-kernel.sh

# The module built W=1 against the debug kernel's tree, then the VM suite
# on that kernel: any lockdep, KASAN or DEBUG_VM report fails a scenario.
# DEBUG_ONLY=<scenarios>: only those.
DEBUG_ONLY ?=
check-debug: deps
	@set -e; k=$$(scripts/debug-kernel.sh); \
	echo "== build for $$k"; \
	$(MAKE) --no-print-directory clean-tree KVER=$$k KDIR=$(DEBUG_KDIR); \
	$(MAKE) --no-print-directory modules KVER=$$k KDIR=$(DEBUG_KDIR) 2>&1 | \
		tee $(BUILD)/build-$$k.log; \
	if grep -E 'warning:|error:' $(BUILD)/build-$$k.log; then \
		echo "build for $$k has warnings"; exit 1; fi; \
	$(PYTHON) $(RIG)/vmtest.py --kver $$k --module $(BUILD)/$$k/virtio_mem.ko \
		$(if $(DEBUG_ONLY),--only $(DEBUG_ONLY))

kernel-series:
	scripts/kernel-series.sh --check

# The series applied to the debug kernel's tree with CONFIG_VIRTIO_MEM=y
# (each patch built on its own), then the VM suite on that kernel; what
# needs a module unbinds and binds the devices instead.
# BUILTIN_EXCEPT=<scenarios>: all but those; BUILTIN_ONLY=<scenarios>: only
# those.
BUILTIN_EXCEPT ?=
BUILTIN_ONLY ?=
# What make check runs built in: the scenarios whose path differs when the
# driver is built in (probe at boot, parameters on the kernel command line,
# unbind and bind instead of rmmod and insmod, the crash and kexec kernels,
# suspend and reset). The rest run the same code on the same kernel objects
# in check-debug, just before. That suite took 19 minutes on 2026-12-07;
# all of it again built in would take make check past the 60 minutes
# CI should stay under.
CHECK_BUILTIN_ONLY := plug_online,module_params,rmmod_insmod
CHECK_BUILTIN_ONLY := $(CHECK_BUILTIN_ONLY),unbind_while_toggling,reload_adopts
CHECK_BUILTIN_ONLY := $(CHECK_BUILTIN_ONLY),reload_adopts_bbm
CHECK_BUILTIN_ONLY := $(CHECK_BUILTIN_ONLY),unplug_pinned,kdump,kexec_reboot
CHECK_BUILTIN_ONLY := $(CHECK_BUILTIN_ONLY),suspend_to_ram,system_reset
check-builtin: deps kernel-series
	@set -e; k=$$(scripts/builtin-kernel.sh); \
	$(PYTHON) $(RIG)/vmtest.py --kver $$k --module builtin \
		$(if $(BUILTIN_EXCEPT),--except $(BUILTIN_EXCEPT)) \
		$(if $(BUILTIN_ONLY),--only $(BUILTIN_ONLY))

# What a distribution user does: DKMS from this tree, then the .deb; each
# installed for every supported kernel, booted in a guest, and removed.
check-package: deps
	scripts/package-check.sh

# The cross-built module (make modules-all) in Debian's arm64 kernels, on
# QEMU's virt machine: the scenarios that cover the driver's paths (plug,
# unplug in both zones, Big Block Mode, memmap_on_memory, the random walks
# with the verifier, sysfs, unload), within make check's time. The others
# run too (ARM64_ONLY=, or a list); those that need x86-64 skip and say why.
# ARM64_KVERS: also 6.1.0-50-arm64, 6.12.95+deb12-arm64-16k (32 MiB
# subblocks: the scenarios' sizes assume 2 MiB ones).
ARM64_KVERS ?= 6.12.95+deb12-arm64
ARM64_ONLY ?= plug_online plug_online_movable unplug_idle_online \
	unplug_idle_movable big_block_mode memmap_on_memory unplug_random_walk \
	bbm_random_walk sysfs_agrees numa_two_nodes rmmod_insmod vmemmap_pressure
empty :=
comma := ,
check-arm64: deps
	@set -e; for k in $(ARM64_KVERS); do \
		test -f $(BUILD)/cross/$$k/virtio_mem.ko || scripts/cross.sh build; \
		$(PYTHON) $(RIG)/vmtest.py --kver $$k \
			--module $(BUILD)/cross/$$k/virtio_mem.ko \
			$(if $(ARM64_ONLY),--only $(subst $(empty) $(empty),$(comma),$(strip $(ARM64_ONLY)))); \
	done

run: deps
	test -f $(BUILD)/$(KVER)/virtio_mem.ko || $(MAKE) modules
	$(PYTHON) $(RIG)/demo.py --kver $(KVER) --module $(BUILD)/$(KVER)/virtio_mem.ko

vm:
	test -f $(BUILD)/$(KVER)/virtio_mem.ko || $(MAKE) modules
	$(PYTHON) $(RIG)/vm.py --kver $(KVER) --module $(BUILD)/$(KVER)/virtio_mem.ko

bench:
	$(PYTHON) bench/bench.py --peers --breakdown
