# SPDX-License-Identifier: GPL-2.0
"""vmrig - boot a Debian guest kernel under QEMU (TCG) with virtio-mem devices.

Python 3 standard library only. The pieces:

  Kernel     one unpacked Debian image package (scripts/deps.sh puts them in
             /var/cache/virtio-mem/<kver>/root, the arm64 ones in
             .../arm64/<kver>/root): vmlinuz, config, modules.
  Initramfs  busybox-static with its applets, the guest kernel's virtio/PCI
             modules where they are modules (6.1) rather than built in
             (6.12), the module under test, the in-guest selftests, and an
             /init that loads the modules and serves the command channel.
  QMP        line-oriented JSON client on a unix socket.
  Shell      the guest command channel: a virtio-serial port; a unix
             socket on the host.
             The host sends "<id> <base64 of a shell script>\\n"; the guest
             runs it with sh (stdin /dev/null, stdout+stderr to the port) and
             then writes "\\n@@VMRIG-END <id> <rc>@@\\n".
  VM         qemu-system-x86_64 -machine q35 (or qemu-system-aarch64
             -machine virt for an arm64 kernel) -accel tcg plus all of the
             above, with helpers for the things tests look at.

The console (ttyS0, ttyAMA0 on arm64: kernel log and /init's messages) goes
to a log file;
console_problems() scans it for kernel warnings, oopses and the like.

Background processes started in the guest must redirect their output (for
example "memfill 512 >/tmp/mf.log 2>&1 &"), or it mixes into the channel.
"""

import base64
import bisect
import collections
import glob
import json
import lzma
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
VMCACHE = os.environ.get('VMCACHE', '/var/cache/virtio-mem')
BUILD = os.path.join(REPO, 'build', 'vmtest')
SELFTESTS = os.path.join(REPO, 'tools', 'testing', 'selftests', 'virtio_mem')
QEMU = os.environ.get('QEMU', 'qemu-system-x86_64')
BUSYBOX = os.environ.get('BUSYBOX', '/bin/busybox')
# Debian's arm64 kernels and busybox, unpacked by scripts/arm64-guests.sh.
ARM64_CACHE = os.path.join(VMCACHE, 'arm64')


class Arch:
    """What differs between the guest architectures the rig boots."""

    def __init__(self, name, qemu, machine, console, channel, busybox, cc,
                 channel_args, modules=()):
        self.name = name
        self.qemu = qemu
        self.machine = machine
        self.console = console
        # The guest's device for the command channel (a name under /dev,
        # glob allowed), and how QEMU makes it.
        self.channel = channel
        self.channel_args = channel_args
        self.busybox = busybox
        # The C compiler for the in-guest selftests (linked statically).
        self.cc = cc
        # Modules the channel needs, where they are not built in.
        self.modules = list(modules)


def virtio_serial_channel(chardev):
    """QEMU arguments for the command channel: a virtio-serial port
    (/dev/vport<N>p1 in the guest). It used to be a 16550 (ttyS1) on
    x86-64, and one on PCI was tried on arm64: about one guest in twenty
    (arm64) or in thirty (x86-64, unplug_random_walk) stopped answering
    for good, its kernel running and idle with no task blocked (SysRq w
    and l, see post_mortem()), the receipt or the end of a command never
    reaching the host."""
    return ['-device', 'virtio-serial-pci,id=vmrig-ser',
            '-device', 'virtserialport,bus=vmrig-ser.0,nr=1,chardev='
            + chardev]


ARCHES = {
    'x86_64': Arch(
        'x86_64', QEMU, ['-machine', 'q35', '-cpu', 'qemu64'],
        'ttyS0', 'vport*p1', BUSYBOX, 'cc', virtio_serial_channel,
        modules=['virtio_console']),
    # virt has one UART, the console.
    # pauth-impdef: the architected pointer authentication algorithm
    # costs TCG a lot and tells a guest nothing here.
    'arm64': Arch(
        'arm64', os.environ.get('QEMU_ARM64', 'qemu-system-aarch64'),
        ['-machine', 'virt', '-cpu', 'max,pauth-impdef=on'],
        'ttyAMA0', 'vport*p1',
        os.path.join(ARM64_CACHE, 'busybox', 'bin', 'busybox'),
        'aarch64-linux-gnu-gcc', virtio_serial_channel,
        modules=['virtio_console']),
}
# Device memory lives in files here (tmpfs), so the host can check it.
SHMDIR = '/dev/shm'
# kexec-tools for the guests, unpacked by scripts/deps.sh.
KEXEC_ROOT = os.path.join(VMCACHE, 'kexec', 'root')
# What the backend may hold beyond the plugged size: nothing; QEMU itself
# writes none of it.
ORACLE_SLACK = 0

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# Lines in the guest console that fail a test. "Call Trace" catches the
# reports that have no headline of their own (allocation failure dumps,
# hung tasks, RCU stalls); the taint line for an unsigned or out-of-tree
# module matches none of these.
CONSOLE_PATTERNS = [
    r'WARNING:',
    r'BUG:',
    r'kernel BUG at',
    r'Oops',
    r'general protection fault',
    r'Kernel panic',
    # lockdep's reports (its boot banner mentions it by name too).
    r'possible recursive locking',
    r'possible circular locking',
    r'inconsistent lock state',
    r'DEBUG_LOCKS_WARN_ON',
    r'bad unlock balance',
    r'suspicious RCU usage',
    r'held lock freed',
    r'lock held when returning to user space',
    r'INFO: lockdep is turned off',
    r'KASAN',
    r'UBSAN',
    r'Call Trace',
    r'detected stalls? on CPU',
    r'blocked for more than \d+ seconds',
]
CONSOLE_RE = re.compile('|'.join(CONSOLE_PATTERNS))

# Reports of core mm that any driver removing memory provokes, with the
# reason each is not a bug. A report is known only if every pattern of an
# entry matches inside it. Lockdep turns itself off after any report, so
# a guest that hits one is not checked by lockdep from there on; the test
# says so in a note.
KNOWN_REPORTS = [
    # offline_and_remove_memory() holds device_hotplug_lock and then
    # mem_hotplug_lock while it unregisters the memory block devices,
    # which waits for writers of their sysfs "state" files (kn->active).
    # Such a writer holds kn->active and takes mem_hotplug_lock in
    # device_offline()/device_online(), but only after taking
    # device_hotplug_lock with a trylock that restarts the syscall when it
    # fails (lock_device_hotplug_sysfs()), so both paths cannot wait on
    # each other. Lockdep cannot see through the trylock. The in-tree
    # driver of the debug kernel gets the same report in the same
    # scenario (unplug_random_walk with --module distro).
    ('core mm: memory block removal against a sysfs state writer',
     [r'possible circular locking dependency detected',
      r'\(kn->active\S*\).* at: __kernfs_remove',
      r'\(mem_hotplug_lock\).* at: try_remove_memory',
      r'state_store']),
]


# An RCU stall in which the stalled CPU sleeps in HLT with nothing to do:
# the CPU's timer interrupt never reached it. That is TCG losing a wakeup
# of an idle vCPU (seen once in hundreds of boots, on 6.1, in a guest that
# had done nothing yet but load the module), not anything a guest driver
# can cause; the scenario is run once more (vmtest.py says so).
TCG_LOST_WAKEUP_RE = re.compile(
    r'NMI backtrace for cpu \d+ skipped: idling at|'
    r'kthread timer wakeup didn\'t happen')


