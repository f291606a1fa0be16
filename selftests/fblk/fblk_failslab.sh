#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Allocation failures (debugfs fault injection: failslab, then
# fail_page_alloc) injected into fblk's ioctls and I/O.  Only the test's own
# python3 process fails its allocations (task-filter=Y, and it sets
# /proc/self/make-it-fail around each call and clears it after), with a
# probability swept over 3, 20 and 60 percent; verbose=0 so that an injected
# failure prints no stack.  For each kind:
#  1. attach (FBLK_CTL_ADD, then FBLK_CONFIGURE): each call succeeds or
#     fails with ENOMEM, and a device whose configure failed is unbound and
#     can be configured without injection;
#  2. I/O (O_DIRECT pwrite and pread on /dev/fblkN, buffered over a file in
#     /tmp and direct over /dev/ram3): each call succeeds or fails with
#     ENOMEM or EIO, none hangs; every write that succeeded reads back
#     without injection, and the device still works;
#  3. detach and remove: each succeeds or fails with ENOMEM (or EBUSY, for
#     a remove), a failed detach leaves the device bound and working, and the
#     device comes apart without injection afterwards;
#  4. the injection did fire, and the fblk devices are those of the start.
# Kernels without CONFIG_FAILSLAB / CONFIG_FAIL_PAGE_ALLOC (the stock Debian
# ones) skip with a reason that names the kernel.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DBG=/sys/kernel/debug
RAMDISK=/dev/ram3
PROBS="3 20 60"
ROUNDS=5

tap_plan 8
fblk_require_module || tap_done


_FS_PY='
import errno, fcntl, mmap, os, struct, sys, time

def ioc(d, nr, size):
    return (d << 30) | (size << 16) | (0xFB << 8) | nr

CONFIGURE = ioc(1, 0x01, 96)
DETACH = ioc(0, 0x02, 0)
CTL_ADD = ioc(3, 0x80, 64)
CTL_REMOVE = ioc(0, 0x81, 0)
FL_DIRECT = 8

fail_fd = os.open("/proc/self/make-it-fail", os.O_WRONLY)
ON, OFF = b"1", b"0"
outcomes = {}
result = None
bad = []

def inject(fn, *args):
    """fn(*args) with injection on; returns None or the errno."""
    global result
    os.write(fail_fd, ON)
    try:
        result = fn(*args)
        err = None
    except OSError as e:
        err = e.errno
    finally:
        os.write(fail_fd, OFF)
    return err

def note(op, err, allowed=(errno.ENOMEM,)):
    name = "ok" if err is None else errno.errorcode.get(err, str(err))
    outcomes[(op, name)] = outcomes.get((op, name), 0) + 1
    if err is not None and err not in allowed:
        bad.append("%s: %s" % (op, os.strerror(err)))

def sysfs(n, attr):
    with open("/sys/block/fblk%d/%s" % (n, attr)) as f:
        return f.read().strip()

def node(n):
    # An injected failure may cost devtmpfs its node: make one if so.
    path = "/dev/fblk%d" % n
    for _ in range(20):
        if os.path.exists(path):
            return path
        time.sleep(0.05)
    maj, mi = map(int, sysfs(n, "dev").split(":"))
    os.mknod(path, 0o600 | 0o060000, os.makedev(maj, mi))
    return path

def ctl_remove(ctl, n):
    for _ in range(50):
        try:
            fcntl.ioctl(ctl, CTL_REMOVE, n)
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
        time.sleep(0.1)
    fcntl.ioctl(ctl, CTL_REMOVE, n)

def conf(backing_fd, direct):
    return struct.pack("=IIQQII64x", backing_fd, 4096, 0, 0, FL_DIRECT if direct else 0, 0)

def add(ctl):
    req = bytearray(struct.pack("=iIII48x", -1, 0, 0, 0))
    err = inject(fcntl.ioctl, ctl, CTL_ADD, req)
    return err, struct.unpack_from("=i", req)[0]

def check_io(fd, buf):
    """A 4 KiB write and read at 0 without injection."""
    buf[:4096] = os.urandom(4096)
    data = bytes(buf[:4096])
    os.pwritev(fd, [memoryview(buf)[:4096]], 0)
    buf[:4096] = bytes(4096)
    os.preadv(fd, [memoryview(buf)[:4096]], 0)
    return bytes(buf[:4096]) == data

