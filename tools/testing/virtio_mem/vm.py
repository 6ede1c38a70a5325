#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boot a guest with a virtio-mem device by hand (make vm).

  vm.py --kver K --module PATH|distro|none [--size 16G] [--block-size 2M]
        [--requested 0] [--boot-mem 1G] [--devices 1] [--numa 0]
        [--cmdline 'memhp_default_state=online_movable'] [--no-prompt]

Prints where the console log and a spare QMP socket are, then gives a
prompt (type 'help'). With --no-prompt it just waits until Ctrl-C, so the
QMP socket can be driven by another tool.
"""

import argparse
import json
import os
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmrig  # noqa: E402
from vmrig import MemDev, VM, fmt_size, parse_size  # noqa: E402

HELP = '''commands:
  size [DEV] SIZE     set requested-size (e.g. "size 4G", "size vm1 130M")
  prof [DEV] SIZE [N] like size, while sampling where the vCPUs are (QEMU's
                      register dump, 20 a second): the N (25) functions
                      busy samples fall in most (KASLR is undone with
                      the guest's /proc/kallsyms, which root can read)
  info                requested / plugged per device, guest MemTotal
  blocks [DEV]        memory blocks of the device region(s): state, zone
  sh CMD              run CMD in the guest (busybox sh); "!CMD" works too
  dmesg [N]           last N (default 30) kernel log lines
  qmp CMD [JSON]      raw QMP command, e.g. qmp query-memory-devices
  log [N]             last N lines of the console log file
  reset               system_reset
  quit                shut the guest down (also Ctrl-D)'''


def info(vm):
    mt = vm.memtotal_kb()
    for d, data in sorted(vm.memory_devices().items()):
        print('%-8s requested %-8s plugged %-8s region 0x%x+%s block %s%s' % (
            d, fmt_size(data['requested-size']) or '0',
            fmt_size(data['size']) or '0', data['memaddr'],
            fmt_size(data['max-size']), fmt_size(data['block-size']),
            '' if data.get('node') is None else ' node %d' % data['node']))
    print('guest MemTotal %d kB (%.2f GiB)' % (mt, mt / (1 << 20)))


def blocks(vm, dev=None):
    allb = vm.memory_blocks()
    for d in sorted(vm.memory_devices()):
        if dev and d != dev:
            continue
        bl = vm.blocks_in(d, allb)
        print('%s: %d memory blocks' % (d, len(bl)))
        for i in sorted(bl):
            b = bl[i]
            print('  memory%-5d 0x%x %-8s %s node %s' % (
                i, b['start'], b['state'], ' '.join(b['zones']), b['node']))


def prof(vm, first_dev, words):
    dev = words.pop(0) if words and not words[0][0].isdigit() else first_dev
    size = parse_size(words[0])
    top = int(words[1]) if len(words) > 1 else 25
    vm.kernel_symbols()
    vm.set_requested(dev, size)
    secs, n, hot = vm.profile(lambda: vm.plugged(dev) == size, 600)
    busy = sum(hot.values())
    print('%s: plugged %s after %.1f s; %d samples, %d busy (%.0f%%)' % (
        dev, fmt_size(vm.plugged(dev)) or '0', secs, n, busy,
        100.0 * busy / max(n, 1)))
    for name, k in hot.most_common(top):
        print('  %5.1f%%  %s' % (100.0 * k / busy, name))


def prompt(vm, first_dev):
    while True:
        try:
            line = input('vm> ').strip()
        except EOFError:
            print()
            return
        if not line:
            continue
        if line.startswith('!'):
            line = 'sh ' + line[1:]
        cmd, _, rest = line.partition(' ')
        rest = rest.strip()
        try:
            if cmd in ('quit', 'exit', 'q'):
                return
            elif cmd == 'help':
                print(HELP)
            elif cmd == 'size':
                p = rest.split()
                dev, size = (p[0], p[1]) if len(p) == 2 else (first_dev, p[0])
                vm.set_requested(dev, parse_size(size))
                t0 = time.monotonic()
                try:
                    vm.wait(lambda: vm.plugged(dev) == parse_size(size), 30,
                            interval=0.2)
                    print('%s: plugged %s after %.1f s' % (
                        dev, size, time.monotonic() - t0))
                except TimeoutError:
                    print('%s: plugged %s after 30 s (requested %s)' % (
                        dev, fmt_size(vm.plugged(dev)) or '0', size))
            elif cmd == 'prof':
                prof(vm, first_dev, rest.split())
            elif cmd == 'info':
                info(vm)
            elif cmd == 'blocks':
                blocks(vm, rest or None)
            elif cmd == 'sh':
                rc, out = vm.run(rest, timeout=600)
                sys.stdout.write(out)
                if rc:
                    print('(exit %d)' % rc)
            elif cmd == 'dmesg':
                n = int(rest or 30)
                sys.stdout.write(vm.run('dmesg -s 4194304 | tail -n %d' % n)[1])
            elif cmd == 'log':
                n = int(rest or 30)
                print('\n'.join(vm.console().splitlines()[-n:]))
            elif cmd == 'qmp':
                name, _, js = rest.partition(' ')
                args = json.loads(js) if js.strip() else {}
                print(json.dumps(vm.qmp.execute(name, **args), indent=2))
            elif cmd == 'reset':
                vm.system_reset()
            else:
                print('unknown command; try help')
        except (vmrig.VMError, ValueError, IndexError) as e:
            print('error: %s' % e)
        probs = vm.console_problems()
        if probs and probs != getattr(vm, '_seen_probs', None):
            vm._seen_probs = probs
            print('!! console has %d warning/oops line(s), last: %s'
                  % (len(probs), probs[-1][1].strip()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--kver', required=True)
    ap.add_argument('--module', default='distro',
                    help="path to virtio_mem.ko, 'distro' or 'none'")
    ap.add_argument('--size', default='16G', help='device region size')
    ap.add_argument('--block-size', default='2M')
    ap.add_argument('--requested', default='0')
    ap.add_argument('--devices', type=int, default=1)
    ap.add_argument('--boot-mem', default='1G')
    ap.add_argument('--smp', type=int, default=2)
    ap.add_argument('--numa', type=int, default=0,
                    help='NUMA nodes; device N goes on node N %% nodes')
    ap.add_argument('--cmdline', default='memhp_default_state=online_movable')
    ap.add_argument('--modparams', default='')
    ap.add_argument('--no-load', action='store_true',
                    help='put the module in the initramfs '
                    '(/lib/vmrig/test/virtio_mem.ko) but do not insmod it')
    ap.add_argument('--no-prompt', action='store_true')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    module = vmrig.resolve_module(args.kver, args.module)

    devs = [MemDev('vm%d' % i, args.size, requested=args.requested,
                   block_size=args.block_size,
                   node=(i % args.numa) if args.numa else None)
            for i in range(args.devices)]
    vm = VM(args.kver, module, devices=devs, boot_mem=args.boot_mem,
            smp=args.smp, numa=args.numa, cmdline=args.cmdline, name='vm',
            modparams=args.modparams, load_module=not args.no_load,
            verbose=args.verbose,
            extra_args=['-qmp', 'unix:@TMP@/qmp-user.sock,server=on,wait=off'])
    print('booting %s with %s ...' % (args.kver, module or 'no module'))
    with vm:
        qsock = os.path.join(vm.tmpdir, 'qmp-user.sock')
        print('up in %.1f s' % vm.boot_time)
        print('  console log : tail -f %s' % vm.log_path)
        print('  QMP         : %s  (e.g. socat - UNIX-CONNECT:%s)'
              % (qsock, qsock))
        print('  QEMU cmd    : %s' % os.path.join(vm.logdir, 'vm.cmd'))
        print('  guest shell : the prompt below ("sh CMD" or "!CMD")')
        info(vm)
        if args.no_prompt:
            print('running; Ctrl-C to stop')
            try:
                while True:
                    vm.alive()
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        else:
            print(HELP)
            try:
                prompt(vm, devs[0].id if devs else None)
            except KeyboardInterrupt:
                print()
        print('shutting down')
    return 0


if __name__ == '__main__':
    sys.exit(main())
