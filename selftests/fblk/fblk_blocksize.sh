#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The block device's page cache block size follows each attach, even for an
# opener from before it.  The block layer sets that size at a device's
# first open only, from the logical block size and size then: a process that
# keeps an fblk device open across a detach and a new attach (the one that
# issued both ioctls, udev, a tool) would keep the old block size, and its
# buffered I/O would reach the queue in pieces smaller than a logical block
# (7.x fails those with EIO) or in blocks past the end of the device.
# A descriptor held open issues the ioctls:
#  - opened unbound (an empty device: page-sized blocks), attach with
#    512-byte blocks on 1 MiB + 512 bytes: BLKBSZGET says 512, and the last
#    sector takes a buffered write;
#  - opened while so attached (512-byte blocks), detach and attach with
#    4 KiB blocks: BLKBSZGET says 4096, and a buffered 512-byte write inside
#    a 4 KiB block reads back, its neighbours intact.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

tap_plan 4
fblk_require_module || tap_done

S=$FBLK_T_STATE
MiB=$((1024 * 1024))
img1=$(fblk_image "$FBLK_SCRATCH" 0)
img2=$(fblk_image "$FBLK_SCRATCH" 0)
head -c $((MiB + 512)) /dev/urandom >"$img1"
head -c $MiB /dev/urandom >"$img2"
head -c 512 /dev/urandom >"$S/sector"

dev=$(_fblk_ioctl add) || tap_done
echo "$dev" >>"$S/devices"

# expect DEV OFF LEN FILE FOFF: DEV's bytes at OFF (read O_DIRECT, in 4 KiB
# reads where LEN allows) are FILE's at FOFF.
expect() {
	local bs=512
	[ $(($3 % 4096)) = 0 ] && bs=4096
	cmp -s <(dd if="$1" bs=$bs iflag=direct,skip_bytes,count_bytes skip="$2" \
		count="$3" status=none) \
		<(dd if="$4" bs=512 iflag=skip_bytes,count_bytes skip="$5" \
		count="$3" status=none)
}

# write_sector DEV OFF: a buffered 512-byte write at OFF, then fsync
write_sector() {
	dd if="$S/sector" of="$1" bs=512 seek="$2" oflag=seek_bytes \
		conv=notrunc,fsync status=none 2>"$S/err"
}

# bsz_is DEV N WHAT: test that BLKBSZGET says N
bsz_is() {
	local bsz
	bsz=$(blockdev --getbsz "$1")
	if [ "$bsz" = "$2" ]; then
		ok "$3: BLKBSZGET says $bsz"
	else
		not_ok "$3: BLKBSZGET says $bsz, not $2"
	fi
}

exec 3<>"$dev"
export FBLK_IOCTL_FD=3

# 1-2: 512-byte blocks on 1 MiB + 512 bytes
what="attach with 512-byte blocks on 1 MiB + 512 bytes, device held open"
if ! _fblk_ioctl configure "$dev" "$img1" bs=512 2>"$S/err"; then
	not_ok "$what" "$(cat "$S/err")"
	not_ok "the last sector takes a buffered write"
else
	bsz_is "$dev" 512 "$what"
	if write_sector "$dev" $MiB && expect "$dev" $MiB 512 "$S/sector" 0; then
		ok "the last sector takes a buffered write and reads back"
	else
		not_ok "the last sector takes a buffered write and reads back" "$(cat "$S/err")"
	fi
fi

# 3-4: a descriptor opened on 512-byte blocks detaches (the only opener: at
# once) and attaches with 4 KiB blocks
_fblk_ioctl detach "$dev"
unset FBLK_IOCTL_FD
exec 3<&-
fblk_wait_attr "$dev" state unbound 5
_fblk_ioctl configure "$dev" "$img1" bs=512
exec 3<>"$dev"
export FBLK_IOCTL_FD=3
what="opened on 512-byte blocks, detach, attach with 4 KiB blocks"
if [ "$(blockdev --getbsz "$dev")" != 512 ]; then
	diag "the descriptor did not start on 512-byte blocks: $(blockdev --getbsz "$dev")"
fi
if ! _fblk_ioctl detach "$dev" 2>"$S/err" ||
   ! fblk_wait_attr "$dev" state unbound 5 ||
   ! _fblk_ioctl configure "$dev" "$img2" bs=4096 2>>"$S/err"; then
	not_ok "$what" "$(cat "$S/err") state $(fblk_attr "$dev" state)"
	not_ok "a buffered 512-byte write inside a 4 KiB block"
else
	bsz_is "$dev" 4096 "$what"
	why=
	cp "$img2" "$S/ref"
	dd if="$S/sector" of="$S/ref" bs=512 seek=$((6144 / 512)) conv=notrunc status=none
	if ! write_sector "$dev" 6144; then
		why="the write failed: $(cat "$S/err")"
	elif ! expect "$dev" 4096 8192 "$S/ref" 4096; then
		why="the 8 KiB around it do not read back as written"
	fi
	if [ -z "$why" ]; then
		ok "a buffered 512-byte write inside a 4 KiB block reads back, its neighbours intact"
	else
		not_ok "a buffered 512-byte write inside a 4 KiB block reads back" "$why"
	fi
fi
_fblk_ioctl detach "$dev" 2>/dev/null
unset FBLK_IOCTL_FD
exec 3<&-
tap_done
