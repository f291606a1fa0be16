#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shared by the fblk_stacks_*.sh selftests; source it after lib.sh, do not
# run it (the runner skips lib*.sh).
#
# The stacks that made loop's inline submission fail upstream (the 6.19
# series that was reverted: stack overflows with loop on XFS on stacked block
# devices, an I/O hang with wbt, reclaim recursing into the lower filesystem;
# kernel-facts.md), each run on fblk and, with FBLK_STACKS_DRIVERS="fblk
# loop", on loop (util-linux losetup) over the very same lower stack:
#
#  stack1 (fblk_stacks_stripe.sh): xfs on DRV, over a file on xfs, over
#      dm-stripe (two legs) over two null_blk devices (blk-mq, 1 ms
#      completions), wbt enabled on every blk-mq layer (the null_blk legs and
#      DRV; dm is bio-based);
#  stack2 (fblk_stacks_nested.sh): ext4 on DRV U over a file on xfs on DRV L
#      over a file on ext4 on brd (/dev/ram2): two DRV levels, both
#      buffered, then both direct;
#  stack3 (fblk_stacks_memcg.sh): ext4 on DRV over a file on the ext4
#      scratch, the load in a cgroup v2 with memory.max=FBLK_STACKS_MEM_MAX
#      (32M) and vm.dirty_bytes 4 MiB, so that reclaim and dirty throttling
#      write back through DRV (the run fails if the cgroup saw no reclaim).
#
# The load in the upper filesystem, FBLK_STACKS_SECONDS (default 20) per run:
# fio with verified random I/O (io_uring direct, and buffered with fsync)
# beside a loop that creates, writes, fsyncs, renames and removes files
# (fsstress is not packaged for these machines).  Then: no fio verify or I/O
# error, the files' md5 unchanged across an unmount, a cache drop and a
# remount, every filesystem of the stack clean (e2fsck -fn, xfs_repair -n),
# no error counted by any fblk device, no kernel warning, hung task, I/O or
# filesystem error in the log during the run.
#
# The figure: the stack tracer's stack_max_size over each run, from building
# the stack to its fsck, printed as "# stack: ..." against THREAD_SIZE, with
# the deepest trace's functions.  The tracer checks the depth at the entry of
# the functions of the block layer, iomap and the modules of the stack
# (stack_trace_filter): unfiltered, the deepest stack of a run is as often
# an exec over the guest's 9p root (about 4 KiB on 6.1) as the stack under
# test.  The figure leaves out what those functions call below themselves
# (the allocator, say: a few hundred bytes).  A kernel without the stack
# tracer runs the stacks without the figure.

SECS=${FBLK_STACKS_SECONDS:-$(fblk_load 20 8)}
MEM_MAX=${FBLK_STACKS_MEM_MAX:-32M}
DRIVERS=${FBLK_STACKS_DRIVERS:-fblk}
S=$FBLK_T_STATE
NB=fblkstk


# stacks_begin RUNS_PER_DRIVER: the TAP plan (the runs and the log check).
stacks_begin() {
	tap_plan $(($1 * $(echo "$DRIVERS" | wc -w) + 1))
	fblk_require_module || tap_done
	dmesg_all=$(dmesg | wc -l)
}

# stacks_end: the whole run's kernel log, then the TAP summary.
stacks_end() {
	local out
	out=$(log_errors "$dmesg_all")
	if [ -z "$out" ]; then
		ok "no kernel warning, hung task, I/O, filesystem or OOM error in the log"
	else
		not_ok "no kernel warning, hung task, I/O, filesystem or OOM error in the log" \
			"$(echo "$out" | head -n 5)"
	fi
	tap_done
}

# ---- the driver under test: fblk or loop ----

# drv_attach DRV FILE buffered|direct: a new device over FILE (4 KiB
# blocks), detached at exit if the run does not; prints its path.
drv_attach() {
	local dev
	case $1 in
	fblk)
		if [ "$3" = direct ]; then
			fblk_attach "$2" direct bs=4096
		else
			fblk_attach "$2" bs=4096
		fi
		;;
	loop)
		dev=$(/sbin/losetup -f --show -b 4096 --direct-io="$([ "$3" = direct ] && echo on || echo off)" "$2") ||
			return 1
		fblk_at_exit "/sbin/losetup -d '$dev'"
		echo "$dev"
		;;
	esac
}

