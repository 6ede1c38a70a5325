#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""arm64 smoke test: the cross-built module in Debian's arm64 kernels,
on QEMU's virt machine under TCG, following requested_size.

  make arm64-smoke          (after make modules-all, which cross-builds)
  python3 tools/testing/virtio_mem/arm64_smoke.py [--kver K ...]

Not the VM suite (issue: arm64 guests): no command channel, no
kselftests. Per kernel, one guest of 1 GiB with an 8 GiB virtio-mem-pci
device per case: plug and unplug in ZONE_MOVABLE with 2 MiB blocks, in
Big Block Mode with 512 MiB blocks, and in ZONE_NORMAL (where unmovable
kernel pages may stay: then the status must say unmovable). The guest's
init prints MemTotal and the driver's status on the console at each
change; the host drives the device over QMP and checks both. Any
console line the VM tier fails on fails the case. TAP output.

Needs qemu-system-arm (installed here from bookworm-backports if
missing), the arm64 kernel images and busybox-static (downloaded into
$VMCACHE/arm64, each kernel under <kver>/root as make deps keeps the
amd64 ones) and build/cross/<kver>/virtio_mem.ko.
"""

import argparse
import glob
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmrig  # noqa: E402
from vmrig import GiB, MiB  # noqa: E402

KVERS = ['6.12.95+deb12-arm64', '6.1.0-50-arm64', '6.12.95+deb12-arm64-16k']
DIR = os.path.join(vmrig.VMCACHE, 'arm64')
QEMU = 'qemu-system-aarch64'

INIT = r'''#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
echo "smoke: $(uname -r), memory block $(cat /sys/devices/system/memory/block_size_bytes)"
# virtio_mem, after the modules it needs (6.1's virtio-pci is one).
for m in $(cat /modules); do
	insmod /$m.ko || echo "smoke: insmod $m failed"
done
st=$(echo /sys/bus/virtio/devices/virtio*/virtio_mem/status)
prev=
while :; do
	while read -r k v u; do [ "$k" = MemTotal: ] && break; done </proc/meminfo
	read -r s <$st
	[ "$v $s" != "$prev" ] && echo "@@MT $v $s@@" && prev="$v $s"
	sleep 0.2
done
'''
MT_RE = re.compile(r'@@MT (\d+) (\S+)@@')

# (name, kernel command line, device block size, sizes to ask for)
CASES = [
    ('movable', 'memhp_default_state=online_movable', '2M',
     [4 * GiB, 1 * GiB, 0, 3 * GiB, 0]),
    ('big_block_mode', 'memhp_default_state=online_movable', '512M',
     [4 * GiB, 1 * GiB, 0]),
    ('normal', 'memhp_default_state=online', '2M', [2 * GiB, 0]),
]


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def unpack(pkg, root):
    """apt-get download @pkg and unpack it as @root, once."""
    if os.path.exists(os.path.join(root, '.unpacked')):
        return
    tmp = tempfile.mkdtemp(dir=DIR)
    os.chmod(tmp, 0o755)        # apt's download user writes here
    sh(['apt-get', 'download', '-q', pkg], cwd=tmp,
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(root, ignore_errors=True)
    sh(['dpkg-deb', '-x', glob.glob(os.path.join(tmp, '*.deb'))[0], root])
    shutil.rmtree(tmp)
    open(os.path.join(root, '.unpacked'), 'w').close()


def fetch(kvers):
    """qemu-system-arm; busybox and the arm64 kernels unpacked, each kernel
    as the rig keeps Debian's (vmrig.Kernel with cache=DIR), modules.dep
    included."""
    if not shutil.which(QEMU):
        sh(['apt-get', 'install', '-y', '-q', '-t', 'bookworm-backports',
            'qemu-system-arm'], env=dict(os.environ,
                                         DEBIAN_FRONTEND='noninteractive'),
           stdout=subprocess.DEVNULL)
    os.makedirs(DIR, exist_ok=True)
    unpack('busybox-static:arm64', os.path.join(DIR, 'busybox'))
    kernels = []
    for k in kvers:
        root = os.path.join(DIR, k, 'root')
        unpack('linux-image-%s-unsigned:arm64' % k, root)
        if not os.path.exists(os.path.join(root, 'lib/modules', k,
                                           'modules.dep')):
            sh(['depmod', '-b', root, k])
        kernels.append(vmrig.Kernel(k, cache=DIR))
    return kernels


def initrd(kernel, ours, path):
    cp = vmrig.Cpio()
    for d in ('bin', 'proc', 'sys', 'dev'):
        cp.dir(d)
    cp.file('bin/busybox', open(os.path.join(DIR, 'busybox/bin/busybox'),
                                'rb').read(), 0o755)
    for a in ('sh', 'mount', 'insmod', 'cat', 'sleep', 'echo'):
        cp.symlink('bin/' + a, 'busybox')
    cp.file('init', INIT, 0o755)
    mods = kernel.load_order(['virtio_pci'])
    for m in mods:
        cp.file(m + '.ko', kernel.module_bytes(m))
    cp.file('virtio_mem.ko', open(ours, 'rb').read())
    cp.file('modules', ' '.join(mods + ['virtio_mem']) + '\n')
    with open(path, 'wb') as f:
        f.write(gzip.compress(cp.finish()))


class Guest:
    def __init__(self, kernel, rd, cmdline, block, logdir, name):
        self.log = os.path.join(logdir, name + '.log')
        self.qmp_path = os.path.join(tempfile.mkdtemp(), 'qmp.sock')
        cmd = [QEMU, '-machine', 'virt', '-accel', 'tcg',
               '-cpu', 'max,pauth-impdef=on', '-smp', '2',
               '-m', '1G,maxmem=9G', '-nographic', '-nodefaults',
               '-serial', 'file:' + self.log,
               '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path,
               '-kernel', kernel.vmlinuz,
               '-initrd', rd, '-append', 'console=ttyAMA0 panic=-1 ' +
               cmdline, '-no-reboot',
               '-object', 'memory-backend-ram,id=mem0,size=8G,reserve=off',
               '-device', 'virtio-mem-pci,id=vm0,memdev=mem0,'
               'requested-size=0,block-size=' + block]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.qmp = vmrig.QMP(self.qmp_path)

    def console(self):
        try:
            return open(self.log, errors='replace').read()
        except OSError:
            return ''

    def seen(self):
        """(MemTotal kB, status) of the last console report, or None."""
        m = MT_RE.findall(self.console())
        return (int(m[-1][0]), m[-1][1]) if m else None

    def wait_seen(self, timeout=120):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.seen() or self.proc.poll() is not None:
                return self.seen()
            time.sleep(0.5)
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(os.path.dirname(self.qmp_path), ignore_errors=True)


def run_case(kernel, rd, case, logdir):
    """[(ok, what)] for one case in a fresh guest."""
    name, cmdline, block, sizes = case
    g = Guest(kernel, rd, cmdline, block, logdir,
              '%s-%s' % (kernel.kver, name))
    checks = []
    try:
        first = g.wait_seen()
        if not first:
            return [(False, 'guest up, driver bound (console: %s)' % g.log)]
        base = first[0]
        for want in sizes:
            g.qmp.execute('qom-set', path='/machine/peripheral/vm0',
                          property='requested-size', value=want)
            t0 = time.monotonic()
            while time.monotonic() - t0 < 90:
                size = g.qmp.execute('qom-get', path='/machine/peripheral/'
                                     'vm0', property='size')
                mt, st = g.seen()
                if size == want and (mt - base) * 1024 == want:
                    break
                # Kernel zones may keep unmovable pages: the status says so.
                if (size > want and st == 'unmovable' and
                        (mt - base) * 1024 == size and
                        'online_movable' not in cmdline):
                    break
                time.sleep(0.3)
            dt = time.monotonic() - t0
            what = '%s: %s MiB asked, %s MiB plugged, MemTotal +%s MiB, ' \
                'status %s, %.1f s' % (name, want // MiB, size // MiB,
                                       (mt - base) // 1024, st, dt)
            ok = (mt - base) * 1024 == size and (
                size == want or (st == 'unmovable' and
                                 'online_movable' not in cmdline))
            checks.append((ok, what))
    except (vmrig.VMError, OSError, TypeError) as e:
        checks.append((False, '%s: %s: %s' % (name, type(e).__name__, e)))
    finally:
        g.stop()
    probs = [l for l in g.console().splitlines()
             if vmrig.CONSOLE_RE.search(l)]
    checks.append((not probs, '%s: console clean%s' % (
        name, ' (first: %s)' % probs[0].strip() if probs else '')))
    return checks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--kver', action='append',
                    help='arm64 kernel (repeatable; default: %s)'
                    % ', '.join(KVERS))
    args = ap.parse_args()
    kvers = args.kver or KVERS
    for k in kvers:
        ours = os.path.join(vmrig.REPO, 'build', 'cross', k, 'virtio_mem.ko')
        if not os.path.exists(ours):
            ap.error('%s missing: run make modules-all' % ours)
    logdir = os.path.join(vmrig.REPO, 'build', 'arm64')
    os.makedirs(logdir, exist_ok=True)
    todo = []
    for kernel in fetch(kvers):
        rd = os.path.join(logdir, kernel.kver + '.initrd.gz')
        initrd(kernel, os.path.join(vmrig.REPO, 'build', 'cross',
                                    kernel.kver, 'virtio_mem.ko'), rd)
        todo += [(kernel, rd, c) for c in CASES]
    print('TAP version 13')
    print('1..%d' % len(todo))
    bad = 0
    for i, (kernel, rd, case) in enumerate(todo, 1):
        t0 = time.monotonic()
        checks = run_case(kernel, rd, case, logdir)
        ok = all(c[0] for c in checks)
        bad += not ok
        print('%sok %d - %s %s (%.0f s)' % ('' if ok else 'not ', i,
                                            kernel.kver, case[0],
                                            time.monotonic() - t0))
        for c_ok, what in checks:
            print('#   %s %s' % ('ok:' if c_ok else 'FAIL:', what))
        sys.stdout.flush()
    print('arm64-smoke: %d passed, %d failed' % (len(todo) - bad, bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
