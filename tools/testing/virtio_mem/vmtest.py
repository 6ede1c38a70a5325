#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""VM tier: boot guests with virtio-mem devices and check the plug side.

  vmtest.py --kver K --module PATH|distro [--only NAME[,NAME]] [-v] [--list]

Prints TAP, one line per scenario, and ends with
"vmtest: N passed, N failed[, N skipped]". Exit status 1 on any failure.
Console logs: build/vmtest/<kver>[-distro]/<scenario>.log. A scenario fails
on any failed check, on an exception, or when a console line matches
vmrig.CONSOLE_PATTERNS.
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmrig  # noqa: E402
from vmrig import GiB, MiB, MemDev, VM, fmt_size  # noqa: E402

MB_SIZE = 128 * MiB     # Linux memory block size on x86-64 with 1 GiB RAM
SCENARIOS = []


class Skip(Exception):
    pass


def scenario(fn):
    SCENARIOS.append(fn)
    return fn


class Ctx:
    """What a scenario gets: VM factory, checks, notes."""

    def __init__(self, args, name, logdir):
        self.args = args
        self.name = name
        self.logdir = logdir
        self.failures = []
        self.notes = []
        self.vms = []
        self.t0 = time.monotonic()

    @property
    def debug(self):
        """The debug tier's kernel: KASAN makes every hot-added byte cost
        about five times as much, so scenarios that repeat a path at
        several sizes take the smaller ones there."""
        return vmrig.Kernel(self.args.kver).debug

    def sized(self, full, debug):
        """@full on the distro kernels, @debug on the debug tier: the same
        paths with fewer bytes or fewer rounds, which is what KASAN, lockdep
        and DEBUG_VM judge; the sizes themselves are the distro tiers'."""
        return debug if self.debug else full

    @property
    def builtin(self):
        """The driver is built into the kernel (make check-builtin)."""
        return self.args.module == 'builtin'

    def need_x86(self, why):
        """Skip a scenario that needs what the rig has for x86-64 guests
        only (@why: what that is)."""
        arch = vmrig.Kernel(self.args.kver).arch.name
        if arch != 'x86_64':
            raise Skip('x86-64 guests only (%s): %s' % (why, arch))

    def need_module(self, why):
        """Skip the rest of a scenario that needs the driver as a module
        (@why: what it does with it), saying so."""
        if self.builtin:
            raise Skip('needs the driver as a module (%s): built in' % why)

    def vm(self, **kw):
        kw.setdefault('name', self.name if not self.vms
                      else '%s-%d' % (self.name, len(self.vms) + 1))
        vm = VM(self.args.kver, self.args.module, logdir=self.logdir,
                verbose=self.args.verbose, **kw)
        self.vms.append(vm)
        vm.start()
        self.note('%s: booted in %.1f s' % (vm.name, vm.boot_time))
        return vm

    def check(self, cond, msg, detail=None):
        if cond:
            self.note('ok: ' + msg)
        else:
            self.failures.append(msg)
            self.note('FAIL: ' + msg)
            if detail:
                for l in str(detail).rstrip().splitlines():
                    self.note('  ' + l)
        return cond

    def note(self, msg):
        # Seconds into the scenario: where a slow one spends its time.
        msg = '[%6.1f] %s' % (time.monotonic() - self.t0, msg)
        self.notes.append(msg)
        if self.args.verbose:
            print('# ' + msg, file=sys.stderr)


# ---------------------------------------------------------------- helpers

def guest_check(ctx, vm, dev_id, what, delta_kb=None, zone='online',
                node=None, min_blocks=0):
    """Run the in-guest hotplug_check.sh against @dev_id's region."""
    start, size = vm.region(dev_id)
    cmd = 'hotplug_check.sh check --region 0x%x-0x%x --zone %s' % (
        start, start + size, zone)
    if delta_kb is not None:
        cmd += ' --delta-kb %d' % delta_kb
    if node is not None:
        cmd += ' --node %d' % node
    if min_blocks:
        cmd += ' --min-blocks %d' % min_blocks
    rc, out = vm.run(cmd)
    return ctx.check(rc == 0, '%s: guest check (%s)' % (what, cmd[17:]),
                     out)


def plug_to(ctx, vm, dev_id, size, timeout=120):
    """Request @size and wait until the device reports it plugged."""
    t0 = time.monotonic()
    vm.set_requested(dev_id, size)
    try:
        vm.wait_plugged(dev_id, size, timeout)
    except TimeoutError:
        ctx.check(False, '%s: plugged %s within %ss (device at %s)' % (
            dev_id, fmt_size(size), timeout,
            fmt_size(vm.plugged(dev_id))))
        return False
    ctx.note('%s: plugged %s in %.2f s' % (dev_id, fmt_size(size),
                                           time.monotonic() - t0))
    return True


def wait_memtotal(ctx, vm, want_kb, what, timeout=60, plus_plugged=None):
    """Until MemTotal is @want_kb; with @plus_plugged (a device id),
    @want_kb plus what that device has plugged at the time, for a device
    that may still be moving (a retried unplug under memory pressure)."""
    base_kb = want_kb

    def agrees():
        nonlocal want_kb
        if plus_plugged:
            want_kb = base_kb + vm.plugged(plus_plugged) // 1024
        return vm.memtotal_kb() == want_kb
    try:
        vm.wait(agrees, timeout, what='MemTotal == %d kB' % want_kb,
                interval=0.3)
        return ctx.check(True, '%s: MemTotal %d kB' % (what, want_kb))
    except TimeoutError:
        got = vm.memtotal_kb()
        # Guest state worth having when hunting this down.
        blocks = vm.memory_blocks()
        states = {}
        for b in blocks.values():
            k = '%s/%s' % (b['state'], b['zones'][0])
            states[k] = states.get(k, 0) + 1
        rc, out = vm.run('grep -i -e virtio -e "System RAM" /proc/iomem; '
                         'grep -e MemTotal -e MemFree /proc/meminfo; '
                         'dmesg -s 4194304 | grep virtio_mem | tail -n 20')
        return ctx.check(False, '%s: MemTotal %d kB, expected %d kB '
                         '(off by %d kB)' % (what, got, want_kb,
                                             got - want_kb),
                         'all memory blocks by state/zone: %s\n%s'
                         % (states, out))


def zone_counts(blocks):
    c = {}
    for b in blocks.values():
        key = b['zones'][0] if b['state'] == 'online' else b['state']
        c[key] = c.get(key, 0) + 1
    return c


