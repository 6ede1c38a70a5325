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
import os
import shutil
import sys
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


def wait_memtotal(ctx, vm, want_kb, what, timeout=60):
    try:
        vm.wait(lambda: vm.memtotal_kb() == want_kb, timeout,
                what='MemTotal == %d kB' % want_kb, interval=0.3)
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


def plug_steps(ctx, cmdline, zone, steps=('130M', '4G', '16G')):
    vm = ctx.vm(devices=[MemDev('vm0', '16G', block_size='2M')],
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
    """0 -> 130M -> 4G -> 16G, memhp_default_state=online: ZONE_NORMAL."""
    vm, _ = plug_steps(ctx, 'memhp_default_state=online', 'Normal')
    # The kselftest suite in its default mode, as run_tests would run it.
    rc, out = vm.run('/selftests/virtio_mem/run_tests.sh virtio_mem',
                     timeout=180)
    ctx.check(rc == 0, 'kselftest run_tests.sh', out)


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
    ctx.check(movable <= 3.01 * (1 * GiB + normal) + 2 * MB_SIZE,
              'Movable %s <= 301%% of kernel memory (1G boot + %s Normal)'
              % (fmt_size(movable), fmt_size(normal)), c)


@scenario
def memfill(ctx):
    """Plug 2G at probe (requested-size on the QEMU command line), then fill
    1792 MiB -- most of the plugged memory, more than the boot memory --
    with memfill and verify it over a few passes."""
    vm = ctx.vm(devices=[MemDev('vm0', '8G', requested='2G')],
                cmdline='memhp_default_state=online_movable')
    try:
        vm.wait_plugged('vm0', 2 * GiB, 120)
    except TimeoutError:
        ctx.check(False, 'plugged 2G at probe (device at %s)'
                  % fmt_size(vm.plugged('vm0')))
        return
    base = vm.memtotal_kb()
    vm.wait(lambda: vm.memtotal_kb() > 2 * GiB // 1024, 60,
            what='MemTotal > 2G')
    rc, out = vm.run('memfill -i 0 -d 14 1792', timeout=300)
    ctx.check(rc == 0, 'memfill 1792 MiB (fill + verify passes)', out)
    ctx.note('memfill: %s' % ' / '.join(
        l for l in out.splitlines() if 'filled' in l or 'OK' in l))
    ctx.check(base > 2 * GiB // 1024, 'MemTotal %d kB > 2G' % base)


@scenario
def numa_two_nodes(ctx):
    """Two NUMA nodes, one device on each: blocks land on the right node."""
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
    guest_check(ctx, vm, 'vm0', 'vm0 on node 0', zone='Normal', node=0,
                min_blocks=8)
    guest_check(ctx, vm, 'vm1', 'vm1 on node 1', zone='Normal', node=1,
                min_blocks=10)
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
    in quick succession (8G, then 12G: ends at 12G)."""
    vm = ctx.vm(devices=[MemDev('vm0', '16G')],
                cmdline='memhp_default_state=online')
    base_kb = vm.memtotal_kb()
    # A workload that keeps checking its memory throughout.
    vm.check('(memfill -i 0.5 -r 256 >/tmp/mf.log 2>&1; echo $? >/tmp/mf.rc)'
             ' >/dev/null 2>&1 &')
    vm.set_requested('vm0', 16 * GiB)
    time.sleep(0.3)
    mid = vm.plugged('vm0')
    vm.set_requested('vm0', 0)
    final = vm.wait_stable('vm0', quiet=3.0, timeout=120)
    ctx.note('lowered to 0 at %s plugged; settled at %s'
             % (fmt_size(mid), fmt_size(final)))
    ctx.check(final <= 16 * GiB, 'after 16G -> 0: plugged %s <= 16G'
              % fmt_size(final))
    if final:
        ctx.note('unplug not complete (or not supported): %s still plugged'
                 % fmt_size(final))

    vm.set_requested('vm0', 8 * GiB)
    time.sleep(0.2)
    if plug_to(ctx, vm, 'vm0', 12 * GiB, timeout=180):
        wait_memtotal(ctx, vm, base_kb + 12 * GiB // 1024,
                      '8G then 12G')
        guest_check(ctx, vm, 'vm0', '8G then 12G', zone='Normal',
                    min_blocks=12 * GiB // MB_SIZE)
    vm.check('kill -TERM $(pidof memfill)')
    vm.wait(lambda: vm.run('test -s /tmp/mf.rc')[0] == 0, 30,
            what='memfill to exit')
    rc, out = vm.run('cat /tmp/mf.log; exit $(cat /tmp/mf.rc)')
    ctx.check(rc == 0, 'background memfill (256 MiB) clean throughout', out)


@scenario
def offline_cap(ctx):
    """memhp_default_state=offline: plugging pauses while memory sits
    offline, and resumes as the test onlines blocks until 16G."""
    vm = ctx.vm(devices=[MemDev('vm0', '16G')],
                cmdline='memhp_default_state=offline')
    base_kb = vm.memtotal_kb()
    vm.check('hotplug_check.sh baseline')
    vm.set_requested('vm0', 16 * GiB)
    paused = vm.wait_stable('vm0', quiet=4.0, timeout=120)
    ctx.note('plugging paused at %s with nothing onlined' % fmt_size(paused))
    ctx.check(0 < paused <= 4 * GiB,
              'paused well below 16G (at %s, limit 4G)' % fmt_size(paused))
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
    deadline = t0 + 240
    while vm.plugged('vm0') < 16 * GiB and time.monotonic() < deadline:
        onlined += int(vm.check(online_all).split()[-1])
        time.sleep(0.3)
    size = vm.plugged('vm0')
    ctx.check(size == 16 * GiB, 'resumed to 16G as blocks were onlined '
              '(at %s, %d blocks onlined, %.1f s)'
              % (fmt_size(size), onlined, time.monotonic() - t0))
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
def vmemmap_pressure(ctx):
    """512 MiB guest asked for 32 GiB: every 128 MiB block needs 2 MiB of
    memmap from boot memory. The driver may stop short, but the kernel must
    not warn (the shipped driver hits a vmemmap allocation failure WARNING
    here) and the guest must stay usable."""
    vm = ctx.vm(devices=[MemDev('vm0', '32G')], boot_mem='512M',
                cmdline='memhp_default_state=online_movable')
    vm.set_requested('vm0', 32 * GiB)
    final = vm.wait_stable('vm0', quiet=5.0, timeout=180)
    ctx.note('plugged %s of 32G' % fmt_size(final))
    mi = vm.meminfo()
    ctx.note('MemTotal %d kB, MemFree %d kB' % (mi['MemTotal'],
                                                mi['MemFree']))
    ctx.check(final > 0, 'plugged something (%s)' % fmt_size(final))
    rc, out = vm.run('memfill -o 64')
    ctx.check(rc == 0, 'guest still usable (memfill 64 MiB)', out)


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
            vm.stop()
    for vm in ctx.vms:
        probs = vm.console_problems()
        if probs:
            ctx.failures.append('console of %s has %d problem line(s), '
                                'first: %s' % (vm.name, len(probs),
                                               probs[0][1].strip()))
    return ctx, skipped, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--kver')
    ap.add_argument('--module', help="path to virtio_mem.ko, or 'distro'")
    ap.add_argument('--only', help='comma-separated scenario names')
    ap.add_argument('--list', action='store_true')
    ap.add_argument('-v', '--verbose', action='store_true')
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

    logdir = os.path.join(vmrig.BUILD, args.kver +
                          ('-distro' if args.module == 'distro' else ''))
    os.makedirs(logdir, exist_ok=True)
    print('TAP version 13')
    print('# kernel %s, module %s' % (args.kver, args.module))
    print('1..%d' % len(todo))
    passed = failed = skipped = 0
    t_all = time.monotonic()
    for i, fn in enumerate(todo, 1):
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
            stamp = time.strftime('%Y%m%d-%H%M%S')
            for vm in ctx.vms:
                print('#   console log: ' + vm.log_path)
                # Keep a copy that the next run does not overwrite.
                keep = vm.log_path[:-4] + '.fail-%s.log' % stamp
                try:
                    shutil.copyfile(vm.log_path, keep)
                    print('#   (kept as %s)' % keep)
                except OSError:
                    pass
                if vm.console_problems():
                    for l in vm.console_excerpt(limit=40).splitlines():
                        print('#   | ' + l)
        else:
            passed += 1
            print('ok %d - %s (%.1f s)' % (i, fn.__name__, dt))
        sys.stdout.flush()
    print('# total %.1f s' % (time.monotonic() - t_all))
    line = 'vmtest: %d passed, %d failed' % (passed, failed)
    if skipped:
        line += ', %d skipped' % skipped
    print(line)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
