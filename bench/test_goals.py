#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The bench's goals table without a VM: which rows meet their goal, what
a row that misses says, and how the scale growth is counted.

  python3 bench/test_goals.py     (run by make unit)
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'tools', 'testing', 'virtio_mem'))
import goals  # noqa: E402
from test_vmrig import run_tap  # noqa: E402

GiB = goals.GiB
MiB = goals.MiB


def run(t_size, t_memtotal=None, reached=True, final=16 * GiB, **kw):
    r = dict(t_size=t_size, t_memtotal=t_memtotal if t_memtotal is not None
             else t_size, reached=reached, final_plugged=final, waited=63.0,
             oom_kills=0)
    r.update(kw)
    return r


def scenario(key, distro, ours, **kw):
    sc = dict(key=key, title=key.replace('_', ' '), pre=16 * GiB, req=GiB,
              runs={'distro': distro, 'ours': ours})
    sc.update(kw)
    return sc


class Verdicts(unittest.TestCase):
    def test_ratio_within_limit_is_met(self):
        text, met = goals.ratio_verdict(
            scenario('x', run(10.0), run(1.0)), 't_size', 0.15)
        self.assertTrue(met)
        self.assertIn('0.10x', text)

    def test_ratio_over_limit_is_not_met(self):
        text, met = goals.ratio_verdict(
            scenario('x', run(1.0), run(0.9)), 't_memtotal', 0.5)
        self.assertFalse(met)
        self.assertIn('0.90x', text)

    def test_only_ours_got_there(self):
        text, met = goals.ratio_verdict(scenario(
            'x', run(None, 1.0, reached=False, final=2 * MiB), run(0.8)),
            't_size', 0.15)
        self.assertTrue(met)
        self.assertIn('2 MiB', text)

    def test_ours_did_not_get_there(self):
        text, met = goals.ratio_verdict(scenario(
            'x', run(1.0), run(None, 0.9, reached=False, final=2 * MiB)),
            't_size', 0.15)
        self.assertFalse(met)
        self.assertIn('2 MiB plugged', text)

    def test_missed_plug_says_where_the_time_goes(self):
        bd = {d: {'span': 2.0, 'core_mm': {
            'add_memory_driver_managed': [128, 1.9]}, 'requests': None}
            for d in ('distro', 'ours')}
        result = {'scenarios': [scenario('plug', run(1.0), run(0.9),
                                         breakdown=bd)]}
        rows = [r for r in goals.goal_rows(result) if r[1] == 'plug']
        self.assertEqual(rows[0][3], '**not met**')
        self.assertIn('95% of its 2.00 s inside core-mm (128 adds)',
                      rows[0][4])

    def test_own_share_counts_requests_as_ours(self):
        # 6% elsewhere alone would meet the goal; with the requests, 12%.
        bd = {'ours': {'span': 1.0, 'requests': [10, 0.06], 'core_mm': {
            'offline_and_remove_memory': [8, 0.88]}}}
        result = {'scenarios': [scenario('unplug_1g_movable', run(1.0),
                                         run(0.1), breakdown=bd)]}
        rows = [r for r in goals.goal_rows(result)
                if r[0].startswith('our own share')]
        self.assertEqual(len(rows), 1)
        self.assertTrue(rows[0][2].startswith('12.0%'), rows[0][2])
        self.assertEqual(rows[0][3], '**not met**')

    def test_peers(self):
        result = {'scenarios': [
            scenario('plug', run(2.0), run(1.8)),
            scenario('unplug_big_movable', run(20.0), run(1.4))],
            'peers': [{'peer': 'ACPI DIMM (pc-dimm)', 'plug': 1.5,
                       'unplug': 1.5},
                      {'peer': 'hv', 'error': 'not under TCG'}]}
        rows = goals.peer_rows(result)
        self.assertEqual([r[3] for r in rows],
                         ['**not met**', '**met**', '-'])
        self.assertIn('comes and goes whole', rows[0][4])

    def test_yield_above_the_floor(self):
        sc = scenario('workload', None, None, pre=8 * GiB, req=GiB)
        r = {'final_plugged': 4 * GiB, 'guest_memtotal_mib': 9000,
             'available_before': 4 * GiB + 180 * MiB}
        given, could = goals.yield_of(r, sc)
        self.assertEqual(given, 4 * GiB)
        # 2% of 9000 MiB is the floor, above 64 MiB.
        self.assertEqual(could, 4 * GiB + 180 * MiB - 9000 * MiB // 50)


class Growth(unittest.TestCase):
    def pts(self, *secs):
        return [{'size': s * GiB, 't': t} for s, t in secs]

    def test_flat_and_falling_is_one(self):
        g, _ = goals.growth(self.pts((4, 4.0), (16, 16.0), (64, 32.0)), 't')
        self.assertEqual(g, 1.0)

    def test_growth_against_the_lowest_before(self):
        g, sizes = goals.growth(self.pts((4, 4.0), (16, 8.0), (64, 64.0)),
                                't')
        self.assertAlmostEqual(g, 2.0)
        self.assertEqual(sizes, [4 * GiB, 16 * GiB, 64 * GiB])

    def test_runs_of_few_samples_do_not_count(self):
        # 0.3 s is two samples: its time per GiB is mostly the interval.
        g, sizes = goals.growth(self.pts((4, 0.3), (16, 1.0), (64, 4.0)),
                                't')
        self.assertEqual(sizes, [16 * GiB, 64 * GiB])
        self.assertEqual(g, 1.0)

    def test_too_few_points(self):
        self.assertIsNone(goals.growth(self.pts((1, 9.0), (4, 4.0)), 't'))


if __name__ == '__main__':
    sys.exit(run_tap([(Verdicts, 'goals'), (Growth, 'growth')]))
