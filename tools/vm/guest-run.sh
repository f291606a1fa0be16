#!/bin/bash
# The test VM's runner: PID 1 after the initramfs switched to the real root.
#
# It prepares what every test may rely on (tools/vm/README.md lists it: brd,
# ext4 and xfs scratch filesystems, environment variables), then runs each
# test executable in /fblk/selftests with a time limit, or the demo, or a
# shell.  What to do comes from /results/run.env, written by the host.
#
# Output goes two ways: files in /results (the writable share) for people,
# and a line protocol on the second serial port (ttyS1) for the host, which
# keeps working when the guest dies half-way:
#   FBLK-READY                    setup done, tests start
#   FBLK-SETUP-FAIL <what>        setup failed, no test ran
#   FBLK-BEGIN <test>             a test starts; its output follows verbatim
#   FBLK-END <test> rc=<n> secs=<s>
#   FBLK-LEAK <test> <what>       the test left a mount or an fblk device behind
#   FBLK-KMEMLEAK <test> <line>   kmemleak found an object after the test
#   FBLK-DONE                     all done, the VM powers off next
# Around each test it also writes "fblk-selftest: begin/end <test>" to the
# kernel log, so the host can tell which test a kernel splat happened in.

MODE=check
FILTER=
TEST_TIMEOUT=300
# shellcheck disable=SC1091
. /results/run.env

export PATH=/fblk/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=${TERM:-linux}
export FBLK_KO=/fblk/fblk.ko FBLK_BIN=/fblk/bin
export FBLK_SCRATCH=/mnt/ext4 FBLK_SCRATCH_XFS=/mnt/xfs FBLK_SCRATCH_TMP=/tmp
# mkfs.xfs refuses filesystems under 300 MB unless all three of these are
# set (they tell it fstests is running): tests make small ones on purpose.
export TEST_DIR=/mnt/xfs TEST_DEV=/dev/ram1 QA_CHECK_FS=1

RESULTS=/results
exec </dev/console >/dev/console 2>&1
# A pipe nobody writes to: poweroff_now waits on it with bash alone.
exec 9<> <(:)

poweroff_now() {
	sync
	# poweroff -f from util-linux/systemd and busybox all power off at once
	# without init; ACPI makes qemu exit.
	echo o >/proc/sysrq-trigger 2>/dev/null
	poweroff -f 2>/dev/null
	# Both return before the power goes off, and this script is init: its
	# exit would panic the kernel ("Attempted to kill init", seen on 7.3
	# when the 9p root went away under bash).  Wait with builtins only.
	while :; do
		read -r -t 5 _ <&9
	done
}

# The host's line protocol: fd 3 is the second serial port, in raw mode so
# nothing rewrites the test output.
open_stream() {
	stty -F /dev/ttyS1 raw -echo 115200 2>/dev/null
	exec 3>/dev/ttyS1
}
emit() { printf '%s\n' "$*" >&3; }
kmsg() { printf '%s\n' "$*" >/dev/kmsg; }

setup_fail() {
	emit "FBLK-SETUP-FAIL $*"
	echo "guest-run: setup failed: $*"
	dmesg >"$RESULTS/dmesg.txt" 2>&1
	poweroff_now
}

# Mounts and scratch space every test may assume (tools/vm/README.md).
setup() {
	mount -t tmpfs -o mode=1777 tmpfs /tmp
	mkdir -p /dev/pts /dev/shm
	mount -t devpts devpts /dev/pts
	# No udev: the links bash process substitution and scripts expect.
	ln -sfn /proc/self/fd /dev/fd
	ln -sfn /proc/self/fd/0 /dev/stdin
	ln -sfn /proc/self/fd/1 /dev/stdout
	ln -sfn /proc/self/fd/2 /dev/stderr
	mount -t tmpfs tmpfs /dev/shm
	mount -t tmpfs tmpfs /run
	echo fblk-vm >/proc/sys/kernel/hostname
	# The begin/end markers must never be rate-limited away.
	echo on >/proc/sys/kernel/printk_devkmsg
	# Show test-time kernel messages on the console (the host scans it for
	# splats if the guest dies before dmesg.txt is written).  Boot used quiet.
	dmesg -n 7

	# ext4 needs crc32c; under TCG only the generic one loads for sure.
	modprobe -q crc32c_generic 2>/dev/null
	modprobe -q configfs && mount -t configfs configfs /sys/kernel/config 2>/dev/null
	mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	# kmemleak (debug kernel): what boot left unreferenced is not ours;
	# keep it aside and start the tests from a clean slate.  A scan reads
	# all of the guest's memory, about 10 s under TCG: no scans in the
	# background, one after the suite (kmemleak_final), and after each test
	# only with FBLK_KMEMLEAK_EACH=1 (to tell which test leaked).
	if [ -w /sys/kernel/debug/kmemleak ]; then
		echo scan=off >/sys/kernel/debug/kmemleak
		echo scan >/sys/kernel/debug/kmemleak
		echo scan >/sys/kernel/debug/kmemleak
		cat /sys/kernel/debug/kmemleak >"$RESULTS/kmemleak-boot.txt"
		echo clear >/sys/kernel/debug/kmemleak
	fi
	modprobe brd rd_nr=4 rd_size=262144 || setup_fail "modprobe brd"
	# Without udev nothing loads these on demand: /dev/loop-control and
	# /dev/mapper/control appear only once the modules are in.
	modprobe -q loop
	modprobe -q dm_mod
	mkdir -p /mnt/ext4 /mnt/xfs
	mkfs.ext4 -q -F /dev/ram0 >/dev/null || setup_fail "mkfs.ext4 /dev/ram0"
	mount /dev/ram0 /mnt/ext4 || setup_fail "mount ext4"
	mkfs.xfs -q -f /dev/ram1 >/dev/null ||
		setup_fail "mkfs.xfs /dev/ram1"
	mount /dev/ram1 /mnt/xfs || setup_fail "mount xfs"

	# A stuck task should show up (and fail the run) well within the
	# per-test time limit.
	[ -e /proc/sys/kernel/hung_task_timeout_secs ] &&
		echo 30 >/proc/sys/kernel/hung_task_timeout_secs
	[ -r "$FBLK_KO" ] || [ "$MODE" = shell ] || setup_fail "no $FBLK_KO"
}

