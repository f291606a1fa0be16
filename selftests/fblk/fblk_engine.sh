#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The I/O engine's paths, seen through its counters (/sys/block/fblkN/fblk/
# stats): cold buffered reads park on the page cache (waitq) without blocking
# fallbacks or retry storms and mostly finish from their wakeup, with the
# right data, warm reads complete inline, direct reads queue
# asynchronously, NOWAIT direct writes to a sparse file are reissued by
# their queue's reissuer (not the pool), buffered writes go to the pool on
# ext4 and may complete inline on xfs,
# submit=threads punts everything, and errors are counted where they happen
# and nowhere else.
#
# The backing store is a latency device (fblk_nullb in lib.sh): null_blk,
# memory backed, 1 ms timer completions, 4 KiB blocks, 2 queues of 128, with
# ext4 on it.  Each fio job drives /dev/fblkN with io_uring and O_DIRECT (the
# upper page cache is out of the way; the io_mode decides the lower one).
# Devices over the null_blk filesystem use 4 KiB blocks: direct I/O there
# needs the device's 4 KiB alignment.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

NB=fblkeng
RAMDISK=/dev/ram2
DMERR=fblkeng-err

tap_plan 15
fblk_require_module || tap_done

dmesg_start=$(dmesg | wc -l)

# ---- helpers ----

snap() { fblk_snap "$@"; }
val() { fblk_val "$@"; }
delta() { fblk_delta "$@"; }
show() { fblk_show_delta "$@"; }

# fio_run NAME ARGS...: fio on its own; its output goes to the log on failure.
fio_run() {
	local name=$1
	shift
	if ! fio --name="$name" --ioengine=io_uring --direct=1 --bs=4k \
		--iodepth=32 --group_reporting "$@" >"$FBLK_T_STATE/fio-$name" 2>&1; then
		sed 's/^/# /' "$FBLK_T_STATE/fio-$name"
		return 1
	fi
	grep -E '^ +(read|write):|err=' "$FBLK_T_STATE/fio-$name" | sed 's/^ */# /'
	return 0
}

set_param() {
	echo "$3" >"/sys/block/${1##*/}/fblk/$2"
}

hung_tasks() {
	dmesg | tail -n +"$((dmesg_start + 1))" | grep -E 'blocked for more than|hung_task'
}

# ---- the latency device, ext4 on it, a fully written image ----

mnt=$(fblk_mkdir)
img=
if fblk_nullb "$NB" 640 && mkfs.ext4 -q -F "/dev/$NB" && fblk_mount "/dev/$NB" "$mnt"; then
	img=$mnt/image
	fblk_at_exit "rm -f '$img'"
	# Written, not sparse: a cold read must go to the device.
	dd if=/dev/zero of="$img" bs=1M count=256 oflag=direct status=none || img=
fi
[ -n "$img" ] || diag "the null_blk latency device could not be made"

S=$FBLK_T_STATE

# ---- 1: cold buffered random reads ----
# A 4 KiB read waits for one folio: its wakeup finishes it (no retry).
desc="cold buffered random reads arm waitq, >= 90% finish from the wakeup, no blocking fallback, retries_max <= 4"
dev=
[ -n "$img" ] && dev=$(fblk_attach "$img" bs=4096)
if [ -z "$dev" ]; then
	not_ok "$desc" "no device on the latency device"
else
	drop_caches
	snap "$dev" "$S/a"
	if fio_run cold --filename="$dev" --rw=randread --runtime=5 --time_based \
		--norandommap --randrepeat=0; then
		snap "$dev" "$S/b"
		show "$S/a" "$S/b"
		waitq=$(delta "$S/a" "$S/b" waitq_armed)
		wakeups=$(delta "$S/a" "$S/b" wakeups)
		finished=$(delta "$S/a" "$S/b" wakeup_completed)
		fallbacks=$(delta "$S/a" "$S/b" blocking_fallbacks)
		rmax=$(val "$S/b" retries_max)
		diag "cold: waitq_armed=$waitq wakeups=$wakeups wakeup_completed=$finished blocking_fallbacks=$fallbacks retries_max=$rmax"
		if [ "$waitq" -gt 0 ] && [ "$wakeups" -gt 0 ] &&
			[ $((finished * 10)) -ge $((wakeups * 9)) ] &&
			[ "$fallbacks" = 0 ] && [ "$rmax" -le 4 ]; then
			ok "$desc"
		else
			not_ok "$desc" "want waitq_armed > 0, wakeups > 0, wakeup_completed >= 90% of wakeups, blocking_fallbacks 0, retries_max <= 4"
		fi
	else
		not_ok "$desc" "fio failed"
	fi
