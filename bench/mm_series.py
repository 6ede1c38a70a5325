#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Bench rows for the core-mm patches in mm/: the same rows on a kernel
with and without them.

A patch in mm/ changes the kernel, not the driver, so its rows compare
kernels. The default run takes the kernels of scripts/bench-kernel.sh
(linux-source-6.12, no checkers: <version>-vmbench as it is,
<version>-vmbench-mm with mm/ applied, <version>-vmbench-builtin with the
whole series, ours built in) and runs each row with the distro's driver
and with ours as a module on the first two, and built in on the third,
interleaved; each column's ratio is to the same driver as shipped:

  mm_series.py                   the five columns, into results/mm-series.json
  mm_series.py --report          the tables, from the JSON, as Markdown

A column can also be run on its own, for a kernel that keeps its release
name whatever went into it (the in-tree kernel of make check-builtin,
6.12.118-vmbuiltin, built with and without mm/):

  mm_series.py --label "in-tree, without mm/" --kver 6.12.118-vmbuiltin \\
      --module builtin --only plug,unplug_big_movable --boot-mem 4G

Times are for comparing the columns of one run of this machine, never as
absolute numbers. A debug kernel shadows the memory it adds with KASAN
(1/8), so give its guests 4 GiB (--boot-mem).
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
from bench import GiB, human, log, run_one  # noqa: E402

JSON = os.path.join(HERE, 'results', 'mm-series.json')
GROWTH = 256 * GiB


def rows():
    """The bench's rows mm/'s patch changes, and the zone growing to 256
    GiB, where a cost per memory block that grows with the zone shows."""
    keep = ('plug', 'unplug_big_movable')
    out = [sc for sc in bench.scenarios(False) if sc['key'] in keep]
    out.append(dict(
        key='plug_256g', title='plug 0 -> 256 GiB, memmap_on_memory=1',
        cmdline=bench.MOVABLE + ' memory_hotplug.memmap_on_memory=1',
        pre=0, req=GROWTH, cap=600, dev_size='256G', memmap=True,
        # MemTotal never reaches the size here: stop once nothing moves.
        stall=15))
    # The distro's driver cannot plug that much into a 1 GiB guest: it
    # does not use memmap_on_memory (it stops near 56 GiB).
    out.append(dict(
        key='unplug_256g', title='unplug 256 -> 1 GiB, memmap_on_memory=1',
        cmdline=out[-1]['cmdline'], pre=GROWTH, req=GiB, cap=600,
        dev_size='256G', memmap=True, stall=15, ours_only=True,
        setup_cap=400))
    return out


def seen(r, sc):
    """Seconds until the guest has the memory: MemTotal agrees, less the
    1/64 of each block that holds its memmap with memmap_on_memory (both
    drivers: it is core-mm's parameter)."""
    if r.get('error') or not r.get('reached'):
        return None
    if not sc.get('memmap'):
        return r.get('t_memtotal')
    return bench.t_memtotal_memmap(r['samples'], r['final_plugged'])


def cell(r):
    if not r or r.get('error'):
        return 'error: %s' % (r or {}).get('error', 'not run')
    t = r.get('seen_s')
    s = '%.2f s' % t if t is not None else 'not reached (%s)' % human(
        r.get('final_plugged'))
    if r.get('console_problem_lines'):
        s += ' (%d console problem lines)' % r['console_problem_lines']
    return s


def best(runs):
    ok = [r for r in runs if r.get('seen_s') is not None]
    return min(ok, key=lambda r: r['seen_s']) if ok else runs[0]


def report(data):
    """One table: a row per bench row, a column per label; the ratio is to
    the column the label's pair is measured against (data['base'])."""
    labels = data['order']
    scs = {sc['key']: sc for sc in rows()}
    titles = {k: sc['title'] for k, sc in scs.items()}
    for col in data['runs'].values():     # (as measured, by today's rule)
        for k, runs in col.items():
            for r in runs:
                if k in scs and 'samples' in r:
                    r['seen_s'] = seen(r, scs[k])
    keys = [k for k in titles if any(k in data['runs'].get(lab, {})
                                     for lab in labels)]
    out = ['| row | ' + ' | '.join(labels) + ' |',
           '|---|' + '---|' * len(labels)]
    for k in keys:
        cells = []
        for lab in labels:
            runs = data['runs'].get(lab, {}).get(k, [])
            if not runs:
                cells.append('-')
                continue
            b = best(runs)
            c = cell(b)
            base = data.get('base', {}).get(lab)
            bruns = data['runs'].get(base, {}).get(k, [])
            if bruns and b.get('seen_s') is not None and \
                    best(bruns).get('seen_s'):
                c += ', %.2fx' % (b['seen_s'] / best(bruns)['seen_s'])
            if len(runs) > 1:
                c += ' (best of %d)' % len(runs)
            cells.append(c)
        out.append('| %s | %s |' % (titles[k], ' | '.join(cells)))
    return '\n'.join(out)


