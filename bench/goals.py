#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The speed goals against one bench run: a verdict per row, and for a
row that misses its goal, what was measured about why.

  goals.py bench/results/<date>-<kver>.json   # print the goals table

bench.py puts the same table at the top of each kernel's .md. The goals
(bench/README.md, "Goals") are ratios to the distro's driver in the same
run, a yield, a count of OOM kills, our own share of the traced time (with
--breakdown) and, from bench/scale.py's results, how the time per GiB grows
with the size. Nothing here times anything: it reads what bench.py,
scale.py and mm_series.py wrote.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GiB = 1 << 30
MiB = 1 << 20

# (goal, limit, time key, scenario keys). The plug rows are timed until
# the guest sees the memory (MemTotal), the unplug rows until the device
# has the size: what the host gets back.
RATIO_GOALS = [
    ('plug 0 -> 16 GiB (guest sees it)', 0.5, 't_memtotal',
     ['plug', 'plug_memmap']),
    ('Big Block Mode idle unplug', 0.5, 't_size',
     ['bbm512_movable', 'bbm512_normal', 'bbm1g_movable']),
    ('Big Block Mode plug', 0.8, 't_memtotal', ['bbm512_plug', 'bbm1g_plug']),
    ('Sub Block Mode idle unplug', 0.15, 't_size',
     ['unplug_big_movable', 'unplug_big_normal', 'unplug_1g_movable',
      'unplug_1g_normal']),
    ('unplug with a 45% workload: time', 0.5, 't_memtotal', ['workload']),
]
YIELD_GOAL = 0.95
OWN_SHARE_GOAL = 0.10
# Rows whose own share is a goal: plugs and idle unplugs.
OWN_SHARE_ROWS = ['plug', 'plug_memmap', 'bbm512_plug', 'bbm1g_plug',
                  'unplug_big_movable', 'unplug_big_normal',
                  'unplug_1g_movable', 'unplug_1g_normal', 'bbm512_movable',
                  'bbm512_normal', 'bbm1g_movable']
SCALE_GROWTH_GOAL = 1.5
POLL = 0.15             # bench.POLL: seconds between the bench's samples
# A scale run shorter than this many bench samples (0.15 s each) says
# little about its time per GiB.
SCALE_MIN_SAMPLES = 5