fi

# ---- 1a: what the wakeup copies is the right data ----
# fio writes its verify blocks (offset and checksum in each) into the image
# itself, then reads them back cold through fblk in the same random order:
# 4 KiB reads finish from their wakeup, 8 KiB ones mostly after a retry
# copied their first folio, 64 KiB ones by retries.  32 MiB each, apart.
desc="cold buffered reads finished from the wakeup or by retries return the right data (4k, 8k, 64k)"
if [ -z "$dev" ]; then
	not_ok "$desc" "no device"
else
	fails="" off=64
	snap "$dev" "$S/a"
	for bs in 4k 8k 64k; do
		pat=(--rw=randwrite "--bs=$bs" "--offset=${off}M" --size=32M --randrepeat=1
			--verify=crc32c)
		if ! fio_run "pat-$bs" --filename="$img" "${pat[@]}" --do_verify=0 >/dev/null; then
			fails+=" write-$bs"
		else
			drop_caches
			snap "$dev" "$S/c"
			fio_run "check-$bs" --filename="$dev" "${pat[@]}" --verify_only=1 \
				--verify_fatal=1 >/dev/null || fails+=" $bs"
			snap "$dev" "$S/d"
			diag "$bs: wakeups=$(delta "$S/c" "$S/d" wakeups) wakeup_completed=$(delta "$S/c" "$S/d" wakeup_completed) retries=$(delta "$S/c" "$S/d" retries) partial=$(delta "$S/c" "$S/d" partial)"
		fi
		off=$((off + 32))
	done
	snap "$dev" "$S/b"
	finished=$(delta "$S/a" "$S/b" wakeup_completed)
	if [ -z "$fails" ] && [ "$finished" -gt 0 ] &&
		[ "$(delta "$S/a" "$S/b" errors)" = 0 ]; then
		ok "$desc"
	else
		not_ok "$desc" "failed:${fails:- none}; wakeup_completed=$finished errors=$(delta "$S/a" "$S/b" errors)"
	fi
fi

# ---- 2: warm reads complete inline ----
# The same 16 MiB read twice: the first pass fills the backing file's page
# cache, the second must not need to wait for anything.
if [ -z "$dev" ]; then
	not_ok "warm buffered random reads complete inline (>= 90%)" "no device"
elif fio_run warm1 --filename="$dev" --rw=read --bs=256k --size=16M &&
	snap "$dev" "$S/a" &&
	fio_run warm2 --filename="$dev" --rw=randread --size=16M --runtime=3 --time_based; then
	snap "$dev" "$S/b"
	show "$S/a" "$S/b"
	reads=$(delta "$S/a" "$S/b" rq_reads)
	inl=$(delta "$S/a" "$S/b" inline_completed)
	diag "warm: $inl of $reads reads completed inline"
	if [ "$reads" -gt 0 ] && [ $((inl * 100)) -ge $((reads * 90)) ]; then
		ok "warm buffered random reads complete inline (>= 90%)"
	else
		# A read dispatched from inside submit_bio() (current->bio_list:
		# no plug, as fio submits one SQE at a time) is deferred to the
		# retry worker: retries without nowait_eagain count those.
		not_ok "warm buffered random reads complete inline (>= 90%)" \
			"$inl of $reads inline; $(delta "$S/a" "$S/b" retries) retries with $(delta "$S/a" "$S/b" nowait_eagain) NOWAIT -EAGAIN: deferred from inside submit_bio()"
	fi
