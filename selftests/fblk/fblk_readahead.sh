#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Readahead policies (ra_policy, ra_kb) take effect on the backing file, seen
# from below: the latency device's own counters (/sys/block/<nullb>/stat)
# say how many bytes were read for the bytes fblk was asked for, and how
# large the lower requests were.  Every fio job drives /dev/fblkN with
# O_DIRECT, so only the backing file's page cache (buffered io_mode) is in
# play.  The image sits on ext4 on a null_blk device with nothing else on it.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

NB=fblkra

tap_plan 14
fblk_require_module || tap_done

S=$FBLK_T_STATE

# fio_job NAME ARGS...: one quiet fio run, its output kept for failures.
fio_job() {
	local name=$1
	shift
	if ! fio --name="$name" --ioengine=io_uring --direct=1 --group_reporting \
		"$@" >"$S/fio-$name" 2>&1; then
		sed 's/^/# /' "$S/fio-$name"
		return 1
	fi
}

# measure NAME ARGS...: a cold fio run on $dev; sets UP (KiB fblk read),
# LOW (KiB the latency device read), LOWRQ (its read requests), and the
# snapshots $S/a, $S/b of fblk's counters.
measure() {
	local name=$1
	shift
	drop_caches
	fblk_snap "$dev" "$S/a"
	fblk_snap "/dev/$NB" "$S/la"
	fio_job "$name" --filename="$dev" "$@" || return 1
	fblk_snap "$dev" "$S/b"
	fblk_snap "/dev/$NB" "$S/lb"
	UP=$(($(fblk_delta "$S/a" "$S/b" sectors_read) / 2))
	LOW=$(($(fblk_delta "$S/la" "$S/lb" sectors_read) / 2))
	LOWRQ=$(fblk_delta "$S/la" "$S/lb" rq_reads)
	fblk_show_delta "$S/a" "$S/b"
	diag "$name: fblk read $UP KiB, the device below read $LOW KiB in $LOWRQ requests"
	[ "$UP" -gt 0 ] && [ "$LOWRQ" -gt 0 ]
}

# ratio_ok: what the device below read is within 1.1x of what was asked.
ratio_ok() {
	[ $((LOW * 10)) -le $((UP * 11)) ]
}

randread() {
	measure "$1" --rw=randread --bs=4k --iodepth=32 --runtime=4 --time_based \
		--norandommap --randrepeat=0 --size=192M
}

# A stream of 16 KiB reads: read exactly, each costs a 16 KiB lower read;
# read ahead, the lower reads are as large as the window.
seqread() {
	measure "$1" --rw=read --bs="${2:-16k}" --iodepth=4 --size=64M
}

set_ra() {
	echo "$2" >"/sys/block/${dev##*/}/fblk/$1"
}

mnt=$(fblk_mkdir)
img=
if fblk_nullb "$NB" 512 && mkfs.ext4 -q -F "/dev/$NB" && fblk_mount "/dev/$NB" "$mnt"; then
	img=$mnt/image
	fblk_at_exit "rm -f '$img'"
	# Written through, so a cold read must go to the device, with a
	# pattern that makes a misplaced block visible to md5sum.
	fio --name=fill --filename="$img" --rw=write --bs=1M --size=256M --direct=1 \
		--ioengine=psync --verify=pattern --verify_pattern=%o --do_verify=0 \
		>"$S/fio-fill" 2>&1 || img=
fi
dev=
[ -n "$img" ] && dev=$(fblk_attach "$img" bs=4096)
[ -n "$dev" ] || diag "no fblk device over the null_blk latency device"

# ---- 1: the default is auto ----
if [ -n "$dev" ] && [ "$(fblk_attr "$dev" ra_policy)" = auto ]; then
	ok "ra_policy defaults to auto"
else
	not_ok "ra_policy defaults to auto" "ra_policy=$(fblk_attr "$dev" ra_policy 2>/dev/null)"
fi

# ---- 2: random, cold 4 KiB random reads: no byte read for nothing ----
t="random: cold 4 KiB random reads read <= 1.1x the bytes asked"
if [ -n "$dev" ] && set_ra ra_policy random && randread rand; then
	if ratio_ok && [ "$(fblk_delta "$S/a" "$S/b" ra_stream)" = 0 ]; then
		ok "$t"
	else
		not_ok "$t" "read $LOW KiB for $UP KiB; ra_stream=$(fblk_delta "$S/a" "$S/b" ra_stream)"
	fi
else
	not_ok "$t" "no device or fio failed"
fi

# ---- 3: auto, the same: random access is read exactly ----
t="auto: cold 4 KiB random reads read <= 1.1x the bytes asked"
if [ -n "$dev" ] && set_ra ra_policy auto && randread auto-rand; then
	calls=$(fblk_delta "$S/a" "$S/b" ra_calls)
	streams=$(fblk_delta "$S/a" "$S/b" ra_stream)
	if ratio_ok && [ "$calls" -gt 0 ] && [ $((streams * 20)) -le "$calls" ]; then
		ok "$t"
	else
		not_ok "$t" "read $LOW KiB for $UP KiB; ra_calls=$calls ra_stream=$streams"
	fi
