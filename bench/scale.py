#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Scale: plug and unplug 1 GiB .. 1 TiB, and the time per GiB.

One guest per size and column: 512 MiB of boot memory, one device of the
size (2 MiB blocks, reserve=off), memory_hotplug.memmap_on_memory=1 and
online_movable, so that the memmap of what is added comes from the added
memory itself and a small guest can take a large device. In that guest:
plug 0 -> size, timed until the device has it and MemTotal grew by it less
the memmap (1/64); memfill 256 MiB in it (the memory is usable); unplug
size -> 0, timed until the device is empty and MemTotal is back.

  scale.py                              the default columns (below)
  scale.py --only-col ours-mm --sizes 1,4
  scale.py --report                     the table and plot from the JSON

Default columns: ours on the bench kernel with mm/ (6.12.118-vmbench-mm,
scripts/bench-kernel.sh) up to 1 TiB; ours on Debian's 6.12 up to 256 GiB
(without mm/'s patch a hot(un)plug walks the whole zone per memory block,
so 1 TiB would take about 40 minutes there; mm_series.py compares the
bench kernel with and without the patch). The distro's driver does not use
memmap_on_memory and cannot take these sizes into a small guest
(mm_series.py: it stops near 55 GiB in a 1 GiB guest).

QEMU's qemu64 CPU has 40 physical address bits (1 TiB): sizes above
256 GiB boot with phys-bits=42.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
import goals  # noqa: E402
import mm_series  # noqa: E402
from bench import GiB, log  # noqa: E402
from vmrig import MemDev, VM  # noqa: E402

JSON = os.path.join(HERE, 'results', 'scale.json')
SIZES = (1, 4, 16, 64, 256, 1024)
CMDLINE = bench.MOVABLE + ' memory_hotplug.memmap_on_memory=1'
STALL = 30.0


def columns(keys=None):
    """(key, label, kver, module, sizes in GiB) of the columns in @keys
    (all if None). The bench kernels are built, if need be, only for the
    column that runs on them."""
    ko = os.path.join(bench.REPO, 'build', '%s', 'virtio_mem.ko')
    cols = []
    if not keys or 'ours-mm' in keys:
        mm = mm_series.bench_kernel_releases()[1]
        cols.append(('ours-mm', 'ours, 6.12 + mm/ (%s)' % mm, mm, ko % mm,
                     SIZES))
    if not keys or 'ours-debian' in keys:
        cols.append(('ours-debian', 'ours, Debian 6.12.95+deb12-amd64',
                     '6.12.95+deb12-amd64', ko % '6.12.95+deb12-amd64',
                     SIZES))
    return cols


def wait_for(vm, base, req, want_mt, cap):
    """Seconds from asking for @req until the device has it and MemTotal
    grew by @want_mt; None if not within @cap or nothing moved for STALL
    seconds. Also the final size."""
    t0 = time.monotonic()
    vm.set_requested('vm0', req)
    last, prev = t0, None
    while True:
        vm.alive()
        _, size, mt, t2 = bench.sample_monitored(vm, base)
        if size == req and mt == want_mt:
            return round(t2 - t0, 2), size
        if (size, mt) != prev:
            prev, last = (size, mt), time.monotonic()
        now = time.monotonic()
        if now - t0 > cap or now - last > STALL:
            return None, size
        time.sleep(bench.POLL)


