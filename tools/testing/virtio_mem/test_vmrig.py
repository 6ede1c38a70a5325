#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The VM tier's console judge and its command channel, without a VM:
which guest console lines fail a scenario, which reports are known, which
stall is TCG's own, that a command line the guest's tty damaged runs
once all the same, and which machine each guest architecture boots on.

  python3 tools/testing/virtio_mem/test_vmrig.py     (run by make unit)
"""

import base64
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
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


class FakeGuest(threading.Thread):
    """The guest end of the command channel as vmrig's init script serves
    it, over a socket pair: it loses the first @lose newlines it is sent
    (as a tty short of buffers does) and starts reading after @delay
    seconds. Each command's output is its own text."""

    def __init__(self, sock, lose=0, delay=0.0):
        super().__init__(daemon=True)
        self.sock, self.lose, self.delay = sock, lose, delay
        self.ran = []

    def send(self, text):
        self.sock.sendall(text.encode())

    def run(self):
        time.sleep(self.delay)
        line = b''
        while True:
            try:
                c = self.sock.recv(1)
            except OSError:
                return
            if not c:
                return
            if c != b'\n':
                line += c
                continue
            if self.lose:
                self.lose -= 1
                continue
            self.serve(line.decode())
            line = b''

    def serve(self, line):
        if not line:
            return
        seq, _, rest = line.partition(' ')
        n, _, b64 = rest.partition(' ')
        try:
            ok = seq.isdigit() and int(n) == len(b64)
            cmd = base64.b64decode(b64, validate=True).decode() if ok else ''
        except ValueError:
            ok = False
        if not ok:
            self.send('\n@@VMRIG-BAD@@\n')
            return
        self.send('\n@@VMRIG-GOT %s@@\n' % seq)
        self.ran.append(cmd)
        self.send(cmd + '\n@@VMRIG-END %s 0@@\n' % seq)


class CommandChannel(unittest.TestCase):
    def shell(self, **kw):
        host, guest_end = socket.socketpair()
        self.addCleanup(host.close)
        self.addCleanup(guest_end.close)
        sh = vmrig.Shell(host)
        sh.NUDGE = 0.3
        g = FakeGuest(guest_end, **kw)
        g.start()
        return sh, g

    def test_commands_run_in_order(self):
        sh, g = self.shell()
        self.assertEqual(sh.run('echo a', 5), (0, 'echo a'))
        self.assertEqual(sh.run('echo b', 5), (0, 'echo b'))
        self.assertEqual(g.ran, ['echo a', 'echo b'])

    def test_lost_newline_is_recovered(self):
        # Before the receipt, a lost newline left the guest waiting for
        # the rest of the line and the host for the command's end.
        sh, g = self.shell(lose=1)
        self.assertEqual(sh.run('echo once', 5), (0, 'echo once'))
        self.assertEqual(g.ran, ['echo once'])
        self.assertEqual(sh.repaired, 1)

    def test_slow_guest_runs_a_command_once(self):
        sh, g = self.shell(delay=1.0)
        self.assertEqual(sh.run('echo slow', 5), (0, 'echo slow'))
        self.assertEqual(sh.run('echo next', 5), (0, 'echo next'))
        self.assertEqual(g.ran, ['echo slow', 'echo next'])

    def test_silent_guest_times_out_and_says_so(self):
        sh, g = self.shell(lose=1000)
        with self.assertRaisesRegex(vmrig.VMError, 'never took it'):
            sh.run('true', 1)


class BootAgain(unittest.TestCase):
    """A guest that fails before the driver under test did anything is
    booted once more; one that fails after is not."""

    PCI = ('[    5.851543] pci_bus 0000:00: root bus resource [bus 00-ff]\n'
           '[    5.864747] pci 0000:00:00.0: [8086:29c0] type 00 class '
           '0x060000\n')
    PROBED = ('[   12.143727] virtio_mem virtio0: region 0x100000000-'
              '0x1ffffffff, block 2048 KiB\n')

    def loaded(self, text, builtin):
        vm = guest(text)
        self.addCleanup(os.unlink, vm.log_path)
        vm.builtin = builtin
        return vm.module_loaded()

    def test_builtin_before_probe(self):
        # QEMU aborted in TCG while the guest enumerated PCI (seen once in
        # make check-builtin): the built-in driver had not started yet.
        self.assertFalse(self.loaded(self.PCI, True))

    def test_builtin_after_probe(self):
        self.assertTrue(self.loaded(self.PCI + self.PROBED, True))

    def test_module(self):
        self.assertFalse(self.loaded(self.PCI + self.PROBED, False))
        self.assertTrue(self.loaded('vmrig: insmod virtio_mem (module under '
                                    'test) rc=0\n', False))