ensure_module() {
	[ -d /sys/module/fblk ] || insmod "$FBLK_KO"
}

# Test executables: every executable in /fblk/selftests but the shell
# helper libraries (lib.sh, lib_*.sh), filtered by the host's T= pattern (a
# shell glob, or a substring when it has no glob characters; several
# separated by commas).  A pattern with a leading ! leaves out what it
# matches: "!fblk_races" is everything else (make check's stock 7.3 leaves
# the debug kernel's tests to it).
list_tests() {
	local t name pat keep want_any=0 pats=()
	# Split on commas only: an unquoted expansion would glob the patterns
	# against the current directory.
	IFS=, read -ra pats <<<"$FILTER"
	for pat in "${pats[@]}"; do
		case $pat in '!'*) ;; ?*) want_any=1 ;; esac
	done
	for t in /fblk/selftests/*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		name=${t##*/}
		case $name in lib.sh | lib_*.sh) continue ;; esac
		keep=$((1 - want_any))
		for pat in "${pats[@]}"; do
			filter_matches "$name" "${pat#!}" || continue
			case $pat in '!'*) keep=0; break ;; *) keep=1 ;; esac
		done
		[ $keep = 1 ] && echo "$t"
	done
}

# filter_matches NAME PATTERN: PATTERN is a glob, or a substring without
# glob characters.
filter_matches() {
	local pat=$2
	[ -n "$pat" ] || return 1
	case $pat in *[*?[]*) ;; *) pat="*$pat*" ;; esac
	# shellcheck disable=SC2053
	[[ $1 == $pat ]]
}

# What a test must not leave behind: mounts, and fblk devices other than the
# ones the module makes at load (bound or added).
snapshot_state() {
	{
		awk '{print "mount " $2}' /proc/self/mounts
		local d
		for d in /sys/block/fblk*; do
			[ -e "$d" ] || continue
			echo "dev ${d##*/} $(cat "$d/fblk/state" 2>/dev/null)"
		done
	} | sort
}

# Report and undo what the test left behind, so the next test starts clean.
check_leaks() {
	local name=$1 before=$2 line what
	comm -13 "$before" <(snapshot_state) | while read -r what line; do
		emit "FBLK-LEAK $name $what $line"
		case $what in
		mount) umount -l "$line" 2>/dev/null ;;
		dev) /fblk/bin/fblksetup -d "/dev/${line%% *}" >/dev/null 2>&1 ;;
		esac
	done
}

kmemleak_check() {
	local name=$1 f=/sys/kernel/debug/kmemleak
	[ -w $f ] && [ "${FBLK_KMEMLEAK_EACH:-0}" = 1 ] || return 0
	echo scan >$f
	grep -E 'unreferenced object' $f | while read -r line; do
		emit "FBLK-KMEMLEAK $name $line"
	done
	cat $f >>"$RESULTS/kmemleak.txt"
	echo clear >$f
}

