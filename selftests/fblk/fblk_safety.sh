#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What must hold because ->queue_rq never enters a filesystem and every call
# into the backing file runs in fblk's own contexts (io.c):
#
#  1. freeze: writes through fblk to a file on a frozen filesystem wait until
#     it is thawed (freeze protection from issue to completion), then finish;
#     buffered and direct;
#  2. kill -9 of processes in the middle of reads, writes and fsyncs on ext4
#     on fblk fails no request (a dying submitter's fatal signal never reaches
#     the lower file) and leaves the filesystem clean;
#  3. two devices on one backing file: once both are detached, the file's
#     page cache is allocated as before (the engine's NOIO is a scope of its
#     own contexts, not a mask left on the file's mapping);
#  4. an upper filesystem writing through fblk to a buffered backing file
#     under tiny dirty limits finishes (fblk's contexts are not throttled on
#     the dirty pages only they can clean);
#  5. detach, then unmount the lower filesystem, while reads are in flight,
#     round after round (on the debug kernel, KASAN watches the engine's
#     contexts finish with the file before it is closed);
#  6. a queue's issuer does not wait behind a hole punch or buffered writes
#     on its own device: 4 KiB random reads of cached data on one queue
#     keep their p99 within 3x of the same reads alone, and none of them
#     goes to the pool;
#  7. buffered reads of a file on a device without REQ_NOWAIT (a loop
#     device) wait on their folios: only direct I/O needs NOWAIT below.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

ROUNDS=${FBLK_SAFETY_ROUNDS:-$(fblk_load 8 3)}
LOWER=/dev/ram2

tap_plan 9
fblk_require_module || tap_done

S=$FBLK_T_STATE
dmesg_start=$(dmesg | wc -l)

errors_of() {
	awk '$1 == "errors" {print $2}' "/sys/block/${1##*/}/fblk/stats"
}

writes_done() {
	awk '{print $5}' "/sys/block/${1##*/}/stat"
}

# wait_writes DEV N: until N writes have completed on DEV (fio takes
# seconds to start under emulation), at most a minute.
wait_writes() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(writes_done "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# new_lower DIR: a fresh ext4 on $LOWER mounted at DIR (unmounted at exit).
new_lower() {
	mkfs.ext4 -q -F "$LOWER" >/dev/null 2>&1 || return 1
	mount "$LOWER" "$1" || return 1
	fblk_at_exit "umount '$1'"
}

# New splats since the test began, one line each.
splats() {
	dmesg | tail -n +"$((dmesg_start + 1))" |
		grep -E 'BUG:|WARNING:|blocked for more than|KASAN|Oops|lockdep|I/O error'
}

# ---- 1: writes wait for a frozen backing filesystem ----
freeze_case() {
	local mode=$1 desc fm dev fpid w1 w2 rc why=""
	desc="1: writes to a frozen backing filesystem wait for the thaw (${mode:-buffered})"
	fm=$(fblk_mkdir)
	new_lower "$fm" || { not_ok "$desc" "no lower filesystem"; return; }
	# Sparse: the writes allocate blocks, in the lower journal.
	truncate -s 64M "$fm/img"
	dev=$(fblk_attach "$fm/img" ${mode:+"$mode"} bs=4096) || { not_ok "$desc" "attach failed"; return; }
	# Stopped (SIGINT) once writes flow again after the thaw.
	fio --name=w --filename="$dev" --rw=randwrite --bs=4k --direct=1 \
		--ioengine=io_uring --iodepth=8 --size=48M --time_based \
		--runtime=120 >"$S/fio-freeze" 2>&1 &
	fpid=$!
	# Writes must be flowing before the freeze, or none completing
	# during it proves nothing.
	wait_writes "$dev" 64 || why="no write completed before the freeze"
	fsfreeze -f "$fm" || why+=" fsfreeze -f failed"
	# What was on its way down before the freeze lands first.
	sleep 1
	w1=$(writes_done "$dev")
	sleep 3
	w2=$(writes_done "$dev")
	fsfreeze -u "$fm"
	wait_writes "$dev" $((w2 + 64)) || why+=" writes did not resume after the thaw"
	kill -INT "$fpid"
	wait "$fpid"
	rc=$?
	# fio stopped by a signal exits 128; its jobs report their own errors.
	[ "$rc" = 128 ] && ! grep -q "err= *[1-9]" "$S/fio-freeze" && rc=0
	diag "writes completed while frozen: $((w2 - w1)) (of $w2 by the thaw)"
	[ "$w1" = "$w2" ] || why+=" $((w2 - w1)) writes completed while the filesystem was frozen"
	[ "$rc" = 0 ] || { sed 's/^/# /' "$S/fio-freeze" | tail -n 5; why+=" fio failed ($rc)"; }
	[ "$(errors_of "$dev")" = 0 ] || why+=" $(errors_of "$dev") errors counted"
	fblk_detach "$dev"
	umount "$fm"
	if [ -z "$why" ]; then ok "$desc"; else not_ok "$desc" "$why"; fi
}
freeze_case ""
freeze_case direct

# ---- 2: kill -9 in the middle of I/O ----
# storm_worker KIND DIR N: one of the processes that are killed (run in a
# session of its own through bash -c).
# shellcheck disable=SC2317
storm_worker() {
	local kind=$1 d=$2 n=$3 i=0
	while :; do
		i=$((i + 1))
		case $kind in
		write) dd if=/dev/urandom of="$d/w$n.$((i % 4))" bs=64k count=32 \
			conv=fsync status=none ;;
		read) cat "$d"/seed* >/dev/null ;;
		meta) mkdir -p "$d/m$n/$i" && seq "$i" >"$d/m$n/$i/f" && sync -f "$d" ;;
		esac
	done
}