def attach_loop(backing, rounds, direct):
    ctl = os.open("/dev/fblk-control", os.O_RDWR)
    bfd = os.open(backing, os.O_RDWR)
    buf = mmap.mmap(-1, 1 << 20)
    buf[:] = bytes(1 << 20)
    for _ in range(rounds):
        err, n = add(ctl)
        note("add", err)
        if err is not None:
            continue
        try:
            fd = os.open(node(n), os.O_RDWR | os.O_DIRECT)
            try:
                err = inject(fcntl.ioctl, fd, CONFIGURE, conf(bfd, direct))
                note("configure", err)
                state = sysfs(n, "fblk/state")
                if err is None and state != "bound":
                    bad.append("configure succeeded, state %s" % state)
                if err is not None:
                    if state != "unbound":
                        bad.append("configure failed, state %s" % state)
                    # the same device configures without injection
                    fcntl.ioctl(fd, CONFIGURE, conf(bfd, direct))
                os.close(fd)
                fd = os.open(node(n), os.O_RDWR | os.O_DIRECT)
                if not check_io(fd, buf):
                    bad.append("fblk%d: data did not read back after attach" % n)
                fcntl.ioctl(fd, DETACH)
            finally:
                os.close(fd)
        finally:
            ctl_remove(ctl, n)

def detach_loop(backing, rounds, direct):
    ctl = os.open("/dev/fblk-control", os.O_RDWR)
    bfd = os.open(backing, os.O_RDWR)
    buf = mmap.mmap(-1, 1 << 20)
    buf[:] = bytes(1 << 20)
    for _ in range(rounds):
        req = bytearray(struct.pack("=iIII48x", -1, 0, 0, 0))
        fcntl.ioctl(ctl, CTL_ADD, req)
        n = struct.unpack_from("=i", req)[0]
        path = node(n)
        try:
            fd = os.open(path, os.O_RDWR | os.O_DIRECT)
            fcntl.ioctl(fd, CONFIGURE, conf(bfd, direct))
            os.close(fd)
            fd = os.open(path, os.O_RDONLY)
            err = inject(fcntl.ioctl, fd, DETACH)
            note("detach", err)
            os.close(fd)
            if err is not None:
                if sysfs(n, "fblk/state") != "bound":
                    bad.append("detach failed, state %s" % sysfs(n, "fblk/state"))
                fd = os.open(path, os.O_RDWR | os.O_DIRECT)
                if not check_io(fd, buf):
                    bad.append("fblk%d: data did not read back after a failed detach" % n)
                fcntl.ioctl(fd, DETACH)
                os.close(fd)
            err = inject(fcntl.ioctl, ctl, CTL_REMOVE, n)
            note("remove", err, (errno.ENOMEM, errno.EBUSY))
            if err is None:
                n = -1
        finally:
            if n >= 0:
                ctl_remove(ctl, n)

def io_loop(dev, rounds):
    """Writes of 64 KiB at random slots with injection; what succeeded must read back."""
    import random
    fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
    size = os.lseek(fd, 0, os.SEEK_END)
    slots = size // 65536
    buf = mmap.mmap(-1, 65536)
    expect = {}
    for i in range(rounds):
        slot = random.randrange(slots)
        data = os.urandom(65536)
        buf[:] = data
        t = time.monotonic()
        err = inject(os.pwritev, fd, [buf], slot * 65536)
        note("write", err, (errno.ENOMEM, errno.EIO))
        if err is None and result != 65536:
            note("write-short", None)
            expect.pop(slot, None)
        elif err is None:
            expect[slot] = data
        else:
            expect.pop(slot, None)	# unknown now
        err = inject(os.preadv, fd, [buf], random.randrange(slots) * 65536)
        note("read", err, (errno.ENOMEM, errno.EIO))
        if time.monotonic() - t > 20:
            bad.append("a write and read took %.0f s" % (time.monotonic() - t))
    for slot, data in expect.items():
        os.preadv(fd, [buf], slot * 65536)
        if bytes(buf) != data:
            bad.append("slot %d: a write that succeeded does not read back" % slot)
    if not check_io(fd, buf):
        bad.append("the device does not work after the injection")

def main(cmd, *args):
    if cmd == "attach":
        attach_loop(args[0], int(args[1]), args[2] == "direct")
    elif cmd == "detach":
        detach_loop(args[0], int(args[1]), args[2] == "direct")
    elif cmd == "io":
        io_loop(args[0], int(args[1]))
    print("# outcomes: " + " ".join("%s:%s=%d" % (k[0], k[1], v) for k, v in sorted(outcomes.items())))
    for b in bad[:10]:
        print("# " + b)
    sys.exit(1 if bad else 0)

main(*sys.argv[1:])
'

fspy() {
	timeout 120 python3 -c "$_FS_PY" "$@"
}