drv_detach() {
	case $1 in
	fblk) fblk_detach "$2" ;;
	loop) /sbin/losetup -d "$2" ;;
	esac
}

# drv_state DRV DEV: one line on what the device is doing.
drv_state() {
	case $1 in
	fblk) echo "$2: $(tr '\n' ' ' <"/sys/block/${2##*/}/fblk/stats")" ;;
	loop) echo "$2: dio=$(cat "/sys/block/${2##*/}/loop/dio")" ;;
	esac
}

# drv_errors DRV DEV: why the device is not healthy, or nothing.
drv_errors() {
	local n
	case $1 in
	fblk)
		n=$(awk '$1 == "errors" {print $2}' "/sys/block/${2##*/}/fblk/stats")
		[ "$n" = 0 ] || echo "$2 counted ${n:-?} errors"
		;;
	esac
}

# ---- the stack tracer ----

TRACING=
if [ -w /proc/sys/kernel/stack_tracer_enabled ]; then
	TRACING=/sys/kernel/tracing
	if [ ! -e "$TRACING/stack_max_size" ]; then
		mount -t tracefs tracefs "$TRACING" 2>/dev/null && fblk_at_exit "umount '$TRACING'"
	fi
	[ -w "$TRACING/stack_max_size" ] || TRACING=
fi
if [ -n "$TRACING" ]; then
	fblk_at_exit "echo 0 >/proc/sys/kernel/stack_tracer_enabled; echo >'$TRACING/stack_trace_filter'"
fi
# THREAD_SIZE: a vmalloc'ed thread stack (VMAP_STACK) is THREAD_SIZE plus a
# guard page, "pages=N" in /proc/vmallocinfo, allocated from
# alloc_thread_stack_node (or what it is inlined into).  Without that,
# x86_64's definition: 16 KiB, twice that under KASAN.
THREAD_SIZE=$(awk '/(alloc_thread_stack_node|dup_task_struct|copy_process)\+/ {
	for (i = 1; i <= NF; i++) if ($i ~ /^pages=/) n[substr($i, 7)]++ }
	END { for (p in n) if (n[p] > best) { best = n[p]; size = p * 4096 }
	if (size) print size " (vmallocinfo)" }' /proc/vmallocinfo 2>/dev/null)
if [ -z "$THREAD_SIZE" ] && [ "$(uname -m)" = x86_64 ]; then
	cfg=$( (zcat /proc/config.gz || cat "/boot/config-$(uname -r)") 2>/dev/null)
	if [ -n "$cfg" ]; then
		THREAD_SIZE=16384
		grep -q '^CONFIG_KASAN=y' <<<"$cfg" && THREAD_SIZE=32768
		THREAD_SIZE+=" (config)"
	fi
fi
THREAD_SIZE=${THREAD_SIZE:-unknown}
if [ -n "$TRACING" ]; then
	diag "stack tracer: $TRACING; THREAD_SIZE $THREAD_SIZE; kernel $(uname -r)"
else
	diag "kernel $(uname -r) has no stack tracer: no stack_max_size figures"
fi

# The functions the tracer checks the depth at: the block layer's and those
# of the modules of the stacks (a module pattern takes the modules loaded
# now).  Not the plug flush: schedule() runs it in any task that sleeps with
# a plug, an exec over 9p included (seen on 6.1); what it issues to our
# devices is still counted at their ->queue_rq.
ST_FILTER="blk_* submit_bio* bio_* iomap_* wbt_* __rq_qos_* :mod:xfs :mod:ext4 :mod:jbd2
	:mod:fblk :mod:loop :mod:dm_mod :mod:null_blk :mod:brd
	!__blk_flush_plug !blk_mq_flush_plug_list* !blk_flush_plug*"