else
	not_ok "warm buffered random reads complete inline (>= 90%)" "fio failed"
fi
# For the record: the same with 16 SQEs per io_uring_enter (io_uring plugs a
# submission of more than 2; fio's default submits each I/O on its own, so
# ->queue_rq runs inside submit_bio()).
if [ -n "$dev" ]; then
	snap "$dev" "$S/a"
	fio_run warm3 --filename="$dev" --rw=randread --size=16M --runtime=2 --time_based \
		--iodepth_batch_submit=16 --iodepth_batch_complete_min=16 >/dev/null
	snap "$dev" "$S/b"
	diag "warm, batched submission: $(delta "$S/a" "$S/b" inline_completed) of $(delta "$S/a" "$S/b" rq_reads) reads inline, punts=$(delta "$S/a" "$S/b" punts) retries=$(delta "$S/a" "$S/b" retries)"
fi

# ---- 3: direct reads are queued asynchronously ----
if [ -z "$dev" ] || ! set_param "$dev" io_mode direct; then
	not_ok "direct random reads: queued_async, (almost) no punts" "no device, or io_mode direct refused"
else
	snap "$dev" "$S/a"
	if fio_run direct --filename="$dev" --rw=randread --runtime=3 --time_based \
		--norandommap --randrepeat=0; then
		snap "$dev" "$S/b"
		show "$S/a" "$S/b"
		reads=$(delta "$S/a" "$S/b" rq_reads)
		queued=$(delta "$S/a" "$S/b" queued_async)
		punts=$(( $(delta "$S/a" "$S/b" punts) + $(delta "$S/a" "$S/b" reissued) ))
		diag "direct: $reads reads, queued_async=$queued punts+reissued=$punts"
		# A reissue follows a NOWAIT -EAGAIN or a submission from deep
		# inside a stack of submit_bio() calls: allow 1% of them.
		if [ "$queued" -gt 0 ] && [ $((punts * 100)) -le "$reads" ]; then
			ok "direct random reads: queued_async, (almost) no punts"
		else
			not_ok "direct random reads: queued_async, (almost) no punts" \
				"queued_async=$queued punts=$punts of $reads reads, nowait_eagain=$(delta "$S/a" "$S/b" nowait_eagain)"
		fi
	else
		not_ok "direct random reads: queued_async, (almost) no punts" "fio failed"
	fi