# After the suite, on kernels with kmemleak (the debug kernel): unload fblk,
# so whatever it did not free loses its last reference, and scan twice (an
# object is reported only when a second scan finds it unreferenced and
# unchanged, and older than 5 s).  Any unreferenced object fails the run.
kmemleak_final() {
	local name=kmemleak f=/sys/kernel/debug/kmemleak rc=0 n
	[ -w $f ] || return 0
	emit "FBLK-BEGIN $name"
	kmsg "fblk-selftest: begin $name"
	{
		echo "1..2"
		if [ ! -d /sys/module/fblk ] || rmmod fblk; then
			echo "ok 1 fblk unloads after the suite"
		else
			echo "not ok 1 fblk unloads after the suite"
			rc=1
		fi
		sleep 6
		echo scan >$f
		sleep 6
		echo scan >$f
		cat $f >"$RESULTS/kmemleak-final.txt"
		n=$(grep -c 'unreferenced object' "$RESULTS/kmemleak-final.txt")
		if [ "$n" = 0 ]; then
			echo "ok 2 kmemleak: no unreferenced objects"
		else
			echo "not ok 2 kmemleak: $n unreferenced objects (kmemleak-final.txt)"
			head -n 60 "$RESULTS/kmemleak-final.txt" | sed 's/^/# /'
			rc=1
		fi
		exit $rc
	} 2>&1 | tee "$RESULTS/tests/$name.log" >&3
	rc=${PIPESTATUS[0]}
	grep -E 'unreferenced object' "$RESULTS/kmemleak-final.txt" | while read -r line; do
		emit "FBLK-KMEMLEAK $name $line"
	done
	kmsg "fblk-selftest: end $name rc=$rc"
	emit "FBLK-END $name rc=$rc secs=12"
}

run_one() {
	local t=$1 name=${1##*/} rc start end before
	before=$(mktemp)
	# Marked first: a splat while loading the module belongs to this test.
	emit "FBLK-BEGIN $name"
	kmsg "fblk-selftest: begin $name"
	ensure_module
	snapshot_state >"$before"
	echo "guest-run: $name"
	start=$(date +%s)
	# Tests start in a fresh directory of their own and write nothing to
	# the shared build directory.  stderr goes with stdout: the host keeps
	# only TAP lines for the counts, the rest is diagnostics.
	mkdir -p "/tmp/run-$name"
	(cd "/tmp/run-$name" && timeout -k 10 "$TEST_TIMEOUT" "$t") 2>&1 </dev/null |
		tee "$RESULTS/tests/$name.log" >&3
	rc=${PIPESTATUS[0]}
	end=$(date +%s)
	# A test killed at its time limit is usually stuck in the kernel: the
	# blocked tasks' stacks (and, with lockdep, the locks every task holds)
	# go to the console while they are still there.
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo w >/proc/sysrq-trigger 2>/dev/null
		[ -e /proc/lockdep ] && echo d >/proc/sysrq-trigger 2>/dev/null
	fi
	# Leaks first: removing the test's directory must not reach into a
	# filesystem it left mounted there.
	[ -d /sys/module/fblk ] || emit "FBLK-LEAK $name module fblk is not loaded after the test"
	check_leaks "$name" "$before"
	rm -rf "/tmp/run-$name"
	kmemleak_check "$name"
	kmsg "fblk-selftest: end $name rc=$rc"
	emit "FBLK-END $name rc=$rc secs=$((end - start))"
	rm -f "$before"
}

run_tests() {
	local t
	mkdir -p "$RESULTS/tests"
	for t in $(list_tests); do
		run_one "$t"
	done
}

# The CI's quick check on kernel lines that do not run the full suite: the
# module builds for it, loads, and makes its control node.
run_smoke() {
	local name=smoke_load rc=0
	emit "FBLK-BEGIN $name"
	kmsg "fblk-selftest: begin $name"
	{
		echo "1..3"
		if insmod "$FBLK_KO"; then echo "ok 1 insmod fblk.ko"; else echo "not ok 1 insmod fblk.ko"; rc=1; fi
		if [ -c /dev/fblk-control ]; then echo "ok 2 /dev/fblk-control exists"
		else echo "not ok 2 /dev/fblk-control exists"; rc=1; fi
		if rmmod fblk; then echo "ok 3 rmmod fblk"; else echo "not ok 3 rmmod fblk"; rc=1; fi
	} 2>&1 | tee "$RESULTS/smoke.log" >&3
	kmsg "fblk-selftest: end $name rc=$rc"
	emit "FBLK-END $name rc=$rc secs=0"
}

main() {
	open_stream
	setup
	emit "FBLK-READY $(uname -r)"
	case $MODE in
	check) run_tests; kmemleak_final ;;
	smoke) run_smoke ;;
	demo)
		emit "FBLK-BEGIN demo"
		bash /fblk/vm/demo.sh 2>&1 | tee "$RESULTS/demo.log" >&3
		emit "FBLK-END demo rc=${PIPESTATUS[0]} secs=0"
		;;
	bench)
		# tools/bench/guest.sh reports each cell on fd 3 itself.
		bash /fblk/bench/guest.sh
		;;
	blktests | xfstests)
		# The field's suites (tools/suites/): the guest side reports
		# each test on fd 3 itself.
		bash "/fblk/$MODE/guest.sh"
		;;
	shell)
		echo "guest-run: shell; the environment of a test is set (FBLK_KO=$FBLK_KO)."
		echo "guest-run: 'poweroff -f' (or exit) ends the VM."
		setsid -c bash -i </dev/ttyS0 >/dev/ttyS0 2>&1
		;;
	*) emit "FBLK-SETUP-FAIL unknown MODE=$MODE" ;;
	esac
	dmesg >"$RESULTS/dmesg.txt" 2>&1
	emit "FBLK-DONE"
	poweroff_now
}

main
