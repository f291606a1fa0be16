#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers for the fblk shell selftests; source it, do not run it.
#
# TAP:    tap_plan N; ok DESC; not_ok DESC [WHY]; skip DESC WHY;
#         check DESC CMD...  (ok if CMD succeeds); tap_done (exits 0/1/4).
# Setup:  fblk_image DIR SIZE      a sparse file, removed at exit
#         fblk_attach FILE [ro] [direct] [partscan] [autoclear]
#                     [bs=N] [offset=N] [sizelimit=N]
#                                  a new /dev/fblkN bound to FILE, detached
#                                  and removed at exit (prints the path);
#                                  FBLK_QUEUES=N in the environment: N queues
#         fblk_detach DEV; fblk_set_capacity DEV
#         fblk_attr DEV ATTR       /sys/block/fblkN/fblk/ATTR
#         fblk_mount DEV DIR [OPTS], fblk_mkdir: undone at exit
#         fblk_at_exit CMD...      run CMD at exit (last registered first)
# Devices are made and bound through the ABI itself (python3 ioctls), so the
# tests do not depend on fblksetup.

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

_tap_planned=0
_tap_count=0
_tap_failed=0
_tap_skipped=0

FBLK_SCRATCH=${FBLK_SCRATCH:-/tmp}
FBLK_SCRATCH_XFS=${FBLK_SCRATCH_XFS:-}
FBLK_SCRATCH_TMP=${FBLK_SCRATCH_TMP:-/tmp}
FBLK_T_STATE=$(mktemp -d /tmp/fblk-sh.XXXXXX) || exit $KSFT_FAIL
: >"$FBLK_T_STATE/devices"
: >"$FBLK_T_STATE/at-exit"

# fblk_load N [MIN]: N (seconds or rounds of load) scaled by FBLK_LOAD_SCALE
# percent, never below MIN (default 1).  The debug kernel's runs scale their
# loads down (tools/vm/vm.sh): what it adds is a check on every path taken,
# and a path is taken in the first seconds of a load as in its last.
fblk_load() {
	local n=$(($1 * ${FBLK_LOAD_SCALE:-100} / 100)) min=${2:-1}
	echo $((n < min ? min : n))
}

tap_plan() {
	_tap_planned=$1
	echo "TAP version 13"
	echo "1..$1"
}

ok() {
	_tap_count=$((_tap_count + 1))
	echo "ok $_tap_count $1"
}

not_ok() {
	_tap_count=$((_tap_count + 1))
	_tap_failed=$((_tap_failed + 1))
	echo "not ok $_tap_count $1"
	[ -z "${2:-}" ] || echo "# $2"
}

# Only for a kernel feature that is absent: say which.
skip() {
	_tap_count=$((_tap_count + 1))
	_tap_skipped=$((_tap_skipped + 1))
	echo "ok $_tap_count $1 # SKIP $2"
}

diag() {
	echo "# $*"
}

# check DESC CMD...: ok if CMD exits 0; its output goes to the log as comments.
check() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/# /'
	if [ $rc = 0 ]; then
		ok "$desc"
	else
		not_ok "$desc" "'$*' exited $rc"
	fi
}

# Report cases the plan promised but a test never reached, then exit.
tap_done() {
	while [ "$_tap_count" -lt "$_tap_planned" ]; do
		not_ok "test $((_tap_count + 1)) did not run (the script stopped early)"
	done
	echo "# $((_tap_count - _tap_failed - _tap_skipped)) passed, $_tap_failed failed, $_tap_skipped skipped"
	if [ "$_tap_failed" -gt 0 ]; then
		exit $KSFT_FAIL
	elif [ "$_tap_skipped" -gt 0 ] && [ "$_tap_skipped" = "$_tap_count" ]; then
		exit $KSFT_SKIP
	fi
	exit $KSFT_PASS
}

# Kept in a file, so that helpers called in $(...) can register too.
fblk_at_exit() {
	printf '%s\n' "$*" >>"$FBLK_T_STATE/at-exit"
}

