#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# I/O errors underneath fail only the requests that touch them.  Two kinds
# of backing, each in io_mode buffered and direct:
#  - a block device: dm over /dev/ram2 whose table has an error segment
#    (64 KiB at 4 MiB) between two linear ones;
#  - a file on ext4 on dm over /dev/ram3, whose table gets an error segment
#    exactly under the file's blocks at 4 MiB (found with filefrag).
# For each: reads of the good ranges return the right data and count no
# error; a read touching the bad range fails with EIO and is counted; a write
# to a good range reads back, a write to the bad range fails with EIO (at
# once in direct mode, at the flush in buffered mode, where it lands in the
# lower page cache first); once the table is healed a flush from every CPU
# succeeds (an error is reported once, not again per hardware queue), the
# whole device reads and writes again, and detach is clean.
# All I/O on /dev/fblkN is O_DIRECT so that the upper page cache hides nothing.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DM_BD=fblkflt-bd
DM_FS=fblkflt-fs
RAM_BD=/dev/ram2
RAM_FS=/dev/ram3
MiB=$((1024 * 1024))
SIZE=$((8 * MiB))	# of the device and of the image file
BAD=$((4 * MiB))	# the bad range: [BAD, BAD + BADLEN)
BADLEN=$((64 * 1024))

tap_plan 12
fblk_require_module || tap_done

S=$FBLK_T_STATE
head -c $SIZE /dev/urandom >"$S/ref"
head -c $((2 * MiB)) /dev/urandom >"$S/new"

# ---- helpers ----

# rd DEV OFF LEN: LEN bytes at OFF to stdout, O_DIRECT.
rd() {
	dd if="$1" bs=64k iflag=direct,skip_bytes,count_bytes skip="$2" count="$3" status=none
}

# same DEV OFF LEN FILE FOFF: DEV's bytes at OFF equal FILE's at FOFF.
same() {
	cmp -s <(rd "$1" "$2" "$3") <(dd if="$4" bs=64k iflag=skip_bytes,count_bytes \
		skip="$5" count="$3" status=none)
}

# wr DEV OFF LEN FILE FOFF: FILE's bytes at FOFF to DEV at OFF, O_DIRECT, then
# fsync (a flush request); dd's stderr goes to $S/err.
wr() {
	dd if="$4" of="$1" bs=64k iflag=skip_bytes,count_bytes skip="$5" count="$3" \
		oflag=direct,seek_bytes seek="$2" conv=fsync,notrunc status=none 2>"$S/err"
}

# eio CMD...: CMD fails, and with EIO (dd's "Input/output error").
eio() {
	"$@" >/dev/null 2>"$S/err"
	local rc=$?
	[ -s "$S/err" ] && sed 's/^/# /' "$S/err"
	[ $rc != 0 ] && grep -q "Input/output error" "$S/err"
}

# uncache FILE|BDEV: drop its clean page cache (not drop_caches: that would
# drop the guest's whole 9p root too, and slow every later exec).
uncache() {
	sync
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"
}

errors() {
	awk '$1 == "errors" {print $2}' "/sys/block/${1##*/}/fblk/stats"
}

# table NAME DEV START_SECTOR BAD_SECTOR|-: a linear map of 8 MiB of DEV
# from START_SECTOR, with 64 KiB of error at BAD_SECTOR (device-relative)
# unless "-".
table() {
	local n=$((SIZE / 512)) b=$4 l=$((BADLEN / 512))
	if [ "$b" = - ]; then
		printf '0 %d linear %s %d\n' "$n" "$2" "$3"
	else
		printf '0 %d linear %s %d\n' "$b" "$2" "$3"
		printf '%d %d error\n' "$b" "$l"
		printf '%d %d linear %s %d\n' $((b + l)) $((n - b - l)) "$2" $((${3} + b + l))
	fi
}

# reload NAME TABLE: swap the live table (dm suspends and resumes around it).
reload() {
	printf '%s' "$2" | dmsetup load "$1" && dmsetup resume "$1"
}

# ---- the four cases ----