fi
# ---- 3a: a large read is one request ----
# Without a limit of its own the queue would cut requests at 255 sectors: a
# 128 KiB read would arrive as 127.5 KiB and a 512-byte request.  512 KiB
# is 128 pages of dd's buffer: the queue's default 128 segments.
if [ -n "$dev" ]; then
	snap "$dev" "$S/a"
	if dd if="$dev" of=/dev/null bs=512K count=1 skip=3 iflag=direct status=none 2>"$S/err"; then
		snap "$dev" "$S/b"
		reqs=$(delta "$S/a" "$S/b" rq_reads)
		diag "one 512 KiB O_DIRECT read: $reqs request(s), max_sectors_kb $(cat "/sys/block/${dev##*/}/queue/max_sectors_kb")"
		if [ "$reqs" = 1 ]; then
			ok "a 512 KiB read reaches the queue as one request"
		else
			not_ok "a 512 KiB read reaches the queue as one request" "$reqs requests"
		fi
	else
		not_ok "a 512 KiB read reaches the queue as one request" "dd: $(cat "$S/err")"
	fi
else
	not_ok "a 512 KiB read reaches the queue as one request" "no device"
fi
# ---- 3b: a burst of requests wakes the queue's issuer once ----
# 16 SQEs per io_uring_enter reach ->queue_rq as one plugged burst; with 32
# in flight the submitter hands them to the queue's issuer, which blk-mq's
# end-of-burst signal (bd->last, ->commit_rqs) wakes once for all of them.
# Woken at each hand-off instead, it may take a request or two a run (on
# real CPUs; under TCG its wakeup is slower than a burst, which hides it).
if [ -z "$dev" ]; then
	not_ok "a burst of 16 requests wakes the issuer once (>= 8 requests a run)" "no device"
else
	snap "$dev" "$S/a"
	if fio_run direct2 --filename="$dev" --rw=randread --runtime=3 --time_based \
		--norandommap --randrepeat=0 --iodepth_batch_submit=16 \
		--iodepth_batch_complete_min=16; then
		snap "$dev" "$S/b"
		show "$S/a" "$S/b"
		handed=$(delta "$S/a" "$S/b" handed_off)
		runs=$(delta "$S/a" "$S/b" issuer_runs)
		diag "direct, 16 SQEs a submission: $(delta "$S/a" "$S/b" rq_reads) reads, handed_off=$handed issuer_runs=$runs"
		if [ "$handed" -gt 0 ] && [ $((runs * 8)) -le "$handed" ]; then
			ok "a burst of 16 requests wakes the issuer once (>= 8 requests a run)"
		else
			not_ok "a burst of 16 requests wakes the issuer once (>= 8 requests a run)" \
				"handed_off=$handed issuer_runs=$runs"
		fi
	else
		not_ok "a burst of 16 requests wakes the issuer once (>= 8 requests a run)" "fio failed"
	fi
	fblk_detach "$dev"
fi

# ---- 4: random writes to a sparse file, direct ----
# NOWAIT direct writes into unallocated blocks return -EAGAIN (the
# filesystem must allocate): the queue's reissuer issues them again without
# NOWAIT, one after another, and the pool (for what must block) stays out
# of it.
sparse=
[ -n "$img" ] && sparse=$(fblk_image "$mnt" 128M)
dev=
[ -n "$sparse" ] && dev=$(fblk_attach "$sparse" direct bs=4096)
if [ -z "$dev" ]; then
	not_ok "sparse random writes, direct: NOWAIT -EAGAIN reissued, not pooled, data verified" "no device"
else
	snap "$dev" "$S/a"
	if fio_run sparse --filename="$dev" --rw=randwrite --size=48M \
		--verify=crc32c --do_verify=1 --verify_fatal=1; then
		snap "$dev" "$S/b"
		show "$S/a" "$S/b"
		eagain=$(delta "$S/a" "$S/b" nowait_eagain)
		reissued=$(delta "$S/a" "$S/b" reissued)
		punts=$(delta "$S/a" "$S/b" punts)
		diag "sparse: nowait_eagain=$eagain reissued=$reissued punts=$punts pool_depth_max=$(val "$S/b" pool_depth_max)"
		if [ "$eagain" -gt 0 ] && [ "$reissued" -ge "$eagain" ] && [ "$punts" = 0 ]; then
			ok "sparse random writes, direct: NOWAIT -EAGAIN reissued, not pooled, data verified"
		else
			not_ok "sparse random writes, direct: NOWAIT -EAGAIN reissued, not pooled, data verified" \
				"nowait_eagain=$eagain reissued=$reissued punts=$punts (of $(delta "$S/a" "$S/b" rq_writes) writes, $(delta "$S/a" "$S/b" rq_reads) reads)"
		fi
	else
		not_ok "sparse random writes, direct: NOWAIT -EAGAIN reissued, not pooled, data verified" "fio (verify) failed"
	fi
	fblk_detach "$dev"
fi
out=$(hung_tasks)
if [ -z "$out" ]; then
	ok "no hung task during the sparse writes"
else
	not_ok "no hung task during the sparse writes" "$(echo "$out" | head -n 3)"
fi

# ---- 5: buffered writes: ext4 through the pool, xfs possibly inline ----
# ext4 offers no async buffered writes (no FMODE_BUF_WASYNC on 6.1, no
# FOP_BUFFER_WASYNC on 7.3): every write must go to the pool.  xfs has them
# on both lines, so a NOWAIT write into cached pages can complete inline;
# whether a given one does depends on the submission context (a request
# dispatched from inside submit_bio() is deferred) and on the filesystem
# (-EAGAIN on lock contention or allocation), so only "some" is asserted,
# over a fully written image (overwrites, no allocation).
bufwrite() {
	local desc=$1 backing=$2 fs=$3 dev writes punts inl
	dev=$(fblk_attach "$backing" bs=4096) || { not_ok "$desc" "attach failed"; return; }
	fio_run "bw-$fs-warm" --filename="$dev" --rw=read --bs=256k --size=32M >/dev/null
	snap "$dev" "$S/a"
	if ! fio_run "bw-$fs" --filename="$dev" --rw=randwrite --size=32M --runtime=3 --time_based; then
		not_ok "$desc" "fio failed"
		fblk_detach "$dev"
		return
	fi
	snap "$dev" "$S/b"
	show "$S/a" "$S/b"
	writes=$(delta "$S/a" "$S/b" rq_writes)
	punts=$(delta "$S/a" "$S/b" punts)
	inl=$(delta "$S/a" "$S/b" inline_completed)
	diag "$fs: $writes writes, punts=$punts inline_completed=$inl"
	fblk_detach "$dev"
	case $fs in
	ext4)
		if [ "$writes" -gt 0 ] && [ "$punts" -ge "$writes" ] && [ "$inl" = 0 ]; then
			ok "$desc"
		else
			not_ok "$desc" "want every write punted: writes=$writes punts=$punts inline=$inl"
		fi ;;
	xfs)
		if [ "$writes" -gt 0 ] && [ "$inl" -gt 0 ]; then
			ok "$desc"
		else
			not_ok "$desc" "want some writes inline: writes=$writes punts=$punts inline=$inl nowait_eagain=$(delta "$S/a" "$S/b" nowait_eagain) (punts without -EAGAIN: deferred from inside submit_bio())"
		fi ;;
	esac
}