else
	not_ok "$t" "no device or fio failed"
fi

# ---- 4: auto switches to streams for a sequential read ----
t="auto: a sequential read is read ahead as a stream, in large lower requests"
if [ -n "$dev" ] && seqread auto-seq; then
	calls=$(fblk_delta "$S/a" "$S/b" ra_calls)
	streams=$(fblk_delta "$S/a" "$S/b" ra_stream)
	avg=$((LOW / LOWRQ))
	diag "auto-seq: ra_calls=$calls ra_stream=$streams, $avg KiB per lower read"
	# Read exactly, each 16 KiB read would be a 16 KiB lower read.
	if [ "$streams" -gt 0 ] && [ $((streams * 2)) -ge "$calls" ] && [ "$avg" -ge 32 ]; then
		ok "$t"
	else
		not_ok "$t" "want most ra_calls as streams and >= 32 KiB per lower read"
	fi
else
	not_ok "$t" "no device or fio failed"
fi

# ---- 5: ... and back to exact reads when the workload turns random ----
t="auto: random again after a stream, <= 1.1x"
if [ -n "$dev" ] && randread auto-rand2; then
	if ratio_ok; then
		ok "$t"
	else
		not_ok "$t" "read $LOW KiB for $UP KiB"
	fi
else
	not_ok "$t" "no device or fio failed"
fi

# ---- 6: a deep stream is its own readahead ----
# 128 KiB reads at depth 32: what is in flight on a queue covers the
# window, so auto reads the requests exactly and in parallel.  Not all: a
# stream whose window keeps ahead of it completes from the cache and keeps
# its queue shallow (7.3: a third of the reads; 6.1: 4%).
t="auto: a stream of 128 KiB reads at depth 32 is read exactly, <= 1.1x"
if [ -n "$dev" ] && measure auto-deep --rw=read --bs=128k --iodepth=32 --size=128M; then
	calls=$(fblk_delta "$S/a" "$S/b" ra_calls)
	streams=$(fblk_delta "$S/a" "$S/b" ra_stream)
	diag "auto-deep: ra_calls=$calls ra_stream=$streams"
	if ratio_ok && [ "$calls" -gt 0 ] && [ $((streams * 2)) -le "$calls" ]; then
		ok "$t"
	else
		not_ok "$t" "read $LOW KiB for $UP KiB; want most reads read exactly (ra_stream <= ra_calls / 2)"
	fi
else
	not_ok "$t" "no device or fio failed"
fi

# ---- 7: sequential: every read starts a stream ----
t="sequential: random reads are read ahead as streams too"
if [ -n "$dev" ] && set_ra ra_policy sequential && randread seq-rand; then
	calls=$(fblk_delta "$S/a" "$S/b" ra_calls)
	streams=$(fblk_delta "$S/a" "$S/b" ra_stream)
	if [ "$calls" -gt 0 ] && [ "$streams" = "$calls" ]; then
		ok "$t"
	else
		not_ok "$t" "ra_calls=$calls ra_stream=$streams"
	fi
else
	not_ok "$t" "no device or fio failed"
fi

# ---- 8: ra_kb sets the window: a small one makes small lower reads ----
t="ra_kb: a 16 KiB window reads in smaller lower requests than a 1 MiB one"
if [ -n "$dev" ] && set_ra ra_kb 16 && seqread seq-16k 4k; then
	small=$((LOW / LOWRQ))
	if set_ra ra_kb 1024 && seqread seq-1m 4k; then
		large=$((LOW / LOWRQ))
		diag "KiB per lower read: ra_kb=16: $small, ra_kb=1024: $large"
		# Not <= 16: the issuer plugs its batch, and the windows of
		# consecutive reads in one batch merge below (6.1: 33 KiB).
		if [ $((small * 2)) -le "$large" ] && [ "$small" -le 48 ]; then
			ok "$t"
		else
			not_ok "$t" "ra_kb=16: $small KiB, ra_kb=1024: $large KiB per lower read; want <= 48 and <= half"
		fi
	else
		not_ok "$t" "fio failed"
	fi
	set_ra ra_kb 0
else
	not_ok "$t" "no device or fio failed"
fi

# ---- 9: off: fblk starts no readahead of its own ----
t="off: no readahead started by fblk"
if [ -n "$dev" ] && set_ra ra_policy off && randread off-rand; then
	if [ "$(fblk_delta "$S/a" "$S/b" ra_calls)" = 0 ]; then
		ok "$t"
	else
		not_ok "$t" "ra_calls=$(fblk_delta "$S/a" "$S/b" ra_calls)"
	fi
else
	not_ok "$t" "no device or fio failed"
fi

# ---- 10: the same data in every policy ----
t="data read cold is identical in every policy"
if [ -n "$dev" ]; then
	want=$(head -c 64M "$img" | md5sum | cut -d' ' -f1)
	bad=
	for p in auto sequential random off; do
		set_ra ra_policy "$p" || bad+=" $p(set)"
		drop_caches
		got=$(dd if="$dev" bs=256k count=256 iflag=direct status=none | md5sum | cut -d' ' -f1)
		[ "$got" = "$want" ] || bad+=" $p"
	done
	if [ -z "$bad" ]; then
		ok "$t"
	else
		not_ok "$t" "differs:$bad"
	fi
