#!/usr/bin/env bash
# Boot one test VM and watch it.
#
#   vm.sh [-k KVER] [-m check|smoke|demo|shell] [-t PATTERN] [-o RUN_DIR]
#
# KVER is 6.1, 6.12, 7.3 or a full release (see lib.sh); build/<kver>/ must
# have been built (build.sh).  The VM runs tools/vm/guest-run.sh in MODE and
# writes into RUN_DIR (default results/<date>-<kver>/): console.log (the
# serial console), stream.log (the runner's line protocol, second serial
# port), tests/<name>.log, dmesg.txt, and host.log (what this script saw).
# Prints RUN_DIR on stdout when done.  report.py turns RUN_DIR into TAP.
#
# Time limits, because a kernel bug can hang the guest in ways no guest-side
# timeout survives: FBLK_BOOT_TIMEOUT (s to the runner's FBLK-READY, default
# 300), FBLK_TEST_TIMEOUT (each test inside the guest, default 600: a test
# that takes 80 s alone took 310 s beside three other VMs on 2 cores; the host
# allows 90 s more before it kills the VM) and FBLK_VM_TIMEOUT (the whole VM,
# default 4500).  V=1 also copies the console to stderr.
#
# Environment for other kernels: KERNEL=/path/bzImage boots that image instead
# of the distribution's (its modules must match KVER).
#
# Only one VM runs at a time on the machine: the others wait for
# FBLK_VM_LOCK (default /tmp/fblk-vm.lock; 0 disables the lock).
# FBLK_VM_MEM: the guest's memory in MiB (default 3072).  FBLK_STACKS_*
# variables are passed on to the tests (fblk_stacks.sh's knobs).
set -euo pipefail
# Parsed whole before it runs: editing this file cannot derail a running make.
{
. "$(dirname "$0")/lib.sh"
FBLK_LOG_TAG=vm

spec=${KVER:-} mode=check filter=${T:-} run_dir=
while getopts k:m:t:o: opt; do
	case $opt in
	k) spec=$OPTARG ;;
	m) mode=$OPTARG ;;
	t) filter=$OPTARG ;;
	o) run_dir=$OPTARG ;;
	*) exit 2 ;;
	esac
done
resolve_kernel "$spec"
line=$(kline "$KVER_FULL")
out=$FBLK_BUILD/$KVER_FULL
[ -r "$out/fblk.ko" ] || [ "$mode" = shell ] || die "$out/fblk.ko missing: build first (make check does)"

boot_timeout=${FBLK_BOOT_TIMEOUT:-300}
test_timeout=${FBLK_TEST_TIMEOUT:-600}
vm_timeout=${FBLK_VM_TIMEOUT:-4500}
case $KVER_FULL in
*-fblk-debug)
	# KASAN, lockdep and kmemleak under TCG: several times slower.
	boot_timeout=${FBLK_DEBUG_BOOT_TIMEOUT:-900}
	test_timeout=${FBLK_DEBUG_TEST_TIMEOUT:-900}
	vm_timeout=${FBLK_DEBUG_VM_TIMEOUT:-5400}
	;;
esac

run_dir=${run_dir:-$FBLK_RESULTS/$(date -u +%Y%m%d-%H%M%S)-$KVER_FULL}
mkdir -p "$run_dir"
run_dir=$(cd "$run_dir" && pwd)
: >"$run_dir/stream.log"
: >"$run_dir/host.log"
{
	printf 'MODE=%q\n' "$mode"
	printf 'FILTER=%q\n' "$filter"
	printf 'TEST_TIMEOUT=%q\n' "$test_timeout"
	printf 'KLINE=%q\n' "$line"
	# The debug kernel runs every test with shorter loads (fblk_load in
	# selftests/fblk/lib.sh): its checks catch a bad path the first time it
	# is taken, and at several times the stock kernel's cost full loads
	# would add most of an hour.
	case $KVER_FULL in
	*-fblk-debug) printf 'export FBLK_LOAD_SCALE=%q\n' "${FBLK_LOAD_SCALE:-${FBLK_DEBUG_LOAD_SCALE:-40}}" ;;
	esac
	# Test knobs for the guest: FBLK_LOAD_SCALE, FBLK_STACKS_* and the
	# tests' own FBLK_<TEST>_* (see each test).
	while IFS='=' read -r k _; do
		printf 'export %s=%q\n' "$k" "${!k}"
	done < <(env | grep -E '^FBLK_(LOAD_SCALE|KMEMLEAK_EACH|STACKS?_[A-Z_]+|FUZZ_[A-Z_]+|RACE_SECONDS|SAFETY_ROUNDS)=')
} >"$run_dir/run.env"
hostlog() { printf '%s\n' "$*" >>"$run_dir/host.log"; }