def write_md(data, path):
    """The table with what it was measured on, next to the JSON."""
    kv = {}
    for lab in data['order']:
        for runs in data['runs'].get(lab, {}).values():
            for r in runs:
                kv.setdefault(lab, set()).add(
                    '%s (%s)' % (r.get('kver'), r.get('module')))
    lines = ['<!-- SPDX-License-Identifier: GPL-2.0 -->',
             "# mm/'s patches: the same rows with and without them", '',
             'Made by `bench/mm_series.py` (bench/README.md says how to '
             'read it); QEMU TCG, 2 vCPUs, one run of this machine: the '
             'ratios mean something, the seconds only here. Time until '
             'the guest has the memory (MemTotal, less the memmap with '
             'memmap_on_memory); a ratio is to the same driver on the '
             'kernel as shipped.', '', report(data), '', 'Columns:', '']
    for lab in data['order']:
        lines.append('- %s: %s' % (lab, ', '.join(sorted(kv.get(lab, ())))))
    heads = sorted({r.get('git_head', '?') for col in data['runs'].values()
                    for runs in col.values() for r in runs})
    dates = sorted({r.get('date', '?') for col in data['runs'].values()
                    for runs in col.values() for r in runs})
    lines += ['', 'Measured %s at %s.' % (', '.join(dates), ', '.join(heads))]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def bench_kernel_releases():
    """scripts/bench-kernel.sh's kernels, built if need be: (as shipped,
    with mm/, with the whole series and ours built in)."""
    out = subprocess.run([os.path.join(bench.REPO, 'scripts',
                                       'bench-kernel.sh')],
                         check=True, capture_output=True, text=True).stdout
    return out.split()


def bench_kernels():
    """The default columns: (label, kver, module, the label it is compared
    with), from scripts/bench-kernel.sh's kernels."""
    plain, mm, builtin = bench_kernel_releases()
    cols = []
    for d in ('distro', 'ours'):
        for kver, tag in ((plain, 'as shipped'), (mm, '+ mm/')):
            mod = d if d == 'distro' else os.path.join(
                bench.REPO, 'build', kver, 'virtio_mem.ko')
            cols.append(('%s, %s' % (d, tag), kver, mod,
                         '%s, as shipped' % d if tag != 'as shipped'
                         else None))
    cols.append(('ours in-tree, + mm/', builtin, 'builtin',
                 'ours, as shipped'))
    return cols


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--label', help='run one column, under this name')
    ap.add_argument('--kver', help='with --label')
    ap.add_argument('--module', help="with --label: 'distro', 'builtin' "
                    'or a .ko path')
    ap.add_argument('--base', help='with --label: the label to compare with')
    ap.add_argument('--boot-mem', help='guest memory at boot (default: '
                    "each row's own)")
    ap.add_argument('--repeat', type=int, default=1)
    ap.add_argument('--only', help='comma-separated row keys')
    ap.add_argument('--json', default=JSON)
    ap.add_argument('--report', action='store_true')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    data = {'order': [], 'runs': {}, 'base': {}}
    if os.path.exists(args.json):
        with open(args.json) as f:
            data = json.load(f)
    md = re.sub(r'\.json$', '', args.json) + '.md'
    if args.report:
        write_md(data, md)
        print(report(data))
        return 0
    if args.label:
        if not (args.kver and args.module):
            ap.error('--label needs --kver and --module')
        cols = [(args.label, args.kver, args.module, args.base)]
    else:
        cols = bench_kernels()
    logdir = os.path.join(bench.REPO, 'build', 'bench', 'mm-series')
    os.makedirs(logdir, exist_ok=True)
    for lab, _, _, base in cols:
        if lab not in data['order']:
            data['order'].append(lab)
        if base:
            data['base'][lab] = base
    scs = rows()
    if args.only:
        scs = [sc for sc in scs if sc['key'] in args.only.split(',')]
    for sc in scs:
        if args.boot_mem:
            sc = dict(sc, boot_mem=args.boot_mem)
        for _ in range(args.repeat):
            for lab, kver, module, _ in cols:
                if sc.get('ours_only') and module == 'distro':
                    continue
                log('%s: %s ...' % (lab, sc['key']))
                # (A file name QEMU takes: no commas.)
                name = re.sub(r'[^A-Za-z0-9]+', '-', lab).strip('-')
                r = run_one(kver, name, module, sc, logdir, args.verbose)
                r['seen_s'] = seen(r, sc)
                r.update(kver=kver, module=os.path.basename(module),
                         boot_mem=sc.get('boot_mem', '1G'),
                         date=datetime.date.today().isoformat(),
                         git_head=bench.git_head())
                data['runs'].setdefault(lab, {}).setdefault(
                    sc['key'], []).append(r)
                log('  %s' % cell(r))
                with open(args.json, 'w') as f:
                    json.dump(data, f, indent=1, sort_keys=True)
    write_md(data, md)
    print(report(data))
    return 0


if __name__ == '__main__':
    sys.exit(main())