def plug_steps(ctx, cmdline, zone):
    steps = ctx.sized(('130M', '4G', '16G'), ('130M', '4G'))
    vm = ctx.vm(devices=[MemDev('vm0', steps[-1], block_size='2M')],
                cmdline=cmdline)
    base_kb = vm.memtotal_kb()
    vm.check('hotplug_check.sh baseline')
    for s in steps:
        size = vmrig.parse_size(s)
        if not plug_to(ctx, vm, 'vm0', size):
            break
        wait_memtotal(ctx, vm, base_kb + size // 1024, 'after %s' % s)
        guest_check(ctx, vm, 'vm0', 'after %s' % s, delta_kb=size // 1024,
                    zone=zone, min_blocks=-(-size // MB_SIZE))
    return vm, base_kb


# ---------------------------------------------------------------- scenarios

@scenario
def plug_online(ctx):
    """0 -> 130M -> 4G -> 16G (debug kernel: to 4G),
    memhp_default_state=online: ZONE_NORMAL."""
    vm, _ = plug_steps(ctx, 'memhp_default_state=online', 'Normal')
    # The kselftest suite in its default mode, as run_tests would run it.
    rc, out = vm.run('/selftests/virtio_mem/run_tests.sh virtio_mem',
                     timeout=180)
    # A test that ran into the runner's timeout can still say ok (busybox
    # timeout passes on the exit status of a test that handles SIGTERM),
    # so each must also say it ended on its own.
    bad = [l for l in out.splitlines() if l.startswith('not ok')]
    ctx.check(rc == 0 and not bad and 'released' in out,
              'kselftest run_tests.sh: every test ok and ended by itself',
              out)


@scenario
def plug_online_movable(ctx):
    """0 -> 130M -> 4G -> 16G, memhp_default_state=online_movable."""
    plug_steps(ctx, 'memhp_default_state=online_movable', 'Movable')


@scenario
def plug_auto_movable(ctx):
    """0 -> 130M -> 4G -> 16G, online_policy=auto-movable (ratio 301%)."""
    vm, _ = plug_steps(ctx, 'memhp_default_state=online '
                       'memory_hotplug.online_policy=auto-movable', 'online')
    blocks = vm.blocks_in('vm0')
    c = zone_counts(blocks)
    ctx.note('zones at 16G: %s' % c)
    movable = c.get('Movable', 0) * MB_SIZE
    normal = c.get('Normal', 0) * MB_SIZE
    ctx.check(movable > 0, 'auto-movable put some memory in ZONE_MOVABLE',
              c)
    # auto-movable keeps MOVABLE <= 301% of kernel memory (boot + NORMAL);
    # allow two memory blocks of slack for rounding.
    # The debug tier boots with more than 1 GiB (KASAN's shadow).
    boot = vm.boot_mem
    ctx.check(movable <= 3.01 * (boot + normal) + 2 * MB_SIZE,
              'Movable %s <= 301%% of kernel memory (%s boot + %s Normal)'
              % (fmt_size(movable), fmt_size(boot), fmt_size(normal)), c)


@scenario
def memfill(ctx):
    """Plug 2G at probe (requested-size on the QEMU command line), then fill
    1792 MiB -- most of the plugged memory, more than the boot memory --
    with memfill and verify it over a few passes. Debug tier: half of it
    (its boot memory holds KASAN's shadow, so there is more of that)."""
    plug = ctx.sized(2 * GiB, 1 * GiB)
    fill = plug * 7 // 8 // MiB
    vm = ctx.vm(devices=[MemDev('vm0', ctx.sized('8G', '2G'),
                                requested=plug)],
                cmdline='memhp_default_state=online_movable')
    try:
        vm.wait_plugged('vm0', plug, 120)
    except TimeoutError:
        ctx.check(False, 'plugged %s at probe (device at %s)'
                  % (fmt_size(plug), fmt_size(vm.plugged('vm0'))))
        return
    base = vm.memtotal_kb()
    vm.wait(lambda: vm.memtotal_kb() > plug // 1024, 60,
            what='MemTotal > %s' % fmt_size(plug))
    rc, out = vm.run('memfill -i 0 -d 14 %d' % fill, timeout=300)
    ctx.check(rc == 0, 'memfill %d MiB (fill + verify passes)' % fill, out)
    ctx.note('memfill: %s' % ' / '.join(
        l for l in out.splitlines() if 'filled' in l or 'OK' in l))
    ctx.check(base > plug // 1024, 'MemTotal %d kB > %s'
              % (base, fmt_size(plug)))


@scenario
def numa_two_nodes(ctx):
    """Two NUMA nodes, one device on each: blocks land on the right node
    (without ACPI, on the node of the device's address, said in dmesg)."""
    vm = ctx.vm(devices=[MemDev('vm0', '4G', node=0),
                         MemDev('vm1', '4G', node=1)],
                numa=2, cmdline='memhp_default_state=online')
    base_kb = vm.memtotal_kb()
    vm.check('hotplug_check.sh baseline')
    ok = plug_to(ctx, vm, 'vm0', 1 * GiB) and \
        plug_to(ctx, vm, 'vm1', 1 * GiB + 256 * MiB)
    if not ok:
        return
    total = 2 * GiB + 256 * MiB
    wait_memtotal(ctx, vm, base_kb + total // 1024, 'two devices')
    nodes = {'vm0': 0, 'vm1': 1}
    if vm.run('test -d /sys/firmware/acpi/tables')[0]:
        # No ACPI (arm64 booted with a device tree): the device's node_id,
        # an ACPI proximity domain, means nothing to the guest. Each
        # device's memory goes to the node of its address, and the driver
        # says so.
        dm = vm.dmesg()
        ctx.check(len(re.findall(r'proximity domain \d+ is unknown to this '
                                 r'guest', dm)) == 2,
                  'without ACPI: each device says its PXM is unknown', dm)
        for dev in nodes:
            m = re.search(r'region 0x%x-.*, node (\d+),'
                          % vm.region(dev)[0], dm)
            nodes[dev] = int(m.group(1)) if m else -1
        ctx.note('without ACPI: nodes of the devices\' addresses: %s'
                 % nodes)
    guest_check(ctx, vm, 'vm0', 'vm0 on node %d' % nodes['vm0'],
                zone='Normal', node=nodes['vm0'], min_blocks=8)
    guest_check(ctx, vm, 'vm1', 'vm1 on node %d' % nodes['vm1'],
                zone='Normal', node=nodes['vm1'], min_blocks=10)
    rc, out = vm.run('grep -H MemTotal /sys/devices/system/node/node*/meminfo')
    ctx.note(out.strip())


# The q35 device-memory area starts at 4 GiB when boot memory fits below
# 4 GiB (it does with 1 GiB); devices without memaddr are placed from there
# upwards. 8 GiB + 64 MiB lies above the three 1 GiB devices, is aligned to
# the 2 MiB device block size (QEMU's requirement) but not to Linux's
# 128 MiB memory block, so the first and last 64 MiB of that device cannot
# be used by Linux memory hot-plug.
UNALIGNED_ADDR = 8 * GiB + 64 * MiB


@scenario
def block_sizes(ctx):
    """Device block sizes 1M/2M/4M, and a region not aligned to 128 MiB."""
    devs = [MemDev('bs1m', '1G', block_size='1M'),
            MemDev('bs2m', '1G', block_size='2M'),
            MemDev('bs4m', '1G', block_size='4M'),
            MemDev('unaligned', '1G', block_size='2M',
                   memaddr=UNALIGNED_ADDR)]
    vm = ctx.vm(devices=devs, cmdline='memhp_default_state=online',
                maxmem_extra='2G')
    regions = {d: vm.region(d) for d in vm.memory_devices()}
    ctx.note('regions: ' + ', '.join('%s 0x%x+%s' % (d, a, fmt_size(s))
                                     for d, (a, s) in sorted(regions.items())))
    ctx.check(regions['unaligned'][0] == UNALIGNED_ADDR,
              'unaligned device at 0x%x' % UNALIGNED_ADDR, regions)
    base_kb = vm.memtotal_kb()
    vm.check('hotplug_check.sh baseline')
    total = 0
    for dev, size in (('bs1m', 130 * MiB), ('bs2m', 130 * MiB),
                      ('bs4m', 132 * MiB), ('unaligned', 512 * MiB)):
        if plug_to(ctx, vm, dev, size):
            total += size
            wait_memtotal(ctx, vm, base_kb + total // 1024,
                          'after %s %s' % (dev, fmt_size(size)))
            guest_check(ctx, vm, dev, dev, delta_kb=total // 1024,
                        zone='Normal', min_blocks=-(-size // MB_SIZE))
    blocks = vm.blocks_in('unaligned')
    start, size = regions['unaligned']
    inside = [b for b in blocks.values()
              if b['start'] + MB_SIZE <= start + size]
    ctx.check(len(inside) == len(blocks) and
              all(b['start'] >= start for b in blocks.values()),
              'unaligned: every block of the device lies within its region',
              blocks)


@scenario
def resize_while_plugging(ctx):
    """Lower to 0 while plugging (plugging stops cleanly), then raise twice
    in quick succession (8G, then 12G: ends at 12G; debug tier: half)."""
    big = ctx.sized(16 * GiB, 8 * GiB)
    vm = ctx.vm(devices=[MemDev('vm0', big)],
                cmdline='memhp_default_state=online')
    base_kb = vm.memtotal_kb()
    # A workload that keeps checking its memory throughout.
    vm.check('(memfill -i 0.5 -r 256 >/tmp/mf.log 2>&1; echo $? >/tmp/mf.rc)'
             ' >/dev/null 2>&1 &')
    vm.set_requested('vm0', big)
    time.sleep(0.3)
    mid = vm.plugged('vm0')
    vm.set_requested('vm0', 0)
    final = vm.wait_stable('vm0', quiet=3.0, timeout=120)
    ctx.note('lowered to 0 at %s plugged; settled at %s'
             % (fmt_size(mid), fmt_size(final)))
    ctx.check(final <= big, 'after %s -> 0: plugged %s <= %s'
              % (fmt_size(big), fmt_size(final), fmt_size(big)))
    if final:
        ctx.note('unplug not complete (or not supported): %s still plugged'
                 % fmt_size(final))

    first, then = big // 2, big * 3 // 4
    what = '%s then %s' % (fmt_size(first), fmt_size(then))
    vm.set_requested('vm0', first)
    time.sleep(0.2)
    if plug_to(ctx, vm, 'vm0', then, timeout=180):
        wait_memtotal(ctx, vm, base_kb + then // 1024, what)
        guest_check(ctx, vm, 'vm0', what, zone='Normal',
                    min_blocks=then // MB_SIZE)
    vm.check('kill -TERM $(pidof memfill)')
    vm.wait(lambda: vm.run('test -s /tmp/mf.rc')[0] == 0, 30,
            what='memfill to exit')
    rc, out = vm.run('cat /tmp/mf.log; exit $(cat /tmp/mf.rc)')
    ctx.check(rc == 0, 'background memfill (256 MiB) clean throughout', out)


@scenario
def offline_cap(ctx):
    """memhp_default_state=offline: plugging pauses while memory sits
    offline, and resumes as the test onlines blocks until 16G (debug
    tier: 8G, still twice the limit)."""
    full = ctx.sized(16 * GiB, 8 * GiB)
    vm = ctx.vm(devices=[MemDev('vm0', full)],
                cmdline='memhp_default_state=offline')
    base_kb = vm.memtotal_kb()
    vm.check('hotplug_check.sh baseline')
    vm.set_requested('vm0', full)
    paused = vm.wait_stable('vm0', quiet=4.0, timeout=120)
    ctx.note('plugging paused at %s with nothing onlined' % fmt_size(paused))
    ctx.check(0 < paused <= 4 * GiB,
              'paused well below %s (at %s, limit 4G)'
              % (fmt_size(full), fmt_size(paused)))
    ctx.check(vm.memtotal_kb() == base_kb, 'MemTotal unchanged while offline')
    guest_check(ctx, vm, 'vm0', 'paused', zone='offline', min_blocks=1)

    online_all = r'''
n=0
for d in /sys/devices/system/memory/memory[0-9]*; do
	read s <$d/state
	[ "$s" = offline ] && echo online >$d/state && n=$((n + 1))
done
echo $n'''
    t0 = time.monotonic()
    onlined = 0
    deadline = t0 + 240 * vm.slow
    while vm.plugged('vm0') < full and time.monotonic() < deadline:
        onlined += int(vm.check(online_all).split()[-1])
        time.sleep(0.3)
    size = vm.plugged('vm0')
    ctx.check(size == full, 'resumed to %s as blocks were onlined '
              '(at %s, %d blocks onlined, %.1f s)'
              % (fmt_size(full), fmt_size(size), onlined,
                 time.monotonic() - t0))
    vm.check(online_all)
    wait_memtotal(ctx, vm, base_kb + size // 1024, 'all onlined')
    guest_check(ctx, vm, 'vm0', 'all onlined', delta_kb=size // 1024,
                zone='online', min_blocks=size // MB_SIZE)


@scenario
def big_block_mode(ctx):
    """Device block size 256 MiB, larger than a Linux memory block (Big
    Block Mode in the shipped driver): 0 -> 1G -> 3G, all online."""
    vm = ctx.vm(devices=[MemDev('vm0', '4G', block_size='256M')],
                cmdline='memhp_default_state=online_movable')
    base_kb = vm.memtotal_kb()
    vm.check('hotplug_check.sh baseline')
    for size in (1 * GiB, 3 * GiB):
        if not plug_to(ctx, vm, 'vm0', size, timeout=60):
            break
        wait_memtotal(ctx, vm, base_kb + size // 1024,
                      'after %s' % fmt_size(size))
        guest_check(ctx, vm, 'vm0', 'after %s' % fmt_size(size),
                    delta_kb=size // 1024, zone='Movable',
                    min_blocks=size // MB_SIZE)


@scenario
def bbm_over_1g(ctx):
    """Big blocks of 2 GiB, from the device (block-size 2G) and from
    bbm_block_size=2G: 0 -> 4G -> 2G -> 0, online_movable. The offline
    limit must let at least two big blocks be added at a time."""
    runs = ((MemDev('vm0', '8G', block_size='2G'), ''),
            (MemDev('vm0', '8G'), 'force_bbm=1 bbm_block_size=%d' % (2 * GiB)))
    for dev, params in runs:
        vm = ctx.vm(devices=[dev], modparams=params,
                    cmdline='memhp_default_state=online_movable')
        what = params or 'block-size 2G'
        base_kb = vm.memtotal_kb()
        for size in (4 * GiB, 2 * GiB, 0):
            if not plug_to(ctx, vm, 'vm0', size, timeout=120):
                break
            wait_memtotal(ctx, vm, base_kb + size // 1024,
                          '%s: at %s' % (what, fmt_size(size)))
        vm.stop()


@scenario
def vmemmap_pressure(ctx):
    """512 MiB guest asked for 32 GiB: every 128 MiB block needs 2 MiB of
    memmap from boot memory. The driver may stop short, but the kernel must
    not warn (the shipped driver hits a vmemmap allocation failure WARNING
    here) and the guest must stay usable."""
    # The debug tier's boot memory grows by KASAN's shadow of the device,
    # so the pressure is the distro kernels' to show; there the same
    # paths with a quarter of the bytes.
    total = ctx.sized(32 * GiB, 8 * GiB)
    vm = ctx.vm(devices=[MemDev('vm0', total)], boot_mem='512M',
                cmdline='memhp_default_state=online_movable')
    vm.set_requested('vm0', total)
    final = vm.wait_stable('vm0', quiet=5.0, timeout=180)
    ctx.note('plugged %s of %s' % (fmt_size(final), fmt_size(total)))
    mi = vm.meminfo()
    ctx.note('MemTotal %d kB, MemFree %d kB' % (mi['MemTotal'],
                                                mi['MemFree']))
    ctx.check(final > 0, 'plugged something (%s)' % fmt_size(final))
    rc, out = vm.run('memfill -o 64')
    ctx.check(rc == 0, 'guest still usable (memfill 64 MiB)', out)


MEMMAP_CMDLINE = ('memhp_default_state=online_movable '
                  'memory_hotplug.memmap_on_memory=1')


def check_memmap_plugged(ctx, vm, total, base_kb):
    """All of @total added, each memory block with its own memmap: MemTotal
    grew by @total less 2 MiB per block."""
    nr = len(vm.blocks_in('vm0'))
    ctx.check(nr == total // MB_SIZE, '%d memory blocks added (%d)'
              % (total // MB_SIZE, nr))
    wait_memtotal(ctx, vm, base_kb + (total - nr * 2 * MiB) // 1024,
                  'MemTotal: %s less 2 MiB of memmap per block'
                  % fmt_size(total))


def check_unplugged_all(ctx, vm, timeout=240):
    """Ask for 0: the device gets there and no memory block is left."""
    vm.set_requested('vm0', 0)
    # wait_stable() only waits out growth: it would look mid-unplug.
    final, st = wait_settled(ctx, vm, 'vm0', timeout=timeout)
    ctx.check(final == 0, 'unplug to 0 (at %s, status %s)'
              % (fmt_size(final), st))
    nr = len(vm.blocks_in('vm0'))
    ctx.check(nr == 0, 'no memory block left (%d)' % nr)


@scenario
def memmap_on_memory(ctx):
    """512 MiB guest, kernel booted with memory_hotplug.memmap_on_memory=1:
    each block carries its own memmap, so all 32 GiB go in (the memmap
    comes from boot memory in vmemmap_pressure and stops it short), MemTotal
    grows by the plugged size less 2 MiB per block, the guest stays usable,
    and unplug to 0 takes the blocks, memmap and all. With the module
    parameter off, the same guest keeps the memmap in boot memory again."""
    # (On the debug tier boot memory grows by KASAN's shadow of the
    # device, so the contrast with vmemmap_pressure is the distro
    # kernels' to show.)
    total = ctx.sized(32 * GiB, 8 * GiB)
    vm = ctx.vm(devices=[MemDev('vm0', total)], boot_mem='512M',
                cmdline=MEMMAP_CMDLINE)
    d = sysdir(vm, 'vm0')
    ctx.check(vm.check('cat %s/memmap_on_memory' % d).strip() == '1',
              'sysfs memmap_on_memory is 1')
    base_kb = vm.memtotal_kb()
    if plug_to(ctx, vm, 'vm0', total, timeout=240):
        check_memmap_plugged(ctx, vm, total, base_kb)
        rc, out = vm.run('memfill -o 64')
        ctx.check(rc == 0, 'guest usable (memfill 64 MiB)', out)
    check_unplugged_all(ctx, vm)

    vm = ctx.vm(devices=[MemDev('vm0', '4G')], boot_mem='512M',
                cmdline=MEMMAP_CMDLINE, modparams='memmap_on_memory=0')
    d = sysdir(vm, 'vm0')
    ctx.check(vm.check('cat %s/memmap_on_memory' % d).strip() == '0',
              'memmap_on_memory=0: sysfs says 0')
    base_kb = vm.memtotal_kb()
    if plug_to(ctx, vm, 'vm0', GiB):
        wait_memtotal(ctx, vm, base_kb + GiB // 1024,
                      'memmap_on_memory=0: MemTotal grows by all of 1 GiB')


@scenario
def bbm_memmap_on_memory(ctx):
    """Big Block Mode (512 MiB device blocks) in a 512 MiB guest booted
    with memory_hotplug.memmap_on_memory=1: from 6.12 every memory block of
    a big block carries its own memmap, so all 32 GiB go in and MemTotal
    grows by the plugged size less 2 MiB per memory block; the guest stays
    usable; unplug while memfill runs keeps its data, and unplug to 0
    removes every block. On 6.1 the kernel cannot do it for an add of
    several memory blocks: sysfs says 0 and the guest still works."""
    total = ctx.sized(32 * GiB, 8 * GiB)
    vm = ctx.vm(devices=[MemDev('vm0', total, block_size='512M')],
                boot_mem='512M', cmdline=MEMMAP_CMDLINE)
    d = sysdir(vm, 'vm0')
    on = vm.check('cat %s/memmap_on_memory' % d).strip()
    if ctx.args.kver.startswith('6.1.'):
        ctx.check(on == '0', '6.1: sysfs memmap_on_memory is 0 (%s)' % on)
        if plug_to(ctx, vm, 'vm0', GiB):
            rc, out = vm.run('memfill -o 64')
            ctx.check(rc == 0, '6.1: guest usable (memfill 64 MiB)', out)
        return
    ctx.check(on == '1', 'sysfs memmap_on_memory is 1 (%s)' % on)
    base_kb = vm.memtotal_kb()
    if not plug_to(ctx, vm, 'vm0', total, timeout=240):
        return
    check_memmap_plugged(ctx, vm, total, base_kb)
    vm.check('T=/sys/kernel/tracing; [ -e $T/events ] || '
             'mount -t tracefs nodev $T; echo >$T/trace; '
             'echo 1 >$T/events/virtio_mem/virtio_mem_fake_offline/enable')
    fill = ctx.sized(2048, 512)
    start_memfill(vm, fill)
    keep = ctx.sized(4 * GiB, 2 * GiB)
    vm.set_requested('vm0', keep)
    final, st = wait_settled(ctx, vm, 'vm0', timeout=300)
    ctx.check(final == keep, 'unplug to %s with memfill running (at %s, '
              'status %s)' % (fmt_size(keep), fmt_size(final), st))
    taken = vm.check('grep -c virtio_mem_fake_offline '
                     '/sys/kernel/tracing/trace || true').strip()
    ctx.note('big blocks taken page by page, not swept: %s fake-offline '
             'events' % taken)
    stop_memfill(ctx, vm, 'unplug with memfill running')
    vm.check('echo >/sys/kernel/tracing/trace')
    check_unplugged_all(ctx, vm)
    taken = vm.check('grep -c virtio_mem_fake_offline '
                     '/sys/kernel/tracing/trace || true').strip()
    ctx.note('unplug to 0, idle: %s fake-offline events' % taken)


# ---------------------------------------------------------------- unplug,
# sysfs, tracing and Big Block Mode: helpers

SYSFS_GLOB = '/sys/bus/virtio/devices/virtio*/virtio_mem'
STALL_WORDS = ('unmovable', 'memory_pressure', 'unplug_online_off',
               'offline_limit', 'nack', 'plug_error', 'no_space', 'nomem',
               'add_failed',
               'broken')


def sysdir(vm, dev_id):
    """The virtio_mem sysfs directory of @dev_id (matched by region)."""
    cache = getattr(vm, '_vmt_sysdirs', None)
    if cache is None:
        out = vm.check('for d in %s; do echo "$d $(cat $d/region_start)"; '
                       'done' % SYSFS_GLOB)
        by_start = {int(l.split()[1]): l.split()[0]
                    for l in out.splitlines() if len(l.split()) == 2}
        cache = {d: by_start.get(a['memaddr'])
                 for d, a in vm.memory_devices().items()}
        vm._vmt_sysdirs = cache
    if not cache.get(dev_id):
        raise vmrig.VMError('no virtio_mem sysfs directory for %s' % dev_id)
    return cache[dev_id]


def vname(vm, dev_id):
    """virtioN of @dev_id."""
    return sysdir(vm, dev_id).split('/')[-2]


def sysfs_all(vm, dev_id):
    """{file: value} of every file in @dev_id's virtio_mem directory (each
    holds one line). read, not $(cat): a fork per file costs seconds in
    an emulated debug guest."""
    out = vm.check('cd %s && for f in *; do [ -f "$f" ] || continue; v=; '
                   '{ read -r v <"$f"; } 2>/dev/null; '
                   'printf "%%s=%%s\\n" "$f" "$v"; done'
                   % sysdir(vm, dev_id))
    vals = {}
    for l in out.splitlines():
        k, _, v = l.partition('=')
        vals[k] = int(v) if v.isdigit() else v
    return vals


def sysfs_get(vm, dev_id, name):
    v = vm.check('cat %s/%s' % (sysdir(vm, dev_id), name)).strip()
    return int(v) if v.isdigit() else v


def status(vm, dev_id):
    return sysfs_get(vm, dev_id, 'status')


def status_retries(vm, dev_id):
    """(status, retries) of @dev_id, in one guest command."""
    out = vm.check('cd %s && read -r s <status && read -r r <retries && '
                   'echo "$s $r"' % sysdir(vm, dev_id)).split()
    return out[0], int(out[1])


def dbg_map(vm, dev_id):
    """Parsed debugfs block map: {'memory<N>'|'bb<N>': (state, plugged,
    sbs, extra)}."""
    path = '/sys/kernel/debug/virtio_mem/%s/blocks' % vname(vm, dev_id)
    out = vm.check('[ -e %s ] || mount -t debugfs none /sys/kernel/debug; '
                   'cat %s' % (path, path))
    m = {}
    for l in out.splitlines():
        p = l.split()
        if not p or p[0].startswith('#'):
            continue
        if p[0].startswith('memory'):
            pl, _, sbs = p[2].partition('/')
            m[p[0]] = (p[1], int(pl), int(sbs), p[3] if len(p) > 3 else '')
        elif p[0].startswith('bb'):
            m[p[0]] = (p[1], None, None, p[2] if len(p) > 2 else '')
    return m


QUIET_S = 5.0           # wait_settled: no movement this long ends a stall
SETTLED_RETRIES = 2     # ... once the driver also retried this often


def wait_settled(ctx, vm, dev_id, timeout=120, quiet=QUIET_S):
    """Wait until the device is at its requested size, or its size has not
    moved for @quiet s while status names a reason to stop; @quiet None:
    only the requested size ends the wait before @timeout (where stopping
    short would be a failure anyway, a stall the driver retries may still
    end). Returns (plugged, status)."""
    req = vm.requested(dev_id)
    last, since = vm.plugged(dev_id), time.monotonic()
    retried = None
    timeout *= vm.slow
    # The driver retries a stalled unplug after a pause, and on the debug
    # tier a page in flight stays in flight longer: a 1G big block in
    # ZONE_MOVABLE was seen to stall there for 6 s, then go. So a stall
    # ends the wait after @quiet s there too, but only once the driver has
    # retried SETTLED_RETRIES times without moving (it retries at its own
    # pace, slower on that tier); else after @quiet s times the tier's
    # slowness, for the stalls it does not retry.
    slow_quiet = quiet * vm.slow if quiet is not None else None
    deadline = since + timeout
    while True:
        vm.alive()
        cur = vm.plugged(dev_id)
        st, retries = status_retries(vm, dev_id)
        if cur == req and st not in ('working',):
            return cur, st
        if cur != last or retried is None:
            last, since, retried = cur, time.monotonic(), retries
        elif quiet is not None and st in STALL_WORDS:
            still = time.monotonic() - since
            if still >= slow_quiet or (
                    still >= quiet and
                    retries - retried >= SETTLED_RETRIES):
                return cur, st
        if time.monotonic() > deadline:
            ctx.note('%s: not settled after %ss: %s of %s, status %s'
                     % (dev_id, timeout, fmt_size(cur), fmt_size(req), st))
            return cur, st
        time.sleep(0.4)


def region_block_ids(vm, dev_id):
    start, size = vm.region(dev_id)
    return list(range(-(-start // MB_SIZE), (start + size) // MB_SIZE))


def check_map_vs_memory(ctx, vm, dev_id, what, tries=3):
    """The debugfs map agrees with /sys/devices/system/memory and with
    plugged_size; return the map. The two are read one after the other
    while the driver may still be retrying an unplug (it offlines a block
    to see whether its last pages move now), so a mismatch is read again,
    up to @tries times, a second apart."""
    for attempt in range(1, tries + 1):
        dm, checks, bad = map_vs_memory(ctx, vm, dev_id, what)
        if all(ok for ok, _, _ in checks) and not bad:
            break
        if attempt < tries:
            ctx.note('%s: map and sysfs differ, read again: %s'
                     % (what, '; '.join(bad + [m for ok, m, _ in checks
                                               if not ok])))
            time.sleep(1)
    for ok, msg, detail in checks:
        ctx.check(ok, msg, detail)
    ctx.check(not bad, '%s: debugfs map agrees with /sys/devices/system/'
              'memory' % what, '\n'.join(bad))
    return dm


def map_vs_memory(ctx, vm, dev_id, what):
    """One reading for check_map_vs_memory: (map, [(ok, msg, detail)],
    [mismatch])."""
    checks = []
    dm = dbg_map(vm, dev_id)
    sv = sysfs_all(vm, dev_id)
    # Compare with the device's own (QMP) size: whether sysfs plugged_size
    # is current is check_sysfs_vs_qmp's business.
    sv['plugged_size'] = vm.plugged(dev_id)
    blocks = vm.blocks_in(dev_id)
    bad = []
    if sv.get('mode') == 'bbm':
        listed = set()
        for name, (st, _, _, rng) in dm.items():
            a, _, b = rng.replace('memory', '').partition('-')
            ids = range(int(a), int(b) + 1)
            listed |= set(ids)
            for i in ids:
                b_ = blocks.get(i)
                if st == 'plugged':
                    if b_:
                        bad.append('%s %s: memory%d present' % (name, st, i))
                elif not b_:
                    bad.append('%s %s: memory%d missing' % (name, st, i))
        bb = sv['big_block_size']
        checks.append((len(dm) * bb == sv['plugged_size'],
                       '%s: %d big blocks in the map x %s == QMP size %s'
                       % (what, len(dm), fmt_size(bb),
                          fmt_size(sv['plugged_size'])), dm))
    else:
        listed = set()
        total_sb = 0
        for name, (st, pl, sbs, mp) in dm.items():
            i = int(name[6:])
            b = blocks.get(i)
            total_sb += pl
            if mp.count('#') != pl:
                bad.append('%s: count %d but map has %d #'
                           % (name, pl, mp.count('#')))
            if st == 'unused':
                continue
            listed.add(i)
            if st == 'plugged':
                if b:
                    bad.append('%s plugged (not added) but present' % name)
                continue
            if not b:
                bad.append('%s %s but not in /sys/devices/system/memory'
                           % (name, st))
                continue
            want = 'offline' if st.startswith('offline') else 'online'
            if want == 'online' and b['state'] == 'going-offline':
                # The driver may be trying to offline a kernel-zone block
                # whose last subblocks it cannot take: the block stays
                # online unless that offline succeeds, and valid_zones of
                # a block in transition says nothing about its zone.
                ctx.note('%s: memory%d going-offline while read' % (what, i))
                continue
            if b['state'] != want:
                bad.append('%s %s but %s' % (name, st, b['state']))
            elif want == 'online':
                zone = 'Movable' if st.startswith('movable') else 'Normal'
                if b['zones'][0] != zone:
                    bad.append('%s %s but zone %s' % (name, st,
                                                      b['zones'][0]))
        checks.append((total_sb * sv['subblock_size'] == sv['plugged_size'],
                       '%s: map counts %d subblocks x %s == QMP size %s'
                       % (what, total_sb, fmt_size(sv['subblock_size']),
                          fmt_size(sv['plugged_size'])), dm))
    extra = set(blocks) - listed
    if extra:
        bad.append('present but not listed as used: %s'
                   % sorted('memory%d' % i for i in extra))
    return dm, checks, bad


def check_sysfs_vs_qmp(ctx, vm, dev_id, what):
    sv = sysfs_all(vm, dev_id)
    q = vm.memory_devices()[dev_id]
    ctx.check(sv['requested_size'] == q['requested-size'] and
              sv['plugged_size'] == q['size'],
              '%s: sysfs requested/plugged %s/%s == QMP %s/%s'
              % (what, fmt_size(sv['requested_size']),
                 fmt_size(sv['plugged_size']),
                 fmt_size(q['requested-size']), fmt_size(q['size'])))
    return sv


def dmesg_oom(vm):
    rc, out = vm.run('dmesg -s 4194304 | grep -i -e "out of memory" '
                     '-e oom-kill -e "invoked oom-killer"')
    return out.strip()


def start_memfill(vm, mib, tag='mf', interval=1):
    vm.check('rm -f /tmp/%s.rc; (memfill -i %s %d >/tmp/%s.log 2>&1; '
             'echo $? >/tmp/%s.rc) >/dev/null 2>&1 &'
             % (tag, interval, mib, tag, tag))
    vm.wait(lambda: 'ready' in vm.check('cat /tmp/%s.log' % tag) or
            vm.run('test -e /tmp/%s.rc' % tag)[0] == 0, 300,
            what='memfill %d MiB filled' % mib, interval=1)


def memfill_running(vm, tag='mf'):
    return vm.run('test ! -e /tmp/%s.rc && pidof memfill' % tag)[0] == 0


def stop_memfill(ctx, vm, what, tag='mf'):
    vm.run('kill -TERM $(pidof memfill) 2>/dev/null')
    vm.wait(lambda: vm.run('test -s /tmp/%s.rc' % tag)[0] == 0, 120,
            what='memfill to exit', interval=0.5)
    rc, out = vm.run('tail -n 5 /tmp/%s.log; exit $(cat /tmp/%s.rc)'
                     % (tag, tag))
    return ctx.check(rc == 0, '%s: memfill saw no corruption' % what, out)


# Offlining retries until it succeeds or the writer gets a signal: every
# write runs under a timeout (busybox timeout sends SIGTERM), so a block
# that will not go offline right now is skipped, not waited for.
TOGGLER = r'''
n=0
while [ ! -e /tmp/toggle.stop ]; do
	for id in %s; do
		f=/sys/devices/system/memory/memory$id/state
		[ -e $f ] || continue
		timeout 5 sh -c "echo offline >$f" 2>/dev/null &&
			n=$((n + 1)) && echo $n >/tmp/toggle.count
		timeout 5 sh -c "echo %s >$f || echo online >$f" 2>/dev/null
	done
	sleep 0.1
done
'''


def block_ids(vm, dev_ids):
    """Memory block ids of the regions of @dev_ids (one id or a list)."""
    if isinstance(dev_ids, str):
        dev_ids = [dev_ids]
    return ' '.join(str(i) for d in dev_ids for i in region_block_ids(vm, d))


def start_toggler(vm, dev_id, online='online_movable'):
    ids = block_ids(vm, dev_id)
    vm.check("rm -f /tmp/toggle.stop; echo 0 >/tmp/toggle.count; "
             "cat >/tmp/toggle.sh <<'EOF'\n" + TOGGLER % (ids, online) +
             "EOF\nsh /tmp/toggle.sh >/dev/null 2>&1 &\n"
             "echo $! >/tmp/toggle.pid")


def stop_toggler(vm, dev_id, online='online_movable'):
    vm.check('touch /tmp/toggle.stop')
    vm.wait(lambda: vm.run('kill -0 $(cat /tmp/toggle.pid) 2>/dev/null')[0]
            != 0, 90, what='the offline/online loop to end', interval=0.5)
    # Anything the loop left offline goes back online.
    ids = block_ids(vm, dev_id)
    vm.run('for id in %s; do f=/sys/devices/system/memory/memory$id/state;'
           ' [ -e $f ] && grep -q offline $f && timeout 20 sh -c '
           '"echo %s >$f || echo online >$f"; done; true' % (ids, online),
           timeout=120)
    return int(vm.check('cat /tmp/toggle.count').strip() or 0)


def seed():
    s = os.environ.get('VMTEST_SEED')
    return int(s) if s else random.randrange(1 << 30)


def unplug_idle(ctx, cmdline, zone):
    full = ctx.sized(4 * GiB, 2 * GiB)
    vm = ctx.vm(devices=[MemDev('vm0', full)], cmdline=cmdline)
    base_kb = vm.memtotal_kb()
    if not plug_to(ctx, vm, 'vm0', full):
        return
    wait_memtotal(ctx, vm, base_kb + full // 1024,
                  'plugged %s' % fmt_size(full))
    for target in (full // 4, 0):
        vm.set_requested('vm0', target)
        size, st = wait_settled(ctx, vm, 'vm0', timeout=180)
        what = 'unplug to %s' % fmt_size(target)
        if size != target and zone != 'Movable' and st == 'unmovable':
            # Kernel zones may hold unmovable kernel pages: accepted when
            # status says so and the map shows only kernel-zone blocks
            # holding exactly what is still plugged.
            ctx.note('%s: stopped at %s with status unmovable (unmovable '
                     'kernel allocations in ZONE_NORMAL)' %
                     (what, fmt_size(size)))
            dm = check_map_vs_memory(ctx, vm, 'vm0', what)
            left = {k: v[:3] for k, v in dm.items() if v[0] != 'unused'}
            ctx.note('map: %s' % left)
            ctx.check(left and all(v[0].startswith('kernel')
                                   for v in left.values()),
                      '%s: only kernel-zone blocks stay' % what, left)
        else:
            ctx.check(size == target, '%s: device at %s (status %s)'
                      % (what, fmt_size(size), st))
            ctx.check(st == 'ok', '%s: status ok (%s)' % (what, st))
            check_map_vs_memory(ctx, vm, 'vm0', what)
            if size == 0:
                left = sorted(vm.blocks_in('vm0'))
                ctx.check(not left, '%s: no memory block left (%s)'
                          % (what, left))
        wait_memtotal(ctx, vm, base_kb + size // 1024,
                      '%s (plugged %s)' % (what, fmt_size(size)))
        check_sysfs_vs_qmp(ctx, vm, 'vm0', what)
        guest_check(ctx, vm, 'vm0', what, zone=zone if zone != 'Normal'
                    else 'online')
    ctx.check(not dmesg_oom(vm), 'no OOM kill', dmesg_oom(vm))


# ---------------------------------------------------------------- hot-unplug

@scenario
def unplug_idle_movable(ctx):
    """online_movable: plug 4G, unplug to 1G then 0 on an idle guest."""
    unplug_idle(ctx, 'memhp_default_state=online_movable', 'Movable')


@scenario
def unplug_idle_auto_movable(ctx):
    """online + auto-movable: plug 4G, unplug to 1G then 0."""
    unplug_idle(ctx, 'memhp_default_state=online '
                'memory_hotplug.online_policy=auto-movable', 'online')


@scenario
def unplug_idle_online(ctx):
    """online (ZONE_NORMAL): plug 4G, unplug to 1G then 0; a rest held by
    unmovable kernel pages is accepted only with status unmovable and a
    map that shows it."""
    unplug_idle(ctx, 'memhp_default_state=online', 'Normal')


@scenario
def unplug_workload(ctx):
    """A memfill workload holds ~45% of a 4 GiB guest (3G plugged; debug
    tier 512M); the host asks for 0: unplug stops short (memory_pressure),
    nothing is OOM-killed; the workload ends -> unplug goes on; then
    plugging works again."""
    # On the debug tier the fill before the unplug and the migration in
    # it cost about as much per page: with 1.5G plugged the scenario took
    # ten minutes there; 512M takes the same path.
    plug = ctx.sized(3 * GiB, 512 * MiB)
    vm = ctx.vm(devices=[MemDev('vm0', ctx.sized('4G', '1G'))],
                cmdline='memhp_default_state=online_movable')
    base_kb = vm.memtotal_kb()
    if not plug_to(ctx, vm, 'vm0', plug):
        return
    wait_memtotal(ctx, vm, base_kb + plug // 1024,
                  'plugged %s' % fmt_size(plug))
    # At least the boot memory, so that unplug to 0 cannot go through
    # (the debug tier's boot memory is the larger part of its guest).
    mib = max(int((base_kb // 1024 + plug // MiB) * 0.45), base_kb // 1024)
    start_memfill(vm, mib)
    ctx.note('memfill %d MiB running' % mib)
    vm.set_requested('vm0', 0)
    size, st = wait_settled(ctx, vm, 'vm0', timeout=180, quiet=8.0)
    ctx.note('unplug to 0 under the workload: stopped at %s, status %s'
             % (fmt_size(size), st))
    ctx.check(size > 0, 'unplug stopped short of 0 (at %s)' % fmt_size(size))
    ctx.check(st == 'memory_pressure', 'status memory_pressure (%s)' % st)
    ctx.check(memfill_running(vm), 'memfill still running',
              vm.run('tail -n 3 /tmp/mf.log')[1])
    rc, out = vm.run('tail -n 1 /tmp/mf.log')
    ctx.check('ok' in out, 'memfill reports ok (%s)' % out.strip())
    ctx.check(not dmesg_oom(vm), 'no OOM kill', dmesg_oom(vm))
    rc, out = vm.run('dmesg -s 4194304 | grep "unplug paused"')
    ctx.check(rc == 0, 'kernel log says why unplug paused', out)
    check_sysfs_vs_qmp(ctx, vm, 'vm0', 'under pressure')
    # The OOM guard is retried: more may go meanwhile.
    wait_memtotal(ctx, vm, base_kb, 'under pressure', plus_plugged='vm0')
    stop_memfill(ctx, vm, 'workload')
    try:
        vm.wait(lambda: vm.plugged('vm0') < size, 90,
                what='unplug to go on after the workload ended')
        after, st2 = wait_settled(ctx, vm, 'vm0', timeout=120)
        ctx.check(after < size, 'after the workload: unplug went on (%s -> '
                  '%s, status %s)' % (fmt_size(size), fmt_size(after), st2))
    except TimeoutError as e:
        ctx.check(False, 'after the workload: unplug went on (%s)' % e)
    replug = ctx.sized(2 * GiB, 256 * MiB)
    if plug_to(ctx, vm, 'vm0', replug):
        wait_memtotal(ctx, vm, base_kb + replug // 1024,
                      'replug %s' % fmt_size(replug))
    ctx.check(not dmesg_oom(vm), 'no OOM kill at the end', dmesg_oom(vm))


def random_walk(ctx, block, cmdline):
    steps = ctx.sized(40, 20)
    s = seed()
    print('# %s: VMTEST_SEED=%d' % (ctx.name, s))
    ctx.note('seed %d (rerun with VMTEST_SEED=%d)' % (s, s))
    rnd = random.Random(s)
    vm = ctx.vm(devices=[MemDev('vm0', '4G', block_size=block)],
                cmdline=cmdline)
    base_kb = vm.memtotal_kb()
    bs = vmrig.parse_size(block)
    # A task stuck in D state for 30 s (a hotplug deadlock) dumps its stack
    # to the console, which fails the scenario with something to look at.
    vm.run('echo 30 >/proc/sys/kernel/hung_task_timeout_secs')
    start_memfill(vm, 256)
    start_toggler(vm, 'vm0')
    sizes = []
    for _ in range(steps):
        size = rnd.randrange(0, 4 * GiB // bs + 1) * bs
        sizes.append(fmt_size(size))
        vm.set_requested('vm0', size)
        time.sleep(rnd.uniform(0.2, 1.5))
        vm.oracle()
    ctx.note('steps: ' + ' '.join(sizes))
    toggles = stop_toggler(vm, 'vm0')
    ctx.note('%d offline/online toggles went through' % toggles)
    size, st = wait_settled(ctx, vm, 'vm0', timeout=180)
    req = vm.requested('vm0')
    ctx.check(size == req or st in ('unmovable', 'memory_pressure'),
              'ends at requested %s or explains it (at %s, status %s)'
              % (fmt_size(req), fmt_size(size), st))
    check_sysfs_vs_qmp(ctx, vm, 'vm0', 'end of walk')
    check_map_vs_memory(ctx, vm, 'vm0', 'end of walk')
    wait_memtotal(ctx, vm, base_kb + size // 1024, 'end of walk')
    stop_memfill(ctx, vm, 'walk')
    ctx.check(not dmesg_oom(vm), 'no OOM kill', dmesg_oom(vm))


@scenario
def unplug_random_walk(ctx):
    """40 seeded random resizes (debug tier 20; 0..4G, VMTEST_SEED) with
    memfill verifying and a loop toggling the device's memory blocks
    offline/online."""
    random_walk(ctx, '2M', 'memhp_default_state=online_movable')


def start_pinmem(vm, mib):
    """Pin @mib long-term (io_uring registered buffers) in the background
    until its pid in /tmp/pin.pid is killed."""
    vm.check('pinmem %d >/tmp/pin.log 2>&1 & echo $! >/tmp/pin.pid; '
             'for i in $(seq 60); do grep -q pinned /tmp/pin.log && break; '
             'sleep 1; done; cat /tmp/pin.log; grep -q pinned /tmp/pin.log'
             % mib, timeout=90)


def driver_unload(ctx, vm, timeout=180):
    """rmmod, or for a built-in driver unbind each of its devices (the same
    remove path, without the module's own exit): (rc, output). The
    devices are remembered for driver_load()."""
    if not ctx.builtin:
        return vm.run('rmmod virtio_mem', timeout=timeout)
    return vm.run('cd /sys/bus/virtio/drivers/virtio_mem && '
                  'ls -d virtio* >/tmp/unbound && '
                  'for d in $(cat /tmp/unbound); do echo $d >unbind || '
                  'exit 1; done', timeout=timeout)


def driver_load(ctx, vm, then=''):
    """insmod, or bind the devices driver_unload() unbound; then run the
    shell command @then, if any: (rc, output)."""
    if ctx.builtin:
        cmd = ('for d in $(cat /tmp/unbound); do echo $d >/sys/bus/virtio/'
               'drivers/virtio_mem/bind || exit 1; done')
    else:
        cmd = 'insmod /lib/vmrig/test/virtio_mem.ko'
    return vm.run(cmd + ('; ' + then if then else ''))


def unload_word(ctx):
    return 'unbind' if ctx.builtin else 'rmmod'


def load_word(ctx):
    return 'bind' if ctx.builtin else 'insmod'


@scenario
def unplug_pinned(ctx):
    """ZONE_NORMAL, 256 MiB pinned long-term by io_uring registered buffers:
    unplug to 0 stops short (status unmovable) instead of offlining the
    pinned blocks for ever; raising requested_size then plugs; rmmod, with
    the pins still held, completes."""
    vm = ctx.vm(devices=[MemDev('vm0', '4G')],
                cmdline='memhp_default_state=online')
    base_kb = vm.memtotal_kb()
    if not plug_to(ctx, vm, 'vm0', 1 * GiB):
        return
    # Boot memory is all DMA32: the pinned pages land in the device.
    start_pinmem(vm, 256)
    vm.set_requested('vm0', 0)
    size, st = wait_settled(ctx, vm, 'vm0', timeout=300, quiet=10.0)
    ctx.check(0 < size < 1 * GiB and st == 'unmovable',
              'unplug to 0 stops short with status unmovable (at %s, %s)'
              % (fmt_size(size), st))
    check_no_offline_timeouts(ctx, vm, 'vm0')
    dm = check_map_vs_memory(ctx, vm, 'vm0', 'pinned')
    ctx.note('map: %s' % {k: v[:3] for k, v in dm.items()
                          if v[0] != 'unused'})
    wait_memtotal(ctx, vm, base_kb, 'pinned', plus_plugged='vm0')
    # The worker is not stuck in an offline: a new request is served.
    t0 = time.monotonic()
    if plug_to(ctx, vm, 'vm0', 3 * GiB, timeout=120):
        ctx.note('plugged 3G %.1f s after asking' % (time.monotonic() - t0))
        wait_memtotal(ctx, vm, base_kb + 3 * GiB // 1024, 'plugged 3G')
    rc, out = driver_unload(ctx, vm, timeout=300)
    ctx.check(rc == 0, '%s with the pins held' % unload_word(ctx), out)
    rc, out = vm.run('kill $(cat /tmp/pin.pid); dmesg -s 4194304 | '
                     'grep virtio_mem | tail -n 3')
    ctx.note(out.strip())


@scenario
def rmmod_insmod(ctx):
    """Plug 1G movable, rmmod: all unplugged, no warning; insmod again and
    plug; a ZONE_NORMAL guest with slab in the device keeps a clear message."""
    vm = ctx.vm(devices=[MemDev('vm0', '4G')],
                cmdline='memhp_default_state=online_movable')
    base_kb = vm.memtotal_kb()
    if not plug_to(ctx, vm, 'vm0', 1 * GiB):
        return
    rc, out = driver_unload(ctx, vm, timeout=180)
    ctx.check(rc == 0, '%s virtio_mem' % unload_word(ctx), out)
    try:
        vm.wait_plugged('vm0', 0, 60)
        ctx.check(True, 'device at 0 after %s' % unload_word(ctx))
    except TimeoutError:
        ctx.check(False, 'device at 0 after %s (at %s)'
                  % (unload_word(ctx), fmt_size(vm.plugged('vm0'))))
    ctx.check(vm.memtotal_kb() == base_kb, 'MemTotal back to boot size')
    rc, out = vm.run('dmesg -s 4194304 | grep -i -e "stay plugged" '
                     '-e "virtio_mem.*warn"')
    ctx.check(rc != 0, 'dmesg: no blocks left behind', out)
    rc, out = vm.run('grep -e "virtio_mem" -e "virtio[0-9]" /proc/iomem')
    ctx.check(rc != 0, 'no virtio_mem resources left in /proc/iomem', out)
    rc, out = driver_load(ctx, vm)
    ctx.check(rc == 0, '%s again' % load_word(ctx), out)
    vm._vmt_sysdirs = None
    if plug_to(ctx, vm, 'vm0', 512 * MiB):
        wait_memtotal(ctx, vm, base_kb + 512 * 1024, 'replugged 512M')
        guest_check(ctx, vm, 'vm0', 'replugged', zone='Movable',
                    min_blocks=4)


@scenario
def unbind_while_toggling(ctx):
    """Two devices with holes in their blocks, user space offlining and
    onlining the blocks of both: unbinding one of them gives back what it
    can and leaves no unplugged memory to the buddy (host-side oracle,
    and KASAN on the debug kernel); the other keeps resizing; binding
    again works."""
    vm = ctx.vm(devices=[MemDev('vm0', '2G'), MemDev('vm1', '2G')],
                cmdline='memhp_default_state=online_movable')
    for d in ('vm0', 'vm1'):
        # 130M: a full block and one with a single subblock plugged.
        if not plug_to(ctx, vm, d, 386 * MiB):
            return
    name = vname(vm, 'vm0')
    start_toggler(vm, ['vm0', 'vm1'])
    time.sleep(2)
    rc, out = vm.run('echo %s >/sys/bus/virtio/drivers/virtio_mem/unbind'
                     % name, timeout=300)
    ctx.check(rc == 0, 'unbind %s while its blocks are toggled' % name, out)
    time.sleep(3)
    toggles = stop_toggler(vm, 'vm1')
    ctx.note('%d offline/online toggles went through' % toggles)
    ctx.check(not vm.oracle(), 'no unplugged memory touched', vm.oracle_seen)
    rc, out = vm.run('grep -c . /sys/bus/virtio/drivers/virtio_mem/%s/'
                     'virtio_mem/status 2>&1' % name)
    ctx.check(rc != 0, '%s unbound' % name, out)
    vm._vmt_sysdirs = None
    if plug_to(ctx, vm, 'vm1', 1 * GiB) and plug_to(ctx, vm, 'vm1', 0):
        ctx.check(True, 'vm1 still resizes after vm0 went')
    rc, out = vm.run('echo %s >/sys/bus/virtio/drivers/virtio_mem/bind'
                     % name, timeout=120)
    ctx.check(rc == 0, 'bind %s again' % name, out)
    vm.check('memfill -o 200 >/dev/null')
    ctx.check(not vm.oracle(), 'still no unplugged memory touched',
              vm.oracle_seen)


NOKICK = '/sys/module/virtio_mem_test_nokick/parameters'


@scenario
def request_unanswered(ctx):
    """The device stops answering: a test module swallows the kicks of
    virtio-mem queues, so a request is never seen. The driver says so after
    10 s and waits on; breaking the device (as a surprise removal does)
    ends the wait, status broken. A second device is unbound with its
    request unanswered: remove stops waiting within its bound. Nothing
    hangs, nothing is plugged behind the guest's back."""
    ctx.need_x86('the kick is swallowed by an x86-64 kprobe')
    ctx.need_module('the test module is built beside the driver')
    vm = ctx.vm(devices=[MemDev('vm0', '1G'), MemDev('vm1', '1G')],
                cmdline='memhp_default_state=online_movable')
    names = {d: vname(vm, d) for d in ('vm0', 'vm1')}
    vm.check('insmod /lib/vmrig/test/virtio_mem_test_nokick.ko')

    def swallowed():
        return int(vm.check('cat %s/swallowed' % NOKICK))

    def within(pred, timeout, what):
        try:
            vm.wait(pred, timeout, what)
            ctx.check(True, what)
        except TimeoutError as e:
            ctx.check(False, what, str(e))

    vm.set_requested('vm0', 128 * MiB)
    vm.wait(lambda: swallowed() == 1, 30, 'the plug request of vm0 sent')
    within(lambda: vm.run('dmesg | grep -q "%s: no answer to a plug '
                          'request for 10 s"' % names['vm0'])[0] == 0, 60,
           'the log says vm0 does not answer')
    ctx.check(vm.plugged('vm0') == 0 and status(vm, 'vm0') == 'working',
              'vm0 unanswered: nothing plugged, still waiting (%s, %s)'
              % (fmt_size(vm.plugged('vm0')) or '0', status(vm, 'vm0')))
    vm.check('echo 1 >%s/break_device' % NOKICK)
    within(lambda: status(vm, 'vm0') == 'broken', 30,
           'breaking the device ends the wait: status broken')
    rc, out = vm.run('dmesg | grep "%s: the device broke with a plug '
                     'request outstanding"' % names['vm0'])
    ctx.check(rc == 0, 'the log says why', out)

    vm.set_requested('vm1', 128 * MiB)
    vm.wait(lambda: swallowed() == 2, 30, 'the plug request of vm1 sent')
    time.sleep(2)
    ctx.check(vm.plugged('vm1') == 0, 'vm1 unanswered: nothing plugged '
              '(%s)' % (fmt_size(vm.plugged('vm1')) or '0'))
    rc, out = vm.run('echo %s >/sys/bus/virtio/drivers/virtio_mem/unbind'
                     % names['vm1'], timeout=120)
    ctx.check(rc == 0, 'unbind with a request unanswered ends', out)
    rc, out = vm.run('dmesg | grep "%s: removing: no longer waiting"'
                     % names['vm1'])
    ctx.check(rc == 0, 'remove said it stopped waiting', out)
    rc, out = vm.run('echo %s >/sys/bus/virtio/drivers/virtio_mem/unbind'
                     % names['vm0'], timeout=120)
    ctx.check(rc == 0, 'unbind of the broken device', out)
    ctx.check(vm.plugged('vm0') == 0 and vm.plugged('vm1') == 0,
              'nothing plugged on either device')
    ctx.check(not vm.oracle(), 'no unplugged memory touched', vm.oracle_seen)


def check_no_offline_timeouts(ctx, vm, dev_id):
    """The driver saw the pinned pages and never started an offline that
    could only run out of time (and hold the hotplug locks that long)."""
    n = sysfs_get(vm, dev_id, 'offline_timeouts')
    ctx.check(n == 0, 'no offline of a pinned block ran out of time '
              '(offline_timeouts %s)' % n)


def reload_adopt(ctx, block, size):
    """Plug @size in ZONE_NORMAL with 256M pinned by io_uring, rmmod (the
    pinned blocks stay), insmod: the new instance adopts what was left,
    then shrinks and grows as asked."""
    vm = ctx.vm(devices=[MemDev('vm0', '4G', block_size=block)],
                cmdline='memhp_default_state=online')
    base_kb = vm.memtotal_kb()
    if not plug_to(ctx, vm, 'vm0', size):
        return
    start_pinmem(vm, 256)
    rc, out = driver_unload(ctx, vm, timeout=300)
    ctx.check(rc == 0, '%s with the pins held' % unload_word(ctx), out)
    left = vm.plugged('vm0')
    ctx.check(0 < left < size, '%s left %s plugged'
              % (unload_word(ctx), fmt_size(left)))
    rc, out = driver_load(ctx, vm, 'dmesg | grep "virtio_mem.*adopted %d '
                          'MiB"' % (left // MiB))
    ctx.check(rc == 0, '%s adopts the %s left'
              % (load_word(ctx), fmt_size(left)), out)
    rc, out = vm.run('dmesg | grep "virtio_mem.*memory left from before"')
    ctx.check(rc != 0, 'no UNPLUG_ALL', out)
    vm._vmt_sysdirs = None
    # The host still asks for @size: the new instance plugs the rest.
    got, st = wait_settled(ctx, vm, 'vm0')
    ctx.check(got == size and st == 'ok', 'back at %s (%s, %s)'
              % (fmt_size(size), fmt_size(got), st))
    check_sysfs_vs_qmp(ctx, vm, 'vm0', 'adopted')
    check_map_vs_memory(ctx, vm, 'vm0', 'adopted')
    vm.set_requested('vm0', 0)
    pinned, st = wait_settled(ctx, vm, 'vm0', timeout=300, quiet=10.0)
    ctx.check(pinned > 0 and st == 'unmovable', 'shrink to 0 stops short '
              'while pinned (at %s, %s)' % (fmt_size(pinned), st))
    check_no_offline_timeouts(ctx, vm, 'vm0')
    vm.check('kill $(cat /tmp/pin.pid); sleep 1')
    vm.set_requested('vm0', 0)
    vm.set_requested('vm0', vmrig.parse_size(block))
    vm.set_requested('vm0', 0)
    after, st = wait_settled(ctx, vm, 'vm0', timeout=300, quiet=10.0)
    # What the pins held goes; kernel allocations made meanwhile may hold
    # some of ZONE_NORMAL (many more on the debug kernel: KASAN, page
    # owner), which is not the adopted blocks' doing. A big block is one
    # unit: slab anywhere in it keeps it, so there only a note.
    if block == '2M':
        ctx.check(after < pinned and st in ('ok', 'unmovable'),
                  'the adopted blocks unplug once the pins are gone (%s of '
                  '%s left, %s)' % (fmt_size(after), fmt_size(pinned), st))
    else:
        ctx.check(after <= pinned and st in ('ok', 'unmovable'),
                  'no more plugged once the pins are gone (%s of %s, %s)'
                  % (fmt_size(after), fmt_size(pinned), st))
    if plug_to(ctx, vm, 'vm0', 512 * MiB):
        wait_memtotal(ctx, vm, base_kb + 512 * 1024, 'grown to 512M')
    vm.check('memfill -o 200 >/dev/null')
    ctx.check(not vm.oracle(), 'no unplugged memory touched', vm.oracle_seen)


@scenario
def reload_adopts(ctx):
    """ZONE_NORMAL, 1026M plugged (a hole in the last block), 256M pinned
    by io_uring: rmmod leaves the pinned blocks; insmod adopts them (sysfs
    == QMP, block map == /sys/devices/system/memory, no UNPLUG_ALL); the
    host shrinks (stops short while pinned, goes further once the pins
    go) and grows again; the oracle never sees unplugged memory touched."""
    reload_adopt(ctx, '2M', 1026 * MiB)


@scenario
def reload_adopts_bbm(ctx):
    """As reload_adopts in Big Block Mode (256M device blocks, 1G plugged):
    the big blocks the pins hold stay added, and the new instance adopts
    them whole."""
    reload_adopt(ctx, '256M', 1 * GiB)


@scenario
def adopt_probe_fails(ctx):
    """ZONE_NORMAL, 256 MiB pinned: rmmod leaves the pinned blocks; a test
    module holds the online_page callback, so the next insmod adopts the
    blocks and then fails; that failed probe leaves the region reserved,
    so the insmod after it (callback free again) adopts the blocks too,
    with no UNPLUG_ALL under online memory."""
    ctx.need_x86('the test modules are built for amd64 only')
    ctx.need_module('insmod of the callback-holding test module')
    vm = ctx.vm(devices=[MemDev('vm0', '4G')],
                cmdline='memhp_default_state=online')
    if not plug_to(ctx, vm, 'vm0', 1 * GiB):
        return
    start_pinmem(vm, 256)
    rc, out = driver_unload(ctx, vm, timeout=300)
    ctx.check(rc == 0, 'rmmod with the pins held', out)
    left = vm.plugged('vm0')
    ctx.check(0 < left < 1 * GiB, 'rmmod left %s plugged' % fmt_size(left))
    rc, out = vm.run('insmod /lib/vmrig/test/virtio_mem_test_callback.ko && '
                     'insmod /lib/vmrig/test/virtio_mem.ko; '
                     'dmesg | grep "another driver owns the online_page"')
    ctx.check(rc == 0, 'probe fails while the callback is taken', out)
    rc, out = vm.run('grep "System RAM (virtio_mem)" /proc/iomem')
    ctx.check(rc == 0, 'the memory left stays in /proc/iomem after the '
              'failed probe', out)
    # The failed probe said "adopted" too: only what comes next counts.
    rc, out = vm.run('dmesg -c >/dev/null; rmmod virtio_mem_test_callback && '
                     'rmmod virtio_mem && '
                     'insmod /lib/vmrig/test/virtio_mem.ko && '
                     'dmesg | grep "virtio_mem.*adopted %d MiB"'
                     % (left // MiB))
    ctx.check(rc == 0, 'the next insmod adopts the %s left'
              % fmt_size(left), out)
    rc, out = vm.run('dmesg | grep "virtio_mem.*memory left from before"')
    ctx.check(rc != 0, 'no UNPLUG_ALL', out)
    vm._vmt_sysdirs = None
    check_map_vs_memory(ctx, vm, 'vm0', 'adopted after a failed probe')
    vm.check('kill $(cat /tmp/pin.pid); sleep 1; memfill -o 100 >/dev/null')
    ctx.check(not vm.oracle(), 'no unplugged memory touched', vm.oracle_seen)


@scenario
def oracle_selfcheck(ctx):
    """The host-side oracle can fail: 130M plugged and touched by memfill
    leaves it quiet; the host writing into an unplugged part of the backend
    (as a guest touching unplugged memory would) more than the plugged part
    leaves unused is reported."""
    vm = ctx.vm(devices=[MemDev('vm0', '1G')],
                cmdline='memhp_default_state=online_movable')
    if not plug_to(ctx, vm, 'vm0', 130 * MiB):
        return
    vm.check('memfill -o 100 >/dev/null')
    ctx.check(not vm.oracle(), 'oracle quiet with 130M plugged and used',
              vm.oracle_seen)
    # It compares sizes: plant more than the plugged part leaves unused.
    dev = vm.devices[0]
    n = vm.plugged('vm0') - dev.backend_allocated() + 2 * MiB
    with open(dev.backend, 'r+b') as f:
        f.seek(dev.size - n)
        f.write(b'\xa5' * n)
    found = vm.oracle()
    ctx.check(found, 'oracle reports %s written outside the plugged part'
              % fmt_size(n), found)
    # Take back what was planted: it is not a finding about the driver.
    subprocess.run(['fallocate', '--punch-hole', '--offset',
                    str(dev.size - n), '--length', str(n), dev.backend],
                   check=True)
    vm.oracle_seen = []
    ctx.check(not vm.oracle(), 'oracle quiet again', vm.oracle_seen)


# ---------------------------------------------------------------- lifecycle

@scenario
def kdump(ctx):
    """A crash with memory plugged, some of it unplugged inside added
    blocks: in the crash kernel our module answers /proc/vmcore from STATE
    requests. The dump holds the pages stamped before the crash, reads the
    unplugged parts without touching them (host-side oracle), and the
    device gets nothing but STATE requests: a resize asked for meanwhile
    is left alone."""
    ctx.need_x86('kexec-tools are unpacked for amd64 only')
    vm = ctx.vm(devices=[MemDev('vm0', ctx.sized('2G', '1G'))],
                boot_mem='1G', kexec=True,
                cmdline='memhp_default_state=online_movable crashkernel=%s'
                % ctx.sized('256M', '512M'))
    start, size = vm.region('vm0')
    # 902M: seven full memory blocks and one with a single subblock, so
    # that 126M of added memory is unplugged and reads as a hole (debug
    # tier: three full blocks, the dump being read page by page there).
    if not plug_to(ctx, vm, 'vm0', ctx.sized(902, 386) * MiB):
        return
    out = vm.check('dumpcheck fill %d %d %d >/tmp/dc.out 2>&1 & '
                   'for i in $(seq 600); do grep -q stamped /tmp/dc.out '
                   '&& break; sleep 0.2; done; cat /tmp/dc.out' %
                   (ctx.sized(600, 150), start, size), timeout=180)
    m = re.search(r'stamped (\d+) in_region (\d+)', out)
    ctx.check(m and int(m.group(2)) > 0, 'pages stamped in the device '
              'region before the crash', out)
    if not m:
        return
    in_region = int(m.group(2))
    ctx.note('stamped %s pages, %s in the region' % m.groups())
    vm.load_crash_kernel(ctx.sized('', 'no5lvl'))
    plugged = vm.plugged('vm0')
    vm.next_kernel('echo c >/proc/sysrq-trigger')
    ctx.check(True, 'the crash kernel came up')

    rc, out = vm.run('dmesg | grep "virtio_mem.*kdump kernel: region"')
    ctx.check(rc == 0, 'our module took the device in the crash kernel',
              vm.console()[-2000:])
    trace_on(vm)
    resize = ctx.sized(1536, 768) * MiB
    vm.set_requested('vm0', resize)
    out = vm.check('dumpcheck scan %d %d' % (start, size), timeout=600)
    m = re.search(r'dumped (\d+) own (\d+) zero (\d+) other (\d+)', out)
    ctx.check(m, 'dumpcheck scan read /proc/vmcore', out)
    if not m:
        return
    dumped, own, zero, _ = (int(x) for x in m.groups())
    ctx.note('in the dump: %s' % m.group(0))
    # A page may have moved between stamping and the crash; 1% slack.
    ctx.check(own >= in_region * 99 // 100, 'the dump holds %d of the %d '
              'pages stamped in the region' % (own, in_region))
    ctx.check(zero * 4096 >= 126 * MiB, 'the unplugged 126M of an added '
              'block read as zeros (%d zero pages)' % zero)
    ctx.check(not vm.oracle(), 'reading the dump touched no unplugged '
              'memory (host-side oracle)', vm.oracle_seen)
    ctx.check(vm.plugged('vm0') == plugged, 'plugged size unchanged in the '
              'crash kernel, requested %s ignored (%s plugged)'
              % (fmt_size(resize), fmt_size(vm.plugged('vm0'))))
    tr = vm.check('grep virtio_mem_request_send /sys/kernel/tracing/trace '
                  '| grep -c . ; grep virtio_mem_request_send '
                  '/sys/kernel/tracing/trace | grep -v " state " | head -3 '
                  '|| true')
    lines = tr.splitlines()
    ctx.check(lines and int(lines[0]) > 0 and len(lines) == 1,
              'only STATE requests in the crash kernel (%s sent)'
              % (lines[0] if lines else '?'), tr)


def memtotal_near(ctx, vm, want_kb, what, timeout=60):
    """MemTotal of a kernel booted after the one that measured @want_kb: it
    may reserve a page or two more or less of boot memory."""
    try:
        vm.wait(lambda: abs(vm.memtotal_kb() - want_kb) <= 1024, timeout,
                what='MemTotal')
        ctx.check(True, '%s: MemTotal within 1M of %d kB' % (what, want_kb))
    except TimeoutError:
        ctx.check(False, '%s: MemTotal %d kB, expected %d kB'
                  % (what, vm.memtotal_kb(), want_kb))


def replug_after(ctx, vm, what, size, base_kb):
    """The kernel that came after @what found @size plugged by its
    predecessor: it unplugs everything (C4) and plugs @size again."""
    vm._vmt_sysdirs = None
    rc, out = vm.run("dmesg | grep \"virtio_mem.*memory left from before\"")
    ctx.check(rc == 0, '%s: the new kernel unplugged all first' % what,
              vm.console()[-3000:])
    try:
        vm.wait_plugged('vm0', size, 120)
        ctx.check(True, '%s: %s plugged again' % (what, fmt_size(size)))
    except TimeoutError:
        ctx.check(False, '%s: %s plugged again (at %s)'
                  % (what, fmt_size(size), fmt_size(vm.plugged('vm0'))))
        return
    memtotal_near(ctx, vm, base_kb + size // 1024, what)
    vm.check('memfill -o 200 >/dev/null')
    ctx.check(not vm.oracle(), '%s: no unplugged memory touched' % what,
              vm.oracle_seen)


@scenario
def kexec_reboot(ctx):
    """kexec into a new kernel with 1G plugged: its driver finds memory
    plugged that it knows nothing of, sends UNPLUG_ALL, and plugs the
    requested 1G again."""
    ctx.need_x86('kexec-tools are unpacked for amd64 only')
    vm = ctx.vm(devices=[MemDev('vm0', '2G')], kexec=True,
                cmdline='memhp_default_state=online_movable')
    base_kb = vm.memtotal_kb()
    if not plug_to(ctx, vm, 'vm0', 1 * GiB):
        return
    vm.check('kexec -l /kexec/vmlinuz --initrd=/kexec/initrd '
             '--append="$(cat /proc/cmdline)"', timeout=120)
    vm.next_kernel('kexec -e')
    replug_after(ctx, vm, 'kexec', 1 * GiB, base_kb)


@scenario
def system_reset(ctx):
    """QMP system_reset with 1G plugged: the device unplugs everything on
    a reset; the guest boots again and plugs the requested 1G."""
    vm = ctx.vm(devices=[MemDev('vm0', '2G')], reboot=True,
                cmdline='memhp_default_state=online_movable')
    base_kb = vm.memtotal_kb()
    if not plug_to(ctx, vm, 'vm0', 1 * GiB):
        return
    vm.system_reset(wait=True)
    vm._vmt_sysdirs = None
    try:
        vm.wait_plugged('vm0', 1 * GiB, 120)
        ctx.check(True, 'reset: 1G plugged again')
    except TimeoutError:
        ctx.check(False, 'reset: 1G plugged again (at %s)'
                  % fmt_size(vm.plugged('vm0')))
        return
    memtotal_near(ctx, vm, base_kb + 1024 * 1024, 'reset')
    ctx.check(not vm.oracle(), 'reset: no unplugged memory touched',
              vm.oracle_seen)


def suspend(ctx, vm, mode, wake):
    """Write @mode to /sys/power/state and wake the guest with @wake until
    the kernel says the suspend is over. Returns (True, '') if the write
    succeeded, (False, its error) if not.

    The write runs in the background (it returns on resume), and only the
    console is watched meanwhile: the guest's shell is frozen. @wake is
    called every few seconds once tasks are frozen; a wake event that
    comes before the guest is down is lost, the next one is not."""
    mark = len(vm.console())
    events = len(vm.qmp.events)
    vm.check('rm -f /tmp/pm.rc; (echo %s >/sys/power/state; echo $? '
             '>/tmp/pm.rc) >/tmp/pm.err 2>&1 &' % mode)
    deadline = time.monotonic() + 120 * vm.slow
    woken = False
    while 'PM: suspend exit' not in vm.console()[mark:]:
        vm.alive()
        if time.monotonic() > deadline:
            return False, 'no "PM: suspend exit" on the console'
        time.sleep(3)
        if 'Freezing remaining freezable tasks' in vm.console()[mark:]:
            woken = wake() or woken
    vm.wait(lambda: vm.run('test -e /tmp/pm.rc')[0] == 0, 60,
            what='the write to /sys/power/state to return')
    rc = vm.check('cat /tmp/pm.rc').strip()
    err = vm.check('cat /tmp/pm.err').strip()
    # s2idle: we woke it. S3: the kernel got as far as the platform's
    # sleep state; 6.1 sometimes comes straight back from it, before QEMU
    # counts the guest suspended (no SUSPEND event), which is the
    # platform's business, not the device's.
    vm.qmp.execute('query-status')
    down = woken or any(e.get('event') == 'SUSPEND'
                        for e in vm.qmp.events[events:]) or \
        'Preparing to enter system sleep state S3' in vm.console()[mark:]
    if rc == '0' and not down:
        return False, 'resumed before it was woken: never went down?'
    return rc == '0', err


def power_button(vm):
    """Wake source for s2idle: QEMU's RTC alarm does not wake a TCG guest
    from it, the ACPI power button does."""
    vm.qmp.execute('system_powerdown')
    return True


def acpi_wakeup(vm):
    if vm.qmp.execute('query-status')['status'] != 'suspended':
        return False
    vm.qmp.execute('system_wakeup')
    return True


def button_modules(ctx):
    """The ACPI power button driver, if it is a module (Debian's)."""
    k = vmrig.Kernel(ctx.args.kver)
    return [] if 'button' in k.builtin else ['button']


def resize_after(ctx, vm, what):
    # Only the device's size: these scenarios also run the distro driver.
    for size in (768 * MiB, 256 * MiB):
        plug_to(ctx, vm, 'vm0', size)


@scenario
def suspend_to_idle(ctx):
    """s2idle with 512M plugged and memfill checking it, woken by the ACPI
    power button (QMP system_powerdown): allowed, memory intact, resizing
    works after. Hibernation is refused before anything is frozen."""
    ctx.need_x86('woken by the ACPI power button')
    vm = ctx.vm(devices=[MemDev('vm0', '2G')],
                cmdline='memhp_default_state=online_movable',
                extra_modules=button_modules(ctx))
    vm.check('for m in /lib/vmrig/extra/*.ko; do [ -e "$m" ] && '
             'insmod $m; done; true')
    if not plug_to(ctx, vm, 'vm0', 512 * MiB):
        return
    start_memfill(vm, 256)
    ok, err = suspend(ctx, vm, 'freeze', lambda: power_button(vm))
    ctx.check(ok, 's2idle with 512M plugged: suspended and resumed', err)
    ctx.check(vm.plugged('vm0') == 512 * MiB, 'still 512M plugged')
    stop_memfill(ctx, vm, 'across s2idle')
    resize_after(ctx, vm, 's2idle')

    if 'disk' not in vm.check('cat /sys/power/state'):
        ctx.note('kernel without hibernation: not tried')
        return
    mark = len(vm.console())
    rc, out = vm.run('echo disk >/sys/power/state')
    ctx.check(rc != 0, 'hibernation refused', out)
    log = vm.console()[mark:]
    ctx.check('hibernation is not supported' in log and
              'Freezing user space' not in log,
              'refused up front, with a message, before freezing', log)


@scenario
def suspend_to_ram(ctx):
    """S3 (QMP system_wakeup): with nothing plugged, allowed; with 512M
    plugged, allowed with memory intact when the device offers
    PERSISTENT_SUSPEND, else refused with a message naming the reason.
    Resizing works after each."""
    ctx.need_x86('S3 of the q35 machine')
    vm = ctx.vm(devices=[MemDev('vm0', '2G')],
                cmdline='memhp_default_state=online_movable',
                extra_args=['-global', 'ICH9-LPC.disable_s3=0'])
    if 'deep' not in vm.check('cat /sys/power/mem_sleep'):
        raise Skip('no S3 in this guest (mem_sleep: %s)'
                   % vm.check('cat /sys/power/mem_sleep').strip())
    vm.check('echo deep >/sys/power/mem_sleep')
    feats = vm.check('for d in /sys/bus/virtio/devices/*; do '
                     '[ "$(cat $d/device)" = 0x0018 ] && cat $d/features; '
                     'done').strip()
    persistent = len(feats) > 2 and feats[2] == '1'
    ctx.note('PERSISTENT_SUSPEND %s (features %s)'
             % ('negotiated' if persistent else 'not offered', feats))

    ok, err = suspend(ctx, vm, 'mem', lambda: acpi_wakeup(vm))
    ctx.check(ok, 'S3 with nothing plugged: suspended and resumed', err)
    resize_after(ctx, vm, 'S3 empty')

    if not plug_to(ctx, vm, 'vm0', 512 * MiB):
        return
    start_memfill(vm, 256)
    mark = len(vm.console())
    ok, err = suspend(ctx, vm, 'mem', lambda: acpi_wakeup(vm))
    if persistent:
        ctx.check(ok, 'S3 with 512M plugged: suspended and resumed', err)
        ctx.check(vm.plugged('vm0') == 512 * MiB, 'still 512M plugged')
    else:
        ctx.check(not ok and 'PERSISTENT_SUSPEND' in vm.console()[mark:],
                  'S3 with 512M plugged refused, naming the reason',
                  vm.console()[mark:][-1500:])
    stop_memfill(ctx, vm, 'across S3')
    resize_after(ctx, vm, 'S3 plugged')


# ---------------------------------------------------------------- notifier

NEI = '/sys/kernel/debug/notifier-error-inject/memory/actions'


def nei_set(vm, action, err):
    vm.check('echo %d >%s/%s/error' % (err, NEI, action))


@scenario
def notifier_refusals(ctx):
    """A memory notifier called before ours refuses MEM_GOING_OFFLINE and
    MEM_GOING_ONLINE of a block with holes: we only see MEM_CANCEL_*, which
    must leave our state alone; afterwards offline, online, unplug to 0."""
    vm = ctx.vm(devices=[MemDev('vm0', '1G')],
                cmdline='memhp_default_state=online_movable',
                extra_modules=['memory_notifier_error_inject'])
    base_kb = vm.memtotal_kb()
    # One whole block and one with a single 2 MiB subblock plugged.
    if not plug_to(ctx, vm, 'vm0', 130 * MiB):
        return
    wait_memtotal(ctx, vm, base_kb + 130 * 1024, 'plugged 130M')
    ids = region_block_ids(vm, 'vm0')
    blocks = vm.memory_blocks()
    part = max(i for i in ids if i in blocks)
    st = '/sys/devices/system/memory/memory%d/state' % part
    # Priority 1: called before ours (0), so ours never sees MEM_GOING_*.
    vm.check('insmod /lib/vmrig/extra/notifier_error_inject.ko && '
             'insmod /lib/vmrig/extra/memory_notifier_error_inject.ko '
             'priority=1')
    for action, word in (('MEM_GOING_OFFLINE', 'offline'),
                         ('MEM_GOING_ONLINE', 'online_movable')):
        nei_set(vm, action, -16)
        rc, out = vm.run('echo %s >%s' % (word, st))
        ctx.check(rc != 0, '%s refused by the earlier notifier' % word, out)
        nei_set(vm, action, 0)
        rc, out = vm.run('echo %s >%s' % (word, st))
        ctx.check(rc == 0, '%s of the block with holes' % word, out)
    wait_memtotal(ctx, vm, base_kb + 130 * 1024, 'after the refusals')
    # Once more with everything allowed: our references are as they were.
    rc, out = vm.run('echo offline >%s && echo online_movable >%s'
                     % (st, st))
    ctx.check(rc == 0, 'offline and online once more', out)
    vm.set_requested('vm0', 0)
    size, stw = wait_settled(ctx, vm, 'vm0')
    ctx.check(size == 0, 'unplugged to 0 (at %s, status %s)'
              % (fmt_size(size), stw))
    wait_memtotal(ctx, vm, base_kb, 'unplugged')
    rc, out = vm.run('rmmod memory_notifier_error_inject '
                     'notifier_error_inject')
    ctx.check(rc == 0, 'error injection unloaded', out)


# ---------------------------------------------------------------- sysfs etc.

@scenario
def sysfs_agrees(ctx):
    """0, 130M, 1G, 300M, 0: sysfs agrees with QMP, the block counters with
    /sys/devices/system/memory, the debugfs map with both; status ok."""
    vm = ctx.vm(devices=[MemDev('vm0', '4G')],
                cmdline='memhp_default_state=online '
                'memory_hotplug.online_policy=auto-movable')
    base_kb = vm.memtotal_kb()
    sv = sysfs_all(vm, 'vm0')
    start, size = vm.region('vm0')
    ctx.check(sv['region_start'] == start and sv['region_size'] == size and
              sv['block_size'] == 2 * MiB and sv['mode'] == 'sbm' and
              sv['memory_block_size'] == MB_SIZE and
              sv['subblock_size'] == 2 * MiB,
              'geometry: region 0x%x+%s, 2M blocks, sbm' % (start,
                                                          fmt_size(size)), sv)
    for s in (0, 130 * MiB, 1 * GiB, 300 * MiB, 0):
        what = 'at %s' % fmt_size(s) if s else 'at 0'
        vm.set_requested('vm0', s)
        got, st = wait_settled(ctx, vm, 'vm0', timeout=120)
        ctx.check(got == s and st == 'ok', '%s: device at %s, status %s'
                  % (what, fmt_size(got), st))
        sv = check_sysfs_vs_qmp(ctx, vm, 'vm0', what)
        blocks = vm.blocks_in('vm0')
        online = sum(1 for b in blocks.values() if b['state'] == 'online')
        offline = sum(1 for b in blocks.values() if b['state'] == 'offline')
        counted = sum(sv[k] for k in ('blocks_kernel', 'blocks_kernel_partial',
                                      'blocks_movable',
                                      'blocks_movable_partial'))
        ctx.check(online == counted and offline == sv['blocks_offline'] +
                  sv['blocks_offline_partial'],
                  '%s: %d online / %d offline blocks == blocks_* %d / %d'
                  % (what, online, offline, counted,
                     sv['blocks_offline'] + sv['blocks_offline_partial']),
                  {k: v for k, v in sv.items() if k.startswith('blocks')})
        check_map_vs_memory(ctx, vm, 'vm0', what)
        wait_memtotal(ctx, vm, base_kb + s // 1024, what)
    ctx.check(sv['bytes_plugged'] == sv['bytes_unplugged'] > 0,
              'bytes_plugged == bytes_unplugged at 0 (%s / %s)'
              % (sv['bytes_plugged'], sv['bytes_unplugged']))


@scenario
def sysfs_read_only(ctx):
    """Writing to any file under virtio_mem/ fails and changes nothing."""
    vm = ctx.vm(devices=[MemDev('vm0', '4G')],
                cmdline='memhp_default_state=online_movable')
    if not plug_to(ctx, vm, 'vm0', 300 * MiB):
        return
    wait_settled(ctx, vm, 'vm0')
    before = sysfs_all(vm, 'vm0')
    out = vm.check('cd %s; for f in *; do [ -f $f ] || continue; '
                   'for v in 0 1 4294967296 ok broken; do '
                   'echo $v >$f 2>/dev/null && echo "WROTE $f $v"; done; '
                   'done; true' % sysdir(vm, 'vm0'))
    ctx.check('WROTE' not in out, 'every write failed (%d files)'
              % len(before), out)
    rc, perms = vm.run('ls -l %s | grep -v "^total" | grep -v "^-r--r--r--"'
                       % sysdir(vm, 'vm0'))
    ctx.check(rc != 0, 'all files mode 0444', perms)
    after = sysfs_all(vm, 'vm0')
    diff = {k: (before[k], after.get(k)) for k in before
            if before[k] != after.get(k)}
    ctx.check(not diff, 'values unchanged by the writes', diff)
    ctx.check(vm.plugged('vm0') == 300 * MiB, 'device still at 300M')


def trace_on(vm):
    vm.check('T=/sys/kernel/tracing; [ -e $T/events ] || '
             'mount -t tracefs none $T; echo 8192 >$T/buffer_size_kb; '
             'echo >$T/trace; echo 1 >$T/events/virtio_mem/enable; '
             'echo 1 >$T/tracing_on')


@scenario
def tracepoints_fire(ctx):
    """events/virtio_mem: plug, unplug, partial unplug of an online block:
    request_send, request_done, mb_state, fake_offline, retry all fire."""
    vm = ctx.vm(devices=[MemDev('vm0', '4G')],
                cmdline='memhp_default_state=online_movable')
    trace_on(vm)
    for s in (1 * GiB, 300 * MiB, 100 * MiB):
        vm.set_requested('vm0', s)
        got, st = wait_settled(ctx, vm, 'vm0')
        ctx.check(got == s, 'device at %s (%s)' % (fmt_size(s), st))
    out = vm.check('cat /sys/kernel/tracing/trace')
    counts = {}
    for ev in ('virtio_mem_request_send', 'virtio_mem_request_done',
               'virtio_mem_mb_state', 'virtio_mem_fake_offline',
               'virtio_mem_retry'):
        counts[ev] = out.count(ev + ':')
        ctx.check(counts[ev] > 0, '%s fired (%d)' % (ev, counts[ev]),
                  '\n'.join(out.splitlines()[-20:]))
    ctx.note('events: %s' % counts)


@scenario
def status_words(ctx):
    """ok at rest; offline_limit with memhp_default_state=offline and a big
    request. (memory_pressure: unplug_workload; unplug_online_off:
    module_params; broken cannot be provoked from QMP.)"""
    vm = ctx.vm(devices=[MemDev('vm0', '4G')],
                cmdline='memhp_default_state=offline')
    st = status(vm, 'vm0')
    ctx.check(st == 'ok', 'status ok at rest with 0 requested (%s)' % st)
    vm.set_requested('vm0', 4 * GiB)
    size, st = wait_settled(ctx, vm, 'vm0', timeout=120)
    ctx.check(0 < size < 4 * GiB and st == 'offline_limit',
              'paused at %s with status offline_limit (%s)'
              % (fmt_size(size), st))
    rc, out = vm.run('dmesg -s 4194304 | grep "online it to continue"')
    ctx.check(rc == 0, 'kernel log says so', out)
    vm.check('for d in /sys/devices/system/memory/memory[0-9]*; do '
             'grep -q offline $d/state && echo online_movable >$d/state; '
             'done; true')
    vm.set_requested('vm0', 1 * GiB)
    size, st = wait_settled(ctx, vm, 'vm0', timeout=120)
    ctx.check(size == 1 * GiB and st == 'ok',
              'onlined, 1G requested: at %s, status ok (%s)'
              % (fmt_size(size), st))
    ctx.note('broken: not testable here (QEMU has no way to make the device '
             'answer ERROR or report a bad config over QMP)')


@scenario
def module_params(ctx):
    """unplug_floor_mb refuses -5 and abc (EINVAL), takes 0/-1/100;
    unplug_online=0: online memory stays, status unplug_online_off; =1
    again: unplug goes on."""
    vm = ctx.vm(devices=[MemDev('vm0', '4G')],
                cmdline='memhp_default_state=online_movable')
    P = '/sys/module/virtio_mem/parameters'
    for bad in ('-5', 'abc', '-2'):
        rc, out = vm.run('echo %s >%s/unplug_floor_mb' % (bad, P))
        ctx.check(rc != 0 and 'nvalid' in out,
                  'unplug_floor_mb=%s refused with EINVAL' % bad, out)
    v = vm.check('cat %s/unplug_floor_mb' % P).strip()
    ctx.check(v == '-1', 'unplug_floor_mb still -1 (%s)' % v)
    for good in ('0', '100', '-1'):
        rc, out = vm.run('echo %s >%s/unplug_floor_mb && cat %s/'
                         'unplug_floor_mb' % (good, P, P))
        ctx.check(rc == 0 and out.strip() == good,
                  'unplug_floor_mb=%s accepted' % good, out)
    boot_kb = vm.memtotal_kb()
    if not plug_to(ctx, vm, 'vm0', 1 * GiB):
        return
    # The device says plugged before the guest has onlined it all.
    wait_memtotal(ctx, vm, boot_kb + 1 * GiB // 1024, 'plugged 1G')
    base = vm.memtotal_kb()
    vm.check('echo 0 >%s/unplug_online' % P)
    vm.set_requested('vm0', 256 * MiB)
    size, st = wait_settled(ctx, vm, 'vm0', timeout=60, quiet=5.0)
    ctx.check(size == 1 * GiB and st == 'unplug_online_off',
              'unplug_online=0: stays at 1G, status unplug_online_off '
              '(%s, %s)' % (fmt_size(size), st))
    ctx.check(vm.memtotal_kb() == base, 'MemTotal unchanged')
    vm.check('echo 1 >%s/unplug_online' % P)
    vm.set_requested('vm0', 258 * MiB)
    size, st = wait_settled(ctx, vm, 'vm0', timeout=90)
    ctx.check(size == 258 * MiB and st == 'ok',
              'unplug_online=1 and a new request: at 258M (%s, %s)'
              % (fmt_size(size), st))


# ---------------------------------------------------------------- Big Block

BBM_SIZES = ('128M', '256M', '512M', '1G')


def bbm_sizes(ctx, cmdline, zone):
    devs = [MemDev('bb%s' % s.lower(), '4G', block_size=s)
            for s in BBM_SIZES]
    vm = ctx.vm(devices=devs, cmdline=cmdline, maxmem_extra='4G')
    base_kb = vm.memtotal_kb()
    total = 0
    for d in devs:
        sv = sysfs_all(vm, d.id)
        ctx.check(sv.get('mode') == 'bbm' and
                  sv.get('big_block_size') == max(d.block_size, MB_SIZE),
                  '%s: mode bbm, big block %s' % (d.id,
                                                  fmt_size(d.block_size)),
                  {k: sv.get(k) for k in ('mode', 'big_block_size',
                                          'block_size', 'status')})
    steps = ctx.sized((2 * GiB, 4 * GiB, 1 * GiB, 0), (1 * GiB, 0))
    for d in devs:
        for s in steps:
            vm.set_requested(d.id, s)
            # In ZONE_MOVABLE every step must be reached: a stall there
            # (seen on the debug tier for a 1G big block) is waited out.
            got, st = wait_settled(ctx, vm, d.id, timeout=120,
                                   quiet=None if zone == 'Movable'
                                   else QUIET_S)
            what = '%s at %s' % (d.id, fmt_size(s))
            if got != s and s < 4 * GiB and zone == 'Normal' and \
                    st == 'unmovable':
                ctx.note('%s: stopped at %s, status unmovable (ZONE_NORMAL)'
                         % (what, fmt_size(got)))
            elif not ctx.check(got == s and st == 'ok',
                               '%s: at %s, status %s'
                               % (what, fmt_size(got), st)):
                return
            check_sysfs_vs_qmp(ctx, vm, d.id, what)
            check_map_vs_memory(ctx, vm, d.id, what)
            guest_check(ctx, vm, d.id, what, zone=zone if zone != 'Normal'
                        else 'online')
        total += vm.plugged(d.id)
        wait_memtotal(ctx, vm, base_kb + total // 1024, '%s done' % d.id)


@scenario
def bbm_sizes_movable(ctx):
    """Big Block Mode, device blocks 128M/256M/512M/1G (four 4 GiB devices),
    online_movable: 2G, 4G, 1G, 0 each."""
    bbm_sizes(ctx, 'memhp_default_state=online_movable', 'Movable')


@scenario
def bbm_sizes_online(ctx):
    """As bbm_sizes_movable with memhp_default_state=online (ZONE_NORMAL):
    a big block held by unmovable pages may stay (status unmovable)."""
    bbm_sizes(ctx, 'memhp_default_state=online', 'Normal')


@scenario
def bbm_forced(ctx):
    """force_bbm=1 bbm_block_size=512M on a 2M-block device; then a bad
    bbm_block_size=3000: warning in dmesg, default big block size."""
    vm = ctx.vm(devices=[MemDev('vm0', '4G')],
                cmdline='memhp_default_state=online_movable',
                modparams='force_bbm=1 bbm_block_size=536870912')
    base_kb = vm.memtotal_kb()
    sv = sysfs_all(vm, 'vm0')
    ctx.check(sv.get('mode') == 'bbm' and
              sv.get('big_block_size') == 512 * MiB,
              'forced: mode bbm, big block 512M',
              {k: sv.get(k) for k in ('mode', 'big_block_size')})
    for s in (1 * GiB, 3 * GiB, 512 * MiB, 0):
        what = 'forced 512M at %s' % fmt_size(s)
        vm.set_requested('vm0', s)
        got, st = wait_settled(ctx, vm, 'vm0')
        ctx.check(got == s and st == 'ok', '%s: at %s (%s)'
                  % (what, fmt_size(got), st))
        check_map_vs_memory(ctx, vm, 'vm0', what)
        wait_memtotal(ctx, vm, base_kb + got // 1024, what)
    vm.stop()

    vm = ctx.vm(devices=[MemDev('vm0', '4G')],
                cmdline='memhp_default_state=online_movable',
                modparams='force_bbm=1 bbm_block_size=3000')
    base_kb = vm.memtotal_kb()
    rc, out = vm.run('dmesg -s 4194304 | grep "bbm_block_size=3000"')
    ctx.check(rc == 0 and 'default' in out,
              'bad bbm_block_size: dmesg warning', out)
    sv = sysfs_all(vm, 'vm0')
    ctx.check(sv.get('mode') == 'bbm' and
              sv.get('big_block_size') == MB_SIZE,
              'bad size: mode bbm with the default big block (128M)',
              {k: sv.get(k) for k in ('mode', 'big_block_size')})
    for s in (384 * MiB, 0):
        what = 'default bb at %s' % fmt_size(s)
        vm.set_requested('vm0', s)
        got, st = wait_settled(ctx, vm, 'vm0')
        ctx.check(got == s and st == 'ok', '%s: at %s (%s)'
                  % (what, fmt_size(got), st))
        wait_memtotal(ctx, vm, base_kb + got // 1024, what)


@scenario
def bbm_random_walk(ctx):
    """As unplug_random_walk in Big Block Mode (256M device blocks), with
    memory blocks inside big blocks toggled offline/online."""
    random_walk(ctx, '256M', 'memhp_default_state=online_movable')


@scenario
def bbm_unmovable(ctx):
    """Big Block Mode, ZONE_NORMAL: ~100 MiB of tmpfs directories (slab the
    kernel cannot migrate) in 1G of 256M big blocks, then 0 requested: big
    blocks holding slab stay (status unmovable), the others go."""
    vm = ctx.vm(devices=[MemDev('vm0', '4G', block_size='256M')],
                cmdline='memhp_default_state=online')
    base_kb = vm.memtotal_kb()
    if not plug_to(ctx, vm, 'vm0', 1 * GiB):
        return
    wait_memtotal(ctx, vm, base_kb + 1 * GiB // 1024, 'plugged 1G')
    slab0 = vm.meminfo()['Slab']
    # Boot memory (1 GiB) is all DMA32: the hot-plugged ZONE_NORMAL is
    # where GFP_KERNEL allocations go first. About 3 KiB of slab per
    # directory; on the debug tier 40% as many still clear 50 MiB
    # and take a minute less.
    vm.check('mkdir -p /tmp/slab && cd /tmp/slab && '
             'seq 1 %d | xargs mkdir' % ctx.sized(100000, 40000),
             timeout=300)
    slab = vm.meminfo()['Slab'] - slab0
    ctx.note('slab grew by %d MiB' % (slab // 1024))
    ctx.check(slab > 50 * 1024, 'slab grew by > 50 MiB (%d kB)' % slab)
    vm.set_requested('vm0', 0)
    size, st = wait_settled(ctx, vm, 'vm0', timeout=120, quiet=8.0)
    ctx.note('unplug to 0 with slab in the device: at %s, status %s'
             % (fmt_size(size), st))
    ctx.check(size > 0 and st == 'unmovable',
              'big blocks holding slab stay, status unmovable (%s, %s)'
              % (fmt_size(size), st))
    ctx.check(size < 1 * GiB, 'big blocks without slab went (at %s)'
              % fmt_size(size))
    dm = check_map_vs_memory(ctx, vm, 'vm0', 'with slab')
    ctx.note('map: %s' % dm)
    wait_memtotal(ctx, vm, base_kb, 'with slab', plus_plugged='vm0')
    check_sysfs_vs_qmp(ctx, vm, 'vm0', 'with slab')
    rc, out = vm.run('dmesg -s 4194304 | grep virtio_mem | tail -5')
    ctx.note(out.strip())


# ---------------------------------------------------------------- runner

def run_scenario(args, fn, logdir):
    ctx = Ctx(args, fn.__name__, logdir)
    t0 = time.monotonic()
    skipped = None
    try:
        fn(ctx)
    except Skip as e:
        skipped = str(e)
    except (vmrig.VMError, TimeoutError) as e:
        ctx.failures.append('%s: %s' % (type(e).__name__, e))
    except Exception as e:  # noqa: BLE001 - any error fails the scenario
        ctx.failures.append('%s: %s' % (type(e).__name__, e))
        ctx.note(traceback.format_exc().rstrip())
    finally:
        for vm in ctx.vms:
            # The host-side oracle, once more at the end (see VM.oracle()).
            try:
                if vm.proc and vm.proc.poll() is None:
                    vm.oracle()
            except (vmrig.VMError, OSError):
                pass
            if vm.shell and vm.shell.repaired:
                ctx.note('%s: the guest took %d command line(s) only after '
                         'a nudge or a resend' % (vm.name, vm.shell.repaired))
            vm.stop()
    for vm in ctx.vms:
        if vm.oracle_seen:
            ctx.failures.append('host-side oracle: the guest touched '
                                'unplugged memory: %s' % vm.oracle_seen[0])
        for name, a, _ in vm.known_reports():
            ctx.note('known report at console line %d, not a failure: %s '
                     '(see KNOWN_REPORTS; lockdep is off for the rest of '
                     '%s)' % (a + 1, name, vm.name))
        for why in vm.boot_failures:
            ctx.note('%s: before the module was loaded: %s; booted again'
                     % (vm.name, why))
        probs = vm.console_problems()
        if probs:
            ctx.failures.append('console of %s has %d problem line(s), '
                                'first: %s' % (vm.name, len(probs),
                                               probs[0][1].strip()))
    # Passing runs print no notes; their timed steps show where a slow
    # scenario spends its time all the same.
    try:
        with open(os.path.join(logdir, ctx.name + '.notes'), 'w') as f:
            f.write('\n'.join(ctx.notes + ctx.failures) + '\n')
    except OSError:
        pass
    return ctx, skipped, time.monotonic() - t0


def keep_consoles(ctx, why):
    """Copy each guest's console log where the next run does not
    overwrite it; {vm name: copy}."""
    stamp = time.strftime('%Y%m%d-%H%M%S')
    kept = {}
    for vm in ctx.vms:
        keep = vm.log_path[:-4] + '.%s-%s.log' % (why, stamp)
        try:
            shutil.copyfile(vm.log_path, keep)
            kept[vm.name] = keep
        except OSError:
            pass
    return kept


def summary(passed, failed, skipped, t_all):
    """The TAP run's last lines; the exit status."""
    print('# total %.1f s' % (time.monotonic() - t_all))
    line = 'vmtest: %d passed, %d failed' % (passed, failed)
    if skipped:
        line += ', %d skipped' % skipped
    print(line)
    return 1 if failed else 0


RESULT_RE = re.compile(r'^(not ok|ok) 1 - (.*)$')


def times_path(run):
    return os.path.join(vmrig.VMCACHE, 'vmtest-times', run + '.json')


# On a new machine: what the scenarios took in a run here, per kind of
# kernel, so that even the first run goes longest first.
KEPT_TIMES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'vmtest-times.json')


def load_times(run, debug=False):
    """{scenario: seconds} of the last passing run on this machine, or
    else the times kept in the repository for a distro or debug kernel;
    they only order the scenarios."""
    for path, key in ((times_path(run), None),
                      (KEPT_TIMES, 'debug' if debug else 'distro')):
        try:
            with open(path) as f:
                times = json.load(f)
        except (OSError, ValueError):
            continue
        return times.get(key, {}) if key else times
    return {}


def save_times(run, times):
    p = times_path(run)
    try:
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p + '.tmp', 'w') as f:
            json.dump(times, f, indent=1, sort_keys=True)
        os.replace(p + '.tmp', p)
    except OSError:
        pass


def run_jobs(args, todo):
    """Run each scenario in a vmtest.py of its own, @args.jobs at a time;
    print their TAP in order, renumbered. Each guest has two vCPUs, but
    most of the time only one is busy: two guests side by side use a
    two-core machine about fully."""
    me = os.path.abspath(__file__)
    procs = {}
    results = {}
    passed = failed = skipped = 0
    t_all = time.monotonic()
    times = load_times(args.run, vmrig.Kernel(args.kver).debug)
    # Longest first, by the last run on this machine (unknown ones count
    # as long), so that no long scenario is left alone at the end.
    order = sorted(range(len(todo)),
                   key=lambda i: -times.get(todo[i].__name__, 1e9))
    printed = 0
    while printed < len(todo):
        while order and len(procs) < args.jobs:
            nxt = order.pop(0)
            cmd = [sys.executable, me, '--kver', args.kver, '--module',
                   args.module or 'none', '--only', todo[nxt].__name__,
                   '--jobs', '1'] + (['-v'] if args.verbose else []) + \
                (['--tag', args.tag] if args.tag else [])
            # A file, not a pipe: a chatty scenario must not block.
            out = tempfile.TemporaryFile('w+')
            procs[nxt] = (subprocess.Popen(cmd, stdout=out,
                                           stderr=subprocess.STDOUT,
                                           text=True), out)
        for i, (p, out) in list(procs.items()):
            if p.poll() is not None:
                out.seek(0)
                results[i] = out.read()
                out.close()
                del procs[i]
                m = re.search(r'^ok \d+ - \S+ \(([\d.]+) s\)$', results[i],
                              re.M)
                if m:
                    times[todo[i].__name__] = float(m.group(1))
                    save_times(args.run, times)
        while printed in results:
            i = printed
            text = results.pop(i)
            if not any(RESULT_RE.match(l) for l in text.splitlines()):
                text += '\nnot ok 1 - %s (no result from its vmtest.py)' \
                    % todo[i].__name__
            for line in text.splitlines():
                m = RESULT_RE.match(line)
                if m:
                    line = '%s %d - %s' % (m.group(1), i + 1, m.group(2))
                    if m.group(1) == 'not ok':
                        failed += 1
                    elif '# SKIP' in line:
                        skipped += 1
                    else:
                        passed += 1
                elif (line.startswith(('TAP version', '1..', '# kernel ',
                                       '# total ', 'vmtest: '))):
                    continue
                print(line)
            printed += 1
            sys.stdout.flush()
        time.sleep(0.5)
    return summary(passed, failed, skipped, t_all)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--kver')
    ap.add_argument('--module', help="path to virtio_mem.ko, 'distro', or "
                    "'builtin' (a kernel with the driver built in)")
    ap.add_argument('--only', help='comma-separated scenario names')
    ap.add_argument('--except', dest='skip', metavar='NAMES',
                    help='comma-separated scenario names to leave out')
    ap.add_argument('--tag', help='logs go to build/vmtest/<kver>-<tag> '
                    '(a module other than the one make builds)')
    ap.add_argument('--list', action='store_true')
    ap.add_argument('-v', '--verbose', action='store_true')
    ap.add_argument('-j', '--jobs', type=int,
                    default=int(os.environ.get('VMTEST_JOBS', '1')),
                    help='scenarios run side by side (VMTEST_JOBS)')
    args = ap.parse_args()

    if args.list:
        for fn in SCENARIOS:
            print('%-24s %s' % (fn.__name__, fn.__doc__.split('\n')[0]))
        return 0
    if not args.kver or not args.module:
        ap.error('--kver and --module are required')
    args.module = vmrig.resolve_module(args.kver, args.module)
    todo = SCENARIOS
    if args.only:
        names = args.only.split(',')
        unknown = set(names) - {f.__name__ for f in SCENARIOS}
        if unknown:
            ap.error('unknown scenario(s): %s' % ', '.join(sorted(unknown)))
        todo = [f for f in SCENARIOS if f.__name__ in names]
    if args.skip:
        names = args.skip.split(',')
        unknown = set(names) - {f.__name__ for f in SCENARIOS}
        if unknown:
            ap.error('unknown scenario(s): %s' % ', '.join(sorted(unknown)))
        todo = [f for f in todo if f.__name__ not in names]

    if args.tag is None and args.module == 'distro':
        args.tag = 'distro'
    args.run = args.kver + ('-' + args.tag if args.tag else '')
    logdir = os.path.join(vmrig.BUILD, args.run)
    os.makedirs(logdir, exist_ok=True)
    print('TAP version 13')
    print('# kernel %s, module %s' % (args.kver, args.module))
    print('1..%d' % len(todo))
    if args.jobs > 1 and len(todo) > 1:
        return run_jobs(args, todo)
    passed = failed = skipped = 0
    t_all = time.monotonic()
    for i, fn in enumerate(todo, 1):
        ctx, skip, dt = run_scenario(args, fn, logdir)
        lost = [(vm.name, vm.tcg_lost_wakeup()) for vm in ctx.vms]
        lost = [(n, l) for n, l in lost if l]
        if ctx.failures and lost:
            # Once only: a second such failure is reported as it is.
            print('# %s: run again: %s lost a timer wakeup under TCG (%s); '
                  'first run failed with: %s'
                  % (fn.__name__, lost[0][0], lost[0][1], ctx.failures[0]))
            keep_consoles(ctx, 'lost-wakeup')
            ctx, skip, dt = run_scenario(args, fn, logdir)
        if skip is not None:
            skipped += 1
            print('ok %d - %s # SKIP %s' % (i, fn.__name__, skip))
        elif ctx.failures:
            failed += 1
            print('not ok %d - %s (%.1f s)' % (i, fn.__name__, dt))
            for f in ctx.failures:
                print('#   failed: ' + f)
            if not args.verbose:
                for n in ctx.notes:
                    print('#   ' + n.replace('\n', '\n#   '))
            kept = keep_consoles(ctx, 'fail')
            for vm in ctx.vms:
                print('#   console log: ' + vm.log_path)
                if vm.name in kept:
                    print('#   (kept as %s)' % kept[vm.name])
                # CI keeps only this output: the first problem with what
                # led to it, or else the console's last lines.
                for l in vm.console_excerpt(context=15,
                                            limit=40).splitlines():
                    print('#   | ' + l)
        else:
            passed += 1
            print('ok %d - %s (%.1f s)' % (i, fn.__name__, dt))
        sys.stdout.flush()
    return summary(passed, failed, skipped, t_all)


if __name__ == '__main__':
    sys.exit(main())