st_start() {
	local f
	[ -n "$TRACING" ] || return 0
	echo 0 >/proc/sys/kernel/stack_tracer_enabled
	echo >"$TRACING/stack_trace_filter"
	for f in $ST_FILTER; do
		echo "$f" >>"$TRACING/stack_trace_filter"
	done 2>/dev/null
	# tracefs files have no size: read it.
	grep -q . "$TRACING/stack_trace_filter" ||
		echo "the stack tracer's filter stayed empty" >>"$S/why"
	echo 0 >"$TRACING/stack_max_size"
	echo 1 >/proc/sys/kernel/stack_tracer_enabled
}

# st_report NAME: the deepest stack since st_start; a reading of 0 fails.
st_report() {
	local max pct
	[ -n "$TRACING" ] || return 0
	echo 0 >/proc/sys/kernel/stack_tracer_enabled
	max=$(cat "$TRACING/stack_max_size")
	pct=
	[ "$THREAD_SIZE" = unknown ] || pct=" ($((max * 100 / ${THREAD_SIZE%% *}))% of it)"
	diag "stack: $1: stack_max_size=$max thread_size=$THREAD_SIZE$pct kernel=$(uname -r)"
	# "  N)  Depth  Size  function+off/len [module]", deepest frame first.
	diag "deepest: $(awk 'NR > 2 && NF >= 4 { sub(/\+.*/, "", $4); print $4 $5 }' \
		"$TRACING/stack_trace" | head -n 100 | tr '\n' ' ')"
	[ "${max:-0}" -gt 0 ] || echo "the stack tracer read stack_max_size=${max:-none}" >>"$S/why"
}

# ---- the load ----

# churn DIR: until $S/stop exists, make, fsync, rename and remove files;
# the survivors stay for the md5 check.  Prints the rounds; fails on the
# first error.  (Called through in_cgroup.)
# shellcheck disable=SC2317
churn() {
	local d=$1/churn i=0 j
	mkdir -p "$d" || return 1
	while [ ! -e "$S/stop" ]; do
		i=$((i + 1))
		mkdir -p "$d/dir$((i % 8))" "$d/small$((i % 4))" || return 1
		head -c $(((i % 37 + 1) * 4096)) /dev/urandom >"$d/dir$((i % 8))/f$i.tmp" || return 1
		dd if=/dev/urandom of="$d/dir$((i % 8))/f$i.tmp" bs=4k count=4 \
			seek=$((i % 5)) conv=notrunc,fsync status=none || return 1
		mv "$d/dir$((i % 8))/f$i.tmp" "$d/dir$((i % 8))/f$i" || return 1
		for j in 1 2 3; do
			seq "$i" $((i * j + 100)) >"$d/small$((i % 4))/s$i.$j" || return 1
		done
		rm -f "$d/small$(((i + 1) % 4))/s$((i - 3)).2" || return 1
		if [ $((i % 3)) != 0 ]; then
			rm -f "$d/dir$(((i + 3) % 8))/f$((i - 5))" || return 1
		fi
		[ $((i % 10)) = 0 ] && { sync -f "$d" || return 1; }
	done
	echo "$i"
}

# in_cgroup CMD...: CMD in the memory-limited cgroup when $CG is set.
in_cgroup() {
	[ -z "${CG:-}" ] || echo "$BASHPID" >"$CG/cgroup.procs" || return 1
	"$@"
}

# load DIR BUFFERED_SIZE: fio (verified) and churn side by side for $SECS;
# a failure is written to $S/why.
load() {
	local dir=$1 bsize=$2 fio_rc churn_rc cpid
	rm -f "$S/stop"
	(in_cgroup churn "$dir") >"$S/churn" 2>&1 &
	cpid=$!
	(in_cgroup fio --directory="$dir" --runtime="$SECS" --time_based --group_reporting \
		--bs=4k --verify=crc32c --verify_fatal=1 --verify_backlog=64 \
		--name=dio --ioengine=io_uring --direct=1 --iodepth=16 --numjobs=2 \
		--size=8M --rw=randrw \
		--name=buffered --ioengine=psync --direct=0 --size="$bsize" --rw=randwrite \
		--fsync=32) >"$S/fio" 2>&1
	fio_rc=$?
	touch "$S/stop"
	wait "$cpid"
	churn_rc=$?
	grep -E '^ +(read|write):|err=' "$S/fio" | sed 's/^ */# /'
	diag "churn: $(tail -n 1 "$S/churn") rounds, rc=$churn_rc"
	if [ "$fio_rc" != 0 ]; then
		sed 's/^/# /' "$S/fio" | tail -n 30
		echo "fio failed (rc $fio_rc)" >>"$S/why"
	elif [ "$churn_rc" != 0 ]; then
		sed 's/^/# /' "$S/churn" | tail -n 5
		echo "the create/fsync/remove loop failed" >>"$S/why"
	fi
}