# run_case WHAT BACKING MODE HEAL_CMD: WHAT names the case in the results.
run_case() {
	local what=$1 backing=$2 mode=$3 heal=$4 dev e0 e1 e2 why=
	dev=$(fblk_attach "$backing" bs=4096 ${mode:+"$mode"})
	if [ -z "$dev" ]; then
		for t in reads writes recovery; do not_ok "$what: $t" "attach failed"; done
		return
	fi
	diag "$what: $dev io_mode $(fblk_attr "$dev" io_mode)"
	# Nothing of the backing may sit in a page cache: cold reads must go
	# down to dm.
	uncache "$backing"

	# 1: reads.  In buffered mode the lower page cache fails a read by
	# folio, and since 6.16 ext4 caches files in large folios (up to 2
	# MiB, naturally aligned): good bytes sharing a folio with the bad
	# range fail with it, through the raw file as through fblk.  So the
	# good range after the bad one starts at the next 2 MiB boundary there.
	local after=$((BAD + BADLEN))
	[ "$mode" = direct ] || after=$(((after + 2 * MiB - 1) / (2 * MiB) * 2 * MiB))
	e0=$(errors "$dev")
	if ! same "$dev" 0 $BAD "$S/ref" 0; then
		why="the good range before the bad one read wrong or failed"
	elif ! same "$dev" $after $((SIZE - after)) "$S/ref" $after; then
		why="the good range after the bad one read wrong or failed"
	elif e1=$(errors "$dev") && [ "$e1" != "$e0" ]; then
		why="good reads counted $((e1 - e0)) errors"
	elif ! eio rd "$dev" $BAD 4096; then
		why="a 4 KiB read of the bad range did not fail with EIO"
	elif ! eio rd "$dev" $((BAD - 4096)) 8192; then
		why="a read straddling the start of the bad range did not fail with EIO"
	elif ! same "$dev" 0 $MiB "$S/ref" 0; then
		why="a good read failed after the errors"
	elif e2=$(errors "$dev") && [ $((e2 - e1)) -lt 2 ]; then
		why="2 failed reads counted $((e2 - e1)) errors"
	fi
	if [ -z "$why" ]; then
		ok "$what: good reads return the data, reads of the bad range fail with EIO, counted ($((e2 - e1)))"
	else
		not_ok "$what: good reads return the data, reads of the bad range fail with EIO, counted" "$why"
	fi

	# 2: writes
	why=
	e0=$(errors "$dev")
	if ! wr "$dev" $MiB $MiB "$S/new" 0; then
		sed 's/^/# /' "$S/err"
		why="a write to a good range failed"
	elif ! same "$dev" $MiB $MiB "$S/new" 0; then
		why="a write to a good range did not read back"
	elif e1=$(errors "$dev") && [ "$e1" != "$e0" ]; then
		why="a good write and its flush counted $((e1 - e0)) errors"
	elif ! eio wr "$dev" $BAD 65536 "$S/new" 0; then
		why="a write to the bad range (and its flush) did not fail with EIO"
	elif e2=$(errors "$dev") && [ "$e2" = "$e1" ]; then
		why="the failed write was not counted"
	fi
	if [ -z "$why" ]; then
		ok "$what: good writes read back, a write to the bad range fails with EIO, counted ($((e2 - e1)))"
	else
		not_ok "$what: good writes read back, a write to the bad range fails with EIO, counted" "$why"
	fi

	# 3: heal the table: everything works again, no error sticks
	why=
	if ! eval "$heal"; then
		why="could not heal the dm table"
	else
		uncache "$backing"
		e0=$(errors "$dev")
		# The one write error was reported by case 2's flush.  A flush
		# from each CPU (so through each hardware queue) must succeed:
		# an error already reported may not come back.
		for cpu in $(seq 0 $(($(nproc) - 1))); do
			taskset -c "$cpu" dd of="$dev" count=0 conv=fsync,notrunc status=none 2>"$S/err" ||
				why+="a flush from CPU $cpu failed ($(cat "$S/err")) "
		done
		if [ -n "$why" ]; then
			why="after healing: ${why}- a write error reported again"
		elif ! rd "$dev" 0 $SIZE >/dev/null; then
			why="the healed device does not read in full"
		elif ! wr "$dev" $BAD $BADLEN "$S/new" $MiB; then
			sed 's/^/# /' "$S/err"
			why="a write (and flush) to the healed range failed"
		elif ! same "$dev" $BAD $BADLEN "$S/new" $MiB; then
			why="a write to the healed range did not read back"
		elif ! same "$dev" 0 $MiB "$S/ref" 0; then
			why="the first MiB changed"
		elif ! same "$dev" $MiB $MiB "$S/new" 0; then
			why="the good write of case 2 was lost"
		elif ! wr "$dev" 0 4096 "$S/ref" 0; then
			why="a second flush failed: a sticky error"
		elif e1=$(errors "$dev") && [ "$e1" != "$e0" ]; then
			why="I/O after healing counted $((e1 - e0)) errors"
		fi
	fi
	if [ -z "$why" ] && ! fblk_detach "$dev"; then
		why="detach failed"
	elif [ -z "$why" ] && ! fblk_wait_attr "$dev" state unbound 5; then
		why="not unbound after detach: $(fblk_attr "$dev" state)"
	fi
	if [ -z "$why" ]; then
		ok "$what: healed, the device reads, writes and flushes again, detach is clean"
	else
		not_ok "$what: healed, the device reads, writes and flushes again, detach is clean" "$why"
		fblk_detach "$dev" 2>/dev/null
	fi
}

