#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The VM tier's console judge, without a VM: which guest console lines
fail a scenario, which reports are known, and which stall is TCG's own.

  python3 tools/testing/virtio_mem/test_vmrig.py     (run by make unit)
"""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmrig  # noqa: E402

# The shape of the stall that failed CI on 6.1: CPU 1 halted and never
# got its timer interrupt.
TCG_STALL = """\
[   22.607151] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:
[   22.607300] rcu: \t1-...!: (0 ticks this GP) idle=1c18/0/0x0 softirq=16/16 fqs=1 (false positive?)
[   22.607400] \t(detected by 0, t=21007 jiffies, g=-1135, q=503 ncpus=2)
[   22.607500] rcu: rcu_preempt kthread timer wakeup didn't happen for 21004 jiffies! g-1135 f0x0 RCU_GP_WAIT_FQS(5) ->state=0x402
[   22.611002] rcu: Stack dump where RCU GP kthread last ran:
[   22.611002] Sending NMI from CPU 0 to CPUs 1:
[   12.759393] NMI backtrace for cpu 1 skipped: idling at native_safe_halt+0xb/0x10
"""

# A stall a driver can cause: a CPU busy in a loop with no resched.
BUSY_STALL = """\
[   40.100000] rcu: INFO: rcu_preempt self-detected stall on CPU
[   40.100100] rcu: \t0-....: (5250 ticks this GP) idle=a2c4/1/0x4000000000000000 softirq=900/900 fqs=2600
[   40.100200] Call Trace:
[   40.100300]  <IRQ>
[   40.100400]  virtio_mem_sbm_unplug_any_sb+0x40/0x200 [virtio_mem]
"""

HUNG = """\
[  250.000000] INFO: task kworker/0:2:77 blocked for more than 120 seconds.
"""

QUIET = """\
[    2.474571] virtio_mem: loading out-of-tree module taints kernel.
[    2.475066] virtio_mem: module verification failed: signature and/or required key missing - tainting kernel
[    2.500000] virtio_mem virtio1: plugged 1 GiB
"""


def guest(text):
    """A VM that never ran, whose console log holds @text."""
    vm = vmrig.VM.__new__(vmrig.VM)
    f = tempfile.NamedTemporaryFile('w', suffix='.log', delete=False)
    f.write(text)
    f.close()
    vm.log_path = f.name
    vm.handovers = []
    return vm


class ConsoleJudge(unittest.TestCase):
    def tearDown(self):
        for vm in getattr(self, 'vms', []):
            os.unlink(vm.log_path)

    def vm(self, text):
        self.vms = getattr(self, 'vms', []) + [guest(text)]
        return self.vms[-1]

    def test_quiet_console_passes(self):
        vm = self.vm(QUIET)
        self.assertEqual(vm.console_problems(), [])
        self.assertIsNone(vm.tcg_lost_wakeup())

    def test_tcg_stall_fails_and_is_recognised(self):
        vm = self.vm(QUIET + TCG_STALL)
        self.assertTrue(vm.console_problems())
        self.assertIsNotNone(vm.tcg_lost_wakeup())

    def test_busy_stall_is_not_tcg(self):
        vm = self.vm(QUIET + BUSY_STALL)
        self.assertTrue(vm.console_problems())
        self.assertIsNone(vm.tcg_lost_wakeup())

    def test_hung_task_fails(self):
        vm = self.vm(QUIET + HUNG)
        self.assertEqual(len(vm.console_problems()), 1)
        self.assertIsNone(vm.tcg_lost_wakeup())

    def test_lines_of_a_handover_are_not_judged(self):
        # What the old kernel prints after kexec's hand-over up to the
        # new banner belongs to neither kernel's run.
        text = QUIET + 'kexec_core: Starting new kernel\n' + \
            '[    9.9] WARNING: stale line\n' + \
            '[    0.0] Linux version 6.1.0-50-amd64\n'
        vm = self.vm(text)
        vm.handovers = [3]
        self.assertEqual(vm.console_problems(), [])


def main():
    """TAP, one line a test, like the harness's other runs."""
    tests = list(unittest.defaultTestLoader.loadTestsFromTestCase(
        ConsoleJudge))
    bad = 0
    for n, t in enumerate(tests, 1):
        r = unittest.TestResult()
        t.run(r)
        name = t.id().rsplit('.', 1)[-1]
        if r.wasSuccessful():
            print('ok %d - console: %s' % (n, name))
            continue
        bad += 1
        print('not ok %d - console: %s' % (n, name))
        for _, tb in r.failures + r.errors:
            print('# ' + tb.rstrip().replace('\n', '\n# '))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