count_devices() {
	local n=0 d
	for d in /sys/block/fblk*; do
		[ -e "$d" ] && n=$((n + 1))
	done
	echo $n
}

# knob KIND NAME VALUE
knob() {
	echo "$3" >"$DBG/$1/$2"
}

# arm KIND PROBABILITY: only tasks with make-it-fail, every kind of
# allocation, no stack dumps, at most 100000 failures.
arm() {
	knob "$1" task-filter Y &&
	knob "$1" verbose 0 &&
	knob "$1" interval 1 &&
	knob "$1" times 100000 &&
	knob "$1" space 0 &&
	knob "$1" ignore-gfp-wait N &&
	if [ "$1" = fail_page_alloc ]; then
		knob "$1" ignore-gfp-highmem N && knob "$1" min-order 0
	fi &&
	knob "$1" probability "$2"
}

disarm() {
	knob "$1" probability 0
	knob "$1" times 1
}

img=$(fblk_image "$FBLK_SCRATCH_TMP" 8M)
dd if=/dev/urandom of="$img" bs=1M count=8 conv=notrunc status=none

# sweep KIND CASE CMD ARGS...: run the python CMD at each probability, with
# the given ARGS, twice (buffered over the file, direct over the ram disk).
sweep() {
	local kind=$1 p rc=0
	shift
	for p in $PROBS; do
		arm "$kind" "$p" || { diag "cannot arm $kind"; return 1; }
		fspy "$1" "$img" $ROUNDS buffered || rc=1
		fspy "$1" "$RAMDISK" $ROUNDS direct || rc=1
		disarm "$kind"
	done
	return $rc
}

for kind in failslab fail_page_alloc; do
	if [ ! -d "$DBG/$kind" ]; then
		for t in "attach" "I/O" "detach and remove" "fired, devices back to baseline"; do
			skip "$kind: $t" "kernel has no $kind (CONFIG_FAULT_INJECTION_DEBUG_FS, CONFIG_${kind^^})"
		done
		continue
	fi
	fblk_at_exit "echo 0 >'$DBG/$kind/probability'"
	base=$(count_devices)

	# 1: attach
	if sweep "$kind" attach; then
		ok "$kind: attach under injection succeeds or fails with ENOMEM, and recovers"
	else
		not_ok "$kind: attach under injection succeeds or fails with ENOMEM, and recovers"
	fi

	# 2: I/O, on a device attached without injection
	rc=0
	fdev=$(fblk_attach "$img" bs=4096)
	rdev=$(fblk_attach "$RAMDISK" bs=4096 direct)
	if [ -z "$fdev" ] || [ -z "$rdev" ]; then
		not_ok "$kind: I/O under injection succeeds or fails with ENOMEM/EIO, writes that succeeded read back" "attach failed"
	else
		fired=0
		for p in $PROBS; do
			arm "$kind" "$p" || rc=1
			fspy io "$fdev" 16 || rc=1
			fspy io "$rdev" 16 || rc=1
			fired=$((fired + 100000 - $(cat "$DBG/$kind/times")))
			disarm "$kind"
		done
		diag "$kind: $fired failures injected into I/O; errors: $(fblk_attr "$fdev" stats | awk '$1 == "errors" {print $2}') and $(fblk_attr "$rdev" stats | awk '$1 == "errors" {print $2}')"
		if [ $rc = 0 ]; then
			ok "$kind: I/O under injection succeeds or fails with ENOMEM/EIO, writes that succeeded read back"
		else
			not_ok "$kind: I/O under injection succeeds or fails with ENOMEM/EIO, writes that succeeded read back"
		fi
		fblk_detach "$fdev"
		fblk_detach "$rdev"
	fi

	# 3: detach and remove
	if sweep "$kind" detach; then
		ok "$kind: detach and remove under injection succeed or fail cleanly, the device stays usable"
	else
		not_ok "$kind: detach and remove under injection succeed or fail cleanly, the device stays usable"
	fi

	# 4: fired at all, and nothing left behind (our two I/O devices are
	# detached but still exist: they go at exit)
	arm "$kind" 60 && fspy attach "$img" 2 buffered >/dev/null
	fired=$((100000 - $(cat "$DBG/$kind/times")))
	disarm "$kind"
	now=$(count_devices)
	extra=$((now - base - 2))
	if [ "$fired" -gt 0 ] && [ "$extra" = 0 ]; then
		ok "$kind: injection fired ($fired in the last check), devices back to baseline"
	else
		not_ok "$kind: injection fired, devices back to baseline" "fired $fired, $extra devices more than at the start"
	fi
done

tap_done