class VMError(Exception):
    pass


class CommandTimeout(VMError):
    """A guest command got no receipt or no end in time."""


def parse_size(s):
    """'16G' / '130M' / '2m' / '4096' -> bytes."""
    if isinstance(s, int):
        return s
    m = re.fullmatch(r'\s*(\d+)\s*([kKmMgGtT]?)(i?[bB])?\s*', str(s))
    if not m:
        raise ValueError('bad size %r' % (s,))
    mult = {'': 1, 'k': KiB, 'm': MiB, 'g': GiB, 't': 1024 * GiB}
    return int(m.group(1)) * mult[m.group(2).lower()]


def fmt_size(n):
    """bytes -> short human string ('130M', '16G', '1536K')."""
    for unit, mult in (('T', 1024 * GiB), ('G', GiB), ('M', MiB),
                       ('K', KiB)):
        if n and n % mult == 0:
            return '%d%s' % (n // mult, unit)
    if n >= GiB:
        return '%.2fG' % (n / GiB)
    if n >= MiB:
        return '%.1fM' % (n / MiB)
    return str(n)


def wait_for(pred, timeout, interval=0.25, what='condition', alive=None):
    """Poll pred() until it returns a true value; return that value.

    Raises TimeoutError naming @what after @timeout seconds. @alive, if
    given, is called each round and may raise (e.g. QEMU died)."""
    deadline = time.monotonic() + timeout
    while True:
        if alive:
            alive()
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError('timed out after %ss waiting for %s'
                               % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------- kernel

class Kernel:
    """One unpacked Debian kernel image package."""

    def __init__(self, kver, cache=None):
        self.kver = kver
        if cache is None:
            cache = ARM64_CACHE if re.search(r'-arm64(-|$)', kver) \
                else VMCACHE
        self.root = os.path.join(cache, kver, 'root')
        self.vmlinuz = os.path.join(self.root, 'boot', 'vmlinuz-' + kver)
        self.moddir = os.path.join(self.root, 'lib', 'modules', kver)
        if not os.path.exists(self.vmlinuz):
            raise VMError('%s missing: run "make deps" (scripts/deps.sh)'
                          % self.vmlinuz)
        self.config = {}
        with open(os.path.join(self.root, 'boot', 'config-' + kver)) as f:
            for line in f:
                m = re.match(r'(CONFIG_\w+)=(.*)', line)
                if m:
                    self.config[m.group(1)] = m.group(2)
        self.deps = {}          # module name -> (path, [dep names])
        with open(os.path.join(self.moddir, 'modules.dep')) as f:
            for line in f:
                path, _, rest = line.partition(':')
                self.deps[self.modname(path)] = (
                    path, [self.modname(p) for p in rest.split()])
        self.arch = ARCHES['arm64' if self.config.get('CONFIG_ARM64') == 'y'
                           else 'x86_64']
        # A kernel of the debug tier (scripts/debug-kernel.sh).
        self.debug = self.config.get('CONFIG_KASAN') == 'y'
        self.slow = int(os.environ.get('VMRIG_SLOW', '3')) if self.debug \
            else 1
        self.builtin = set()
        p = os.path.join(self.moddir, 'modules.builtin')
        if os.path.exists(p):
            with open(p) as f:
                self.builtin = {self.modname(l.strip()) for l in f}

    @staticmethod
    def modname(path):
        name = os.path.basename(path)
        name = re.sub(r'\.ko(\.xz|\.zst|\.gz)?$', '', name)
        return name.replace('-', '_')

    def load_order(self, names):
        """Modules (not built in) needed for @names, dependencies first."""
        order = []

        def visit(n):
            n = n.replace('-', '_')
            if n in order or n in self.builtin:
                return
            if n not in self.deps:
                raise VMError('%s: no module %s' % (self.kver, n))
            for d in self.deps[n][1]:
                visit(d)
            order.append(n)
        for n in names:
            visit(n)
        return order

    def module_file(self, name):
        return os.path.join(self.moddir, self.deps[name][0])

    def module_bytes(self, name):
        return read_module(self.module_file(name))

    def distro_virtio_mem(self):
        return self.module_file('virtio_mem')


def read_module(path):
    with open(path, 'rb') as f:
        data = f.read()
    if path.endswith('.xz'):
        data = lzma.decompress(data)
    elif path.endswith('.zst') or path.endswith('.gz'):
        raise VMError('%s: only .ko and .ko.xz are supported' % path)
    return data


def module_depends(data):
    """The depends= list from a module's .modinfo."""
    m = re.search(rb'(?:^|\0)depends=([^\0]*)\0', data)
    if not m or not m.group(1):
        return []
    return [d.decode() for d in m.group(1).split(b',') if d]


def module_vermagic(data):
    m = re.search(rb'(?:^|\0)vermagic=([^\0]*)\0', data)
    return m.group(1).decode() if m else None


# ---------------------------------------------------------------- initramfs

class Cpio:
    """Minimal writer for the 'newc' cpio format the kernel unpacks."""

    def __init__(self):
        self.out = bytearray()
        self.ino = 1
        self.seen = set()

    def _entry(self, name, mode, data=b'', nlink=1):
        name = name.lstrip('/')
        hdr = '070701' + ''.join('%08X' % v for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0,
            len(name) + 1, 0))
        self.ino += 1
        self.out += hdr.encode() + name.encode() + b'\0'
        self.out += b'\0' * (-len(self.out) % 4)
        self.out += data
        self.out += b'\0' * (-len(self.out) % 4)

    def dir(self, name, mode=0o755):
        name = name.strip('/')
        if not name or name in self.seen:
            return
        parent = os.path.dirname(name)
        if parent:
            self.dir(parent)
        self.seen.add(name)
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def file(self, name, data, mode=0o644):
        name = name.strip('/')
        self.dir(os.path.dirname(name))
        if isinstance(data, str):
            data = data.encode()
        self.seen.add(name)
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        name = name.strip('/')
        if name in self.seen:
            return
        self.dir(os.path.dirname(name))
        self.seen.add(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def node(self, name, mode, major, minor):
        name = name.strip('/')
        self.dir(os.path.dirname(name))
        hdr = '070701' + ''.join('%08X' % v for v in (
            self.ino, mode, 0, 0, 1, 0, 0, 0, 0, major, minor,
            len(name) + 1, 0))
        self.ino += 1
        self.out += hdr.encode() + name.encode() + b'\0'
        self.out += b'\0' * (-len(self.out) % 4)

    def finish(self):
        self._entry('TRAILER!!!', 0, nlink=1)
        self.out += b'\0' * (-len(self.out) % 512)
        return bytes(self.out)


INIT = r'''#!/bin/sh
# /init of the vmrig initramfs (generated by tools/testing/virtio_mem/vmrig.py)
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
# Nothing may load modules behind the rig's back (no udev, no modprobe).
echo /bin/false >/proc/sys/kernel/modprobe
. /etc/vmrig.conf

for m in $VMRIG_BASE_MODULES; do
	insmod /lib/vmrig/$m.ko || echo "vmrig: insmod $m failed"
done
if [ "$VMRIG_LOAD" = 1 ] && [ -f /lib/vmrig/test/virtio_mem.ko ]; then
	insmod /lib/vmrig/test/virtio_mem.ko $VMRIG_MODPARAMS
	echo "vmrig: insmod virtio_mem (module under test) rc=$?"
fi

serve() {
	set -- /dev/$VMRIG_TTY
	[ -c "$1" ] || return
	# A serial port must be raw; a virtio port has no line discipline.
	case $1 in
	/dev/tty*) stty -F "$1" raw -echo 115200 || return ;;
	esac
	exec 3<>"$1"
	printf '\n@@VMRIG-READY@@\n' >&3
	while IFS= read -r line <&3; do
		# "<seq> <length> <base64>": a line that lost characters on
		# the way (seen once under memory pressure) is refused, and
		# the host sends it again.
		id=${line%% *}; rest=${line#* }; len=${rest%% *}; b64=${rest#* }
		# An empty line is the host asking after a line it got no
		# receipt for: it ends a line whose newline was lost.
		[ -n "$line" ] || continue
		case "$id$len" in
		''|*[!0-9]*) printf '\n@@VMRIG-BAD@@\n' >&3; continue;;
		esac
		if [ "${#b64}" -ne "$len" ] ||
		   ! printf '%s' "$b64" | base64 -d >/tmp/.vmrig.cmd 2>/dev/null
		then
			printf '\n@@VMRIG-BAD@@\n' >&3
			continue
		fi
		printf '\n@@VMRIG-GOT %s@@\n' "$id" >&3
		(cd /root && exec sh /tmp/.vmrig.cmd) </dev/null >&3 2>&3
		rc=$?
		printf '\n@@VMRIG-END %s %s@@\n' "$id" "$rc" >&3
	done
	exec 3>&-
}
echo "vmrig: guest ready, serving commands on $VMRIG_TTY"
while :; do
	serve
	sleep 1
done
'''


def busybox_applets():
    """The applets' paths. The host's busybox-static answers for the arm64
    one too: both come from the same Debian release and version."""
    out = subprocess.run([BUSYBOX, '--list-full'], check=True,
                         capture_output=True, text=True).stdout
    return [l.strip() for l in out.splitlines() if l.strip()]


_selftests_cache = {}


def build_selftests(arch=ARCHES['x86_64']):
    """Build the in-guest selftests for @arch; return [(name, data, mode)].

    Built once per process and architecture, in a private directory, so
    that several rigs can run side by side."""
    if arch.name in _selftests_cache:
        return _selftests_cache[arch.name]
    tmp = tempfile.mkdtemp(prefix='vmrig-selftests-')
    try:
        objdir = os.path.join(tmp, 'obj')
        outdir = os.path.join(tmp, 'install')
        r = subprocess.run(['make', '-s', '-C', SELFTESTS, 'OUTPUT=' + objdir,
                            'INSTALL_PATH=' + outdir, 'CC=' + arch.cc,
                            'install'],
                           capture_output=True, text=True)
        if r.returncode:
            raise VMError('building selftests failed:\n' + r.stdout +
                          r.stderr)
        files = []
        for name in sorted(os.listdir(outdir)):
            p = os.path.join(outdir, name)
            with open(p, 'rb') as f:
                data = f.read()
            files.append((name, data,
                          0o755 if os.access(p, os.X_OK) else 0o644))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _selftests_cache[arch.name] = files
    return files


def kexec_files():
    """[(guest path, host path)] of /sbin/kexec and the libraries it needs."""
    exe = os.path.join(KEXEC_ROOT, 'sbin', 'kexec')
    if not os.path.exists(exe):
        raise VMError('%s missing: run "make deps" (scripts/deps.sh)' % exe)
    libdirs = [os.path.join(KEXEC_ROOT, d, 'x86_64-linux-gnu')
               for d in ('usr/lib', 'lib')]
    env = dict(os.environ, LD_LIBRARY_PATH=':'.join(libdirs))
    out = subprocess.run(['ldd', exe], env=env, check=True,
                         capture_output=True, text=True).stdout
    files = [('sbin/kexec', exe)]
    for line in out.splitlines():
        m = (re.match(r'\s*(\S+) => (/\S+) \(', line) or
             re.match(r'\s*(/\S+) \(', line))
        if not m:
            if 'not found' in line:
                raise VMError('kexec needs a library not unpacked: ' + line)
            continue
        host = m.group(m.lastindex)
        if m.lastindex == 1:        # the dynamic loader: same path
            guest = host.lstrip('/')
        else:
            guest = 'lib/x86_64-linux-gnu/' + m.group(1)
        files.append((guest, os.path.realpath(host)))
    return files


def build_initramfs(kernel, module, out, modparams='', load=True,
                    extra_modules=(), kexec=False, reboot=False):
    """Write the initramfs for one boot to @out.

    @module: path to a virtio_mem.ko (or .ko.xz), or None for none.
    @extra_modules: more of the kernel's modules, in /lib/vmrig/extra/
    with their dependencies, for tests to insmod.
    @kexec: also kexec-tools, and in /kexec/ the kernel and an initramfs
    without @kexec, for a crash kernel or a kexec reboot."""
    arch = kernel.arch
    if kexec and arch.name != 'x86_64':
        raise VMError('kexec in the guest: x86-64 only (kexec-tools are '
                      'unpacked for amd64)')
    inner = None
    if kexec:
        inner = out + '.inner'
        build_initramfs(kernel, module, inner, modparams, load,
                        extra_modules)
    cp = Cpio()
    for d in ('bin', 'sbin', 'usr/bin', 'usr/sbin', 'proc', 'sys', 'dev',
              'tmp', 'root', 'etc', 'lib/vmrig/test', 'sys/kernel/debug'):
        cp.dir(d)
    cp.node('dev/console', stat.S_IFCHR | 0o600, 5, 1)
    cp.node('dev/null', stat.S_IFCHR | 0o666, 1, 3)
    with open(arch.busybox, 'rb') as f:
        cp.file('bin/busybox', f.read(), 0o755)
    for a in busybox_applets():
        if a.strip('/') != 'bin/busybox':
            cp.symlink(a, '/bin/busybox')
    cp.file('init', INIT, 0o755)

    # Modules of the guest kernel: what virtio-pci needs, plus whatever the
    # module under test depends on. Under /lib/vmrig, where no modprobe
    # looks; the distro's virtio_mem.ko is only there if it is under test.
    mod_data = read_module(module) if module else None
    wanted = ['virtio_pci'] + arch.modules
    if mod_data:
        wanted += module_depends(mod_data)
    base = [m for m in kernel.load_order(wanted)
            if m not in ('virtio_mem',)]
    for m in base:
        cp.file('lib/vmrig/%s.ko' % m, kernel.module_bytes(m))
    if mod_data:
        cp.file('lib/vmrig/test/virtio_mem.ko', mod_data)
        # The test modules make builds beside it (tools/testing/
        # virtio_mem/kmod), for the scenarios that need one.
        for t in sorted(glob.glob(os.path.join(os.path.dirname(module),
                                               'virtio_mem_test_*.ko'))):
            cp.file('lib/vmrig/test/' + os.path.basename(t),
                    read_module(t))
    if extra_modules:
        cp.dir('lib/vmrig/extra')
        for m in kernel.load_order(extra_modules):
            if m not in base:
                cp.file('lib/vmrig/extra/%s.ko' % m, kernel.module_bytes(m))

    # Selftests.
    for name, data, mode in build_selftests(arch):
        cp.file('selftests/virtio_mem/' + name, data, mode)
        if mode & 0o111 and not name.endswith('.list'):
            cp.symlink('usr/bin/' + name,
                       '/selftests/virtio_mem/' + name)

    conf = ('VMRIG_BASE_MODULES="%s"\nVMRIG_LOAD=%d\nVMRIG_MODPARAMS="%s"\n'
            'VMRIG_KVER="%s"\nVMRIG_TTY="%s"\n'
            % (' '.join(base), 1 if load else 0, modparams, kernel.kver,
               arch.channel))
    cp.file('etc/vmrig.conf', conf)
    cp.file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n')
    if kexec:
        for d in ('lib', 'lib/x86_64-linux-gnu', 'lib64', 'kexec'):
            cp.dir(d)
        for guest, host in kexec_files():
            with open(host, 'rb') as f:
                cp.file(guest, f.read(), 0o755)
        with open(kernel.vmlinuz, 'rb') as f:
            cp.file('kexec/vmlinuz', f.read())
        with open(inner, 'rb') as f:
            cp.file('kexec/initrd', f.read())
        os.unlink(inner)
    data = cp.finish()
    with open(out, 'wb') as f:
        f.write(data)
    return base


# ---------------------------------------------------------------- QMP

class QMPError(VMError):
    pass


class QMP:
    def __init__(self, path, timeout=30):
        self.sock = connect_unix(path, timeout)
        self.sock.settimeout(timeout)
        self.buf = b''
        self.events = []
        greeting = self._recv()
        if 'QMP' not in greeting:
            raise QMPError('unexpected QMP greeting %r' % greeting)
        self.execute('qmp_capabilities')

    def _recv(self):
        while b'\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QMPError('QMP connection closed')
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b'\n')
        return json.loads(line)

    def execute(self, cmd, **args):
        msg = {'execute': cmd}
        if args:
            msg['arguments'] = args
        self.sock.sendall(json.dumps(msg).encode() + b'\n')
        while True:
            r = self._recv()
            if 'event' in r:
                self.events.append(r)
                continue
            if 'error' in r:
                raise QMPError('%s: %s' % (cmd, r['error'].get('desc', r)))
            return r.get('return')

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def connect_unix(path, timeout):
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise VMError('cannot connect to %s' % path)
            time.sleep(0.05)


# ---------------------------------------------------------------- shell

class Shell:
    END_RE = re.compile(rb'\n@@VMRIG-END (\d+) (-?\d+)@@\n')
    GOT_RE = re.compile(rb'\n@@VMRIG-GOT (\d+)@@\n')
    READY = b'@@VMRIG-READY@@'
    BAD = b'\n@@VMRIG-BAD@@\n'
    RESENDS = 3
    # Seconds without a receipt before the host sends an empty line: it
    # ends a line whose newline the guest's tty lost (the guest then
    # answers BAD and the line goes again); a guest that was only slow to
    # read ignores it.
    NUDGE = 10

    def __init__(self, sock):
        self.sock = sock
        self.buf = b''
        self.seq = 0
        # Lines the guest took only after a nudge or a resend: the
        # scenario notes them (a channel that loses bytes is worth
        # knowing about).
        self.repaired = 0

    @classmethod
    def connect(cls, path, timeout=30):
        return cls(connect_unix(path, timeout))

    def _fill(self, deadline, alive):
        while True:
            if alive:
                alive()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(min(left, 0.5))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise VMError('guest shell channel closed')
            self.buf += chunk
            return

    def wait_ready(self, timeout, alive=None):
        deadline = time.monotonic() + timeout
        while self.READY not in self.buf:
            try:
                self._fill(deadline, alive)
            except TimeoutError:
                raise VMError('guest did not come up within %ss' % timeout)
        self.buf = self.buf.split(self.READY, 1)[1]
        if self.buf.startswith(b'\n'):
            self.buf = self.buf[1:]

    def _receipt(self, seq):
        """Drop what comes before the guest's receipt for @seq (the tail
        of an earlier command that timed out); True once it is here."""
        for m in self.GOT_RE.finditer(self.buf):
            if int(m.group(1)) == seq:
                self.buf = self.buf[m.end():]
                return True
        return False

    def run(self, cmd, timeout=60, alive=None):
        self.seq += 1
        seq = self.seq
        b64 = base64.b64encode(cmd.encode())
        line = b'%d %d %s\n' % (seq, len(b64), b64)
        self.sock.sendall(line)
        resends = nudges = 0
        got = False
        deadline = time.monotonic() + timeout
        nudge_at = time.monotonic() + self.NUDGE
        while True:
            got = got or self._receipt(seq)
            if not got and self.BAD in self.buf:
                # The guest got a damaged line: ours, as one at a time is
                # out.
                self.buf = self.buf.replace(self.BAD, b'', 1)
                resends += 1
                if resends > self.RESENDS:
                    raise VMError('guest shell channel: command garbled %d '
                                  'times' % resends)
                self.sock.sendall(line)
                nudge_at = time.monotonic() + self.NUDGE
                continue
            if not got and time.monotonic() >= nudge_at:
                nudges += 1
                self.sock.sendall(b'\n')
                nudge_at = time.monotonic() + self.NUDGE
            # After our receipt (what came before it is dropped) the next
            # end is ours: the guest runs one command at a time.
            m = self.END_RE.search(self.buf) if got else None
            if m:
                out = self.buf[:m.start()]
                self.buf = self.buf[m.end():]
                self.repaired += bool(resends or nudges)
                return int(m.group(2)), out.decode('utf-8', 'replace')
            try:
                self._fill(deadline if got else min(deadline, nudge_at),
                           alive)
            except TimeoutError:
                if time.monotonic() < deadline:
                    continue
                # What came back unread shows a receipt or an end that
                # lost bytes on the way.
                how = ('running in the guest' if got else
                       'the guest never took it; %d resends, %d nudges'
                       % (resends, nudges))
                raise CommandTimeout(
                    'guest command timed out after %ss (%s): %s\n'
                    'unread from the guest: %r'
                    % (timeout, how, cmd.splitlines()[0][:200],
                       self.buf[-300:]))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------- VM

class MemDev:
    """One virtio-mem-pci device and its memory backend."""

    def __init__(self, id='vm0', size='16G', requested=0, block_size='2M',
                 node=None, memaddr=None, extra=''):
        self.id = id
        self.size = parse_size(size)
        self.requested = parse_size(requested)
        self.block_size = parse_size(block_size)
        self.node = node
        self.memaddr = memaddr
        self.extra = extra
        self.backend = None

    def qemu_args(self, backend_dir=None):
        """QEMU arguments; with @backend_dir, the memory is a shared file
        there, so that the host can see which parts the guest touched."""
        dev = ('virtio-mem-pci,id=%s,memdev=mem-%s,requested-size=%d,'
               'block-size=%d' % (self.id, self.id, self.requested,
                                  self.block_size))
        if self.node is not None:
            dev += ',node=%d' % self.node
        if self.memaddr is not None:
            dev += ',memaddr=%d' % self.memaddr
        if self.extra:
            dev += ',' + self.extra
        if backend_dir:
            self.backend = os.path.join(backend_dir, 'mem-' + self.id)
            return ['-object', 'memory-backend-file,id=mem-%s,size=%d,'
                    'mem-path=%s,share=on,reserve=off'
                    % (self.id, self.size, self.backend), '-device', dev]
        return ['-object', 'memory-backend-ram,id=mem-%s,size=%d,reserve=off'
                % (self.id, self.size), '-device', dev]

    def backend_allocated(self):
        """Bytes of the shared backend file that have memory behind them:
        every page the guest (or QEMU) wrote and the device did not
        discard again."""
        return os.stat(self.backend).st_blocks * 512 if self.backend else None


class VM:
    """A guest. Use as a context manager, or call start()/stop().

    kver       Debian kernel release (see Makefile SUPPORTED_KVERS)
    module     path to virtio_mem.ko, 'distro' for the guest kernel's own,
               'builtin' for a kernel with the driver built in (modparams
               then go on the command line), or None to boot without one
    devices    list of MemDev
    boot_mem   boot memory ('1G')
    numa       number of NUMA nodes (boot memory and CPUs split evenly)
    cmdline    extra kernel command line
    name       log name: the console goes to <logdir>/<name>.log
    """

    # A guest that hangs before the module under test is loaded is booted
    # once more (see start()).
    BOOT_ATTEMPTS = 2

    def __init__(self, kver, module='distro', devices=None, boot_mem='1G',
                 smp=2, numa=0, cmdline='', name='vm', logdir=None,
                 modparams='', load_module=True, maxmem_extra='0',
                 verbose=False, boot_timeout=180, extra_args=(),
                 extra_modules=(), kexec=False, reboot=False, slots=0):
        self.kernel = Kernel(kver)
        self.kver = kver
        if module == 'distro':
            module = self.kernel.distro_virtio_mem()
        # Built in, the driver is there before init runs: its parameters
        # are the kernel's, and there is nothing to load later.
        self.builtin = module == 'builtin'
        if self.builtin:
            if not load_module:
                raise VMError('the driver is built in: it cannot be '
                              'loaded later')
            cmdline = ' '.join(['virtio_mem.' + p for p in modparams.split()]
                               + [cmdline]).strip()
            module, modparams = None, ''
        self.module = module
        self.devices = devices if devices is not None else [MemDev()]
        self.boot_mem = parse_size(boot_mem)
        self.smp = smp
        self.numa = numa
        self.cmdline = cmdline
        self.extra_modules = list(extra_modules)
        self.kexec = kexec
        self.reboot = reboot
        # Memory slots for pc-dimm devices (the bench's ACPI DIMM peer).
        self.slots = slots
        # The debug tier's kernel (KASAN, lockdep): everything is slower,
        # 5-level paging trips an early KASAN report that turns lockdep
        # off under TCG, and KASAN shadows hot-added memory at 1/8 from
        # the memory the guest has, so it needs that much more.
        self.debug = self.kernel.debug
        self.slow = self.kernel.slow
        if self.debug:
            self.cmdline = ('no5lvl ' + cmdline).strip()
            shadow = sum(d.size for d in self.devices) // 8
            self.boot_mem += 512 * MiB + -(-shadow // (256 * MiB)) * 256 * MiB
        self.name = name
        self.logdir = logdir or os.path.join(BUILD, kver)
        self.modparams = modparams
        self.load_module = load_module
        self.maxmem_extra = parse_size(maxmem_extra)
        self.verbose = verbose
        self.boot_timeout = boot_timeout
        self.extra_args = list(extra_args)
        self.proc = None
        self.qemu_err = None
        self.qmp = None
        self.shell = None
        self.boot_failures = []
        # Console line numbers where a test ended the kernel on purpose.
        self.handovers = []
        self.tmpdir = None
        self.shmdir = None
        self.oracle_seen = []
        self.log_path = os.path.join(self.logdir, name + '.log')
        self.boot_time = None
        self._symbols = None

    # -- lifecycle

    def smp_arg(self):
        # With NUMA, one socket per node: CPUs sharing a socket (and so an
        # LLC) on different nodes make the guest kernel warn.
        if self.numa and self.smp % self.numa == 0:
            return '%d,sockets=%d,cores=%d,threads=1' % (
                self.smp, self.numa, self.smp // self.numa)
        return str(self.smp)

    def qemu_cmd(self, initrd):
        maxmem = self.boot_mem + self.maxmem_extra
        for d in self.devices:
            maxmem += d.size + (0 if d.memaddr is not None else GiB)
        arch = self.kernel.arch
        # sysrq_always_enabled: post_mortem() asks by the keyboard.
        append = ('console=%s,115200 panic=-1 mitigations=off '
                  'no_timer_check sysrq_always_enabled %s'
                  % (arch.console, self.cmdline)).strip()
        cmd = [arch.qemu] + arch.machine + [
            '-accel', 'tcg', '-smp', self.smp_arg(),
            '-m', '%dM,%smaxmem=%dM' % (self.boot_mem // MiB,
                                        'slots=%d,' % self.slots
                                        if self.slots else '',
                                        maxmem // MiB),
            '-nodefaults', '-nographic',
            '-chardev', 'file,id=con,path=' + self.log_path,
            '-serial', 'chardev:con',
            '-chardev', 'socket,id=sh,path=%s,server=on,wait=off'
            % self.shell_path] + arch.channel_args('sh') + [
            '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path,
            '-kernel', self.kernel.vmlinuz, '-initrd', initrd,
            '-append', append]
        if not self.reboot:
            # A guest that reboots (a panic with panic=-1) ends QEMU.
            cmd.append('-no-reboot')
        if self.numa:
            per = self.boot_mem // self.numa
            for n in range(self.numa):
                per_node = max(1, self.smp // self.numa)
                cpus = [c for c in range(self.smp) if c // per_node == n]
                cmd += ['-object', 'memory-backend-ram,id=ram-node%d,size=%d'
                        % (n, per)]
                node = 'node,nodeid=%d,memdev=ram-node%d' % (n, n)
                if cpus:
                    node += ',cpus=%d-%d' % (cpus[0], cpus[-1]) \
                        if len(cpus) > 1 and cpus[-1] - cpus[0] == len(cpus) - 1 \
                        else ',cpus=%d' % cpus[0]
                cmd += ['-numa', node]
        for d in self.devices:
            cmd += d.qemu_args(self.shmdir)
        return cmd + [a.replace('@TMP@', self.tmpdir) for a in self.extra_args]

    def start(self):
        os.makedirs(self.logdir, exist_ok=True)
        self.tmpdir = tempfile.mkdtemp(prefix='vmrig-')
        # Device memory in tmpfs: the host-side oracle reads its size.
        if os.path.isdir(SHMDIR) and os.environ.get('VMRIG_ORACLE', '1') != '0':
            self.shmdir = tempfile.mkdtemp(prefix='vmrig-', dir=SHMDIR)
        self.shell_path = os.path.join(self.tmpdir, 'shell.sock')
        self.qmp_path = os.path.join(self.tmpdir, 'qmp.sock')
        initrd = os.path.join(self.tmpdir, 'initramfs.cpio')
        build_initramfs(self.kernel, self.module, initrd, self.modparams,
                        self.load_module, self.extra_modules, self.kexec)
        cmd = self.qemu_cmd(initrd)
        with open(os.path.join(self.logdir, self.name + '.cmd'), 'w') as f:
            f.write(' '.join(shell_quote(c) for c in cmd) + '\n')
        t0 = time.monotonic()
        for attempt in range(1, self.BOOT_ATTEMPTS + 1):
            try:
                self.boot(cmd)
                break
            except Exception as e:
                again = (attempt < self.BOOT_ATTEMPTS and
                         ('did not come up' in str(e) or
                          'QEMU exited' in str(e)) and
                         not self.module_loaded())
                if not again:
                    self.stop()
                    raise
                kept = self.keep_console('failed-boot%d' % attempt)
                self.halt()
                # A guest that hangs or dies before our module is loaded
                # says nothing about the module: under TCG on a busy host
                # a debug kernel has been seen to lose the timer wakeup of
                # an idle vCPU at boot (an RCU stall, then silence), and
                # QEMU to end 10 s into a debug boot with nothing on the
                # console, and QEMU to abort in TCG ("iotlb_to_section:
                # Assertion") while a guest with the driver built in was
                # still enumerating PCI. Boot once more, and say why; the
                # first console is kept.
                self.boot_failures.append('%s (console kept as %s)'
                                          % (e, kept))
                print('vmrig: %s: %s before the module under test was '
                      'loaded (console kept as %s); booting again'
                      % (self.name, e, kept), file=sys.stderr)
        self.boot_time = time.monotonic() - t0
        return self

    def alive(self):
        if self.proc and self.proc.poll() is not None:
            self.qemu_err.seek(0)
            err = self.qemu_err.read().strip()
            panic = [l for l in self.console().splitlines()
                     if 'Kernel panic' in l]
            raise VMError('QEMU exited with %s%s%s; console: %s'
                          % (self.proc.returncode,
                             (': ' + err) if err else '',
                             (' (guest: %s)' % panic[0].strip())
                             if panic else '', self.log_path))

    def boot(self, cmd):
        if os.path.exists(self.log_path):
            os.unlink(self.log_path)
        self.qemu_err = open(os.path.join(self.tmpdir, 'qemu.stderr'), 'w+')
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.qemu_err,
                                     stderr=subprocess.STDOUT)
        self.qmp = QMP(self.qmp_path)
        self.shell = Shell.connect(self.shell_path)
        self.wait_ready(self.boot_timeout)

    def wait_ready(self, timeout):
        """Until the guest's init serves the shell."""
        try:
            self.shell.wait_ready(timeout, alive=self.alive)
        except VMError:
            self.gone()
            raise

    def gone(self):
        """After the shell channel closed: if QEMU is exiting, raise
        VMError with its status and stderr (see alive())."""
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            pass
        self.alive()

    def module_loaded(self):
        """Has the driver under test started: has the guest's init reported
        loading the module, or, built in, has the driver taken a device?"""
        if self.builtin:
            return re.search(r'virtio_mem virtio\d+:', self.console()) \
                is not None
        return 'vmrig: insmod' in self.console()

    def keep_console(self, tag):
        """Copy the console log aside as <name>.<tag>.log; return its path."""
        kept = os.path.join(self.logdir, '%s.%s.log' % (self.name, tag))
        try:
            shutil.copyfile(self.log_path, kept)
        except OSError:
            return '(none)'
        return kept

    def halt(self):
        """Stop QEMU and close its channels; keep the scratch directory."""
        if self.proc and self.proc.poll() is None:
            try:
                if self.qmp:
                    self.qmp.execute('quit')
            except (VMError, OSError, ValueError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for c in (self.qmp, self.shell):
            if c:
                c.close()
        self.qmp = self.shell = None
        if self.qemu_err:
            self.qemu_err.close()
            self.qemu_err = None
        # Device memory starts empty on every boot (the oracle counts it).
        if self.shmdir:
            for f in os.listdir(self.shmdir):
                os.unlink(os.path.join(self.shmdir, f))

    def stop(self):
        self.halt()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        if self.shmdir:
            shutil.rmtree(self.shmdir, ignore_errors=True)
            self.shmdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- guest

    def run(self, cmd, timeout=60):
        """Run @cmd with sh in the guest; return (rc, output)."""
        if self.verbose:
            first = cmd.strip().splitlines()[0] if cmd.strip() else ''
            print('  guest$ ' + first + (' ...' if '\n' in cmd.strip()
                                          else ''), file=sys.stderr)
        try:
            rc, out = self.shell.run(cmd, timeout * self.slow,
                                     alive=self.alive)
        except CommandTimeout as e:
            self.gone()
            raise CommandTimeout('%s\n%s' % (e, self.post_mortem())) \
                from None
        except VMError:
            # The channel closing usually means QEMU is going away (a
            # panic with -no-reboot): report that, with the console path.
            self.gone()
            raise
        if self.verbose and out.strip():
            lines = out.rstrip('\n').splitlines()
            for l in lines[:25]:
                print('  | ' + l, file=sys.stderr)
            if len(lines) > 25:
                print('  | ... (%d more lines)' % (len(lines) - 25),
                      file=sys.stderr)
            if rc:
                print('  | (rc %d)' % rc, file=sys.stderr)
        return rc, out

    # Regions of "info registers -a": a vCPU's header, its program
    # counter (x86-64, arm64) and whether it waits in HLT (x86-64).
    CPU_RE = re.compile(r'^CPU#(\d+)', re.M)
    PC_RE = re.compile(r'\b(?:RIP|PC)=([0-9a-f]+)')
    HLT_RE = re.compile(r'\bHLT=(\d)')

    def vcpu_states(self):
        """[(cpu, pc, halted)] from QEMU's register dump; halted is None
        where the architecture does not say."""
        out = self.qmp.execute('human-monitor-command',
                               **{'command-line': 'info registers -a'})
        heads = list(self.CPU_RE.finditer(out))
        states = []
        for i, h in enumerate(heads):
            end = heads[i + 1].start() if i + 1 < len(heads) else len(out)
            part = out[h.start():end]
            pc = self.PC_RE.search(part)
            hlt = self.HLT_RE.search(part)
            states.append((int(h.group(1)), pc.group(1) if pc else '?',
                           hlt.group(1) == '1' if hlt else None))
        return states

    def kernel_symbols(self):
        """[(address, name)] of the running guest kernel's text, sorted:
        its System.map moved by KASLR's offset (the guest's _stext against
        the map's), plus the loaded modules' text from /proc/kallsyms."""
        if self._symbols is not None:
            return self._symbols
        k = self.kernel
        tree = {'vmdebug': 'debug', 'vmbuiltin': 'builtin'}.get(
            k.kver.rpartition('-')[2])
        path = os.path.join(VMCACHE, tree, 'linux', 'System.map') if tree \
            else os.path.join(k.root, 'boot', 'System.map-' + k.kver)
        syms, stext = self._read_map(path)
        if len(syms) < 1000:
            # Debian ships a placeholder System.map (the real one is in
            # the -dbg package): take the guest's kallsyms once, kept
            # relative to _stext, which makes it valid for every boot.
            path = os.path.join(VMCACHE, k.kver, 'kallsyms-text')
            if not os.path.exists(path):
                out = self.check("grep -e ' _stext$' -e ' [tT] ' "
                                 "/proc/kallsyms | grep -v '\\['",
                                 timeout=300)
                with open(path + '.tmp', 'w') as f:
                    f.write(out)
                os.replace(path + '.tmp', path)
            syms, stext = self._read_map(path)
        out = self.check("grep -e ' _stext$' -e '^[0-9a-f]* [tT] .*\\[' "
                         "/proc/kallsyms")
        mods = []
        for p in (line.split() for line in out.splitlines()):
            if len(p) == 3 and p[2] == '_stext':
                for sym in syms:
                    sym[0] += int(p[0], 16) - stext
            elif len(p) == 4:
                mods.append([int(p[0], 16), '%s %s' % (p[2], p[3])])
        self._symbols = sorted(syms + mods)
        return self._symbols

    @staticmethod
    def _read_map(path):
        """([[address, name]] of text symbols, address of _stext) of a
        System.map or kallsyms file."""
        syms, stext = [], 0
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) < 3:
                    continue
                if p[2] == '_stext':
                    stext = int(p[0], 16)
                if p[1] in 'tT':
                    syms.append([int(p[0], 16), p[2]])
        return syms, stext

    def profile(self, until, timeout, hz=20):
        """Sample where the vCPUs are until until() is true or @timeout
        seconds pass: a sampling profiler of the guest kernel that needs
        nothing from it (QEMU's register dump, as in post_mortem()).

        Returns (seconds, samples, Counter of busy samples by function;
        a vCPU waiting in HLT counts as a sample, not as busy)."""
        syms = self.kernel_symbols()
        addrs = [a for a, _ in syms]
        hot = collections.Counter()
        n = 0
        t0 = time.monotonic()
        while not until() and time.monotonic() - t0 < timeout:
            for _, pc, halted in self.vcpu_states():
                n += 1
                if halted:
                    continue
                i = bisect.bisect_right(addrs, int(pc, 16)) - 1 \
                    if pc != '?' else -1
                hot[syms[i][1] if i >= 0 else '?'] += 1
            time.sleep(1.0 / hz)
        return time.monotonic() - t0, n, hot

    def post_mortem(self, samples=5):
        """For a guest that stopped taking commands: one line saying
        whether its kernel still runs. Where the vCPUs are (sampled from
        QEMU, which needs nothing from the guest), then SysRq w and l by
        the emulated keyboard (blocked tasks, a backtrace of every CPU):
        a kernel that answers prints them to the console, one that is
        stuck with interrupts off on every CPU does not. The samples go
        to <name>.postmortem next to the console log."""
        try:
            seen = []
            for i in range(samples):
                if i:
                    time.sleep(1)
                seen.append(self.vcpu_states())
            before = len(self.console().splitlines())
            # arm64's virt machine has no keyboard.
            keys = ('w', 'l') if self.kernel.arch.name == 'x86_64' else ()
            for key in keys:
                self.qmp.execute('send-key', keys=[
                    {'type': 'qcode', 'data': k}
                    for k in ('alt', 'sysrq', key)])
                time.sleep(1)
            grown = 0
            for _ in range(10 * self.slow):
                time.sleep(1)
                n = len(self.console().splitlines()) - before
                if n and n == grown:
                    break
                grown = n
        except (VMError, OSError, ValueError) as e:
            return 'post-mortem: QEMU did not answer (%s)' % e
        path = os.path.join(self.logdir, self.name + '.postmortem')
        with open(path, 'w') as f:
            for i, states in enumerate(seen):
                f.write('sample %d: %s\n' % (i, ' '.join(
                    'cpu%d pc=%s%s' % (c, pc, {True: ' HLT', False: '',
                                               None: ''}[h])
                    for c, pc, h in states)))
        cpus = {}
        for states in seen:
            for c, pc, h in states:
                cpus.setdefault(c, []).append((pc, h))
        where = '; '.join(
            'cpu%d %s' % (c, 'halted in %d of %d samples' %
                          (sum(1 for _, h in v if h), len(v))
                          if any(h is not None for _, h in v) else
                          '%d distinct pcs' % len({pc for pc, _ in v}))
            for c, v in sorted(cpus.items()))
        answer = ('not sent (no keyboard)' if not keys else
                  '%d console lines, the kernel runs' % grown if grown else
                  'no answer on the console')
        return ('post-mortem: %s; SysRq w+l: %s (samples in %s)'
                % (where, answer, path))

    def load_crash_kernel(self, append=''):
        """kexec -p the kernel and initramfs in /kexec/ (VM(kexec=True)).

        The crash kernel boots with this kernel's command line, less
        crashkernel=, plus @append; its init loads the module under test
        and serves the shell again."""
        self.check('args=$(sed -e "s/crashkernel=[^ ]*//" /proc/cmdline); '
                   'kexec -p /kexec/vmlinuz --initrd=/kexec/initrd '
                   '--append="$args irqpoll nr_cpus=1 reset_devices %s" && '
                   'test "$(cat /sys/kernel/kexec_crash_loaded)" = 1'
                   % append, timeout=120)

    def next_kernel(self, trigger, timeout=300):
        """Run @trigger, which ends this kernel (sysrq-c, kexec -e), and
        wait until the kernel that follows serves the shell."""
        # What the dying kernel prints (sysrq-c's panic and backtrace)
        # is asked for: console_lines() leaves it out, up to the next
        # kernel's banner.
        self.handovers.append(len(self.console().splitlines()))
        self.check('(sleep 1; %s) </dev/null >/dev/null 2>&1 &' % trigger)
        self.shell.buf = b''
        self.wait_ready(timeout * self.slow)

    def check(self, cmd, timeout=60):
        """Run @cmd; raise VMError unless it exits 0; return its output."""
        rc, out = self.run(cmd, timeout)
        if rc:
            raise VMError('guest command failed (rc %d): %s\n%s'
                          % (rc, cmd, out))
        return out

    def meminfo(self):
        out = self.check('cat /proc/meminfo')
        info = {}
        for l in out.splitlines():
            m = re.match(r'(\S+):\s+(\d+)', l)
            if m:
                info[m.group(1)] = int(m.group(2))
        return info

    def memtotal_kb(self):
        out = self.check("sed -n 's/^MemTotal: *//p' /proc/meminfo")
        return int(out.split()[0])

    def block_size(self):
        return int(self.check(
            'cat /sys/devices/system/memory/block_size_bytes').strip(), 16)

    def memory_blocks(self):
        """{block id: {'state', 'zones', 'node', 'start'}} for all blocks."""
        out = self.check(r'''
cd /sys/devices/system/memory || exit 1
read bs <block_size_bytes; echo "bs $bs"
for d in memory[0-9]*; do
	read s <$d/state; z=; read z <$d/valid_zones 2>/dev/null
	echo "b ${d#memory} $s ${z:-none}"
done
for f in /sys/devices/system/node/node[0-9]*/memory[0-9]*; do
	[ -e "$f" ] || continue
	n=${f#/sys/devices/system/node/node}; echo "n ${n%%/*} ${f##*/memory}"
done''')
        bs, blocks = 0, {}
        for l in out.splitlines():
            p = l.split()
            if p[0] == 'bs':
                bs = int(p[1], 16)
            elif p[0] == 'b':
                blocks[int(p[1])] = {'state': p[2], 'zones': p[3:],
                                     'node': None}
            elif p[0] == 'n' and int(p[2]) in blocks:
                blocks[int(p[2])]['node'] = int(p[1])
        for i, b in blocks.items():
            b['start'] = i * bs
        self._bs = bs
        return blocks

    def blocks_in(self, dev_id, blocks=None):
        """The memory blocks lying in device @dev_id's region."""
        blocks = self.memory_blocks() if blocks is None else blocks
        start, size = self.region(dev_id)
        return {i: b for i, b in blocks.items()
                if b['start'] >= start and b['start'] < start + size}

    def dmesg(self):
        return self.check('dmesg -s 4194304')

    def console(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def known_reports(self):
        """[(name, first line, last line)] of KNOWN_REPORTS in the console.

        A report runs from its "=====" rule to the end of its stack
        backtrace (the first "</TASK>" after "stack backtrace:")."""
        lines = self.console().splitlines()
        found = []
        i = 0
        while i < len(lines):
            if 'possible circular locking dependency' not in lines[i]:
                i += 1
                continue
            a = i - 1 if i and '=====' in lines[i - 1] else i
            b, trace = i, False
            while b < len(lines) - 1:
                b += 1
                if 'stack backtrace:' in lines[b]:
                    trace = True
                elif trace and '</TASK>' in lines[b]:
                    break
            text = '\n'.join(lines[a:b + 1])
            for name, pats in KNOWN_REPORTS:
                if trace and all(re.search(p, text) for p in pats):
                    found.append((name, a, b))
                    break
            i = b + 1
        return found

    def console_lines(self):
        """Console lines, with the lines of known reports blanked."""
        lines = self.console().splitlines()
        for _, a, b in self.known_reports():
            lines[a:b + 1] = [''] * (b + 1 - a)
        for a in self.handovers:
            b = a
            while b < len(lines) and 'Linux version ' not in lines[b]:
                lines[b] = ''
                b += 1
        return lines

    def console_problems(self):
        """Console lines matching CONSOLE_PATTERNS, with line numbers."""
        return [(i + 1, l) for i, l in enumerate(self.console_lines())
                if CONSOLE_RE.search(l)]

    def tcg_lost_wakeup(self):
        """The console line that shows TCG lost an idle vCPU's wakeup
        (TCG_LOST_WAKEUP_RE), or None."""
        for l in self.console_lines():
            if TCG_LOST_WAKEUP_RE.search(l):
                return l.strip()
        return None

    def console_excerpt(self, context=20, limit=120):
        lines = self.console().splitlines()
        kept = self.console_lines()
        hits = [i for i, l in enumerate(kept) if CONSOLE_RE.search(l)]
        if not hits:
            return '\n'.join(lines[-context:])
        a = max(0, hits[0] - 8)
        return '\n'.join(lines[a:a + limit])

    # -- host side

    def memory_devices(self):
        """{id: data} from query-memory-devices (virtio-mem only)."""
        return {d['data']['id']: d['data']
                for d in self.qmp.execute('query-memory-devices')
                if d.get('type') == 'virtio-mem'}

    def region(self, dev_id):
        d = self.memory_devices()[dev_id]
        return d['memaddr'], d['max-size']

    def set_requested(self, dev_id, size):
        size = parse_size(size)
        if self.verbose:
            print('  host: %s requested-size=%s' % (dev_id, fmt_size(size)),
                  file=sys.stderr)
        self.qmp.execute('qom-set', path='/machine/peripheral/' + dev_id,
                         property='requested-size', value=size)

    def qom_get(self, dev_id, prop):
        return self.qmp.execute('qom-get', path='/machine/peripheral/' +
                                dev_id, property=prop)

    def plugged(self, dev_id):
        return self.qom_get(dev_id, 'size')

    def requested(self, dev_id):
        return self.qom_get(dev_id, 'requested-size')

    def wait_plugged(self, dev_id, size, timeout=120):
        size = parse_size(size)
        timeout *= self.slow
        return wait_for(lambda: self.plugged(dev_id) == size, timeout,
                        what='%s plugged size == %s (now %s)'
                        % (dev_id, fmt_size(size), 'see log'),
                        alive=self.alive)

    def wait_stable(self, dev_id, quiet=3.0, timeout=120):
        """Wait until @dev_id's plugged size has not grown for @quiet s.

        Returns the final size. (A shrinking size counts as stable.)"""
        timeout *= self.slow
        deadline = time.monotonic() + timeout
        last = self.plugged(dev_id)
        since = time.monotonic()
        while True:
            self.alive()
            time.sleep(0.25)
            cur = self.plugged(dev_id)
            if cur > last:
                since = time.monotonic()
            last = cur
            if time.monotonic() - since >= quiet:
                return cur
            if time.monotonic() > deadline:
                raise TimeoutError('%s size still growing after %ss'
                                   % (dev_id, timeout))

    def oracle(self):
        """The host-side check that the guest never touched unplugged
        memory (C5/C6): for each device with a shared backend, memory
        allocated behind the backend must not exceed what is plugged.
        Read plugged before and after, so that a resize in between is
        judged by the larger size. Returns the problems found, as text,
        and remembers them for console-like reporting at the end."""
        out = []
        for d in self.devices:
            if not d.backend or not os.path.exists(d.backend):
                continue
            before = self.plugged(d.id)
            alloc = d.backend_allocated()
            plugged = max(before, self.plugged(d.id))
            if alloc > plugged + ORACLE_SLACK:
                out.append('%s: %s of the backend allocated, %s plugged'
                           % (d.id, fmt_size(alloc), fmt_size(plugged)))
        self.oracle_seen += out
        return out

    def system_reset(self, wait=False, timeout=300):
        """QMP system_reset; with @wait, until the guest serves the shell
        again (needs VM(reboot=True): -no-reboot makes a reset a quit)."""
        if wait:
            self.handovers.append(len(self.console().splitlines()))
            self.shell.buf = b''
        self.qmp.execute('system_reset')
        if wait:
            self.wait_ready(timeout * self.slow)

    def wait(self, pred, timeout, what='condition', interval=0.25):
        return wait_for(pred, timeout * self.slow, interval, what,
                        alive=self.alive)


def shell_quote(s):
    if re.fullmatch(r'[\w@%+=:,./-]+', s):
        return s
    return "'" + s.replace("'", "'\\''") + "'"


def resolve_module(kver, module):
    """'distro' and 'builtin' stay as they are; a path must exist."""
    if module in (None, 'distro', 'none'):
        return None if module == 'none' else 'distro'
    if module == 'builtin':
        if 'virtio_mem' not in Kernel(kver).builtin:
            raise VMError('%s: virtio_mem is not built in' % kver)
        return module
    if not os.path.exists(module):
        raise VMError('%s does not exist (build it with "make modules '
                      'KVER=%s")' % (module, kver))
    return os.path.abspath(module)