# The guest runs its scripts from the build directory, so the 7.x root needs
# no copy of the repository.
mkdir -p "$out/vm"
cp "$FBLK_TOP"/tools/vm/{guest-run.sh,demo.sh} "$out/vm/"

initrd=$FBLK_BUILD/initramfs/$KVER_FULL.cpio.gz
"$FBLK_TOP/tools/vm/initramfs.sh" "$KVER_FULL" "$KMODROOT" "$initrd"

# quiet: boot messages stay out of the console; guest-run.sh raises the
# console level once tests start.  panic=-1 with -no-reboot: a panic ends qemu.
append="console=ttyS0 quiet panic=-1 oops=panic rdinit=/init"
# Under KASAN and lockdep, ACPI's PCI routing method (_PRT) runs into the
# interpreter's 30 s loop limit five times (2.5 min of boot); the BIOS's
# $PIR table routes the same interrupts at once.
case $KVER_FULL in *-fblk-debug) append+=" pci=noacpi" ;; esac
[ -n "${FBLK_APPEND:-}" ] && append+=" $FBLK_APPEND"
# A kernel whose modules are not in the root (the debug kernel's are in its
# cache): /init mounts this share at /lib/modules/<release>.
modshare=()
if [ "$KMODROOT" != "$KROOT" ]; then
	modshare=(-virtfs "local,path=$KMODROOT/lib/modules/$KVER_FULL,mount_tag=modules,security_model=none,readonly=on,multidevs=remap")
	append+=" fblk.modules=9p"
fi
qemu=(qemu-system-x86_64 -cpu max -smp 2 -m "${FBLK_VM_MEM:-3072}" -nographic -no-reboot
	-kernel "$KIMAGE" -initrd "$initrd" -append "$append"
	-virtfs "local,path=$KROOT,mount_tag=root,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=$out,mount_tag=fblk,security_model=none,multidevs=remap"
	-virtfs "local,path=$run_dir,mount_tag=results,security_model=none,multidevs=remap"
	-serial mon:stdio -serial "file:$run_dir/stream.log")
qemu+=("${modshare[@]}")
# A benchmark's guest memory is allocated (touched) by qemu before the guest
# boots, so that no run pays the host's first touch of the pages it fills.
[ "$mode" = bench ] && qemu+=(-mem-prealloc)

log "booting $KVER_FULL ($mode) -> ${run_dir#"$FBLK_TOP"/}"
hostlog "kernel $KVER_FULL image $KIMAGE root $KROOT mode $mode filter '$filter'"
hostlog "qemu ${qemu[*]}"

if [ "$mode" = shell ]; then
	# Interactive: the console is the terminal (Ctrl-a x leaves qemu).
	"${qemu[@]}" 2>&1 | tee "$run_dir/console.log"
	echo "$run_dir"
	exit 0
fi

# One VM at a time on this machine (all clones): TCG guests on 2 cores slow
# each other down until time limits, RCU and hung-task checks misfire.
vm_lock=${FBLK_VM_LOCK:-/tmp/fblk-vm.lock}
if [ "$vm_lock" != 0 ]; then
	exec 8>>"$vm_lock"
	if ! flock -n 8; then
		log "[$line] waiting for another test VM to finish ($vm_lock)"
		flock 8
	fi
fi

start_vm() {
	t0=$(date +%s)
	if [ "${V:-0}" = 1 ]; then
		"${qemu[@]}" </dev/null > >(tee "$run_dir/console.log" >&2) 2>&1 &
	else
		"${qemu[@]}" </dev/null >"$run_dir/console.log" 2>&1 &
	fi
	qemu_job=$!
}

