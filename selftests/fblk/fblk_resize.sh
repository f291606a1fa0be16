#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The backing file truncated and grown under load, in io_mode buffered and
# direct.  A 32 MiB image on ext4 whose first 4 MiB hold known data; fio
# writes and reads the rest of /dev/fblkN at random while the file is cut to
# 8 MiB, grown to 48 MiB, cut to 6 MiB and grown back to 32 MiB.  fblk's
# answer to a read past the backing file's EOF is zero-fill (no error); a
# write past it extends the file again.  So:
#  1. fio finishes without an I/O error, and the known 4 MiB are intact;
#  2. cut to 8 MiB with the device idle: the device keeps its size, the
#     range past EOF reads as zeroes with no error counted, the range before
#     it reads back;
#  3. grown to 48 MiB, `fblksetup -c` makes /sys/block/fblkN/size follow,
#     and the new last MiB writes and reads back;
#  4. cut to 16 MiB and `fblksetup -c`: size follows, a read past the new
#     end of the device returns nothing, detach is clean.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MiB=$((1024 * 1024))

tap_plan 8
fblk_require_module || tap_done

S=$FBLK_T_STATE
head -c $((4 * MiB)) /dev/urandom >"$S/ref"

rd() {
	dd if="$1" bs=64k iflag=direct,skip_bytes,count_bytes skip="$2" count="$3" status=none
}

errors() {
	awk '$1 == "errors" {print $2}' "/sys/block/${1##*/}/fblk/stats"
}

sectors() {
	cat "/sys/block/${1##*/}/size"
}

# resize MODE
resize() {
	local what=${1:-buffered} mode=$1 img dev pid rc why="" e0
	img=$(fblk_image "$FBLK_SCRATCH" 32M)
	dd if="$S/ref" of="$img" bs=1M conv=notrunc,fsync status=none
	dev=$(fblk_attach "$img" bs=4096 ${mode:+"$mode"})
	if [ -z "$dev" ]; then
		for t in 1 2 3 4; do not_ok "$what: case $t" "attach failed"; done
		return
	fi

	# 1: under load
	fio --name=resize --filename="$dev" --ioengine=libaio --direct=1 \
		--rw=randrw --bs=4k --iodepth=16 --numjobs=2 --offset=4M --size=28M \
		--time_based --runtime=6 --randrepeat=0 --norandommap \
		--output="$S/fio-$what" >/dev/null 2>&1 &
	pid=$!
	fblk_at_exit "kill $pid"
	sleep 1
	for sz in 8M 48M 6M 32M; do
		truncate -s $sz "$img" || diag "truncate -s $sz failed"
		sleep 1
	done
	wait $pid
	rc=$?
	grep -E '^ +(read|write):|err=' "$S/fio-$what" | sed 's/^ */# /'
	if [ $rc != 0 ] || grep -q "err=[ ]*[1-9]" "$S/fio-$what"; then
		sed 's/^/# /' "$S/fio-$what" | tail -n 20
		not_ok "$what: truncate and grow under fio: no I/O error, the first 4 MiB intact" "fio exited $rc"
	elif ! cmp -s <(rd "$dev" 0 $((4 * MiB))) "$S/ref"; then
		not_ok "$what: truncate and grow under fio: no I/O error, the first 4 MiB intact" "the first 4 MiB changed"
	else
		ok "$what: truncate and grow under fio: no I/O error, the first 4 MiB intact"
	fi
	diag "$what: the image is $(stat -c %s "$img") bytes after the load"

	# 2: past EOF reads as zeroes
	truncate -s 8M "$img"
	sync
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$img"
	e0=$(errors "$dev")
	if [ "$(sectors "$dev")" != $((32 * 2048)) ]; then
		why="the device changed size by itself: $(sectors "$dev") sectors"
	elif ! cmp -s <(rd "$dev" $((8 * MiB)) $((24 * MiB))) <(head -c $((24 * MiB)) /dev/zero); then
		why="the range past EOF does not read as zeroes (or fails)"
	elif ! cmp -s <(rd "$dev" 0 $((4 * MiB))) "$S/ref"; then
		why="the range before EOF changed"
	elif [ "$(errors "$dev")" != "$e0" ]; then
		why="reads past EOF counted errors"
	fi
	if [ -z "$why" ]; then
		ok "$what: cut to 8 MiB: the size stays, past EOF reads zeroes with no error"
	else
		not_ok "$what: cut to 8 MiB: the size stays, past EOF reads zeroes with no error" "$why"
	fi

	# 3: grown, set capacity
	why=
	truncate -s 48M "$img"
	if ! fblksetup -c "$dev"; then
		why="fblksetup -c failed"
	elif [ "$(sectors "$dev")" != $((48 * 2048)) ]; then
		why="size $(sectors "$dev") sectors, want $((48 * 2048))"
	elif [ "$(bdev_size "$dev")" != $((48 * MiB)) ]; then
		why="blockdev --getsize64 says $(bdev_size "$dev")"
	elif ! dd if="$S/ref" of="$dev" bs=64k count=16 oflag=direct seek=752 conv=fsync status=none; then
		why="a write to the new last MiB failed"
	elif ! cmp -s <(rd "$dev" $((47 * MiB)) $MiB) <(head -c $MiB "$S/ref"); then
		why="the new last MiB does not read back"
	fi
	if [ -z "$why" ]; then
		ok "$what: grown to 48 MiB, fblksetup -c: the size follows, the new end works"
	else
		not_ok "$what: grown to 48 MiB, fblksetup -c: the size follows, the new end works" "$why"
	fi

	# 4: cut, set capacity
	why=
	truncate -s 16M "$img"
	if ! fblksetup -c "$dev"; then
		why="fblksetup -c failed"
	elif [ "$(sectors "$dev")" != $((16 * 2048)) ]; then
		why="size $(sectors "$dev") sectors, want $((16 * 2048))"
	elif [ "$(rd "$dev" $((16 * MiB)) $MiB | wc -c)" != 0 ]; then
		why="a read past the end of the device returned data"
	elif ! cmp -s <(rd "$dev" 0 $((4 * MiB))) "$S/ref"; then
		why="the first 4 MiB changed"
	elif ! fblk_detach "$dev" || ! fblk_wait_attr "$dev" state unbound 5; then
		why="detach failed"
	fi
	if [ -z "$why" ]; then
		ok "$what: cut to 16 MiB, fblksetup -c: the size follows, detach is clean"
	else
		not_ok "$what: cut to 16 MiB, fblksetup -c: the size follows, detach is clean" "$why"
		fblk_detach "$dev" 2>/dev/null
	fi
}

resize ""
resize direct

tap_done
