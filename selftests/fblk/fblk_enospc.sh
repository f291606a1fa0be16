#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ENOSPC: a 64 MiB sparse image on a 32 MiB ext4 (on /dev/ram2) that a
# filler file has left with 2 MiB free.  In io_mode buffered and direct:
# a write that needs more than the free space fails with ENOSPC (the block
# layer's BLK_STS_NOSPC reaching the O_DIRECT writer), not EIO, and is
# counted in errors; data written before reads back intact, a hole still
# reads as zeroes; once the filler is gone the same write succeeds, reads
# back, and counts no error; detach is clean.  At the end the backing ext4
# passes fsck.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

RAMDISK=/dev/ram2
MiB=$((1024 * 1024))
FREE=$((2 * MiB))	# left free by the filler

tap_plan 7
fblk_require_module || tap_done

S=$FBLK_T_STATE
head -c $((8 * MiB)) /dev/urandom >"$S/ref"

# rd DEV OFF LEN: LEN bytes at OFF to stdout, O_DIRECT.
rd() {
	dd if="$1" bs=64k iflag=direct,skip_bytes,count_bytes skip="$2" count="$3" status=none
}

# wr DEV OFF LEN: $S/ref's first LEN bytes to DEV at OFF, O_DIRECT, then
# fsync; dd's stderr goes to $S/err.
wr() {
	dd if="$S/ref" of="$1" bs=64k iflag=count_bytes count="$3" \
		oflag=direct,seek_bytes seek="$2" conv=fsync,notrunc status=none 2>"$S/err"
}

errors() {
	awk '$1 == "errors" {print $2}' "/sys/block/${1##*/}/fblk/stats"
}

avail() {
	df -B1 --output=avail "$mnt" | tail -n 1
}

mnt=$(fblk_mkdir)
if ! mkfs.ext4 -q -F -b 4096 -m 0 "$RAMDISK" 32M || ! fblk_mount "$RAMDISK" "$mnt"; then
	for t in 1 2 3 4 5 6 7; do not_ok "case $t" "no ext4 on $RAMDISK"; done
	tap_done
fi

# nospc MODE
nospc() {
	local what=${1:-buffered} mode=$1 img dev e0 e1 why="" left
	img=$mnt/image
	fblk_at_exit "rm -f '$img'"
	truncate -s 64M "$img"
	dev=$(fblk_attach "$img" bs=4096 ${mode:+"$mode"})
	if [ -z "$dev" ] || ! wr "$dev" 0 $MiB; then
		for t in 1 2 3; do not_ok "$what: case $t" "attach or the first write failed"; done
		return
	fi
	diag "$what: $dev io_mode $(fblk_attr "$dev" io_mode)"
	# leave FREE bytes
	fblk_at_exit "rm -f '$mnt/filler'"
	fallocate -l $(($(avail) - FREE)) "$mnt/filler"
	sync
	left=$(avail)
	diag "$what: $left bytes free on the backing ext4"

	# 1: 8 MiB at 16 MiB cannot fit
	e0=$(errors "$dev")
	if wr "$dev" $((16 * MiB)) $((8 * MiB)); then
		not_ok "$what: a write beyond the free space fails with ENOSPC" "it succeeded with $left bytes free"
	elif grep -q "No space left on device" "$S/err"; then
		ok "$what: a write beyond the free space fails with ENOSPC"
	else
		sed 's/^/# /' "$S/err"
		not_ok "$what: a write beyond the free space fails with ENOSPC" "it failed otherwise"
	fi

	# 2: counted; reads still work
	e1=$(errors "$dev")
	if [ "$e1" -le "$e0" ]; then
		why="no error counted"
	elif ! cmp -s <(rd "$dev" 0 $MiB) <(head -c $MiB "$S/ref"); then
		why="the first MiB, written before, does not read back"
	elif ! cmp -s <(rd "$dev" $((40 * MiB)) $MiB) <(head -c $MiB /dev/zero); then
		why="a hole does not read as zeroes"
	elif [ "$(errors "$dev")" != "$e1" ]; then
		why="reads counted errors"
	fi
	if [ -z "$why" ]; then
		ok "$what: the failure is counted ($((e1 - e0))), earlier data and holes read back"
	else
		not_ok "$what: the failure is counted, earlier data and holes read back" "$why"
	fi

	# 3: space freed: the write works
	why=
	rm -f "$mnt/filler"
	sync
	e0=$(errors "$dev")
	if ! wr "$dev" $((16 * MiB)) $((8 * MiB)); then
		sed 's/^/# /' "$S/err"
		why="the write failed with $(avail) bytes free"
	elif ! cmp -s <(rd "$dev" $((16 * MiB)) $((8 * MiB))) "$S/ref"; then
		why="the write does not read back"
	elif ! cmp -s <(rd "$dev" 0 $MiB) <(head -c $MiB "$S/ref"); then
		why="the first MiB changed"
	elif [ "$(errors "$dev")" != "$e0" ]; then
		why="errors counted after space was freed"
	elif ! fblk_detach "$dev" || ! fblk_wait_attr "$dev" state unbound 5; then
		why="detach failed"
	fi
	if [ -z "$why" ]; then
		ok "$what: with space freed the write succeeds and reads back, detach is clean"
	else
		not_ok "$what: with space freed the write succeeds and reads back, detach is clean" "$why"
		fblk_detach "$dev" 2>/dev/null
	fi
	rm -f "$img"
}

nospc ""
nospc direct

if umount "$mnt" && fsck.ext4 -fn "$RAMDISK" >"$S/fsck" 2>&1; then
	ok "the backing ext4 is consistent (fsck -fn)"
else
	sed 's/^/# /' "$S/fsck"
	not_ok "the backing ext4 is consistent (fsck -fn)"
fi

tap_done