killed=
stop_vm() {
	killed=1
	hostlog "FBLK-HOST-KILL $*"
	if [ -n "$current" ]; then
		printf 'no answer\n' >&2
		current=
	fi
	log "[$line] killing the VM: $*"
	kill -TERM "$qemu_job" 2>/dev/null || true
	sleep 3
	kill -KILL "$qemu_job" 2>/dev/null || true
}

rc_word() {
	case $1 in
	0) echo ok ;;
	4) echo skip ;;
	124 | 137) echo TIMEOUT ;;
	*) echo "FAIL (exit $1)" ;;
	esac
}

# Follow the runner's stream: show progress and remember which test runs
# since when.  A line still being written stays in $partial until its end.
ready=0 current= since=0 partial=
handle() {
	local l=${1%$'\r'} rest
	case $l in
	"FBLK-READY "*)
		ready=1
		log "[$line] booted in $(($(date +%s) - t0)) s (${l#FBLK-READY })"
		;;
	"FBLK-BEGIN "*)
		current=${l#FBLK-BEGIN } since=$(date +%s)
		[ "$mode" = demo ] || printf '%s: [%s] %-40s ' "$FBLK_LOG_TAG" "$line" "$current" >&2
		;;
	"FBLK-END "*)
		rest=${l#FBLK-END * rc=}
		current=
		[ "$mode" = demo ] || printf '%s (%s s)\n' "$(rc_word "${rest%% *}")" "${rest##*secs=}" >&2
		;;
	"FBLK-SETUP-FAIL "*) log "[$line] $l" ;;
	FBLK-*) ;;
	*) [ "$mode" = demo ] && printf '%s\n' "$l" >&2 ;;
	esac
	return 0
}
drain() {
	local l
	while :; do
		if IFS= read -r l <&4; then
			handle "$partial$l"
			partial=
		else
			partial+=$l
			return 0
		fi
	done
}

# Watchdog: the guest enforces each test's limit itself; this catches a
# guest that cannot (a hung kernel, a task stuck in D state, a lost boot).
limit=$((test_timeout + ${FBLK_HOST_GRACE:-90}))
[ "$mode" = demo ] && limit=$((limit + 600))
follow_vm() {
	exec 4<"$run_dir/stream.log"
	while kill -0 "$qemu_job" 2>/dev/null; do
		sleep 1
		drain
		now=$(date +%s)
		if [ $((now - t0)) -gt "$vm_timeout" ]; then
			stop_vm "vm-timeout ${current:-none} $vm_timeout s"
			break
		elif [ $ready = 0 ] && [ $((now - t0)) -gt "$boot_timeout" ]; then
			stop_vm "boot-timeout $boot_timeout s"
			break
		elif [ -n "$current" ] && [ $((now - since)) -gt "$limit" ]; then
			stop_vm "test-timeout $current $((now - since)) s"
			break
		fi
	done
	wait "$qemu_job" 2>/dev/null || true
	drain
	[ -z "$partial" ] || handle "$partial"
	exec 4<&-
}

# A kernel that crashed before the guest's runner wrote its first line
# never ran any of our code (fblk loads later): under TCG, 7.3 has crashed
# so once in about 80 boots, on an int3 left by its own boot-time text
# patching (sched_clock_cpu, "Oops: int3").  Boot such a kernel once more;
# the crash stays on record (console-boot1.log, FBLK-HOST-REBOOT in
# host.log, a line in the report).
boot_crashed() {
	[ -z "$killed" ] && [ ! -s "$run_dir/stream.log" ] &&
		grep -qE 'Kernel panic|Oops|BUG:' "$run_dir/console.log"
}
start_vm
follow_vm
if boot_crashed; then
	mv "$run_dir/console.log" "$run_dir/console-boot1.log"
	why=$(grep -m1 -E 'Oops|BUG:|Kernel panic' "$run_dir/console-boot1.log" | tr -d '\r' |
		sed 's/^.*\] //')
	hostlog "FBLK-HOST-REBOOT the kernel crashed while booting, before the runner started: $why (console-boot1.log)"
	log "[$line] the kernel crashed while booting ($why): booting it again"
	hostlog "qemu exited after $(($(date +%s) - t0)) s"
	start_vm
	follow_vm
fi
[ -z "$current" ] || printf 'the VM died\n' >&2
hostlog "qemu exited after $(($(date +%s) - t0)) s"
echo "$run_dir"
exit
}