# ---- a block device ----
bd_setup() {
	table "$DM_BD" "$RAM_BD" 0 - | dmsetup create "$DM_BD" || return 1
	fblk_at_exit "dmsetup remove '$DM_BD'"
	dmsetup mknodes "$DM_BD"
}

# Each case starts from the reference contents.
bd_break() {
	bd_heal &&
	dd if="$S/ref" of="/dev/mapper/$DM_BD" bs=1M oflag=direct status=none &&
	reload "$DM_BD" "$(table "$DM_BD" "$RAM_BD" 0 $((BAD / 512)))"
}

bd_heal() {
	reload "$DM_BD" "$(table "$DM_BD" "$RAM_BD" 0 -)"
}

if bd_setup; then
	for mode in "" direct; do
		if bd_break; then
			run_case "block device, ${mode:-buffered}" "/dev/mapper/$DM_BD" "$mode" bd_heal
		else
			for t in 1 2 3; do not_ok "block device, ${mode:-buffered}: case $t" "dm table not loaded"; done
		fi
	done
else
	for t in 1 2 3 4 5 6; do not_ok "block device: case $t" "dm device $DM_BD not made"; done
fi

# ---- a file on ext4 ----
# ext4 over a 64 MiB linear dm map of /dev/ram3; an 8 MiB image written in
# full (blocks allocated), its block at 4 MiB located with filefrag, and the
# error segment put under exactly those 64 KiB.
FS_SECTORS=$((64 * MiB / 512))
mnt=
fs_setup() {
	printf '0 %d linear %s 0\n' $FS_SECTORS "$RAM_FS" | dmsetup create "$DM_FS" || return 1
	fblk_at_exit "dmsetup remove '$DM_FS'"
	dmsetup mknodes "$DM_FS" || return 1
	mkfs.ext4 -q -F -b 4096 -m 0 "/dev/mapper/$DM_FS" || return 1
	mnt=$(fblk_mkdir) && fblk_mount "/dev/mapper/$DM_FS" "$mnt" || return 1
	img=$mnt/image
	fblk_at_exit "rm -f '$img'"
	dd if="$S/ref" of="$img" bs=1M oflag=direct status=none && sync || return 1
	# the extent holding file block BAD/4096: "N: lstart.. lend: pstart.. pend: len:"
	filefrag -v "$img" | sed 's/^/# /'
	fs_bad=$(filefrag -v "$img" | awk -F'[:. ]+' -v lb=$((BAD / 4096)) -v n=$((BADLEN / 4096)) '
		$2 ~ /^[0-9]+$/ && $3 <= lb && lb + n - 1 <= $4 { print ($5 + lb - $3) * 8; exit }')
	[ -n "$fs_bad" ] || { diag "the 64 KiB at 4 MiB of the image are not in one extent"; return 1; }
	diag "the image's bad range is at sector $fs_bad of $DM_FS"
}

fs_break() {
	local n=$FS_SECTORS b=$fs_bad l=$((BADLEN / 512))
	reload "$DM_FS" "$(printf '0 %d linear %s 0\n%d %d error\n%d %d linear %s %d\n' \
		"$b" "$RAM_FS" "$b" "$l" $((b + l)) $((n - b - l)) "$RAM_FS" $((b + l)))"
}

fs_heal() {
	reload "$DM_FS" "$(printf '0 %d linear %s 0\n' $FS_SECTORS "$RAM_FS")"
}

if fs_setup; then
	for mode in "" direct; do
		# each case starts from the reference contents
		if fs_heal && dd if="$S/ref" of="$img" bs=1M oflag=direct conv=notrunc status=none &&
			fs_break; then
			run_case "file on ext4, ${mode:-buffered}" "$img" "$mode" fs_heal
		else
			for t in 1 2 3; do not_ok "file on ext4, ${mode:-buffered}: case $t" "image or dm table not ready"; done
		fi
	done
	fs_heal
	if umount "$mnt" && fsck.ext4 -fn "/dev/mapper/$DM_FS" >"$S/fsck" 2>&1; then
		diag "the backing ext4 is consistent after the errors"
	else
		sed 's/^/# /' "$S/fsck"
		diag "fsck of the backing ext4 found problems (not counted)"
	fi
else
	for t in 1 2 3 4 5 6; do not_ok "file on ext4: case $t" "ext4 on $DM_FS not made"; done
fi

tap_done