if [ -n "$img" ]; then
	bufwrite "buffered writes on ext4 all go to the pool" "$img" ext4
else
	not_ok "buffered writes on ext4 all go to the pool" "no image"
fi
if [ -n "$FBLK_SCRATCH_XFS" ] && [ -d "$FBLK_SCRATCH_XFS" ]; then
	ximg=$(fblk_image "$FBLK_SCRATCH_XFS" 32M)
	dd if=/dev/zero of="$ximg" bs=1M count=32 conv=notrunc,fsync status=none
	bufwrite "buffered writes on xfs (async buffered writes): some complete inline" "$ximg" xfs
else
	not_ok "buffered writes on xfs (async buffered writes): some complete inline" "no FBLK_SCRATCH_XFS"
fi

# ---- 6: submit=threads ----
dev=
[ -n "$img" ] && dev=$(fblk_attach "$img" bs=4096)
if [ -z "$dev" ] || ! set_param "$dev" submit threads; then
	not_ok "submit=threads: every read and write is a punt, none inline" "no device or submit refused"
else
	snap "$dev" "$S/a"
	if fio_run threads --filename="$dev" --rw=randrw --size=64M --runtime=3 --time_based; then
		snap "$dev" "$S/b"
		show "$S/a" "$S/b"
		ios=$(($(delta "$S/a" "$S/b" rq_reads) + $(delta "$S/a" "$S/b" rq_writes)))
		punts=$(delta "$S/a" "$S/b" punts)
		inl=$(delta "$S/a" "$S/b" inline_completed)
		queued=$(delta "$S/a" "$S/b" queued_async)
		waitq=$(delta "$S/a" "$S/b" waitq_armed)
		diag "threads: $ios I/Os, punts=$punts inline_completed=$inl queued_async=$queued waitq_armed=$waitq"
		if [ "$ios" -gt 0 ] && [ "$punts" -ge "$ios" ] && [ "$inl" = 0 ] &&
			[ "$queued" = 0 ] && [ "$waitq" = 0 ]; then
			ok "submit=threads: every read and write is a punt, none inline"
		else
			not_ok "submit=threads: every read and write is a punt, none inline"
		fi
	else
		not_ok "submit=threads: every read and write is a punt, none inline" "fio failed"
	fi
	fblk_detach "$dev"