kill_storm() {
	local desc="2: kill -9 of readers, writers and fsyncs on ext4 on fblk fails no request"
	local img dev m end r kinds=(write write read read meta) pids why="" k out
	img=$(fblk_image "$FBLK_SCRATCH" 192M) || { not_ok "$desc" "no image"; return; }
	dev=$(fblk_attach "$img") || { not_ok "$desc" "attach failed"; return; }
	mkfs.ext4 -q -F "$dev" >/dev/null 2>&1 || { not_ok "$desc" "mkfs failed"; return; }
	m=$(fblk_mkdir)
	mount "$dev" "$m" || { not_ok "$desc" "mount failed"; return; }
	for k in 1 2 3 4; do
		dd if=/dev/urandom of="$m/seed$k" bs=1M count=4 status=none
	done
	sync
	r=0
	end=$((SECONDS + 15))
	while [ $SECONDS -lt $end ]; do
		r=$((r + 1))
		drop_caches
		pids=()
		for k in "${!kinds[@]}"; do
			setsid bash -c "$(declare -f storm_worker); storm_worker ${kinds[k]} '$m' $k" \
				</dev/null >/dev/null 2>&1 &
			pids+=($!)
		done
		sleep "0.$((RANDOM % 8 + 2))"
		for k in "${pids[@]}"; do
			kill -9 -- "-$k" 2>/dev/null || kill -9 "$k" 2>/dev/null
		done
		wait 2>/dev/null
	done
	diag "$r rounds of ${#kinds[@]} processes killed"
	diag "$(tr '\n' ' ' <"/sys/block/${dev##*/}/fblk/stats")"
	[ "$(errors_of "$dev")" = 0 ] || why+=" fblk counted $(errors_of "$dev") failed requests"
	out=$(splats)
	[ -z "$out" ] || why+=" $(echo "$out" | head -n 3)"
	umount "$m" || why+=" umount failed"
	if ! e2fsck -fn "$dev" >"$S/fsck" 2>&1; then
		sed 's/^/# /' "$S/fsck" | tail -n 10
		why+=" e2fsck found errors"
	fi
	fblk_detach "$dev"
	rm -f "$img"
	if [ -z "$why" ]; then ok "$desc"; else not_ok "$desc" "$why"; fi
}
kill_storm

# ---- 3: two devices on one file leave its mapping as it was ----
gfp_after_two_devices() {
	local desc="3: two devices on one file, both detached: the file's page cache allocations are as before"
	local img a b t=/sys/kernel/tracing ev noio movable keep rec_cmd
	if [ ! -d $t/events ] && mount -t tracefs tracefs $t 2>/dev/null; then
		fblk_at_exit "umount $t"
	fi
	if [ ! -d $t/events/kmem/mm_page_alloc ]; then
		skip "$desc" "kernel has no kmem:mm_page_alloc tracepoint"
		return
	fi
	img=$(fblk_image "$FBLK_SCRATCH" 16M) || { not_ok "$desc" "no image"; return; }
	dd if=/dev/urandom of="$img" bs=1M count=16 conv=notrunc status=none
	if ! a=$(fblk_attach "$img") || ! b=$(fblk_attach "$img"); then
		not_ok "$desc" "attach failed"
		return
	fi
	dd if="$a" of=/dev/null bs=64k count=4 status=none
	dd if="$b" of=/dev/null bs=64k count=4 status=none
	# The inode must stay cached (a fresh one gets a fresh mask): an open
	# descriptor keeps it, and only the page cache is dropped.
	exec {keep}<"$img"
	# In the order they were attached: the last detach is the one that
	# used to restore a mask the first attach had already changed.
	fblk_detach "$a" && fblk_detach "$b"
	sync
	echo 1 >/proc/sys/vm/drop_caches
	# A reader of a distinct name, whose page cache allocations we trace.
	cp "$(command -v dd)" "$S/gfpprobe"
	ev=$t/events/kmem/mm_page_alloc
	echo 'comm == "gfpprobe"' >$ev/filter
	echo >$t/trace
	# Without record-cmd, enabling the event patches its own call site
	# only, not the scheduler's tracepoints: under TCG, a vCPU that sat
	# in __schedule while its jump label was patched once never answered
	# the patcher's IPI (a soft lockup; 6.1, seen once).
	rec_cmd=$(cat $t/options/record-cmd 2>/dev/null)
	[ -n "$rec_cmd" ] && echo 0 >$t/options/record-cmd
	echo 1 >$ev/enable
	"$S/gfpprobe" if="$img" of=/dev/null bs=1M status=none
	echo 0 >$ev/enable
	[ -n "$rec_cmd" ] && echo "$rec_cmd" >$t/options/record-cmd
	exec {keep}<&-
	echo 0 >$ev/filter
	grep gfp_flags $t/trace >"$S/gfp"
	echo >$t/trace
	# Page cache folios are movable and hardwall; without __GFP_IO and
	# __GFP_FS the tracer names their mask GFP_NOIO.
	movable=$(grep -c '__GFP_HARDWALL\|GFP_HIGHUSER' "$S/gfp")
	noio=$(grep -c 'GFP_NOIO.*__GFP_HARDWALL' "$S/gfp")
	diag "page allocations of the reader: $movable for the page cache, $noio of them NOIO"
	grep -m 2 'GFP_HIGHUSER\|__GFP_HARDWALL' "$S/gfp" | sed 's/^ */# /'
	rm -f "$img"
	if [ "$movable" -gt 0 ] && [ "$noio" = 0 ]; then
		ok "$desc"
	else
		not_ok "$desc" "want page cache allocations, none NOIO: $movable, $noio NOIO"
	fi
}
gfp_after_two_devices

# ---- 4: writes through fblk under tiny dirty limits finish ----
dirty_limits() {
	local desc="4: ext4 on fblk on a buffered file, 2 MiB dirty limit: 96 MiB of writes finish"
	local img dev m old_b old_bg old_r old_bgr rc why=""
	img=$(fblk_image "$FBLK_SCRATCH" 128M) || { not_ok "$desc" "no image"; return; }
	dev=$(fblk_attach "$img") || { not_ok "$desc" "attach failed"; return; }
	mkfs.ext4 -q -F "$dev" >/dev/null 2>&1 || { not_ok "$desc" "mkfs failed"; return; }
	m=$(fblk_mkdir)
	mount "$dev" "$m" || { not_ok "$desc" "mount failed"; return; }
	old_b=$(cat /proc/sys/vm/dirty_bytes)
	old_bg=$(cat /proc/sys/vm/dirty_background_bytes)
	old_r=$(cat /proc/sys/vm/dirty_ratio)
	old_bgr=$(cat /proc/sys/vm/dirty_background_ratio)
	echo $((2 << 20)) >/proc/sys/vm/dirty_bytes
	echo $((512 << 10)) >/proc/sys/vm/dirty_background_bytes
	timeout 300 dd if=/dev/zero of="$m/big" bs=1M count=96 conv=fsync status=none
	rc=$?
	# Writing the ratios back clears the byte limits.
	echo "$old_r" >/proc/sys/vm/dirty_ratio
	echo "$old_bgr" >/proc/sys/vm/dirty_background_ratio
	[ "$old_b" = 0 ] || echo "$old_b" >/proc/sys/vm/dirty_bytes
	[ "$old_bg" = 0 ] || echo "$old_bg" >/proc/sys/vm/dirty_background_bytes
	[ "$rc" = 0 ] || why="dd did not finish (rc $rc)"
	umount "$m" || why+=" umount failed"
	[ "$(errors_of "$dev")" = 0 ] || why+=" $(errors_of "$dev") errors counted"
	fblk_detach "$dev"
	rm -f "$img"
	if [ -z "$why" ]; then ok "$desc"; else not_ok "$desc" "$why"; fi
}
dirty_limits

# ---- 5: detach and unmount the lower filesystem under load ----
detach_rounds() {
	local desc="5: detach, then unmount the lower filesystem, with reads in flight ($ROUNDS rounds)"
	local lm dev r fpid why=""
	lm=$(fblk_mkdir)
	for ((r = 1; r <= ROUNDS; r++)); do
		new_lower "$lm" || { why="round $r: no lower filesystem"; break; }
		dd if=/dev/urandom of="$lm/img" bs=1M count=48 status=none
		dev=$(fblk_attach "$lm/img") || { why="round $r: attach failed"; break; }
		drop_caches
		fio --name=r --filename="$dev" --rw=randread --bs=4k --direct=1 \
			--ioengine=io_uring --iodepth=32 --time_based --runtime=2 \
			>"$S/fio-detach" 2>&1 &
		fpid=$!
		sleep 1
		# Open by fio: the detach happens at its last close.
		fblk_detach "$dev" || why+=" round $r: detach refused"
		kill -9 "$fpid" 2>/dev/null
		wait "$fpid" 2>/dev/null
		fblk_wait_attr "$dev" state unbound 10 || why+=" round $r: still bound"
		umount "$lm" || { why+=" round $r: umount failed"; break; }
	done
	if [ -z "$why" ]; then ok "$desc"; else not_ok "$desc" "$why"; fi
}
detach_rounds

# ---- 6: reads keep flowing while the same queue punches and writes ----
# 4 KiB random reads on DEV's first 128 MiB, cached in the backing file's
# page cache (cache_read_range): every read is one trip through the issuer
# and the lower file's read path with nothing to allocate.  Allocating page
# cache under emulation stalls now and then for tens of ms (a raw file read
# buffered stalls as often as fblk does), which would set both p99s.  The
# same 16000 offsets in every run (fio's fixed seed; its random map reads
# no block twice).  Prints p50, p99 and p99.9 (us) and the reads done, as
# fio reports them.
read_percentiles() {
	fio --name=r --filename="$1" --rw=randread --bs=4k --direct=1 \
		--ioengine=io_uring --iodepth=8 --size=128M --number_ios=16000 \
		--runtime=20 --output-format=json >"$S/fio-p99.json" 2>"$S/fio-p99.err" || return 1
	python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]["read"]
p = j["clat_ns"]["percentile"]
print(*(int(p[k] / 1000) for k in ("50.000000", "99.000000", "99.900000")), j["total_ios"])' "$S/fio-p99.json"
}

