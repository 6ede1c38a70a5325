#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The project's demo (make run): a guest that follows the host's resizes.

  demo.py --kver K --module PATH|distro [--steps 0,130M,1G,4G,16G,4G,1G,0]
          [--cmdline 'memhp_default_state=online_movable'] [--timeout 60]

Boots a guest with one 16 GiB virtio-mem device, asks for each size in turn
over QMP and prints, per step, what the host asked for, what the device
reports plugged, the guest's MemTotal and how many memory blocks of the
device region are online. Shrinking steps are shown even when the driver
does not (yet) unplug: the table then says so and the demo carries on.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmrig  # noqa: E402
from vmrig import GiB, MiB, MemDev, VM, fmt_size, parse_size  # noqa: E402


def human(n):
    if n >= GiB:
        return '%.2f GiB' % (n / GiB)
    return '%.1f MiB' % (n / MiB)


def snapshot(vm):
    blocks = vm.blocks_in('vm0')
    online = [b for b in blocks.values() if b['state'] == 'online']
    zones = sorted({b['zones'][0] for b in online})
    return {
        'plugged': vm.plugged('vm0'),
        'memtotal': vm.memtotal_kb() * 1024,
        'blocks': '%d/%d %s' % (len(online), len(blocks),
                                '+'.join(zones) if zones else ''),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--kver', required=True)
    ap.add_argument('--module', required=True,
                    help="path to virtio_mem.ko, or 'distro'")
    ap.add_argument('--steps', default='0,130M,1G,4G,16G,4G,1G,0')
    ap.add_argument('--size', default='16G', help='device region size')
    ap.add_argument('--block-size', default='2M')
    ap.add_argument('--boot-mem', default='1G')
    ap.add_argument('--cmdline', default='memhp_default_state=online_movable')
    ap.add_argument('--timeout', type=float, default=60,
                    help='seconds to wait for each step')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    module = vmrig.resolve_module(args.kver, args.module)
    steps = [parse_size(s) for s in args.steps.split(',')]

    print('virtio-mem demo: kernel %s, driver %s' % (
        args.kver, 'distro (Debian)' if module == 'distro' else
        os.path.relpath(module)))
    print('guest: %s boot memory, one virtio-mem device: %s region, %s '
          'blocks; %s' % (args.boot_mem, args.size, args.block_size,
                          args.cmdline))
    vm = VM(args.kver, module, name='demo', boot_mem=args.boot_mem,
            devices=[MemDev('vm0', args.size, block_size=args.block_size)],
            cmdline=args.cmdline, verbose=args.verbose)
    print('booting (QEMU TCG) ...', end=' ', flush=True)
    rc = 0
    with vm:
        print('up in %.1f s; console log: %s\n' % (
            vm.boot_time, os.path.relpath(vm.log_path)))
        start, size = vm.region('vm0')
        base = vm.memtotal_kb() * 1024
        hdr = ('%-4s %10s %14s %14s %16s %-18s %8s'
               % ('step', 'requested', 'plugged (QMP)', 'guest MemTotal',
                  'delta MemTotal', 'blocks online', 'time'))
        print(hdr)
        print('-' * len(hdr))
        s = snapshot(vm)
        print('%-4s %10s %14s %14s %16s %-18s %8s' % (
            'boot', '-', fmt_size(s['plugged']) if s['plugged'] else '0',
            human(s['memtotal']), '', s['blocks'], ''))
        notes = []
        no_unplug = False
        for i, want in enumerate(steps, 1):
            before = vm.plugged('vm0')
            # Once the driver showed it does not unplug at all, do not wait
            # the full timeout on every later shrinking step.
            timeout = 3 if no_unplug and want < before else args.timeout
            t0 = time.monotonic()
            vm.set_requested('vm0', want)
            reached = True
            try:
                vm.wait(lambda: vm.plugged('vm0') == want and
                        vm.memtotal_kb() * 1024 - base == want
                        if want >= before else vm.plugged('vm0') == want,
                        timeout, what='step %d' % i, interval=0.2)
            except TimeoutError:
                reached = False
            dt = time.monotonic() - t0
            s = snapshot(vm)
            mark = ''
            if not reached:
                if want < before and s['plugged'] >= before:
                    mark = ' (*)'
                    if not no_unplug:
                        notes.append('step %d and later shrinking steps: '
                                     'the driver did not unplug (plugged '
                                     'stayed at %s for %.0f s)'
                                     % (i, fmt_size(s['plugged']), dt))
                    no_unplug = True
                elif want < before:
                    mark = ' (*)'
                    notes.append('step %d: unplug partial: %s of %s still '
                                 'plugged after %.0f s' % (
                                     i, fmt_size(s['plugged']),
                                     fmt_size(want), dt))
                else:
                    mark = ' (!)'
                    rc = 1
                    notes.append('step %d: plug did not reach %s within '
                                 '%.0f s' % (i, fmt_size(want), dt))
            delta = s['memtotal'] - base
            print('%-4d %10s %14s %14s %16s %-18s %7.1fs%s' % (
                i, fmt_size(want) if want else '0',
                fmt_size(s['plugged']) if s['plugged'] else '0',
                human(s['memtotal']),
                ('+' if delta >= 0 else '-') + human(abs(delta)),
                s['blocks'], dt, mark))
        print()
        for n in notes:
            print('  ' + n)
        probs = vm.console_problems()
        if probs:
            rc = 1
            print('  console has kernel warnings/oopses, first: %s'
                  % probs[0][1].strip())
        elif not notes:
            print('  every step reached: the guest followed the host.')
        print('shutting down ...', end=' ', flush=True)
    print('done.')
    return rc


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