def unplug_floor(memtotal):
    """The OOM guard's default floor (unplug_floor_mb=-1): 2% of MemTotal,
    at least 64 MiB (virtio_mem_unplug_floor())."""
    return max(64 * MiB, memtotal // 50)


def yield_of(r, sc):
    """(given back, could have gone) in bytes for a workload run, or None:
    could have gone is the memory available before the request above the
    floor, at most the request."""
    if (r is None or r.get('error') or 'available_before' not in r or
            r.get('final_plugged') is None):
        return None
    memtotal = r['guest_memtotal_mib'] * MiB
    could = min(sc['pre'] - sc['req'],
                r['available_before'] - unplug_floor(memtotal))
    return sc['pre'] - r['final_plugged'], could


def gib(n):
    if n % GiB == 0:
        return '%d GiB' % (n // GiB)
    return '%.2f GiB' % (n / GiB) if n > GiB else '%d MiB' % (n // MiB)


def _ok(met):
    return {True: '**met**', False: '**not met**', None: '-'}[met]


def _scenario(result, key):
    for sc in result['scenarios']:
        if sc['key'] == key:
            return sc
    return None


def _reached(r, key):
    return not r.get('error') and r.get(key) is not None and (
        key != 't_size' or r['reached'])


def ratio_verdict(sc, key, limit):
    """(measured text, met or None)."""
    a, b = sc['runs'].get('distro'), sc['runs'].get('ours')
    if not a or not b:
        return 'not run', None
    if b.get('error') or not _reached(b, key):
        left = b.get('final_plugged')
        return ('ours did not get there (%s plugged at the end)'
                % (gib(left) if left is not None else 'error'), False)
    if a.get('error') or not _reached(a, key):
        return ('ours %.1f s; the distro\'s did not get there (%s '
                'plugged after %.0f s)' % (b[key], gib(a['final_plugged']),
                                           a['waited']), True)
    x = b[key] / a[key] if a[key] > 0 else None
    if x is None:
        return 'distro 0 s', None
    return '%.2fx (%.1f s / %.1f s)' % (x, b[key], a[key]), x <= limit


def own_share(b):
    """(span, core-mm seconds, requests seconds or None) of a breakdown."""
    core = sum(t for _, t in b['core_mm'].values())
    req = b['requests'][1] if b.get('requests') else None
    return b['span'], core, req


def why_plug(result, sc):
    """What stands in the way of a plug row: where its time goes."""
    out = []
    bd = sc.get('breakdown', {})
    parts = []
    for d in ('ours', 'distro'):
        b = bd.get(d)
        if not b or b.get('error') or not b.get('span'):
            continue
        span, core, _ = own_share(b)
        calls = sum(n for n, _ in b['core_mm'].values())
        parts.append('%s %.0f%% of its %.2f s inside core-mm (%d adds)'
                     % (d, 100 * core / span, span, calls))
    if parts:
        out.append('traced: ' + ', '.join(parts) + '; both drivers make '
                   'the same add per memory block, and the add (memmap '
                   'init, onlining, freeing every page) is the time')
    batch = batching(result)
    if batch:
        out.append(batch)
    mm = mm_plug_ratio()
    if mm:
        out.append(mm)
    out.append('where a plug spends its guest time: `vm.py ... prof 16G` '
               '(bench/README.md, "Goals")')
    return '; '.join(out)


def batching(result):
    """What adding several memory blocks per call buys, from this run: ours'
    traced seconds per GiB in Big Block Mode with 1 GiB blocks (one add of
    eight memory blocks each) against the 2 MiB-block plug (one add per
    memory block). None without both breakdowns."""
    per_gib = {}
    for key in ('plug', 'bbm1g_plug'):
        sc = _scenario(result, key)
        b = (sc or {}).get('breakdown', {}).get('ours')
        if not b or b.get('error') or not b.get('core_mm'):
            return None
        n, t = b['core_mm'].get('add_memory_driver_managed', (0, 0))
        if not n:
            return None
        per_gib[key] = (t / (sc['req'] / GiB), sc['req'] // n)
    (one, one_size), (eight, eight_size) = per_gib['plug'], \
        per_gib['bbm1g_plug']
    return ('adding more per call buys little: in this run ours\' adds '
            'cost %.3f s per GiB at %s a call (1 GiB blocks) against %.3f '
            's at %s (2 MiB blocks)' % (eight, gib(eight_size), one,
                                         gib(one_size)))


def mm_plug_ratio():
    """The plug row of bench/mm_series.py's last results, as a sentence:
    what mm/'s patches do for the plug (on the bench kernel), or None."""
    path = os.path.join(HERE, 'results', 'mm-series.json')
    try:
        with open(path) as f:
            runs = json.load(f)['runs']
    except (OSError, ValueError, KeyError):
        return None

    def median(label):
        ts = sorted(r['t_memtotal'] for r in runs.get(label, {}).get(
            'plug', []) if r.get('t_memtotal') is not None)
        return ts[len(ts) // 2] if ts else None
    a, b = median('distro, as shipped'), median('ours, + mm/')
    if not a or not b:
        return None
    return ('on the bench kernel (Debian\'s 6.12 source, mm-series.md), '
            'ours with mm/\'s patches plugs in %.2f s, the distro\'s driver '
            'without them in %.2f s: %.2fx' % (b, a, b / a))


def why_unplug(sc):
    r = sc['runs'].get('ours') or {}
    held = r.get('held')
    if held:
        used = sorted(((n, k) for k, n in held.items()
                       if k not in ('unplugged', 'free')), reverse=True)
        return ('the %s left hold %s (/proc/kpageflags): unmovable kernel '
                'allocations in the guest\'s only ZONE_NORMAL memory, which '
                'no driver can move' % (
                    gib(r['final_plugged']),
                    ', '.join('%d pages %s' % (n, k) for n, k in used)
                    or 'nothing in use'))
    return None


def why_short(sc, key):
    """For a row that took only a few samples: what the trace says."""
    r = sc['runs'].get('ours') or {}
    t = r.get(key)
    b = sc.get('breakdown', {}).get('ours')
    if t is None or t >= SCALE_MIN_SAMPLES * POLL:
        return None
    text = ('ours took %.1f s, %d samples of the bench\'s %.2f s: at its '
            'resolution' % (t, round(t / POLL), POLL))
    if b and b.get('span'):
        span, core, _ = own_share(b)
        text += '; traced, its work spans %.2f s, %.0f%% inside core-mm' % (
            span, 100 * core / span)
    return text


def why(result, sc, key):
    if sc['key'] in ('plug', 'plug_memmap', 'bbm512_plug', 'bbm1g_plug'):
        return why_plug(result, sc)
    return why_unplug(sc) or why_short(sc, key) or ''


def goal_rows(result):
    """[(goal, row, measured, verdict, what stands in the way)]."""
    rows = []
    for goal, limit, key, keys in RATIO_GOALS:
        for k in keys:
            sc = _scenario(result, k)
            if not sc:
                rows.append(('%s <= %.2fx' % (goal, limit), k, 'not run',
                             _ok(None), ''))
                continue
            text, met = ratio_verdict(sc, key, limit)
            rows.append(('%s <= %.2fx' % (goal, limit), sc['title'], text,
                         _ok(met), why(result, sc, key) if met is False else ''))
    rows += peer_rows(result)
    sc = _scenario(result, 'workload')
    if sc:
        for d in ('ours', 'distro'):
            r = sc['runs'].get(d)
            y = yield_of(r, sc)
            if y is None:
                continue
            given, could = y
            x = given / could if could > 0 else None
            rows.append(('workload: yield >= %.0f%%' % (100 * YIELD_GOAL),
                         '%s (%s)' % (sc['title'], d),
                         '%.0f%% (%s of %s)' % (100 * x, gib(given),
                                                gib(could))
                         if x is not None else 'nothing was free',
                         _ok(x >= YIELD_GOAL if d == 'ours' and x is not None
                             else None), ''))
        r = sc['runs'].get('ours')
        if r and not r.get('error'):
            n = r.get('oom_kills')
            rows.append(('workload: 0 OOM kills', sc['title'],
                         '%s (distro: %s)' % (n, (sc['runs'].get('distro') or
                                                  {}).get('oom_kills', '?')),
                         _ok(n == 0), ''))
    for k in OWN_SHARE_ROWS:
        sc = _scenario(result, k)
        b = (sc or {}).get('breakdown', {}).get('ours')
        if not b:
            continue
        if b.get('error') or not b.get('span'):
            rows.append(('our own share < 10%', sc['title'],
                         'no trace: %s' % b.get('error', '?'), _ok(None), ''))
            continue
        span, core, req = own_share(b)
        own = span - core
        met = own / span < OWN_SHARE_GOAL
        rows.append((
            'our own share < %.0f%%' % (100 * OWN_SHARE_GOAL), sc['title'],
            '%.1f%% (%.2f s of %.2f s: requests %s, elsewhere %.2f s)' % (
                100 * own / span, own, span,
                '%.2f s' % req if req is not None else '?',
                own - (req or 0)),
            _ok(met), '' if met else why_own(sc, b)))
    return rows


def peer_rows(result):
    """Ours against each peer of the same run (--peers): the plug row and
    the 16 -> 1 GiB idle unplug beside giving and taking the same size."""
    rows = []
    sides = (('give the guest 16 GiB', 'plug', 'plug'),
             ('take 16 GiB back (ours: 15, to 1 GiB)', 'unplug',
              'unplug_big_movable'))
    for p in result.get('peers', []):
        if p.get('error'):
            rows.append(('ahead of every peer', p['peer'],
                         'not run: %s' % p['error'], _ok(None), ''))
            continue
        for what, key, ours_key in sides:
            sc = _scenario(result, ours_key)
            r = (sc or {}).get('runs', {}).get('ours')
            if not r or r.get('t_memtotal') is None:
                continue
            t = p.get(key)
            if t is None:
                text, met = 'ours %.1f s; the peer did not get there' % (
                    r['t_memtotal']), True
            else:
                text = 'ours %.1f s, %s %.1f s: %.2fx' % (
                    r['t_memtotal'], p['peer'], t, r['t_memtotal'] / t)
                met = r['t_memtotal'] <= t
            rows.append(('ahead of every peer: %s' % what, p['peer'], text,
                         _ok(met), '' if met else why_peer(p, key)))
    return rows


def why_peer(p, key):
    if 'DIMM' in p['peer']:
        return ('the guest adds%s a DIMM as memory blocks of 128 MiB, each '
                'the same core-mm work as ours per block (see the plug '
                'row); a DIMM only comes and goes whole' % (
                    ' and onlines' if key == 'plug' else ', offlines and '
                    'removes'))
    return ''


def why_own(sc, b):
    span, core, req = own_share(b)
    rest = span - core - (req or 0)
    if sc['key'].startswith('unplug_1g_normal'):
        return ('the span includes the waits for the last kernel-zone '
                'block (%.1f s elsewhere): ' % rest +
                (why_unplug(sc) or 'see the notes'))
    text = ('%.2f s elsewhere, between the core-mm calls: the worker '
            'hands each offline to its offliner thread and waits for it '
            '(two wake-ups a block), sends the requests, picks the next '
            'block and looks it over for pinned pages' % rest)
    if req:
        text += ('; %.2f s in %d requests, one per memory block: the '
                 'device\'s answer under emulation' % (req, b['requests'][0]))
    return text


def growth(runs, key, poll=POLL):
    """How the time per GiB grows with the size: the largest ratio of the
    time per GiB at a size to the smallest at any smaller size, among
    sizes of 4 GiB up whose time spans SCALE_MIN_SAMPLES samples or more.
    1.0: flat or falling. (value, sizes used) or None."""
    pts = sorted((r['size'], r[key] / (r['size'] / GiB)) for r in runs
                 if r.get(key) is not None and r['size'] >= 4 * GiB and
                 r[key] >= SCALE_MIN_SAMPLES * poll)
    if len(pts) < 2:
        return None
    worst, low = 1.0, pts[0][1]
    for _, v in pts[1:]:
        worst = max(worst, v / low)
        low = min(low, v)
    return worst, [s for s, _ in pts]


def scale_rows():
    """Goal rows from bench/scale.py's results (bench/results/scale.json)."""
    path = os.path.join(HERE, 'results', 'scale.json')
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return []
    rows = []
    for key in data['order']:
        col = data['cols'][key]
        runs = col['runs']
        where = '%s (scale.md, %s)' % (col['label'], col.get(
            'measured', ['?'])[0])
        for k in ('plug_s', 'unplug_s'):
            g = growth(runs, k)
            if g is None:
                continue
            rows.append(('scale: time per GiB within %.1fx, 4 GiB .. 1 TiB'
                         % SCALE_GROWTH_GOAL, '%s, %s' % (where, k[:-2]),
                         '%.2fx growth over %s' % (g[0], ', '.join(
                             gib(s) for s in g[1])),
                         _ok(g[0] <= SCALE_GROWTH_GOAL), ''))
        big = [r for r in runs if r['size'] >= 1024 * GiB]
        done = [r for r in big if r.get('plug_s') is not None and
                r.get('unplug_s') is not None and r.get('memfill') == 'ok']
        rows.append(('scale: 1 TiB into a 512 MiB guest, usable, back to 0',
                     where, 'plugged in %.0f s, memfill ok, unplugged in '
                     '%.0f s' % (done[0]['plug_s'], done[0]['unplug_s'])
                     if done else ('not done' if big else 'not run'),
                     _ok(bool(done)) if big else _ok(None),
                     '' if done or not big else 'see scale.md'))
    return rows


def metadata_rows():
    """Goal rows from bench/metadata.py's newest results: ours' own memory
    after the probe against 1 byte per memory block + 1 bit per subblock
    + a fixed part, the fixed part being what the smallest region costs
    beyond its bound."""
    names = sorted(n for n in os.listdir(os.path.join(HERE, 'results'))
                   if n.endswith('-metadata.json'))
    if not names:
        return []
    with open(os.path.join(HERE, 'results', names[-1])) as f:
        data = json.load(f)
    ours = sorted((r for r in data['rows'] if r['driver'] == 'ours' and
                   not r.get('error')), key=lambda r: r['size'])
    if not ours:
        return []

    def total(r):
        return r['Slab'] + r['VmallocUsed'] + r['Percpu']
    fixed = total(ours[0]) - ours[0]['bound']
    rows = []
    for r in ours[1:]:
        rows.append((
            'metadata: 1 byte per memory block + 1 bit per subblock + a '
            'fixed part', '%s region (%s, %s)' % (r['region'], names[-1],
                                                  data['kver']),
            '%d KiB after the probe; bound %d KiB + fixed %d KiB (the %s '
            'region\'s excess)' % (total(r) >> 10, r['bound'] >> 10,
                                   fixed >> 10, ours[0]['region']),
            _ok(total(r) <= fixed + r['bound']), ''))
    return rows


def table(result, with_scale=True):
    rows = goal_rows(result) + (scale_rows() + metadata_rows()
                                if with_scale else [])
    out = ['| goal | row | measured | verdict | what stands in the way |',
           '|---|---|---|---|---|']
    out += ['| %s |' % ' | '.join(r) for r in rows]
    return '\n'.join(out)


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        print(table(json.load(f)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
