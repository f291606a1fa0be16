#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A filesystem on /dev/fblkN, over each kind of backing: a file on ext4
# ($FBLK_SCRATCH), a file on xfs ($FBLK_SCRATCH_XFS) and a block device
# (/dev/ram2); in buffered and direct modes.  Files written survive an
# unmount, a cache drop and a remount, and fsck finds the filesystem clean.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

RAMDISK=/dev/ram2

tap_plan 8
fblk_require_module || tap_done

# fs_round_trip DESC BACKING MODE MKFS: one test case.
fs_round_trip() {
	local desc=$1 backing=$2 mode=$3 fstype=$4 dev mnt sum1 sum2
	dev=$(fblk_attach "$backing" ${mode:+"$mode"}) || { not_ok "$desc" "attach failed"; return; }
	# mkfs.xfs refuses filesystems under 300 MB unless it believes it runs
	# under fstests, hence the variables.
	case $fstype in
	ext4) mkfs.ext4 -q -F "$dev" ;;
	xfs) TEST_DIR=/tmp TEST_DEV=$dev QA_CHECK_FS=1 mkfs.xfs -q -f "$dev" ;;
	esac >"$FBLK_T_STATE/mkfs" 2>&1 || {
		sed 's/^/# /' "$FBLK_T_STATE/mkfs"
		not_ok "$desc" "mkfs.$fstype $dev failed"
		return
	}
	mnt=$(fblk_mkdir)
	fblk_at_exit "umount '$mnt'"
	mount -t "$fstype" "$dev" "$mnt" || { not_ok "$desc" "mount failed"; return; }
	head -c 8M /dev/urandom >"$mnt/a"
	mkdir "$mnt/dir" && seq 1 20000 >"$mnt/dir/b"
	sum1=$(cd "$mnt" && md5sum a dir/b)
	umount "$mnt"
	drop_caches
	mount -t "$fstype" "$dev" "$mnt" || { not_ok "$desc" "remount failed"; return; }
	sum2=$(cd "$mnt" && md5sum a dir/b)
	umount "$mnt"
	if [ "$sum1" != "$sum2" ]; then
		not_ok "$desc" "file contents changed across remount"
		return
	fi
	case $fstype in
	ext4) e2fsck -fn "$dev" >"$FBLK_T_STATE/fsck" 2>&1 ;;
	xfs) xfs_repair -n "$dev" >"$FBLK_T_STATE/fsck" 2>&1 ;;
	esac || {
		sed 's/^/# /' "$FBLK_T_STATE/fsck"
		not_ok "$desc" "fsck found errors"
		return
	}
	fblk_detach "$dev"
	ok "$desc"
}

img=$(fblk_image "$FBLK_SCRATCH" 128M)
fs_round_trip "ext4 on fblk over a file on ext4, buffered" "$img" "" ext4
fs_round_trip "ext4 on fblk over a file on ext4, direct" "$img" direct ext4
fs_round_trip "xfs on fblk over a file on ext4, direct" "$img" direct xfs

if [ -n "$FBLK_SCRATCH_XFS" ] && [ -d "$FBLK_SCRATCH_XFS" ]; then
	img=$(fblk_image "$FBLK_SCRATCH_XFS" 128M)
	fs_round_trip "ext4 on fblk over a file on xfs, buffered" "$img" "" ext4
	fs_round_trip "ext4 on fblk over a file on xfs, direct" "$img" direct ext4
else
	not_ok "ext4 on fblk over a file on xfs, buffered" "FBLK_SCRATCH_XFS is not set"
	not_ok "ext4 on fblk over a file on xfs, direct" "FBLK_SCRATCH_XFS is not set"
fi

if [ -b "$RAMDISK" ]; then
	fs_round_trip "ext4 on fblk over $RAMDISK, buffered" "$RAMDISK" "" ext4
	fs_round_trip "ext4 on fblk over $RAMDISK, direct" "$RAMDISK" direct ext4
else
	skip "ext4 on fblk over $RAMDISK, buffered" "no $RAMDISK (brd not loaded)"
	skip "ext4 on fblk over $RAMDISK, direct" "no $RAMDISK (brd not loaded)"
fi

# An fblk device over an fblk device over a file, with a filesystem on top.
img=$(fblk_image "$FBLK_SCRATCH" 64M)
lower=$(fblk_attach "$img" direct)
if [ -n "$lower" ]; then
	fs_round_trip "ext4 on fblk over fblk over a file" "$lower" direct ext4
else
	not_ok "ext4 on fblk over fblk over a file" "attach of the lower device failed"
fi

tap_done