# Drop the caches, then read IMG's first 128 MiB into its page cache.
cache_read_range() {
	drop_caches
	dd if="$1" of=/dev/null bs=1M count=128 status=none
}

# disturb DEV, in the background until it is sent SIGINT: buffered writes
# into DEV's last quarter (through the upper page cache) and hole punches
# (discards) in its third, at a steady rate: what they cost the guest's
# CPUs stays small, what they hold below (the lower inode's lock, the
# mapping's invalidate_lock) does not.
disturb() {
	fio --ioengine=psync --time_based --runtime=60 --filename="$1" \
		--name=w --rw=randwrite --bs=16k --direct=0 --offset=192M \
		--size=64M --rate=2m \
		--name=t --rw=randtrim --bs=1M --offset=128M --size=60M \
		--rate_iops=20 >"$S/fio-disturb" 2>&1 &
}

issuer_not_blocked() {
	local desc="6: 4 KiB random reads on one queue keep their p99 within 3x while it punches holes and writes"
	local nm img dev alone again loaded base n p50 p99 p999 fio_pid to_pool
	nm=$(fblk_mkdir)
	if ! fblk_nullb fblksafe 512 || ! mkfs.ext4 -q -F /dev/fblksafe >/dev/null 2>&1 ||
		! fblk_mount /dev/fblksafe "$nm"; then
		not_ok "$desc" "no null_blk device"
		return
	fi
	img=$nm/img
	fblk_at_exit "rm -f '$img'"
	dd if=/dev/urandom of="$img" bs=1M count=256 status=none
	dev=$(FBLK_QUEUES=1 fblk_attach "$img") || { not_ok "$desc" "attach failed"; return; }
	cache_read_range "$img"
	alone=$(read_percentiles "$dev") || { not_ok "$desc" "fio failed: $(tail -n 2 "$S/fio-p99.err")"; return; }
	cache_read_range "$img"
	fblk_snap "$dev" "$S/safety6.a"
	disturb "$dev"
	fio_pid=$!
	sleep 1
	loaded=$(read_percentiles "$dev")
	kill -INT "$fio_pid"
	wait "$fio_pid"
	fblk_snap "$dev" "$S/safety6.b"
	[ -n "$loaded" ] || { not_ok "$desc" "fio failed under load: $(tail -n 2 "$S/fio-p99.err")"; return; }
	# The undisturbed p99 is measured before and after: the larger is
	# the baseline, so that its own spread is not taken for a wait.
	cache_read_range "$img"
	again=$(read_percentiles "$dev") || { not_ok "$desc" "fio failed: $(tail -n 2 "$S/fio-p99.err")"; return; }
	fblk_detach "$dev"
	read -r p50 p99 p999 n <<<"$alone"
	diag "alone: p50 ${p50} p99 ${p99} p99.9 ${p999} us over $n reads"
	base=$p99
	read -r p50 p99 p999 n <<<"$again"
	diag "alone again: p50 ${p50} p99 ${p99} p99.9 ${p999} us over $n reads"
	[ "$p99" -gt "$base" ] && base=$p99
	to_pool=$(fblk_delta "$S/safety6.a" "$S/safety6.b" blocking_fallbacks)
	read -r p50 p99 p999 n <<<"$loaded"
	diag "with punches and writes: p50 ${p50} p99 ${p99} p99.9 ${p999} us over $n reads," \
		"$to_pool of them through the pool"
	diag "disturbance: $(grep -E '^ +(write|trim):' "$S/fio-disturb" | tr -s ' ' | tr '\n' ';')"
	fblk_show_delta "$S/safety6.a" "$S/safety6.b"
	# Cached reads need no lock below: a busy mapping sends none of them
	# to the pool.
	if [ "$to_pool" -ne 0 ]; then
		not_ok "$desc" "$to_pool cached reads went to the pool"
	elif [ "$p99" -le $((3 * base)) ]; then
		ok "$desc"
	else
		not_ok "$desc" "p99 ${p99} us against ${base} us alone"
	fi
}
issuer_not_blocked