def run_size(kver, module, size, logdir, verbose):
    res = {'size': size}
    extra = ['-cpu', 'qemu64,phys-bits=42'] if size > 256 * GiB else []
    vm = VM(kver, module, name='scale-%dg' % (size // GiB), logdir=logdir,
            verbose=verbose, devices=[MemDev('vm0', size)],
            boot_mem='512M', smp=2, cmdline=CMDLINE, extra_args=extra)
    cap = 120 + size // GiB * 2
    try:
        vm.start()
        base = vm.memtotal_kb() * 1024
        bench.start_monitor(vm)
        res['plug_s'], res['plugged'] = wait_for(vm, base, size,
                                                 size - size // 64, cap)
        rc, out = vm.run('memfill -o 256', timeout=300)
        res['memfill'] = 'ok' if rc == 0 else 'rc %d: %s' % (
            rc, out.strip().splitlines()[-1:] or '')
        res['unplug_s'], res['left'] = wait_for(vm, base, 0, 0, cap)
        res['blocks_left'] = len(vm.blocks_in('vm0'))
    except Exception as e:      # a report: record it and go on
        res['error'] = '%s: %s' % (type(e).__name__, e)
    finally:
        probs = [l.strip() for _, l in vm.console_problems()]
        res['console_problems'] = probs[:5]
        vm.stop()
    return res


def per_gib(r, key):
    t = r.get(key)
    return t / (r['size'] / GiB) if t is not None else None


def cell(r, key):
    if r.get('error'):
        return 'error'
    t = r.get(key)
    if t is None:
        what = r.get('plugged') if key == 'plug_s' else r.get('left')
        return 'not reached (%s)' % bench.human(what)
    return '%.1f s (%.3f s/GiB)' % (t, per_gib(r, key))


def report(data):
    out = []
    for key in data['order']:
        col = data['cols'][key]
        runs = sorted(col['runs'], key=lambda r: r['size'])
        when = col.get('measured', ['?', '?'])
        out += ['', '**%s**' % col['label'], '',
                'Measured %s, driver at %s.' % tuple(when), '',
                '| size | plug | unplug | memfill 256 MiB | console |',
                '|---|---|---|---|---|']
        for r in runs:
            out.append('| %s | %s | %s | %s | %s |' % (
                bench.human(r['size']), cell(r, 'plug_s'),
                cell(r, 'unplug_s'), r.get('memfill', r.get('error', '?')),
                '%d problem lines' % len(r['console_problems'])
                if r.get('console_problems') else 'clean'))
        spread = []
        for k in ('plug_s', 'unplug_s'):
            g = goals.growth(runs, k, bench.POLL)
            if g:
                spread.append('%s %.2fx (%s)' % (k[:-2], g[0], ', '.join(
                    bench.human(s) for s in g[1])))
        if spread:
            out += ['', 'Growth of the time per GiB (goals.growth(): the '
                    'largest ratio to any smaller size, 4 GiB up, runs of '
                    '%d samples or more; 1.0 is flat): ' % (
                        goals.SCALE_MIN_SAMPLES) + '; '.join(spread) + '.']
    return '\n'.join(out).strip()


def write_md(data, path, png):
    lines = ['<!-- SPDX-License-Identifier: GPL-2.0 -->',
             '# Scale: plug and unplug 1 GiB .. 1 TiB', '',
             'Made by `bench/scale.py` (its docstring says what it does); '
             'QEMU TCG, 2 vCPUs, 512 MiB guests with '
             'memory_hotplug.memmap_on_memory=1 and online_movable. Times '
             'until the device and MemTotal agree; compare sizes and '
             'columns, not the seconds with other machines.', '',
             report(data), '', '![time per GiB](%s)' % os.path.basename(png)]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def write_png(data, path):
    """Log-log: seconds per GiB over the size, a line per column and way."""
    gnuplot = shutil.which('gnuplot')
    if not gnuplot:
        return
    work = tempfile.mkdtemp(prefix='scale-plot-')
    plots = []
    for i, key in enumerate(data['order']):
        col = data['cols'][key]
        for k, dash in (('plug_s', 1), ('unplug_s', 2)):
            pts = [(r['size'] / GiB, per_gib(r, k)) for r in
                   sorted(col['runs'], key=lambda r: r['size'])
                   if per_gib(r, k)]
            if not pts:
                continue
            dat = os.path.join(work, '%s-%s.dat' % (key, k))
            with open(dat, 'w') as f:
                f.write(''.join('%g %g\n' % p for p in pts))
            plots.append("'%s' using 1:2 with linespoints lw 2 dt %d lc %d "
                         "title '%s: %s'" % (dat, dash, i + 1,
                                             key, k[:-2]))
    if not plots:
        shutil.rmtree(work, ignore_errors=True)
        return
    gp = ['set terminal pngcairo size 900,560 font ",10"',
          "set output '%s'" % path, 'set logscale xy',
          "set xlabel 'device size plugged or unplugged (GiB)'",
          "set ylabel 'seconds per GiB (TCG)'",
          'set xtics (1, 4, 16, 64, 256, 1024)', 'set xrange [0.8:1300]',
          'set grid',
          'set key outside right top vertical',
          'plot ' + ', '.join(plots)]
    bench.run_gnuplot(gnuplot, work, gp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--only-col', help='comma-separated column keys')
    ap.add_argument('--sizes', help='comma-separated sizes in GiB')
    ap.add_argument('--json', default=JSON)
    ap.add_argument('--report', action='store_true')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    data = {'order': [], 'cols': {}}
    if os.path.exists(args.json):
        with open(args.json) as f:
            data = json.load(f)
    base = re.sub(r'\.json$', '', args.json)
    if not args.report:
        logdir = os.path.join(bench.REPO, 'build', 'bench', 'scale')
        os.makedirs(logdir, exist_ok=True)
        for key, label, kver, module, sizes in columns(
                args.only_col.split(',') if args.only_col else None):
            if args.sizes:
                sizes = [int(s) for s in args.sizes.split(',')]
            if key not in data['order']:
                data['order'].append(key)
            col = data['cols'].setdefault(key, {'label': label, 'runs': []})
            col['label'] = label
            for g in sizes:
                log('%s: %d GiB ...' % (key, g))
                r = run_size(kver, module, g * GiB, logdir, args.verbose)
                log('  plug %s, unplug %s%s' % (
                    cell(r, 'plug_s'), cell(r, 'unplug_s'),
                    ', ' + r['error'] if r.get('error') else ''))
                col['runs'] = [x for x in col['runs']
                               if x['size'] != r['size']] + [r]
                col['measured'] = [datetime.date.today().isoformat(),
                                   bench.git_head()]
                with open(args.json, 'w') as f:
                    json.dump(data, f, indent=1, sort_keys=True)
    write_png(data, base + '.png')
    write_md(data, base + '.md', base + '.png')
    print(report(data))
    return 0


if __name__ == '__main__':
    sys.exit(main())