# Undo everything.  Detach devices first (newest first, so stacked ones
# come apart top-down; a mounted one detaches when it is unmounted), then run
# the registered commands (newest first), then remove the devices.
_fblk_cleanup() {
	local cmd dev
	tac "$FBLK_T_STATE/devices" 2>/dev/null | while read -r dev; do
		_fblk_ioctl detach "$dev" >/dev/null 2>&1
	done
	tac "$FBLK_T_STATE/at-exit" 2>/dev/null | while read -r cmd; do
		eval "$cmd" >/dev/null 2>&1
	done
	tac "$FBLK_T_STATE/devices" 2>/dev/null | while read -r dev; do
		_fblk_ioctl remove "$dev" >/dev/null 2>&1
	done
	rm -rf "$FBLK_T_STATE"
}
trap _fblk_cleanup EXIT
trap 'exit $KSFT_FAIL' INT TERM

# The ABI through python3: add, remove, configure, detach, setcap.
# Numbers come from include/uapi/linux/fblk.h (_IOW etc. spelled out).
_FBLK_PY='
import errno, fcntl, os, struct, sys, time

def ioc(d, nr, size):
    return (d << 30) | (size << 16) | (0xFB << 8) | nr

CONFIGURE = ioc(1, 0x01, 96)
DETACH = ioc(0, 0x02, 0)
SET_CAPACITY = ioc(0, 0x04, 0)
CTL_ADD = ioc(3, 0x80, 64)
CTL_REMOVE = ioc(0, 0x81, 0)
FL = {"ro": 1, "autoclear": 2, "partscan": 4, "direct": 8}

def devnum(dev):
    return int(dev.rsplit("fblk", 1)[1])

def open_node(path, flags):
    # FBLK_IOCTL_FD: a device descriptor the caller holds, used as it is
    if path != "/dev/fblk-control" and os.environ.get("FBLK_IOCTL_FD"):
        return int(os.environ["FBLK_IOCTL_FD"])
    for _ in range(50):
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            time.sleep(0.1)
    return os.open(path, flags)

def main(cmd, *args):
    if cmd in ("add", "remove"):
        ctl = os.open("/dev/fblk-control", os.O_RDWR)
        if cmd == "add":
            queues = int(os.environ.get("FBLK_QUEUES", "0"))
            req = bytearray(struct.pack("=iIII48x", -1, queues, 0, 0))
            fcntl.ioctl(ctl, CTL_ADD, req)
            print("/dev/fblk%d" % struct.unpack_from("=i", req)[0])
        else:
            # a deferred detach may take a moment to finish
            for _ in range(50):
                try:
                    fcntl.ioctl(ctl, CTL_REMOVE, devnum(args[0]))
                    return
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        raise
                time.sleep(0.1)
            fcntl.ioctl(ctl, CTL_REMOVE, devnum(args[0]))
        return
    dev = args[0]
    if cmd == "configure":
        path, opts = args[1], args[2:]
        flags, bs, off, lim = 0, 0, 0, 0
        for o in opts:
            if o.startswith("bs="):
                bs = int(o[3:])
            elif o.startswith("offset="):
                off = int(o[7:])
            elif o.startswith("sizelimit="):
                lim = int(o[10:])
            else:
                flags |= FL[o]
        mode = os.O_RDONLY if flags & FL["ro"] else os.O_RDWR
        backing = os.open(path, mode)
        fd = open_node(dev, os.O_RDWR)
        fcntl.ioctl(fd, CONFIGURE, struct.pack("=IIQQII64x", backing, bs, off, lim, flags, 0))
        return
    fd = open_node(dev, os.O_RDONLY)
    fcntl.ioctl(fd, {"detach": DETACH, "setcap": SET_CAPACITY}[cmd])

try:
    main(*sys.argv[1:])
except OSError as e:
    print("%s: %s" % (" ".join(sys.argv[1:]), os.strerror(e.errno)), file=sys.stderr)
    sys.exit(1)
'

_fblk_ioctl() {
	python3 -c "$_FBLK_PY" "$@"
}

fblk_require_module() {
	[ -c /dev/fblk-control ] && return 0
	echo "# /dev/fblk-control is missing: is the fblk module loaded?"
	return 1
}

# fblk_image DIR SIZE: a sparse file, removed at exit; prints its path.
fblk_image() {
	local f
	f=$(mktemp "$1/fblk-image.XXXXXX") || return 1
	fblk_at_exit "rm -f '$f'"
	truncate -s "$2" "$f" || return 1
	echo "$f"
}

