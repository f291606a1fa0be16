#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Stacking hazards of inline submission from ->queue_rq (those that got
# upstream loop's NOWAIT-from-queue_rq series reverted before 6.19) where
# the lower filesystem sits on a blk-mq device: bios submitted while the
# caller's plug list is being flushed, an upper journal handle leaking into
# the lower filesystem, reclaim recursing into I/O queued behind us.
# ext4 on fblk U, U over a file on ext4 on null_blk, buffered then direct
# (fblk over fblk is fblk_stacks_nested.sh's).
# Each under an fsstress-like load in the upper filesystem: fio jobs doing
# verified random reads and writes (direct and buffered with fsync) while a
# loop creates, writes, fsyncs, renames and removes files.  Then: no I/O or
# verify error, no error counted by any fblk device, the upper filesystem's
# files have the same md5 after an unmount, a cache drop and a remount, and
# e2fsck finds it clean.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

NB=fblkstk
LOAD=${FBLK_STACK_SECONDS:-$(fblk_load 15 6)}

tap_plan 3
fblk_require_module || tap_done

dmesg_start=$(dmesg | wc -l)
S=$FBLK_T_STATE

errors_of() {
	awk '$1 == "errors" {print $2}' "/sys/block/${1##*/}/fblk/stats"
}

# churn DIR: until $S/stop exists, make, fsync, rename and remove files;
# the survivors stay for the md5 check.  Fails on the first error.
churn() {
	local d=$1/churn i=0
	mkdir -p "$d" || return 1
	while [ ! -e "$S/stop" ]; do
		i=$((i + 1))
		mkdir -p "$d/dir$((i % 8))" || return 1
		head -c $(((i % 37 + 1) * 4096)) /dev/urandom >"$d/dir$((i % 8))/f$i.tmp" || return 1
		dd if=/dev/urandom of="$d/dir$((i % 8))/f$i.tmp" bs=4k count=4 \
			seek=$((i % 5)) conv=notrunc,fsync status=none || return 1
		mv "$d/dir$((i % 8))/f$i.tmp" "$d/dir$((i % 8))/f$i" || return 1
		# Small files and a directory, metadata without an fsync.
		mkdir -p "$d/small$((i % 4))" || return 1
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

# load DIR SECONDS: fio (verified) and churn side by side; on failure the
# reason is in $S/why.
load() {
	local dir=$1 secs=$2 churn_rc fio_rc n cpid
	rm -f "$S/stop" "$S/why"
	churn "$dir" >"$S/churn" 2>&1 &
	cpid=$!
	fio --directory="$dir" --runtime="$secs" --time_based --group_reporting \
		--bs=4k --verify=crc32c --verify_fatal=1 --verify_backlog=64 \
		--name=dio --ioengine=io_uring --direct=1 --iodepth=16 --numjobs=3 \
		--size=8M --rw=randrw \
		--name=buffered --ioengine=psync --direct=0 --size=8M --rw=randwrite \
		--fsync=32 >"$S/fio" 2>&1
	fio_rc=$?
	touch "$S/stop"
	wait "$cpid"
	churn_rc=$?
	n=$(tail -n 1 "$S/churn")
	grep -E '^ +(read|write):|err=' "$S/fio" | sed 's/^ */# /'
	diag "churn: $n rounds, rc=$churn_rc"
	if [ "$fio_rc" != 0 ]; then
		sed 's/^/# /' "$S/fio" | tail -n 30
		echo "fio failed (rc $fio_rc)" >"$S/why"
	elif [ "$churn_rc" != 0 ]; then
		sed 's/^/# /' "$S/churn" | tail -n 5
		echo "the create/fsync/remove loop failed" >"$S/why"
	fi
}

# sums DIR: md5 of every regular file, sorted by name
sums() {
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum)
}

# stack_case DESC MODE BACKING SECONDS: U over BACKING in MODE, ext4 on U,
# the load, the checks.
stack_case() {
	local desc=$1 mode=$2 backing=$3 secs=$4 udev m why=""
	udev=$(fblk_attach "$backing" ${mode:+"$mode"} bs=4096) || { not_ok "$desc" "attach failed"; return; }
	if ! mkfs.ext4 -q -F "$udev" >"$S/mkfs" 2>&1; then
		sed 's/^/# /' "$S/mkfs"
		not_ok "$desc" "mkfs.ext4 on $udev failed"
		fblk_detach "$udev"
		return
	fi
	m=$(fblk_mkdir)
	if ! mount "$udev" "$m"; then
		not_ok "$desc" "mount failed"
		fblk_detach "$udev"
		return
	fi
	load "$m" "$secs"
	[ -e "$S/why" ] && why=$(cat "$S/why")
	sync
	sums "$m" >"$S/sum1"
	umount "$m"
	drop_caches
	if [ -z "$why" ]; then
		if ! mount "$udev" "$m"; then
			why="remount failed"
		else
			sums "$m" >"$S/sum2"
			umount "$m"
			if ! cmp -s "$S/sum1" "$S/sum2"; then
				diff "$S/sum1" "$S/sum2" | head -n 10 | sed 's/^/# /'
				why="md5 of files changed across remount"
			elif ! e2fsck -fn "$udev" >"$S/fsck" 2>&1; then
				sed 's/^/# /' "$S/fsck" | tail -n 20
				why="e2fsck found errors"
			fi
		fi
	fi
	diag "$udev: $(tr '\n' ' ' <"/sys/block/${udev##*/}/fblk/stats")"
	[ "$(errors_of "$udev")" = 0 ] || why+=" $udev counted $(errors_of "$udev") errors"
	fblk_detach "$udev"
	diag "$(wc -l <"$S/sum1") files checked"
	if [ -z "$why" ]; then
		ok "$desc"
	else
		not_ok "$desc" "$why"
	fi
}

# ---- fblk over a file on ext4 on null_blk ----
nm=$(fblk_mkdir)
if fblk_nullb "$NB" 512 && mkfs.ext4 -q -F "/dev/$NB" && fblk_mount "/dev/$NB" "$nm" &&
	truncate -s 160M "$nm/upper.img"; then
	fblk_at_exit "rm -f '$nm/upper.img'"
	stack_case "ext4 on fblk on a file on ext4 on null_blk, buffered" "" "$nm/upper.img" "$LOAD"
	stack_case "ext4 on fblk on a file on ext4 on null_blk, direct" direct "$nm/upper.img" "$LOAD"
else
	not_ok "ext4 on fblk on a file on ext4 on null_blk, buffered" "no null_blk device"
	not_ok "ext4 on fblk on a file on ext4 on null_blk, direct" "no null_blk device"
fi

out=$(dmesg | tail -n +"$((dmesg_start + 1))" |
	grep -E 'BUG:|WARNING:|blocked for more than|Call Trace|lockdep|KASAN|Oops|EXT4-fs error|I/O error')
if [ -z "$out" ]; then
	ok "no kernel warning, hung task, ext4 error or I/O error in the log"
else
	not_ok "no kernel warning, hung task, ext4 error or I/O error in the log" "$(echo "$out" | head -n 5)"
fi

tap_done