def fake_kernel(root, kver, arch_line):
    """An unpacked image package with nothing in it but what Kernel reads:
    a vmlinuz, a config with @arch_line, an empty modules.dep."""
    mods = os.path.join(root, kver, 'root', 'lib', 'modules', kver)
    boot = os.path.join(root, kver, 'root', 'boot')
    os.makedirs(mods)
    os.makedirs(boot)
    open(os.path.join(boot, 'vmlinuz-' + kver), 'w').close()
    with open(os.path.join(boot, 'config-' + kver), 'w') as f:
        f.write(arch_line + '\nCONFIG_VIRTIO_MEM=m\n')
    open(os.path.join(mods, 'modules.dep'), 'w').close()
    return vmrig.Kernel(kver, cache=root)


class Machines(unittest.TestCase):
    """Each guest architecture gets its own QEMU, machine, console and
    command channel."""

    def tmp(self):
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        return root

    def qemu_cmd(self, arch_line):
        root = self.tmp()
        kernel = fake_kernel(root, '9.9.9-test', arch_line)
        vm = vmrig.VM.__new__(vmrig.VM)
        vm.kernel, vm.boot_mem, vm.maxmem_extra = kernel, vmrig.GiB, 0
        vm.smp, vm.numa, vm.slots, vm.cmdline = 2, 0, 0, ''
        vm.devices, vm.shmdir, vm.reboot, vm.extra_args = [], None, False, []
        vm.log_path, vm.shell_path, vm.qmp_path = 'con', 'sh', 'qmp'
        vm.tmpdir = root
        return kernel, ' '.join(vm.qemu_cmd('initrd'))

    def test_x86_64(self):
        k, cmd = self.qemu_cmd('CONFIG_X86_64=y')
        self.assertEqual(k.arch.channel, 'vport*p1')
        self.assertIn('-machine q35', cmd)
        self.assertIn('console=ttyS0,', cmd)
        self.assertIn('virtserialport,bus=vmrig-ser.0,nr=1,chardev=sh', cmd)
        self.assertNotIn('-serial chardev:sh', cmd)

    def test_arm64(self):
        k, cmd = self.qemu_cmd('CONFIG_ARM64=y')
        self.assertEqual(k.arch.channel, 'vport*p1')
        self.assertTrue(cmd.startswith('qemu-system-aarch64 -machine virt '))
        self.assertIn('console=ttyAMA0,', cmd)
        self.assertIn('virtserialport,bus=vmrig-ser.0,nr=1,chardev=sh', cmd)
        self.assertNotIn('-serial chardev:sh', cmd)

    def test_no_kexec_on_arm64(self):
        root = self.tmp()
        k = fake_kernel(root, '9.9.9-test', 'CONFIG_ARM64=y')
        with self.assertRaisesRegex(vmrig.VMError, 'x86-64 only'):
            vmrig.build_initramfs(k, None, os.path.join(root, 'i'),
                                  kexec=True)


def run_tap(groups):
    """Run [(TestCase class, label)] and print TAP, one line a test, like
    the harness's other runs. Returns the exit status."""
    load = unittest.defaultTestLoader.loadTestsFromTestCase
    tests = [(t, what) for case, what in groups for t in load(case)]
    bad = 0
    for n, (t, what) in enumerate(tests, 1):
        r = unittest.TestResult()
        t.run(r)
        name = t.id().rsplit('.', 1)[-1]
        if r.wasSuccessful():
            print('ok %d - %s: %s' % (n, what, name))
            continue
        bad += 1
        print('not ok %d - %s: %s' % (n, what, name))
        for _, tb in r.failures + r.errors:
            print('# ' + tb.rstrip().replace('\n', '\n# '))
    return 1 if bad else 0


def main():
    return run_tap([(ConsoleJudge, 'console'), (CommandChannel, 'channel'),
                    (Machines, 'machine'), (BootAgain, 'boot')])


if __name__ == '__main__':
    sys.exit(main())
