#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""virtio-mem benchmark: the distro's driver against ours, side by side.

  bench.py [--kver K] [--quick] [--only KEY[,KEY]] [--outdir DIR] [-v]

A report, not a test: it never fails on a timing. For each kernel (both
supported ones unless --kver), for each scenario, it boots a fresh guest
with the distro's virtio_mem and one with ours (build/<kver>/virtio_mem.ko,
built with "make modules KVER=<kver>" when missing), interleaved so both see
the same machine load, and times one resize over QMP. Boot and any set-up
plug are not timed. See bench/README.md for what each row means.

Writes bench/results/<date>-<kver>.{md,json,png}; console logs go to
build/bench/<kver>/<driver>-<scenario>.log. Prints the tables at the end.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(REPO, 'tools', 'testing', 'virtio_mem'))
sys.path.insert(0, HERE)
import goals  # noqa: E402
import vmrig  # noqa: E402
from vmrig import GiB, MiB, MemDev, VM, VMError  # noqa: E402

# Anonymous backends, as in earlier results (the tests use shared files).
os.environ.setdefault('VMRIG_ORACLE', '0')

KVERS = ['6.12.95+deb12-amd64', '6.1.0-50-amd64']
DRIVERS = ['distro', 'ours']
MOVABLE = 'memhp_default_state=online_movable'
NORMAL = 'memhp_default_state=online'
POLL = goals.POLL        # seconds between samples
SETTLE = 1.0            # idle time after the set-up plug, before timing
OOM_RE = re.compile(r'Out of memory: Kill(ed)? process|'
                    r'Memory cgroup out of memory: Kill')
OOMKILL_RE = re.compile(r'\boom-kill:')