# ---- 7: a lower device without REQ_NOWAIT still lets buffered reads wait ----
# A file on ext4 on a loop device (which takes no REQ_NOWAIT bios): only
# direct I/O needs NOWAIT below the file; cold buffered reads park on their
# folios as on any other file, none is read in the pool.
nowait_below() {
	local desc="7: buffered reads of a file on a device without REQ_NOWAIT wait on folios, not in the pool"
	local img lo lm dev a b armed punts
	img=$(fblk_image "$FBLK_SCRATCH" 96M) || { not_ok "$desc" "no image"; return; }
	lo=$(/sbin/losetup -f --show "$img") || { not_ok "$desc" "no loop device"; return; }
	fblk_at_exit "/sbin/losetup -d '$lo'"
	lm=$(fblk_mkdir)
	if ! mkfs.ext4 -q -F "$lo" >/dev/null 2>&1 || ! fblk_mount "$lo" "$lm"; then
		not_ok "$desc" "no ext4 on $lo"
		return
	fi
	dd if=/dev/urandom of="$lm/img" bs=1M count=32 status=none
	fblk_at_exit "rm -f '$lm/img'"
	dev=$(fblk_attach "$lm/img") || { not_ok "$desc" "attach failed"; return; }
	drop_caches
	fblk_snap "$dev" "$S/a"
	fio --name=r --filename="$dev" --rw=randread --bs=4k --direct=1 \
		--ioengine=io_uring --iodepth=8 --size=32M --io_size=4M >/dev/null 2>&1
	fblk_snap "$dev" "$S/b"
	fblk_detach "$dev"
	armed=$(fblk_delta "$S/a" "$S/b" waitq_armed)
	punts=$(fblk_delta "$S/a" "$S/b" punts)
	diag "waitq_armed=$armed punts=$punts"
	if [ "$armed" -gt 0 ] && [ "$punts" = 0 ]; then
		ok "$desc"
	else
		not_ok "$desc" "waitq_armed=$armed punts=$punts"
	fi
}
nowait_below

out=$(splats)
if [ -z "$out" ]; then
	ok "8: no kernel warning, hung task, KASAN report or I/O error in the log"
else
	not_ok "8: no kernel warning, hung task, KASAN report or I/O error in the log" \
		"$(echo "$out" | head -n 5)"
fi

tap_done