# fblk_attach FILE [options]: prints /dev/fblkN.
fblk_attach() {
	local dev
	dev=$(_fblk_ioctl add) || return 1
	echo "$dev" >>"$FBLK_T_STATE/devices"
	_fblk_ioctl configure "$dev" "$@" || return 1
	echo "$dev"
}

fblk_detach() {
	_fblk_ioctl detach "$1"
}

fblk_set_capacity() {
	_fblk_ioctl setcap "$1"
}

# fblk_attr DEV ATTR: a value under /sys/block/fblkN/fblk/.
fblk_attr() {
	cat "/sys/block/${1##*/}/fblk/$2"
}

# fblk_wait_attr DEV ATTR VALUE [SECONDS]
fblk_wait_attr() {
	local i
	for ((i = 0; i < ${4:-5} * 10; i++)); do
		[ "$(fblk_attr "$1" "$2" 2>/dev/null)" = "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

# fblk_wait_node PATH: devtmpfs nodes of partitions may lag a little.
fblk_wait_node() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ -b "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

fblk_mkdir() {
	local d
	d=$(mktemp -d /tmp/fblk-mnt.XXXXXX) || return 1
	fblk_at_exit "rmdir '$d'"
	echo "$d"
}

fblk_mount() {
	mount ${3:+-o "$3"} "$1" "$2" || return 1
	fblk_at_exit "umount '$2'"
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# The size of a block device in bytes.
bdev_size() {
	blockdev --getsize64 "$1"
}

# fblk_nullb NAME MiB: a null_blk latency device, the bench's model
# (memory backed, 1 ms timer completions, 4 KiB blocks, 2 queues of 128),
# /dev/NAME, removed at exit.  blk-mq, unlike brd: it counts its I/O in
# /sys/block/NAME/stat and takes the plug-list paths brd never does.
fblk_nullb() {
	local d=/sys/kernel/config/nullb/$1 err
	if [ ! -d /sys/kernel/config/nullb ]; then
		err=$(modprobe null_blk nr_devices=0 2>&1) ||
			{ diag "modprobe null_blk: $err"; return 1; }
		fblk_at_exit "rmmod null_blk"
	fi
	[ -d /sys/kernel/config/nullb ] ||
		{ diag "null_blk loaded, but no /sys/kernel/config/nullb"; return 1; }
	err=$(mkdir "$d" 2>&1) || { diag "$err"; return 1; }
	fblk_at_exit "rmdir '$d'"
	if ! { echo 1 >"$d/memory_backed" &&
		echo 2 >"$d/irqmode" &&
		echo 1000000 >"$d/completion_nsec" &&
		echo "$2" >"$d/size" &&
		echo 4096 >"$d/blocksize" &&
		echo 128 >"$d/hw_queue_depth" &&
		echo 2 >"$d/submit_queues" &&
		echo 1 >"$d/power"; }; then
		diag "cannot set up null_blk $1"
		return 1
	fi
	fblk_at_exit "echo 0 >'$d/power'"
	fblk_wait_node "/dev/$1"
}

# fblk_snap DEV FILE: the device's engine counters, plus reads/writes
# completed and sectors read from /sys/block/<dev>/stat (fields 1, 5, 3).
fblk_snap() {
	{
		[ -r "/sys/block/${1##*/}/fblk/stats" ] && cat "/sys/block/${1##*/}/fblk/stats"
		awk '{print "rq_reads " $1; print "rq_writes " $5; print "sectors_read " $3}' \
			"/sys/block/${1##*/}/stat"
	} >"$2"
}

# fblk_val FILE NAME: a counter of a snapshot.
fblk_val() {
	awk -v n="$2" '$1 == n {print $2}' "$1"
}

# fblk_delta A B NAME: B's NAME minus A's.
fblk_delta() {
	echo $(($(fblk_val "$2" "$3") - $(fblk_val "$1" "$3")))
}

# fblk_show_delta A B: the deltas of every counter (maxima as they are), as
# one TAP comment.
fblk_show_delta() {
	diag "counters:$(awk 'NR == FNR { a[$1] = $2; next }
		{ printf " %s=%d", $1, $1 ~ /^(retries_max|pool_depth|pool_depth_max)$/ ? $2 : $2 - a[$1] }' "$1" "$2")"
}