def scenarios(quick):
    """The scenario list. --quick: 8 GiB instead of 16 and shorter caps."""
    big = 8 * GiB if quick else 16 * GiB
    bigs = '%d' % (big // GiB)
    cap_big = 60 if quick else 120
    cap_small = 30 if quick else 75
    wl_pre = 4 * GiB if quick else 8 * GiB
    return [
        # Rows of about a second, where one TCG hiccup of 0.15-0.5 s moves
        # the ratio by half: the median of 3 runs per driver, interleaved.
        dict(key='plug', title='plug 0 -> %s GiB' % bigs,
             cmdline=MOVABLE, pre=0, req=big, cap=60, median_of=3),
        # The same where the kernel puts each block's memmap on the block
        # (Debian's kernels offer it, off by default): what is left of
        # "plug" then is onlining. The distro's driver does not use it.
        dict(key='plug_memmap',
             title='plug 0 -> %s GiB, memmap_on_memory=1' % bigs,
             cmdline=MOVABLE + ' memory_hotplug.memmap_on_memory=1',
             pre=0, req=big, cap=60, median_of=3, memmap=True),
        dict(key='unplug_big_movable',
             title='unplug %s -> 1 GiB, idle, movable' % bigs,
             cmdline=MOVABLE, pre=big, req=GiB, cap=cap_big),
        dict(key='unplug_big_normal',
             title='unplug %s -> 1 GiB, idle, normal' % bigs,
             cmdline=NORMAL, pre=big, req=GiB, cap=cap_big),
        dict(key='unplug_1g_movable', title='unplug 1 GiB -> 0, idle, movable',
             cmdline=MOVABLE, pre=GiB, req=0, cap=cap_small),
        dict(key='unplug_1g_normal', title='unplug 1 GiB -> 0, idle, normal',
             cmdline=NORMAL, pre=GiB, req=0, cap=cap_small, census=True),
        # The same while the guest starts a few processes every second
        # (the bench asking for MemTotal with a command each time).
        dict(key='unplug_1g_normal_busy',
             title='unplug 1 GiB -> 0, normal, guest busy',
             cmdline=NORMAL, pre=GiB, req=0, cap=cap_small, busy=True,
             census=True),
        # The same with nothing at all running in the guest from the plug
        # to the end (QMP only), a few times: how often does all go?
        dict(key='zero_normal_quiet',
             title='unplug 1 GiB -> 0, normal, guest quiet (QMP only)',
             cmdline=NORMAL, pre=GiB, req=0, cap=30, quiet=True, repeat=4,
             census=True),
        dict(key='workload',
             title='unplug %d -> 1 GiB, 45%% memfill workload, movable'
             % (wl_pre // GiB),
             cmdline=MOVABLE, pre=wl_pre, req=GiB, cap=cap_big,
             workload=0.45),
        # A small guest asked for much more than its boot memory can hold
        # the memmap of, with the kernel offering memmap_on_memory.
        dict(key='small_guest',
             title='512 MiB guest: plug 0 -> 32 GiB, memmap_on_memory=1',
             cmdline=MOVABLE + ' memory_hotplug.memmap_on_memory=1',
             pre=0, req=32 * GiB, cap=120, boot_mem='512M', dev_size='32G',
             memmap=True),
    ] + bbm_rows('512', '512 MiB', '512M', cap_big, normal=True) + \
        bbm_rows('1g', '1 GiB', '1G', cap_big, normal=False)


def bbm_rows(tag, label, block_size, cap, normal):
    """Big Block Mode rows: device blocks of @label (four or eight memory
    blocks each), a plug and idle unplugs; kernel-zone too if @normal."""
    rows = [dict(key='bbm%s_plug' % tag,
                 title='%s blocks: plug 0 -> 8 GiB' % label,
                 cmdline=MOVABLE, pre=0, req=8 * GiB, cap=60,
                 block_size=block_size, median_of=3)]
    for zone, cmdline in (('movable', MOVABLE), ('normal', NORMAL)):
        if zone == 'normal' and not normal:
            continue
        rows.append(dict(key='bbm%s_%s' % (tag, zone),
                         title='%s blocks: unplug 8 -> 1 GiB, idle, %s'
                         % (label, zone), cmdline=cmdline, pre=8 * GiB,
                         req=GiB, cap=cap, block_size=block_size))
    return rows


def log(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), flush=True)


def human(n):
    if n is None:
        return '?'
    if n == 0:
        return '0'
    if n % GiB == 0:
        return '%d GiB' % (n // GiB)
    if abs(n) >= GiB:
        return '%d MiB (%.2f GiB)' % (n // MiB, n / GiB)
    return '%d MiB' % (n // MiB)


# ---------------------------------------------------------------- one run

# Watches MemTotal from inside the guest without starting a process: only
# shell builtins in the loop, a FIFO nobody writes to as the 0.1 s sleep, and
# each change printed on the console (ttyS0), which the host reads from the
# console log. A process per sample (what "busy" rows do) puts page tables
# and slab into ZONE_NORMAL while the driver is emptying it.
MONITOR = r"""
exec 4<>/tmp/.mt-tick
prev=
while :; do
	while read -r k v u; do
		[ "$k" = MemTotal: ] && break
	done </proc/meminfo
	if [ "$v" != "$prev" ]; then
		echo "@@MT $v@@" >/dev/ttyS0
		prev=$v
	fi
	read -t 0.1 x <&4
done
"""
MT_RE = re.compile(r'@@MT (\d+)@@')


def start_monitor(vm):
    """Start MONITOR in the background; wait for its first line."""
    vm.check("mkfifo /tmp/.mt-tick && cat >/tmp/mt.sh <<'EOF'%sEOF" % MONITOR)
    vm.check('sh /tmp/mt.sh </dev/null >/dev/null 2>&1 &')
    vm.wait(lambda: MT_RE.search(vm.console()), 30,
            what='the MemTotal monitor', interval=0.2)


def monitored_memtotal(vm, base):
    """MemTotal growth since @base in bytes from MONITOR's last console
    line, or None before its first."""
    seen = MT_RE.findall(vm.console())
    return int(seen[-1]) * 1024 - base if seen else None


def sample_monitored(vm, base):
    """Like sample(), with MemTotal from MONITOR's last console line."""
    size = vm.plugged('vm0')
    t = time.monotonic()
    mt = monitored_memtotal(vm, base)
    return t, size, mt, time.monotonic()


def sample(vm, base):
    """(t, plugged bytes, MemTotal growth since boot in bytes or None, t2).

    t: when QMP answered the size; t2: when the guest answered MemTotal."""
    size = vm.plugged('vm0')
    t = time.monotonic()
    try:
        rc, out = vm.run("sed -n 's/^MemTotal: *//p' /proc/meminfo",
                         timeout=15)
        mt = int(out.split()[0]) * 1024 - base if rc == 0 else None
    except (VMError, ValueError, IndexError):
        mt = None
    return t, size, mt, time.monotonic()


def wait_setup(vm, base, want, sampler, timeout=120):
    """Untimed set-up plug: wait until size and MemTotal both show @want."""
    vm.set_requested('vm0', want)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        vm.alive()
        _, size, mt, _ = sampler(vm, base)
        if size == want and mt == want:
            return
        time.sleep(0.2)
    raise VMError('set-up plug to %s did not complete (size %s, MemTotal '
                  '+%s)' % (human(want), human(size), human(mt)))


def sample_quiet(vm, base):
    """Like sample(), from QMP only: nothing runs in the guest."""
    size = vm.plugged('vm0')
    t = time.monotonic()
    return t, size, None, t


def measure(vm, base, req, cap, stall=62.0, sampler=sample_monitored,
            memmap=False):
    """Ask for @req and sample until size and MemTotal agree on it (with
    @memmap, MemTotal may also stop short by the memmap each block carries,
    1/64: see memmap_on_memory()).

    Stops at @cap seconds, or when neither the size nor MemTotal changed for
    @stall seconds (longer than the distro driver's first 50 s retry).
    With sample_quiet (nothing runs in the guest) it stops on the size
    alone and reads MemTotal once at the end."""
    quiet = sampler is sample_quiet
    samples = []
    t0 = time.monotonic()
    vm.set_requested('vm0', req)
    last_change = t0
    prev = None
    while True:
        vm.alive()
        t, size, mt, t2 = sampler(vm, base)
        samples.append((round(t - t0, 3), size, mt, round(t2 - t0, 3)))
        if (size, mt) != prev:
            last_change = t
            prev = (size, mt)
        if size == req and (quiet or mt == req or
                            (memmap and mt == req - req // 64)):
            break
        now = time.monotonic()
        if now - t0 >= cap or now - last_change >= stall:
            break
        time.sleep(max(0.0, POLL - (time.monotonic() - t)))
    if quiet:
        t, size, mt, t2 = sample(vm, base)
        samples.append((round(t - t0, 3), size, mt, round(t2 - t0, 3)))
    return summarize(samples, req, time.monotonic() - t0)


def summarize(samples, req, waited):
    final = samples[-1][1]
    t_size = next((t for t, s, _, _ in samples if s == req), None)
    # The guest view settled: the first sample where the device size is at
    # its final value and MemTotal has grown by exactly that much (timed
    # when the guest answered, which is after QMP did).
    t_mem = next((t2 for _, s, m, t2 in samples
                  if s == final and m == final), None)
    mt_final = samples[-1][2]
    return {
        'requested': req,
        'final_plugged': final,
        'memtotal_delta_final': mt_final,
        'reached': t_size is not None,
        't_size': t_size,
        't_memtotal': t_mem,
        'waited': round(waited, 2),
        'n_samples': len(samples),
        'samples': samples,
    }


def start_workload(vm, frac):
    mt_kb = vm.memtotal_kb()
    mib = int(mt_kb * frac / 1024)
    vm.check('(memfill -q -i 1 -d 0 %d >/tmp/mf.log 2>&1; echo $? >/tmp/mf.rc)'
             ' >/dev/null 2>&1 &' % mib)
    t0 = time.monotonic()
    vm.wait(lambda: 'memfill: ready' in vm.check('cat /tmp/mf.log') or
            vm.run('test -f /tmp/mf.rc')[0] == 0,
            600, what='memfill to fill %d MiB' % mib, interval=0.5)
    fill_s = time.monotonic() - t0
    out = vm.check('cat /tmp/mf.log')
    if 'memfill: ready' not in out:
        raise VMError('memfill did not start: %s' % out)
    return {'workload_mib': mib, 'guest_memtotal_mib': mt_kb // 1024,
            'fill_s': round(fill_s, 1)}


def finish_workload(vm):
    """Is memfill alive, and is its data intact? (SIGTERM: one last pass.)

    Alive is asked of pidof: the OOM killer may also kill the subshell that
    would have written /tmp/mf.rc."""
    res = {}
    rc, _ = vm.run('pidof memfill', timeout=30)
    res['alive'] = rc == 0
    if res['alive']:
        vm.run('kill -TERM $(pidof memfill)', timeout=30)
        try:
            vm.wait(lambda: vm.run('pidof memfill', timeout=30)[0] != 0,
                    180, what='memfill to exit', interval=0.5)
        except TimeoutError:
            res['exit'] = 'did not exit'
        try:    # the subshell writes the status right after
            vm.wait(lambda: vm.run('test -f /tmp/mf.rc')[0] == 0, 5,
                    what='memfill exit status', interval=0.5)
        except TimeoutError:
            pass
    rc, out = vm.run('cat /tmp/mf.rc 2>/dev/null || echo -; cat /tmp/mf.log',
                     timeout=30)
    lines = out.strip().splitlines()
    res['rc'] = int(lines[0]) if lines and lines[0].strip().isdigit() else None
    res['log'] = lines[1:][-6:]
    res['intact'] = res['rc'] in (0, None) and any('memfill: OK' in l
                                                  for l in lines)
    res['corruption'] = any('corruption' in l or 'FAIL' in l for l in lines)
    return res


def memmap_on_memory(vm, res):
    """Where each block carries its memmap (our sysfs says so), MemTotal
    grows by the plugged size less 1/64 (2 MiB per 128 MiB): "MemTotal
    agrees" is measured against that."""
    rc, out = vm.run('cat /sys/bus/virtio/devices/virtio*/virtio_mem/'
                     'memmap_on_memory 2>/dev/null', timeout=30)
    res['memmap_on_memory'] = rc == 0 and out.strip() == '1'
    if not res['memmap_on_memory']:
        return
    res['t_memtotal'] = t_memtotal_memmap(res['samples'],
                                          res['final_plugged'])


def t_memtotal_memmap(samples, final):
    """summarize()'s t_memtotal where each block carries its memmap: the
    first sample at the final size with MemTotal grown by it less 1/64."""
    return next((t2 for _, s, m, t2 in samples
                 if s == final and m == final - final // 64), None)


# /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h) that say
# who holds a page, in the order they are tried.
KPF_KINDS = [(20, 'none'), (23, 'unplugged'), (10, 'free'), (7, 'slab'),
             (26, 'page table'), (5, 'user (LRU)')]


def held_census(vm, dev_id):
    """{kind: pages} over the device's online memory blocks, from
    /proc/kpageflags: unplugged (fake offline), free, slab, page table,
    user (on an LRU), or kernel (none of these: vmalloc and stacks, percpu,
    other allocations). One pipeline of three processes per block, whose
    own page tables may land in the free pages counted."""
    kinds = {}
    pages = vm.block_size() // 4096
    for b in vm.blocks_in(dev_id).values():
        if b['state'] != 'online':
            continue
        rc, out = vm.run('dd if=/proc/kpageflags bs=8 skip=%d count=%d '
                         '2>/dev/null | od -An -v -tx8 | awk \'{for (i = 1; '
                         'i <= NF; i++) n[$i]++} END {for (k in n) print '
                         'n[k], k}\'' % (b['start'] // 4096, pages),
                         timeout=120)
        for line in out.splitlines():
            p = line.split()
            if len(p) != 2 or not p[0].isdigit():
                continue
            flags = int(p[1], 16)
            kind = next((k for bit, k in KPF_KINDS if flags >> bit & 1),
                        'kernel')
            kinds[kind] = kinds.get(kind, 0) + int(p[0])
    return kinds


# Where the time of a resize goes, from ftrace in the guest: each call of
# the core-mm functions a virtio-mem driver makes (function_graph, depth 1:
# an online_pages() inside add_memory_driver_managed() counts once, with
# the call it is part of), and, for ours, each request from its
# tracepoints (in a trace instance of their own). Both drivers call the
# same core-mm functions, so the distro's row is traced the same way.
CORE_MM = ['add_memory_driver_managed', 'offline_and_remove_memory',
           'alloc_contig_range', 'alloc_contig_range_noprof',
           'free_contig_range']

# Set up before the set-up plug: the ring buffers are kernel memory, which
# must not land in the device's memory blocks that a ZONE_NORMAL row then
# tries to empty (seen: the traced unplug to 0 stalled on them).
TRACE_SETUP = r"""
T=/sys/kernel/tracing
[ -e $T/trace ] || mount -t tracefs nodev $T || exit 1
cd $T && echo 0 >tracing_on && echo nop >current_tracer || exit 1
fns=
for f in %s; do
	grep -q "^$f\$" available_filter_functions && fns="$fns $f"
done
echo $fns >set_ftrace_filter && echo 1 >max_graph_depth &&
echo 1 >options/funcgraph-abstime && echo 16384 >buffer_size_kb &&
echo function_graph >current_tracer || exit 1
if [ -d events/virtio_mem ]; then
	mkdir -p instances/req && echo 4096 >instances/req/buffer_size_kb &&
	echo 0 >instances/req/tracing_on
	for e in send done; do
		echo 1 >instances/req/events/virtio_mem/virtio_mem_request_$e/enable
	done
fi
echo "traced:$fns"
""" % ' '.join(CORE_MM)

TRACE_START = r"""
T=/sys/kernel/tracing
: >$T/trace
if [ -d $T/instances/req ]; then
	: >$T/instances/req/trace && echo 1 >$T/instances/req/tracing_on
fi
echo 1 >$T/tracing_on
"""

# Prints "F <function> <calls> <seconds inside> <first entry> <last exit>
# <mean s of its first tenth of calls> <of its last tenth>" per core-mm
# function, from the leaf lines of function_graph with abstime ("<ts> |
# cpu) <marks> <duration> us | <function>();"), then "R <requests>
# <seconds waiting for the device> <first send> <last done>".
TRACE_STOP = r"""
T=/sys/kernel/tracing
echo 0 >$T/tracing_on
[ -d $T/instances/req ] && echo 0 >$T/instances/req/tracing_on
awk '/\(\);/ && match($0, /[0-9.]+ us/) {
	d = substr($0, RSTART, RLENGTH - 3) / 1e6; f = $NF; sub(/\(\);/, "", f)
	n[f]++; t[f] += d; c[f, n[f]] = d
	if (!(f in a) || $1 < a[f]) a[f] = $1
	if ($1 + d > b[f]) b[f] = $1 + d
} END {
	for (f in n) {
		k = int(n[f] / 10); if (k < 1) k = 1; h = 0; l = 0
		for (i = 1; i <= k; i++) { h += c[f, i]; l += c[f, n[f] - k + i] }
		printf "F %s %d %.6f %.6f %.6f %.6f %.6f\n", f, n[f], t[f], a[f], b[f], h / k, l / k
	}
}' $T/trace
[ -d $T/instances/req ] || exit 0
awk 'match($0, /[0-9]+\.[0-9]+: virtio_mem_request_(send|done)/) {
	ts = substr($0, RSTART, RLENGTH) + 0
	if ($0 ~ /_send/) { s = ts; if (!first) first = ts }
	else if (s) { n++; t += ts - s; last = ts; s = 0 }
} END { printf "R %d %.6f %.6f %.6f\n", n, t, first, last }' $T/instances/req/trace
"""


def trace_parse(out):
    """TRACE_STOP's output -> {'core_mm': {fn: [calls, s]}, 'first_last':
    {fn: [mean s of its first tenth of calls, of its last tenth]},
    'requests': [n, s] or None, 'span': s from the first traced entry to
    the last exit}."""
    res = {'core_mm': {}, 'requests': None}
    first, last = [], []
    for line in out.splitlines():
        p = line.split()
        if len(p) == 8 and p[0] == 'F':
            f = p[1].replace('_noprof', '')
            res['core_mm'][f] = [int(p[2]), float(p[3])]
            # Does a call cost more once many blocks are there?
            res.setdefault('first_last', {})[f] = [float(p[6]), float(p[7])]
            first.append(float(p[4]))
            last.append(float(p[5]))
        elif len(p) == 5 and p[0] == 'R' and int(p[1]):
            res['requests'] = [int(p[1]), float(p[2])]
            first.append(float(p[3]))
            last.append(float(p[4]))
    res['span'] = round(max(last) - min(first), 3) if first else None
    return res


def breakdown_cells(b):
    """(span, core-mm, requests, elsewhere) as text for the table."""
    span = b.get('span')
    if not span:
        return ['-'] * 4
    core = sum(t for _, t in b['core_mm'].values())
    req = b['requests'][1] if b.get('requests') else None
    rest = span - core - (req or 0)

    def cell(t):
        return '%.2f s (%.0f%%)' % (t, 100 * t / span)
    return ['%.2f s' % span, cell(core) + ': ' + ', '.join(
        '%s %.2f s in %d calls' % (f.replace('_driver_managed', '').replace(
            '_memory', ''), t, n)
        for f, (n, t) in sorted(b['core_mm'].items())),
        cell(req) if req is not None else 'not traced', cell(rest)]


def breakdown_table(result):
    rows = ['| scenario | driver | traced span | inside core-mm | requests '
            '| elsewhere |', '|---|---|---|---|---|---|']
    for sc in result['scenarios']:
        for d in DRIVERS:
            b = sc.get('breakdown', {}).get(d)
            if b is None:
                continue
            if b.get('error'):
                rows.append('| %s | %s | error: %s | | | |'
                            % (sc['title'], d, b['error']))
                continue
            rows.append('| %s | %s | %s |' % (sc['title'], d, ' | '.join(
                breakdown_cells(b))))
    return '\n'.join(rows)


def oom_kills(text):
    kills = len([l for l in text.splitlines() if OOM_RE.search(l)])
    return max(kills, len([l for l in text.splitlines()
                           if OOMKILL_RE.search(l)]))


def run_one(kver, driver, module, sc, logdir, verbose, trace=False):
    name = '%s-%s%s' % (driver, sc['key'], '-traced' if trace else '')
    res = {'driver': driver, 'scenario': sc['key'], 'log': None}
    vm = VM(kver, module, name=name, logdir=logdir, verbose=verbose,
            devices=[MemDev('vm0', sc.get('dev_size', '16G'),
                            block_size=sc.get('block_size', '2M'))],
            boot_mem=sc.get('boot_mem', '1G'), smp=2, cmdline=sc['cmdline'])
    res['log'] = os.path.relpath(vm.log_path, REPO)
    t_start = time.monotonic()
    try:
        vm.start()
        res['boot_s'] = round(vm.boot_time, 1)
        base = vm.memtotal_kb() * 1024
        res['base_memtotal'] = base
        sampler = (sample_quiet if sc.get('quiet') else
                   sample if sc.get('busy') else sample_monitored)
        if sampler is sample_monitored:
            start_monitor(vm)
        if trace:
            res['traced'] = vm.check(TRACE_SETUP).split(':', 1)[1].split()
        if sc['pre']:
            t = time.monotonic()
            # (With memmap_on_memory, MemTotal never reaches the size.)
            if sc.get('quiet') or sc.get('memmap'):
                vm.set_requested('vm0', sc['pre'])
                vm.wait_plugged('vm0', sc['pre'], sc.get('setup_cap', 120))
            else:
                wait_setup(vm, base, sc['pre'], sampler)
            res['setup_s'] = round(time.monotonic() - t, 1)
            time.sleep(SETTLE)
        if sc.get('workload'):
            res.update(start_workload(vm, sc['workload']))
            time.sleep(SETTLE)
            res['available_before'] = vm.meminfo()['MemAvailable'] * 1024
        if trace:
            vm.check(TRACE_START)
        res.update(measure(vm, base, sc['req'], sc['cap'],
                           stall=sc.get('stall', 62.0), sampler=sampler,
                           memmap=sc.get('memmap', False)))
        if trace:
            res['trace'] = trace_parse(vm.check(TRACE_STOP, timeout=120))
        if sc.get('workload'):
            res['memfill'] = finish_workload(vm)
        if sc.get('memmap'):
            memmap_on_memory(vm, res)
        if sc.get('census') and res['final_plugged']:
            res['held'] = held_census(vm, 'vm0')
        try:
            text = vm.dmesg()
        except VMError:
            text = vm.console()
        res['oom_kills'] = oom_kills(text)
    except Exception as e:          # a report: record it and go on
        res['error'] = '%s: %s' % (type(e).__name__, e)
        if verbose:
            traceback.print_exc()
        res['oom_kills'] = oom_kills(vm.console())
    finally:
        probs = [l.strip() for _, l in vm.console_problems()]
        res['console_problems'] = probs[:5]
        res['console_problem_lines'] = len(probs)
        # An OOM kill prints a stack dump ("Call Trace") of its own.
        res['console_oom_report'] = 'invoked oom-killer' in vm.console()
        vm.stop()
    res['total_s'] = round(time.monotonic() - t_start, 1)
    return res


# ---------------------------------------------------------------- peers

# What an operator would use instead of virtio-mem, on the same QEMU and
# guest kernel, one guest each: ACPI DIMM hotplug (pc-dimm, device_add and
# device_del) and virtio-balloon (QMP balloon). Each is timed as the
# virtio-mem rows are: from the QMP command until the guest's MemTotal
# (MONITOR) shows the change.
PEER_CAP = 120


def wait_memtotal(vm, base, want, cap):
    """Seconds until MONITOR's MemTotal is base + @want bytes, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < cap:
        vm.alive()
        if monitored_memtotal(vm, base) == want:
            return round(time.monotonic() - t0, 1)
        time.sleep(POLL)
    return None


def peer_dimm(kver, size, logdir, verbose):
    """One size-@size DIMM: plug it (ZONE_MOVABLE), then unplug it."""
    res = {'peer': 'ACPI DIMM (pc-dimm)'}
    vm = VM(kver, 'distro', devices=[], load_module=False, slots=1,
            maxmem_extra=size, boot_mem='1G', smp=2, cmdline=MOVABLE,
            name='peer-dimm', logdir=logdir, verbose=verbose)
    res['log'] = os.path.relpath(vm.log_path, REPO)
    try:
        vm.start()
        base = vm.memtotal_kb() * 1024
        start_monitor(vm)
        vm.qmp.execute('object-add', **{'qom-type': 'memory-backend-ram',
                                        'id': 'mem-dimm0', 'size': size,
                                        'reserve': False})
        vm.qmp.execute('device_add', driver='pc-dimm', id='dimm0',
                       memdev='mem-dimm0')
        res['plug'] = wait_memtotal(vm, base, size, PEER_CAP)
        time.sleep(SETTLE)
        vm.qmp.execute('device_del', id='dimm0')
        res['unplug'] = wait_memtotal(vm, base, 0, PEER_CAP)
    except (VMError, TimeoutError, OSError) as e:
        res['error'] = '%s: %s' % (type(e).__name__, e)
    finally:
        vm.stop()
    return res


def peer_balloon(kver, size, logdir, verbose):
    """A guest of 1 GiB + @size: inflate the balloon by @size (memory
    back to the host), then deflate it again."""
    res = {'peer': 'virtio-balloon'}
    boot = GiB + size
    vm = VM(kver, 'distro', devices=[], load_module=False,
            boot_mem='%dM' % (boot // MiB), smp=2, cmdline=MOVABLE,
            name='peer-balloon', logdir=logdir, verbose=verbose,
            extra_modules=['virtio_balloon'],
            extra_args=['-device', 'virtio-balloon-pci,id=balloon0'])
    res['log'] = os.path.relpath(vm.log_path, REPO)
    try:
        vm.start()
        order = vm.kernel.load_order(['virtio_balloon'])
        vm.check('; '.join('insmod /lib/vmrig/extra/%s.ko' % m
                           for m in order))
        base = vm.memtotal_kb() * 1024
        start_monitor(vm)
        vm.qmp.execute('balloon', value=boot - size)
        res['unplug'] = wait_memtotal(vm, base, -size, PEER_CAP)
        res['unplug_actual'] = vm.qmp.execute('query-balloon')['actual']
        time.sleep(SETTLE)
        vm.qmp.execute('balloon', value=boot)
        res['plug'] = wait_memtotal(vm, base, 0, PEER_CAP)
    except (VMError, TimeoutError, OSError) as e:
        res['error'] = '%s: %s' % (type(e).__name__, e)
    finally:
        vm.stop()
    return res


def peer_hv_balloon(kver, size, logdir, verbose):
    """The Hyper-V dynamic memory protocol (QEMU's hv-balloon on a VMBus,
    Linux's hv_balloon): QEMU offers VMBus only with a usable SynIC, which
    needs KVM. Under TCG the row gives QEMU's refusal."""
    res = {'peer': 'Hyper-V dynamic memory (hv-balloon)'}
    cmd = [vmrig.QEMU, '-machine', 'q35', '-accel', 'tcg', '-cpu',
           'qemu64,hv-vpindex=on,hv-synic=on,hv-time=on,hv-relaxed=on,'
           'hv-runtime=on,hv-stimer=on', '-nodefaults', '-display', 'none',
           '-S', '-device', 'vmbus-bridge', '-device', 'hv-balloon']
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                           input='')
        err = p.stderr.strip().splitlines()
    except subprocess.TimeoutExpired:
        err = []
    res['error'] = ('not under TCG: QEMU says "%s"' % err[0].split(': ')[-1]
                    if err else 'QEMU took the devices: this bench does not '
                    'drive them yet')
    return res


PEERS = {'dimm': peer_dimm, 'balloon': peer_balloon,
         'hv-balloon': peer_hv_balloon}


def peers_table(result):
    """The peers beside the plug row and a whole unplug, in this run."""
    size = result['peer_size']
    rows = ['| way to resize (%s, idle guest, movable) | give the guest '
            '%s | take %s back |' % (human(size), human(size), human(size)),
            '|---|---|---|']

    def cell(t):
        return 'not within %d s' % PEER_CAP if t is None else '%.1f s' % t
    for r in result['peers']:
        if r.get('error'):
            rows.append('| %s | %s | |' % (r['peer'], r['error']))
            continue
        rows.append('| %s | %s | %s |' % (r['peer'], cell(r.get('plug')),
                                          cell(r.get('unplug'))))
    for d, plug, unplug in virtio_mem_beside_peers(result):
        rows.append('| virtio-mem, %s driver (the rows above) | %s | %s |'
                    % (d, fmt_t(plug, 't_memtotal') if plug else '',
                       fmt_t(unplug, 't_memtotal') + ' (to 1 GiB)'
                       if unplug else ''))
    return '\n'.join(rows)


def virtio_mem_beside_peers(result):
    """[(driver, plug run or None, unplug run or None)]: the rows of this
    run that come closest to the peers' (unplug: 16 -> 1 GiB)."""
    got = {sc['key']: sc['runs'] for sc in result['scenarios']}
    rows = []
    for d in DRIVERS:
        plug = got.get('plug', {}).get(d)
        unplug = got.get('unplug_big_movable', {}).get(d)
        if plug or unplug:
            rows.append((d, plug, unplug))
    return rows


# ---------------------------------------------------------------- report

def fmt_t(r, key):
    if r is None or r.get('error'):
        return 'error'
    t = r.get(key)
    if key == 't_size' and not r['reached']:
        return 'not reached (%s after %.0f s)' % (human(r['final_plugged']),
                                                 r['waited'])
    if t is None:
        return 'no (MemTotal +%s, plugged %s)' % (
            human(r['memtotal_delta_final']), human(r['final_plugged']))
    return '%.1f s' % t


def ratio(a, b, key):
    if not a or not b or a.get('error') or b.get('error'):
        return ''
    if a.get(key) is None or b.get(key) is None:
        return ''
    if key == 't_size' and not (a['reached'] and b['reached']):
        return ''
    if a[key] <= 0:
        return ''
    return '%.2f' % (b[key] / a[key])


def workload_cell(r):
    if r is None or r.get('error') or 'memfill' not in r:
        return 'error' if r and r.get('error') else '?'
    m = r['memfill']
    if m['intact']:
        return 'survived, data intact'
    if m['corruption']:
        return 'CORRUPTED'
    if not m['alive']:
        return 'killed' + (' (rc %s)' % m['rc'] if m['rc'] is not None
                           else '')
    return 'alive, rc %s' % m['rc']


def yield_cell(r, sc):
    """Memory given back / what could have gone (goals.yield_of())."""
    y = goals.yield_of(r, sc)
    if y is None:
        return '?'
    given, could = y
    floor = goals.unplug_floor(r['guest_memtotal_mib'] * MiB)
    if could <= 0:
        return '%s given back, nothing was free above the floor' % human(given)
    return '%.0f%% (%s of %s free above a %s floor)' % (
        100.0 * given / could, human(given), human(could), human(floor))


def runs_reached(sc, d):
    f = sc['finals'].get(d, [])
    return '%d of %d (final: %s)' % (
        sum(1 for x in f if x == sc['req']), len(f),
        ', '.join('error' if x is None else human(x) for x in f))


def table(result):
    rows = ['| scenario | distro | ours | ratio (ours/distro) |',
            '|---|---|---|---|']
    for sc in result['scenarios']:
        a, b = sc['runs'].get('distro'), sc['runs'].get('ours')
        t = sc['title']
        if sc.get('finals'):
            rows.append('| %s: runs that reached %s | %s | %s | |' % (
                t, human(sc['req']), *(runs_reached(sc, d)
                                       for d in ('distro', 'ours'))))
            continue
        rows.append('| %s: size reached | %s | %s | %s |' % (
            t, fmt_t(a, 't_size'), fmt_t(b, 't_size'),
            ratio(a, b, 't_size')))
        rows.append('| %s: MemTotal agrees | %s | %s | %s |' % (
            t, fmt_t(a, 't_memtotal'), fmt_t(b, 't_memtotal'),
            ratio(a, b, 't_memtotal')))
        rows.append('| %s: final plugged | %s | %s | |' % (
            t, *(human(r.get('final_plugged')) if r and not r.get('error')
                 else 'error' for r in (a, b))))
        oom = [str(r.get('oom_kills', '?')) if r else '?' for r in (a, b)]
        if sc['key'] == 'workload' or oom != ['0', '0']:
            rows.append('| %s: OOM kills | %s | %s | |' % (t, *oom))
        if sc['key'] == 'workload':
            rows.append('| %s: memfill | %s | %s | |' % (
                t, workload_cell(a), workload_cell(b)))
            rows.append('| %s: yield | %s | %s | |' % (
                t, *(yield_cell(r, sc) for r in (a, b))))
    return '\n'.join(rows)


def median_run(runs):
    """The run with the median time until MemTotal agrees (runs that never
    got there count as the slowest)."""
    rs = sorted(runs, key=lambda r: (r.get('t_memtotal') is None,
                                     r.get('t_memtotal') or 0))
    return rs[len(rs) // 2]


def notes(result):
    out = ['- ' + n for n in result.get('extra_notes', [])]
    for sc in result['scenarios']:
        if sc.get('sampled'):
            out.append('- %s: the median of %d runs per driver, '
                       'interleaved; until MemTotal agrees: %s' % (
                           sc['key'], sc['median_of'], '; '.join(
                               '%s %s' % (d, ', '.join(
                                   fmt_t(r, 't_memtotal')
                                   for r in sc['sampled'].get(d, [])))
                               for d in DRIVERS)))
        for d in DRIVERS:
            r = sc['runs'].get(d)
            if not r:
                continue
            tag = '%s / %s' % (sc['key'], d)
            if r.get('error'):
                out.append('- %s: **error** %s (console: `%s`)'
                           % (tag, r['error'], r['log']))
            if r.get('memmap_on_memory'):
                out.append('- %s: memory blocks carry their own memmap: '
                           '"MemTotal agrees" means MemTotal grew by the '
                           'plugged size less 1/64' % tag)
            if r.get('console_problems'):
                only_oom = r.get('console_oom_report') and all(
                    'Call Trace' in l for l in r['console_problems'])
                out.append('- %s: console: %d line(s) matching the rig\'s '
                           'warning patterns, first `%s`%s (`%s`)' % (
                               tag, r.get('console_problem_lines', 1),
                               r['console_problems'][0],
                               ' (the OOM killer\'s report)' if only_oom
                               else '', r['log']))
            if r.get('held'):
                h = r['held']
                used = sorted(((n, k) for k, n in h.items()
                               if k not in ('unplugged', 'free')),
                              reverse=True)
                out.append('- %s: the %s left hold %s; %d pages free' % (
                    tag, human(r['final_plugged']),
                    ', '.join('%d pages %s' % (n, k) for n, k in used)
                    or 'nothing in use', h.get('free', 0)))
            if r.get('workload_mib'):
                out.append('- %s: memfill %d MiB of %d MiB MemTotal '
                           '(filled in %.0f s); last log lines: %s' % (
                               tag, r['workload_mib'],
                               r['guest_memtotal_mib'], r['fill_s'],
                               ' / '.join(r.get('memfill', {}).get('log', []))
                               or '-'))
    return out


def write_json(result, path):
    """Indented, but each sample (a list of numbers) on one line."""
    text = json.dumps(result, indent=1)
    text = re.sub(r'\[\s+([-\d.eE, \nnul]+?)\s+\]',
                  lambda m: '[' + re.sub(r',\s+', ', ', m.group(1)) + ']',
                  text)
    with open(path, 'w') as f:
        f.write(text + '\n')


def write_md(result, path, png):
    lines = ['# virtio-mem bench: %s, %s' % (result['kver'], result['date']),
             '',
             'QEMU %s TCG (no KVM), %s host CPUs, 2 vCPUs, 1 GiB boot '
             'memory, one 16 GiB virtio-mem device with 2 MiB blocks (512 '
             'MiB in the "512 MiB blocks" rows)%s. '
             'Times are TCG wall-clock from the QMP request: compare the '
             'ratios, not the absolute figures. ratio < 1: ours faster.'
             % (result['qemu'], result['host_cpus'],
                ' (--quick)' if result['quick'] else ''),
             '',
             'Ours: `%s` (sha256 %s..., built %s); tree at `%s`.' % (
                 result['ours_module'],
                 result.get('ours_module_info', {}).get('sha256'),
                 result.get('ours_module_info', {}).get('mtime'),
                 result.get('git_head')),
             '', table(result), '',
             'Goals (bench/README.md, "Goals"): each row\'s verdict in this '
             'run and, where it misses, what was measured about why; the '
             'scale rows come from bench/scale.py\'s last results.', '',
             goals.table(result), '']
    if result.get('peers'):
        lines += ['Peers, in the same run:', '', peers_table(result), '']
        ways = write_peers_png(result, re.sub(r'\.md$', '', path) +
                               '-ways.png')
        if ways:
            lines += ['![ways to resize](%s)' % os.path.basename(ways), '']
    if any(sc.get('breakdown') for sc in result['scenarios']):
        lines += ['Where the time goes (`--breakdown`: each row run once more '
                  'per driver with ftrace in the guest; the span runs from '
                  'the first traced call or request to the end of the last; '
                  'elsewhere = span - core-mm - requests: the driver\'s own '
                  'work and its waits between passes):', '',
                  breakdown_table(result), '']
    n = notes(result)
    if n:
        lines += ['Notes:', ''] + n + ['']
    lines += ['Console logs: `build/bench/%s%s/<driver>-<scenario>.log`.'
              % (result['kver'], '-quick' if result['quick'] else '')]
    if png:
        lines += ['', '![times](%s)' % os.path.basename(png)]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def bar(r, key):
    """[height if got there, height if not, label height, label]."""
    v = bar_(r, key)
    return v[:2] + [v[0] if v[0] != 'NaN' else v[1], v[2]]


def bar_(r, key):
    if not r or r.get('error'):
        return ['NaN', 0, '"error"']
    t = r.get(key)
    extra = ''
    if r.get('oom_kills') and key == 't_size':
        extra = ', %d OOM kill%s' % (r['oom_kills'],
                                      's' if r['oom_kills'] > 1 else '')
    at = human(r['final_plugged']).split(' (')[0]
    if key == 't_size' and not r.get('reached'):
        return ['NaN', r['waited'], '"not reached at %s%s"' % (at, extra)]
    if t is None:
        return ['NaN', r['waited'], '"never"']
    if key == 't_memtotal' and r['final_plugged'] != r['requested']:
        extra = ' (at %s)' % at
    return [t, 'NaN', '"%.1f s%s"' % (t, extra)]


def run_gnuplot(gp, work, script, path):
    """Run @script (lines) with gnuplot in @work, then remove @work;
    @path, or None if gnuplot failed."""
    with open(os.path.join(work, 'plot.gp'), 'w') as f:
        f.write('\n'.join(script) + '\n')
    r = subprocess.run([gp, os.path.join(work, 'plot.gp')],
                       capture_output=True, text=True)
    shutil.rmtree(work, ignore_errors=True)
    if r.returncode:
        log('gnuplot failed: %s' % r.stderr.strip())
        return None
    return path


def write_png(result, path):
    """Horizontal bars with gnuplot, a panel per measure (until the size
    is reached; until MemTotal agrees): per scenario, distro above ours,
    each bar labelled with its time, ours also with its ratio to the
    distro's (below 1: ours is faster)."""
    gp = shutil.which('gnuplot')
    if not gp:
        log('gnuplot missing (make deps installs gnuplot-nox): no PNG')
        return None
    work = path + '.d'
    os.makedirs(work, exist_ok=True)
    panels = [('t_size', 'until QMP size == requested'),
              ('t_memtotal', 'until guest MemTotal agrees with plugged size')]
    scs = result['scenarios']
    # Tic labels are formats to gnuplot: a per cent sign is doubled.
    ytics = ', '.join('"%s" %d.5' % (sc['title'].replace('%', '%%').replace(
        ', ', '\\n', 1), 3 * i) for i, sc in enumerate(scs))
    script = ['set terminal pngcairo size 1300,%d font "DejaVu Sans,11"'
              % (220 + 2 * 75 * len(scs)),
              'set output "%s"' % path,
              'set multiplot layout 2,1 title "virtio-mem bench: %s, %s '
              '(QEMU TCG wall-clock; compare ratios)" font ",14"'
              % (result['kver'], result['date']),
              'set style fill solid 0.85 border -1',
              'set termoption noenhanced',
              'set grid xtics', 'set xrange [0:*]', 'set xlabel "seconds"',
              'set offsets 0,graph 0.3,0.6,0.6', 'set lmargin 40',
              'set yrange [*:*] reverse', 'set ytics (%s)' % ytics,
              'set key bottom right',
              'set palette defined (%s)' % ', '.join(
                  '%d "%s"' % (i, c) for i, c in enumerate(PEER_COLOURS)),
              'set cbrange [0:%d]' % (len(PEER_COLOURS) - 1),
              'unset colorbox']
    for key, title in panels:
        dat = os.path.join(work, key + '.dat')
        with open(dat, 'w') as f:
            for i, sc in enumerate(scs):
                first = sc['runs'].get(DRIVERS[0]) or {}
                for j, d in enumerate(DRIVERS):
                    r = sc['runs'].get(d) or {}
                    got, missed, at, label = bar(r, key)
                    q = ratio(first, r, key) if j else ''
                    if q:
                        label = label[:-1] + ', %sx"' % q
                    f.write('%d %s %s %s %s %d\n' % (
                        3 * i + j, got, missed, at, label,
                        colour('virtio-mem, ' + d, 0)))
        script += [
            'set title "%s (hatched: not reached; bar = time waited)"'
            % title,
            'plot "%s" using (0):1:(0):2:($1-0.4):($1+0.4):6 with '
            'boxxyerror lc palette notitle, '
            '"" using (0):1:(0):3:($1-0.4):($1+0.4):6 with boxxyerror '
            'fs pattern 4 border -1 lc palette notitle, '
            '"" using 4:1:5 with labels left offset 1,0 font ",9" notitle, '
            'NaN with boxes lc rgb "%s" title "distro", '
            'NaN with boxes lc rgb "%s" title "ours"'
            % (dat, PEER_COLOURS[3], PEER_COLOURS[4])]
    script.append('unset multiplot')
    return run_gnuplot(gp, work, script, path)


# The peers' own colours, then distro and ours as in the main plot.
PEER_COLOURS = ['#5a9e4b', '#9b59b6', '#7f7f7f', '#4a7ab0', '#e8862a']


def colour(label, i):
    """Index into PEER_COLOURS for a row of peer_rows()."""
    for n, d in ((3, 'distro'), (4, 'ours')):
        if label == 'virtio-mem, ' + d:
            return n
    return i % 3


def peer_rows(result):
    """[(label, give s or None, take s or None)]: the peers, then
    virtio-mem from the rows of this run (take: 16 -> 1 GiB)."""
    rows = [(r['peer'], r.get('plug'), r.get('unplug'))
            for r in result.get('peers', []) if not r.get('error')]
    for d, plug, unplug in virtio_mem_beside_peers(result):
        rows.append(('virtio-mem, %s' % d, (plug or {}).get('t_memtotal'),
                     (unplug or {}).get('t_memtotal')))
    return rows


def write_peers_png(result, path):
    """Horizontal bars, one colour a way of resizing: seconds to give the
    guest the memory (top) and to take it back (bottom)."""
    gp = shutil.which('gnuplot')
    rows = peer_rows(result)
    if not gp or not rows:
        return None
    work = path + '.d'
    os.makedirs(work, exist_ok=True)
    size = human(result['peer_size'])
    panels = [(1, 'give the guest %s' % size),
              (2, 'take %s back (virtio-mem: to 1 GiB)' % size)]
    script = ['set terminal pngcairo size 1100,%d font "DejaVu Sans,11"'
              % (260 + 2 * 60 * len(rows)),
              'set output "%s"' % path,
              'set multiplot layout 2,1 title "ways to resize, %s, %s (QEMU '
              'TCG wall-clock)" font ",13"' % (result['kver'],
                                                  result['date']),
              'set style fill solid 0.85 border -1',
              'set grid xtics', 'unset key', 'set xrange [0:*]',
              'set offsets 0,graph 0.15,0.5,0.5', 'set xlabel "seconds"',
              'set lmargin 34', 'set yrange [*:*] reverse']
    for col, title in panels:
        dat = os.path.join(work, '%d.dat' % col)
        with open(dat, 'w') as f:
            for i, row in enumerate(rows):
                t = row[col]
                f.write('%d "%s" %s "%s" %d\n' % (
                    i, row[0], 'NaN' if t is None else t,
                    'not within %d s' % PEER_CAP if t is None
                    else '%.1f s' % t, colour(row[0], i)))
        script += [
            'set title "%s"' % title,
            'set ytics (%s)' % ', '.join('"%s" %d' % (r[0], i)
                                         for i, r in enumerate(rows)),
            'set palette defined (%s)' % ', '.join(
                '%d "%s"' % (i, c) for i, c in enumerate(PEER_COLOURS)),
            'set cbrange [0:%d]' % (len(PEER_COLOURS) - 1), 'unset colorbox',
            'plot "%s" using (0):1:(0):3:($1-0.35):($1+0.35):5 with '
            'boxxyerror lc palette, "" using ($3 == $3 ? $3 : 0):1:4 with '
            'labels left offset 1,0 font ",10"' % dat]
    script.append('unset multiplot')
    return run_gnuplot(gp, work, script, path)


# ---------------------------------------------------------------- main

def ensure_module(kver):
    ko = os.path.join(REPO, 'build', kver, 'virtio_mem.ko')
    if not os.path.exists(ko):
        log('building our module for %s' % kver)
        subprocess.run(['make', '-C', REPO, 'modules', 'KVER=' + kver],
                       check=True, stdout=subprocess.DEVNULL)
    return ko


def module_info(path):
    with open(path, 'rb') as f:
        data = f.read()
    return {'sha256': hashlib.sha256(data).hexdigest()[:16],
            'mtime': time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(
                os.path.getmtime(path)))}


def git_head():
    r = subprocess.run(['git', '-C', REPO, 'log', '-1', '--format=%h %s'],
                       capture_output=True, text=True)
    d = subprocess.run(['git', '-C', REPO, 'status', '--porcelain',
                        'drivers'], capture_output=True, text=True)
    return r.stdout.strip() + (' + uncommitted changes in drivers/'
                               if d.stdout.strip() else '')


def qemu_version():
    try:
        out = subprocess.run([vmrig.QEMU, '--version'], capture_output=True,
                             text=True).stdout
        m = re.search(r'version (\S+)', out)
        return m.group(1) if m else '?'
    except OSError:
        return '?'


def bench_kernel(kver, args, scs):
    built = ensure_module(kver)
    logdir = os.path.join(REPO, 'build', 'bench',
                          kver + ('-quick' if args.quick else ''))
    os.makedirs(logdir, exist_ok=True)
    # A snapshot: the tree's build/ may be rebuilt while the bench runs,
    # and every "ours" guest of this kernel must get the same module.
    ours = os.path.join(logdir, 'ours-virtio_mem.ko')
    shutil.copyfile(built, ours)
    shutil.copystat(built, ours)
    modules = {'distro': 'distro', 'ours': ours}
    result = {'kver': kver, 'date': args.date, 'quick': args.quick,
              'qemu': qemu_version(), 'host_cpus': os.cpu_count(),
              'host': platform.node(), 'poll_s': POLL,
              'ours_module': os.path.relpath(built, REPO),
              'ours_module_info': module_info(ours),
              'git_head': git_head(),
              'scenarios': []}
    for i, sc in enumerate(scs):
        entry = {k: v for k, v in sc.items()}
        entry['runs'] = {}
        result['scenarios'].append(entry)
        # Alternate who goes first, so neither always gets the quieter slot.
        order = DRIVERS if i % 2 == 0 else DRIVERS[::-1]
        for d in order * (sc.get('repeat') or sc.get('median_of', 1)):
            log('%s %-20s %-6s ...' % (kver, sc['key'], d))
            r = run_one(kver, d, modules[d], sc, logdir, args.verbose)
            entry['runs'].setdefault(d, r)
            if sc.get('median_of'):
                entry.setdefault('sampled', {}).setdefault(d, []).append(r)
            if sc.get('repeat'):
                entry.setdefault('finals', {}).setdefault(d, []).append(
                    None if r.get('error') else r['final_plugged'])
            if r.get('error'):
                log('  error: %s (%s)' % (r['error'], r['log']))
            else:
                log('  boot %.1fs, size %s, MemTotal %s, final %s, OOM %d, '
                    'run %.0fs' % (r['boot_s'], fmt_t(r, 't_size'),
                                   fmt_t(r, 't_memtotal'),
                                   human(r['final_plugged']),
                                   r['oom_kills'], r['total_s']))
        for d, rs in entry.get('sampled', {}).items():
            entry['runs'][d] = median_run(rs)
        if args.breakdown:
            entry['breakdown'] = {}
            for d in order:
                log('%s %-20s %-6s traced ...' % (kver, sc['key'], d))
                r = run_one(kver, d, modules[d], sc, logdir, args.verbose,
                            trace=True)
                b = r.get('trace') or {'error': r.get('error', 'no trace')}
                b['traced'] = r.get('traced')
                b['t_memtotal'] = r.get('t_memtotal')
                entry['breakdown'][d] = b
                log('  %s' % ' | '.join(breakdown_cells(b))
                    if not b.get('error') else '  error: %s' % b['error'])
    if args.peers:
        result['peer_size'] = scs[0]['req'] if scs and \
            scs[0]['key'] == 'plug' else (8 if args.quick else 16) * GiB
        result['peers'] = []
        for name in args.peers.split(','):
            log('%s peer %-15s ...' % (kver, name))
            r = PEERS[name](kver, result['peer_size'], logdir, args.verbose)
            result['peers'].append(r)
            log('  %s' % (r.get('error') or 'plug %s s, unplug %s s' % (
                r.get('plug'), r.get('unplug'))))
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--kver', action='append',
                    help='kernel to bench (repeatable; default: %s)'
                    % ' and '.join(KVERS))
    ap.add_argument('--quick', action='store_true',
                    help='8 GiB instead of 16, shorter waits; one kernel '
                    '(%s) unless --kver' % KVERS[0])
    ap.add_argument('--only', help='comma-separated scenario keys')
    ap.add_argument('--outdir', default=os.path.join(HERE, 'results'))
    ap.add_argument('--replot', metavar='JSON',
                    help='only rewrite the .md and .png of an earlier run '
                    'from its .json')
    ap.add_argument('--peers', nargs='?', const=','.join(PEERS),
                    help='also time what an operator would use instead: '
                    'comma-separated of %s (default: all)' % ', '.join(PEERS))
    ap.add_argument('--breakdown', action='store_true',
                    help='run each row once more per driver with ftrace in '
                    'the guest: time inside core-mm calls, in requests, '
                    'and elsewhere')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    if args.peers and set(args.peers.split(',')) - set(PEERS):
        ap.error('unknown peer(s) in %s; have %s' % (args.peers,
                                                    ','.join(PEERS)))
    if args.replot:
        with open(args.replot) as f:
            result = json.load(f)
        stem = re.sub(r'\.json$', '', args.replot)
        write_md(result, stem + '.md', write_png(result, stem + '.png'))
        print(table(result))
        return 0
    kvers = args.kver or (KVERS[:1] if args.quick else KVERS)
    scs = scenarios(args.quick)
    if args.only:
        keys = args.only.split(',')
        bad = [k for k in keys if k not in [s['key'] for s in scs]]
        if bad:
            ap.error('unknown scenario(s) %s; have %s' % (
                ','.join(bad), ','.join(s['key'] for s in scs)))
        scs = [s for s in scs if s['key'] in keys]
    args.date = datetime.date.today().isoformat()
    os.makedirs(args.outdir, exist_ok=True)
    t0 = time.monotonic()
    outputs = []
    for kver in kvers:
        result = bench_kernel(kver, args, scs)
        stem = os.path.join(args.outdir, '%s-%s%s' % (
            args.date, kver, '-quick' if args.quick else ''))
        write_json(result, stem + '.json')
        png = write_png(result, stem + '.png')
        write_md(result, stem + '.md', png)
        outputs.append((kver, stem, result))
    print()
    for kver, stem, result in outputs:
        print('## %s%s\n' % (kver, ' (--quick)' if args.quick else ''))
        print(table(result))
        if result.get('peers'):
            print('\n' + peers_table(result) + '\n')
        for n in notes(result):
            print(n)
        print('\n(%s.md / .json / .png)\n' % os.path.relpath(stem))
    print('bench: %.1f min in all' % ((time.monotonic() - t0) / 60))
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