sums() {
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0r md5sum)
}

# fsck_dev FS DEV: a read-only check of an unmounted filesystem.
fsck_dev() {
	local out rc
	case $1 in
	ext4) out=$(e2fsck -fn "$2" 2>&1) ;;
	xfs) out=$(xfs_repair -n "$2" 2>&1) ;;
	esac
	rc=$?
	if [ $rc != 0 ]; then
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/# /'
		echo "$1 on $2 is not clean (fsck rc $rc)" >>"$S/why"
	fi
}

mkfs_dev() {
	case $1 in
	ext4) mkfs.ext4 -q -F "$2" ;;
	xfs) mkfs.xfs -q -f "$2" ;;
	esac >"$S/mkfs" 2>&1 || { sed 's/^/# /' "$S/mkfs"; return 1; }
}

# wbt_on DEV...: writeback throttling on each blk-mq device (2 ms target);
# a blk-mq device that refuses fails the run.  Says which layers have it.
wbt_on() {
	local d n on=() off=()
	for d in "$@"; do
		n=/sys/block/${d##*/}
		if [ -d "$n/mq" ] && [ -e "$n/queue/wbt_lat_usec" ]; then
			if echo 2000 >"$n/queue/wbt_lat_usec" && [ "$(cat "$n/queue/wbt_lat_usec")" -gt 0 ]; then
				on+=("${d##*/}")
			else
				echo "wbt could not be enabled on ${d##*/}" >>"$S/why"
			fi
		else
			off+=("${d##*/}")
		fi
	done
	diag "wbt_lat_usec=2000 on: ${on[*]}; not blk-mq (no wbt): ${off[*]:-none}"
}

# log_errors SINCE: kernel log lines after line SINCE that fail a run.
log_errors() {
	dmesg | tail -n +"$(($1 + 1))" |
		grep -E 'BUG:|WARNING:|blocked for more than|Call Trace|lockdep|KASAN|Oops|EXT4-fs error|XFS .*(error|corrupt|Corruption|shutdown)|I/O error|Out of memory|oom-kill'
}

# upper_run DRV MODE FS BACKING BUFFERED_SIZE [LOWER_DEVS...]: DRV over
# BACKING in MODE, FS on it, the load, the checks.  Failures go to $S/why;
# LOWER_DEVS (DRV devices below) are checked for errors too.
upper_run() {
	local drv=$1 mode=$2 fs=$3 backing=$4 bsize=$5 udev m d
	shift 5
	if ! udev=$(drv_attach "$drv" "$backing" "$mode"); then
		echo "$drv attach over $backing failed" >>"$S/why"
		return
	fi
	wbt_on "$udev" "$@"
	m=$(fblk_mkdir)
	if ! mkfs_dev "$fs" "$udev" || ! mount "$udev" "$m"; then
		echo "mkfs.$fs or mount on $udev failed" >>"$S/why"
		drv_detach "$drv" "$udev"
		return
	fi
	load "$m" "$bsize"
	sync
	sums "$m" >"$S/sum1"
	umount "$m"
	drop_caches
	if ! mount "$udev" "$m"; then
		echo "remount of $udev failed" >>"$S/why"
	else
		sums "$m" >"$S/sum2"
		umount "$m"
		if ! cmp -s "$S/sum1" "$S/sum2"; then
			diff "$S/sum1" "$S/sum2" | head -n 10 | sed 's/^/# /'
			echo "md5 of files changed across remount" >>"$S/why"
		fi
		diag "$(wc -l <"$S/sum1") files checked"
	fi
	fsck_dev "$fs" "$udev"
	# An fblk device over a file on another puts itself a level above it
	# (the level orders fblk's workqueues).
	if [ "$drv" = fblk ] && [ $# -gt 0 ] && [[ $1 == /dev/fblk* ]] &&
		[ "$(fblk_attr "$udev" stack_level)" != $(($(fblk_attr "$1" stack_level) + 1)) ]; then
		echo "$udev at stack level $(fblk_attr "$udev" stack_level), $1 at $(fblk_attr "$1" stack_level)" >>"$S/why"
	fi
	for d in "$udev" "$@"; do
		diag "$(drv_state "$drv" "$d")"
		drv_errors "$drv" "$d" >>"$S/why"
	done
	drv_detach "$drv" "$udev"
}

# run_begin / run_end DESC: one TAP result per stack and driver, from what
# went to $S/why (and the kernel log) in between.
run_begin() {
	: >"$S/why"
	run_dmesg=$(dmesg | wc -l)
	run_t0=$(date +%s)
	st_start
}

run_end() {
	local desc=$1 errs
	st_report "$desc"
	errs=$(log_errors "$run_dmesg")
	[ -z "$errs" ] || echo "kernel log: $(echo "$errs" | head -n 3)" >>"$S/why"
	diag "$desc: $(($(date +%s) - run_t0)) s"
	if [ -s "$S/why" ]; then
		not_ok "$desc" "$(tr '\n' ';' <"$S/why")"
	else
		ok "$desc"
	fi
}

# ---- (1) xfs on DRV, over a file on xfs, over dm-stripe over two null_blk ----
# Built anew for each driver, so that each run's figure covers the whole stack.
stack1() {
	local drv=$1 dm=fblkstripe$1 nsec lm
	local desc="(1) xfs on $drv on a file on xfs on dm-stripe (2 legs) on null_blk, wbt on"
	run_begin
	lm=$(fblk_mkdir)
	if ! fblk_nullb "${NB}${drv}0" 256 || ! fblk_nullb "${NB}${drv}1" 256; then
		echo "no null_blk devices" >>"$S/why"
	elif nsec=$(($(blockdev --getsz "/dev/${NB}${drv}0") * 2)) &&
		! { dmsetup create "$dm" --table "0 $nsec striped 2 128 /dev/${NB}${drv}0 0 /dev/${NB}${drv}1 0" &&
		dmsetup mknodes "$dm"; }; then
		echo "dmsetup create (striped) failed" >>"$S/why"
	else
		fblk_at_exit "dmsetup remove '$dm'"
		if mkfs_dev xfs "/dev/mapper/$dm" && mount "/dev/mapper/$dm" "$lm" &&
			truncate -s 320M "$lm/upper.img"; then
			wbt_on "/dev/${NB}${drv}0" "/dev/${NB}${drv}1" \
				"$(dmsetup info -c --noheadings -o blkdevname "$dm")"
			upper_run "$drv" buffered xfs "$lm/upper.img" 96M
			rm -f "$lm/upper.img"
			umount "$lm"
			fsck_dev xfs "/dev/mapper/$dm"
		else
			echo "xfs on dm-stripe failed" >>"$S/why"
			mountpoint -q "$lm" && umount "$lm"
		fi
		dmsetup remove "$dm"
	fi
	# The null_blk devices go at exit (fblk_nullb); free their memory now.
	echo 0 >"/sys/kernel/config/nullb/${NB}${drv}0/power" 2>/dev/null
	echo 0 >"/sys/kernel/config/nullb/${NB}${drv}1/power" 2>/dev/null
	rmdir "/sys/kernel/config/nullb/${NB}${drv}"[01] 2>/dev/null
	run_end "$desc"
}

# ---- (2) ext4 on DRV U over a file on xfs on DRV L over a file on ext4 on brd ----
stack2() {
	local drv=$1 mode=$2 bm lm base ldev
	local desc="(2) ext4 on $drv on xfs on $drv on ext4 on brd, both $mode"
	run_begin
	bm=$(fblk_mkdir)
	lm=$(fblk_mkdir)
	if mkfs_dev ext4 /dev/ram2 && mount /dev/ram2 "$bm" && truncate -s 240M "$bm/lower.img" &&
		base=$bm/lower.img && ldev=$(drv_attach "$drv" "$base" "$mode") &&
		mkfs_dev xfs "$ldev" && mount "$ldev" "$lm" && truncate -s 200M "$lm/upper.img"; then
		upper_run "$drv" "$mode" ext4 "$lm/upper.img" 64M "$ldev"
		rm -f "$lm/upper.img"
		umount "$lm"
		fsck_dev xfs "$ldev"
		drv_detach "$drv" "$ldev"
	else
		echo "could not build the lower half (ext4 on ram2, $drv, xfs)" >>"$S/why"
		mountpoint -q "$lm" && umount "$lm"
		[ -n "$ldev" ] && drv_detach "$drv" "$ldev"
	fi
	if mountpoint -q "$bm"; then
		rm -f "$bm/lower.img"
		umount "$bm"
		fsck_dev ext4 /dev/ram2
	fi
	run_end "$desc"
}

# ---- (3) ext4 on DRV under memory pressure ----
CG=
CGROOT=
dirty_saved=
cg_setup() {
	local m
	CGROOT=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
	if [ -z "$CGROOT" ]; then
		m=$(fblk_mkdir)
		mount -t cgroup2 none "$m" 2>/dev/null || return 1
		fblk_at_exit "umount '$m'"
		CGROOT=$m
	fi
	grep -qw memory "$CGROOT/cgroup.controllers" || return 1
	echo +memory >"$CGROOT/cgroup.subtree_control" || return 1
	return 0
}

cg_start() {
	CG=$CGROOT/fblk-stacks-$$
	mkdir "$CG" || return 1
	fblk_at_exit "rmdir '$CG'"
	echo "$MEM_MAX" >"$CG/memory.max" || return 1
	if [ -z "$dirty_saved" ]; then
		dirty_saved="$(cat /proc/sys/vm/dirty_ratio) $(cat /proc/sys/vm/dirty_background_ratio)"
		# shellcheck disable=SC2086
		fblk_at_exit "set -- $dirty_saved; echo \$1 >/proc/sys/vm/dirty_ratio; echo \$2 >/proc/sys/vm/dirty_background_ratio"
	fi
	echo $((4 << 20)) >/proc/sys/vm/dirty_bytes
	echo $((1 << 20)) >/proc/sys/vm/dirty_background_bytes
}

cg_end() {
	local max oom peak scan
	max=$(awk '$1 == "max" {print $2}' "$CG/memory.events")
	oom=$(awk '$1 == "oom_kill" {print $2}' "$CG/memory.events")
	peak=$(cat "$CG/memory.peak" 2>/dev/null || echo ?)
	scan=$(awk '$1 == "pgscan" {print $2}' "$CG/memory.stat")
	diag "cgroup memory.max=$MEM_MAX: memory.events max=$max oom_kill=$oom; memory.peak=$peak;" \
		"$(awk '$1 ~ /^(anon|file|file_dirty|file_writeback|pgscan|pgsteal)$/ {printf "%s=%s ", $1, $2}' \
		"$CG/memory.stat")vm.dirty_bytes=$(cat /proc/sys/vm/dirty_bytes)"
	# No pressure, no test: reclaim must have run in the cgroup.
	[ "${scan:-0}" -gt 0 ] || echo "no reclaim in the cgroup (pgscan=${scan:-?}): no memory pressure" >>"$S/why"
	[ "${oom:-0}" = 0 ] || echo "the OOM killer killed $oom tasks in the cgroup" >>"$S/why"
	rmdir "$CG"
	CG=
	# shellcheck disable=SC2086
	set -- $dirty_saved
	echo "$1" >/proc/sys/vm/dirty_ratio
	echo "$2" >/proc/sys/vm/dirty_background_ratio
}

stack3() {
	local drv=$1 img
	local desc="(3) ext4 on $drv on a file on ext4, in a cgroup with memory.max=$MEM_MAX, small dirty limits"
	if ! cg_setup; then
		skip "$desc" "kernel has no cgroup v2 memory controller"
		return
	fi
	run_begin
	img=$(fblk_image "$FBLK_SCRATCH" 200M)
	if cg_start; then
		upper_run "$drv" buffered ext4 "$img" 128M
		cg_end
	else
		echo "could not make the cgroup" >>"$S/why"
	fi
	rm -f "$img"
	run_end "$desc"
}

