#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""virtio-mem bench: the driver's own memory for a large region.

  metadata.py [--kver K] [--size 16G,1T,32T] [--outdir DIR]

A report, not a test. For each region size, for the distro's driver and
ours, a guest boots with one virtio-mem device of that size (nothing
plugged) and without the driver loaded; the guest's Slab and vmalloc use
are read, the driver is loaded, and read again once the device is probed.
What the driver allocated from vmalloc is also counted by caller
(/proc/vmallocinfo; module text left out). Compared with the bound
the issue sets: 1 byte per memory block + 1 bit per subblock + a fixed
part. Writes bench/results/<date>-<kver>-metadata.{md,json}; the goals
table of bench.py reads the newest .json (bench/goals.py).
"""

import argparse
import datetime
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(REPO, 'tools', 'testing', 'virtio_mem'))
import vmrig  # noqa: E402
from vmrig import MiB, MemDev, VM, VMError, parse_size  # noqa: E402

os.environ.setdefault('VMRIG_ORACLE', '0')

MB_SIZE = 128 * MiB
SB_SIZE = 2 * MiB
# The guest's physical address width: a 4-level x86-64 kernel maps up to
# 64 TiB, and QEMU's device-memory area starts above the boot memory.
PHYS_BITS = 46

READ = r"""
sed -n 's/^\(Slab\|VmallocUsed\|Percpu\): *\([0-9]*\).*/\1 \2/p' /proc/meminfo
awk '$0 ~ /virtio_mem/ && $0 !~ /load_module|module_alloc|execmem/ {
	n++; b += $2 } END { print "vmalloc_ours", n + 0, b + 0 }' /proc/vmallocinfo
"""


def read(vm):
    out = {}
    for line in vm.check(READ).splitlines():
        p = line.split()
        if p[0] == 'vmalloc_ours':
            out['vmalloc_ours_n'], out['vmalloc_ours'] = int(p[1]), int(p[2])
        elif len(p) == 2:
            out[p[0]] = int(p[1]) * 1024
    return out


def measure(kver, module, size, logdir):
    name = 'metadata-%s-%s' % ('distro' if module == 'distro' else 'ours',
                               vmrig.fmt_size(size))
    vm = VM(kver, module, name=name, logdir=logdir,
            devices=[MemDev('vm0', size)], load_module=False,
            extra_args=['-cpu', 'qemu64,phys-bits=%d' % PHYS_BITS])
    res = {'size': size}
    try:
        vm.start()
        before = read(vm)
        vm.check('insmod /lib/vmrig/test/virtio_mem.ko')
        vm.wait(lambda: vm.run('ls /sys/bus/virtio/drivers/virtio_mem/'
                               'virtio*')[0] == 0, 60,
                what='the device to be probed')
        time.sleep(1)
        after = read(vm)
        res.update({k: after.get(k, 0) - before.get(k, 0)
                    for k in ('Slab', 'VmallocUsed', 'Percpu')})
        res['vmalloc_ours'] = after['vmalloc_ours'] - before['vmalloc_ours']
        _, out = vm.run('dmesg | grep -i "virtio_mem" | tail -3')
        res['dmesg'] = out.strip().splitlines()
        res['problems'] = [l for _, l in vm.console_problems()][:3]
    except (VMError, TimeoutError) as e:
        res['error'] = str(e).splitlines()[0]
    finally:
        vm.stop()
    return res


def bound(size):
    return size // MB_SIZE + size // SB_SIZE // 8


def kb(n):
    return '%d KiB' % (n // 1024) if n is not None else '-'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--kver', default='6.12.95+deb12-amd64')
    ap.add_argument('--size', default='16G,1T,32T')
    ap.add_argument('--outdir', default=os.path.join(HERE, 'results'))
    args = ap.parse_args()
    ours = os.path.join(REPO, 'build', args.kver, 'virtio_mem.ko')
    logdir = os.path.join(REPO, 'build', 'bench', args.kver)
    rows = []
    for s in args.size.split(','):
        size = parse_size(s)
        for d, m in (('distro', 'distro'), ('ours', ours)):
            r = measure(args.kver, m, size, logdir)
            print('%s %s: %s' % (s, d, r.get('error') or
                                 'slab %s, vmalloc %s (by our callers %s)'
                                 % (kb(r['Slab']), kb(r['VmallocUsed']),
                                    kb(r['vmalloc_ours'])))
                  , flush=True)
            rows.append((s, d, r))
    date = datetime.date.today().isoformat()
    lines = ['# virtio-mem bench: the driver\'s own memory, %s, %s'
             % (args.kver, date), '',
             'One device of each size, nothing plugged; the guest\'s Slab, '
             'VmallocUsed and Percpu (/proc/meminfo) before loading the '
             'driver and after the probe; "vmalloc, by the driver" counts '
             'the /proc/vmallocinfo entries whose caller is in virtio_mem '
             '(module text left out). Bound: 1 byte per 128 MiB memory '
             'block + 1 bit per 2 MiB subblock (`python3 bench/metadata.py '
             '--kver %s --size %s`).' % (args.kver, args.size), '',
             '| region | driver | Slab | VmallocUsed | vmalloc, by the '
             'driver | Percpu | bound (without the fixed part) |',
             '|---|---|---|---|---|---|---|']
    for s, d, r in rows:
        if r.get('error'):
            lines.append('| %s | %s | error: %s | | | | |' % (s, d,
                                                            r['error']))
            continue
        lines.append('| %s | %s | %s | %s | %s | %s | %s |' % (
            s, d, kb(r['Slab']), kb(r['VmallocUsed']),
            kb(r['vmalloc_ours']), kb(r['Percpu']), kb(bound(r['size']))))
    path = os.path.join(args.outdir, '%s-%s-metadata.md' % (date, args.kver))
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(path[:-3] + '.json', 'w') as f:
        json.dump({'kver': args.kver, 'date': date, 'rows': [
            dict(r, region=s, driver=d, bound=bound(r['size']))
            for s, d, r in rows]}, f, indent=1, sort_keys=True)
    print('\n'.join(lines[6:]))
    print('(%s)' % os.path.relpath(path, REPO))
    return 0


if __name__ == '__main__':
    sys.exit(main())