fi

# ---- 7: reads past a truncated backing file read zeroes, no error ----
# The device keeps its size (no FBLK_SET_CAPACITY) while the file shrinks
# under it: the second half now lies past EOF.
short_read() {
	local desc=$1 mode=$2 f dev
	f=$(fblk_image "$FBLK_SCRATCH" 8M)
	head -c 8M /dev/zero | tr '\0' '\377' >"$f"
	dev=$(fblk_attach "$f" ${mode:+"$mode"}) || { not_ok "$desc" "attach failed"; return; }
	snap "$dev" "$S/a"
	truncate -s 4M "$f"
	drop_caches
	if ! dd if="$dev" of="$S/tail" bs=64k skip=64 count=64 iflag=direct status=none; then
		not_ok "$desc" "read of the truncated range failed"
	elif ! cmp -s "$S/tail" <(head -c 4M /dev/zero); then
		not_ok "$desc" "the range past EOF did not read as zeroes"
	elif ! dd if="$dev" bs=64k count=64 iflag=direct status=none | tr -d '\377' | cmp -s - /dev/null; then
		not_ok "$desc" "the range before EOF changed"
	else
		snap "$dev" "$S/b"
		show "$S/a" "$S/b"
		if [ "$(delta "$S/a" "$S/b" errors)" = 0 ]; then
			ok "$desc"
		else
			not_ok "$desc" "errors counted: $(delta "$S/a" "$S/b" errors)"
		fi
	fi
	fblk_detach "$dev"
}
short_read "buffered: a read past a truncated backing file reads zeroes, no error" ""
short_read "direct: a read past a truncated backing file reads zeroes, no error" direct

# ---- 8: an I/O error underneath fails only the requests it hits ----
# The backing is a block device: 16 MiB of /dev/ram2, then 16 MiB of
# dm-error.  Reads of the good half work before and after; a read of the
# bad half fails, and each failed request is counted in errors.
io_error() {
	local desc=$1 mode=$2 dev errs
	dev=$(fblk_attach "/dev/mapper/$DMERR" ${mode:+"$mode"}) || { not_ok "$desc" "attach failed"; return; }
	snap "$dev" "$S/a"
	if ! dd if="$dev" of=/dev/null bs=4k count=256 iflag=direct status=none; then
		not_ok "$desc" "a read of the good half failed"
	elif dd if="$dev" of=/dev/null bs=4k skip=6144 count=1 iflag=direct status=none 2>/dev/null; then
		not_ok "$desc" "a read of the dm-error half succeeded"
	elif ! dd if="$dev" of=/dev/null bs=4k skip=1024 count=256 iflag=direct status=none; then
		not_ok "$desc" "the good half failed after the error"
	else
		snap "$dev" "$S/b"
		show "$S/a" "$S/b"
		errs=$(delta "$S/a" "$S/b" errors)
		# dd's one 4 KiB read is one request; the block layer may retry
		# nothing here, but allow a few in case it is split.
		if [ "$errs" -ge 1 ] && [ "$errs" -le 4 ]; then
			ok "$desc"
		else
			not_ok "$desc" "errors counter went up by $errs"
		fi
	fi
	fblk_detach "$dev"
}

if [ -b "$RAMDISK" ] && command -v dmsetup >/dev/null &&
	printf '0 32768 linear %s 0\n32768 32768 error\n' "$RAMDISK" |
	dmsetup create "$DMERR" && dmsetup mknodes "$DMERR"; then
	fblk_at_exit "dmsetup remove '$DMERR'"
	io_error "buffered: an I/O error underneath fails only that request, counted" ""
	io_error "direct: an I/O error underneath fails only that request, counted" direct
else
	not_ok "buffered: an I/O error underneath fails only that request, counted" "dm-error device not made"
	not_ok "direct: an I/O error underneath fails only that request, counted" "dm-error device not made"
fi

tap_done