else
	not_ok "$t" "no device"
fi

# ---- 11: bad values are refused and change nothing ----
t="bad ra_policy and ra_kb are refused (EINVAL), nothing changes"
if [ -n "$dev" ] && set_ra ra_policy random && set_ra ra_kb 256; then
	refused=0
	set_ra ra_policy bogus 2>/dev/null || refused=$((refused + 1))
	set_ra ra_kb 65537 2>/dev/null || refused=$((refused + 1))
	set_ra ra_kb -1 2>/dev/null || refused=$((refused + 1))
	if [ $refused = 3 ] && [ "$(fblk_attr "$dev" ra_policy)" = random ] &&
		[ "$(fblk_attr "$dev" ra_kb)" = 256 ]; then
		ok "$t"
	else
		not_ok "$t" "refused $refused of 3; ra_policy=$(fblk_attr "$dev" ra_policy) ra_kb=$(fblk_attr "$dev" ra_kb)"
	fi
else
	not_ok "$t" "no device"
fi

# ---- 12: a large random read goes down in one go ----
# 256 KiB random reads, random policy, every block read once (cold): the
# whole request is read in steps of the lower device's largest request (not
# window by window, and in at most two goes: 13), in as few lower requests
# as that allows.  null_blk takes
# 124 KiB: three per read (124 + 124 + 8), where 128 KiB steps made four.
t="random: a cold 256 KiB random read costs the fewest lower reads"
if [ -n "$dev" ] && set_ra ra_kb 0 &&
	measure big --rw=randread --bs=256k --iodepth=8 --size=192M; then
	reqs=$(fblk_delta "$S/a" "$S/b" rq_reads)
	max_kb=$(cat "/sys/block/$NB/queue/max_sectors_kb")
	per=$(((256 + max_kb - 1) / max_kb))
	want=$((reqs * per * 11 / 10))
	diag "big: $reqs fblk reads, $LOWRQ lower reads; the lower device takes $max_kb KiB: $per per read at least"
	if ratio_ok && [ "$LOWRQ" -le "$want" ]; then
		ok "$t"
	else
		not_ok "$t" "read $LOW KiB for $UP KiB; $LOWRQ lower reads for $reqs, want <= $want"
	fi
else
	not_ok "$t" "no device or fio failed"
fi

# ---- 13: ... and under load, in two goes, still exactly ----
# 32 reads submitted at once reach the queue's issuer as one batch: it
# reads ahead the first lower request's worth of each read and hands the
# rest to the queue's readahead helper, so that the reads behind it in the
# batch get to the device sooner.  Every page is still read once.
t="random: 256 KiB reads in batches of 32 are read ahead in two parts, <= 1.1x"
if [ -n "$dev" ] && measure split --rw=randread --bs=256k --iodepth=32 \
	--iodepth_batch_submit=32 --iodepth_batch_complete_min=32 --size=192M; then
	reqs=$(fblk_delta "$S/a" "$S/b" rq_reads)
	calls=$(fblk_delta "$S/a" "$S/b" ra_calls)
	pages=$(fblk_delta "$S/a" "$S/b" ra_pages)
	diag "split: $reqs fblk reads, ra_calls=$calls ra_pages=$pages, $LOWRQ lower reads"
	# Split reads count two calls; pages asked for, once each.
	if ratio_ok && [ "$calls" -gt "$reqs" ] && [ $((pages * 4)) -le $((UP * 11 / 10)) ]; then
		ok "$t"
	else
		not_ok "$t" "read $LOW KiB for $UP KiB; want ra_calls > $reqs reads and ra_pages * 4 KiB <= 1.1x"
	fi
else
	not_ok "$t" "no device or fio failed"
fi

# ---- 14: the stats say what was read, here and below ----
# read_kb and lower_read_kb (since attach) against the block layer's own
# counts of the fblk device and of the null_blk device, over the run of 13.
# Within 2%: readahead for reads that already finished may still be
# completing below when the snapshots are taken.
near() {
	local d=$(($1 - $2))
	[ $(((d < 0 ? -d : d) * 50)) -le "$2" ]
}
t="stats: read_kb and lower_read_kb match what the device and the one below read"
if [ -n "$dev" ] && [ "${UP:-0}" -gt 0 ]; then
	rkb=$(fblk_delta "$S/a" "$S/b" read_kb)
	lkb=$(fblk_delta "$S/a" "$S/b" lower_read_kb)
	diag "read_kb=$rkb (block layer: $UP), lower_read_kb=$lkb (null_blk: $LOW)"
	if near "$rkb" "$UP" && near "$lkb" "$LOW"; then
		ok "$t"
	else
		not_ok "$t" "read_kb=$rkb for $UP KiB, lower_read_kb=$lkb for $LOW KiB"
	fi
else
	not_ok "$t" "no device or no measurement"
fi

[ -n "$dev" ] && fblk_detach "$dev"
tap_done
