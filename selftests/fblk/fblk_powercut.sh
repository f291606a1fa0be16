#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Power cut: nothing acknowledged before the last completed flush is lost.
#
# ext4 on dm-flakey over /dev/ram3 holds a sparse 32 MiB image; fblk exports
# it (one round with io_mode buffered, one direct).  tools/fblk-powercut
# writes stamped 4 KiB blocks through /dev/fblkN with O_DIRECT from 4
# threads, one write in 8 with RWF_DSYNC (FUA), while a flusher calls
# fdatasync() (a flush) every 20 ms, and records every write and flush with
# its times.  At a random moment 1-4 s in, the cut: the table is swapped
# (suspend --nolockfs, so nothing is synced first) for one that drops every
# write; the writer goes on for the rest of its 6 s into the void.  Then
# fblk is detached, ext4 unmounted, the table healed, ext4 mounted again
# (journal recovery), the image attached again, and every block checked:
# each must hold the newest write that was durable before the cut (FUA
# completed, or a later flush completed) or a newer one of its own; none
# may be zero or garbage when a durable write preceded the cut.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DM=fblkpc
RAM=/dev/ram3
MODES="buffered direct"
WRITE_SECS=6

tap_plan 7
fblk_require_module || tap_done

S=$FBLK_T_STATE

if ! modprobe dm_flakey 2>"$S/modprobe" && ! dmsetup targets 2>/dev/null | grep -q '^flakey'; then
	diag "modprobe dm_flakey: $(head -n 1 "$S/modprobe")"
	for ((i = 0; i < 7; i++)); do
		skip "power cut over dm-flakey" "kernel has no dm-flakey target"
	done
	tap_done
fi

sectors=$(blockdev --getsz $RAM)
allow="0 $sectors flakey $RAM 0 180 0"
drop="0 $sectors flakey $RAM 0 0 180 1 drop_writes"
mnt=$(fblk_mkdir)

fblk_at_exit "dmsetup remove --retry $DM"
fblk_at_exit "umount '$mnt'"

# table TABLE: swap the live table without syncing the filesystem first.
table() {
	dmsetup suspend --nolockfs $DM &&
		dmsetup load $DM --table "$1" &&
		dmsetup resume $DM
}

if dmsetup create $DM --table "$allow" && dmsetup mknodes $DM &&
	[ -b /dev/mapper/$DM ]; then
	ok "dm-flakey over $RAM ($((sectors / 2048)) MiB)"
else
	not_ok "dm-flakey over $RAM"
	tap_done
fi

dev=$(_fblk_ioctl add)
echo "$dev" >>"$S/devices"

round() {
	local mode=$1 img opts="" cut wrc vrc delay
	local st=$S/state.$mode out=$S/write.$mode vout=$S/verify.$mode

	[ "$mode" = direct ] && opts=direct
	mkfs.ext4 -q -F /dev/mapper/$DM >/dev/null 2>&1 &&
		mount /dev/mapper/$DM "$mnt" || { not_ok "$mode: mkfs and mount"; return 1; }
	img=$mnt/image
	truncate -s 32M "$img"
	_fblk_ioctl configure "$dev" "$img" $opts || { not_ok "$mode: attach"; return 1; }

	fblk-powercut write "$dev" --state "$st" --seconds $WRITE_SECS --threads 4 \
		--seed $RANDOM >"$out" 2>&1 &
	local pid=$!
	delay=$((1 + RANDOM % 3))
	sleep "$delay.$((RANDOM % 10))"
	cut=$(fblk-powercut now)
	table "$drop" || diag "$mode: could not switch to drop_writes"
	wait $pid
	wrc=$?
	sed 's/^/# write: /' "$out"

	# Everything in memory goes; what reached ram3 before the cut stays.
	_fblk_ioctl detach "$dev"
	fblk_wait_attr "$dev" state unbound 10
	umount "$mnt"
	table "$allow" || diag "$mode: could not heal the table"
	blockdev --flushbufs /dev/mapper/$DM
	drop_caches
	if ! mount /dev/mapper/$DM "$mnt"; then
		not_ok "$mode: ext4 mounts again after the cut"
		return 1
	fi
	_fblk_ioctl configure "$dev" "$img" || { not_ok "$mode: attach again"; return 1; }
	fblk-powercut verify "$dev" --state "$st" --cut "$cut" >"$vout" 2>"$vout.err"
	vrc=$?
	sed 's/^/# verify: /' "$vout" "$vout.err" | head -n 40
	_fblk_ioctl detach "$dev"
	fblk_wait_attr "$dev" state unbound 10
	umount "$mnt"

	# key VALUE from a key=value file
	val() { sed -n "s/^$1=//p" "$2"; }
	local writes flushes fb durable req intact newer lost corrupt after
	writes=$(val writes "$out")
	flushes=$(val flushes "$out")
	fb=$(val flushes_before_cut "$vout")
	durable=$(val writes_durable_before_cut "$vout")
	req=$(val blocks_required "$vout")
	intact=$(val blocks_intact "$vout")
	newer=$(val blocks_newer "$vout")
	lost=$(val blocks_lost "$vout")
	corrupt=$(val blocks_corrupt "$vout")
	after=$(val writes_acked_after_cut "$vout")

	if [ "$wrc" = 0 ] && [ "${writes:-0}" -gt 0 ] && [ "${fb:-0}" -gt 0 ]; then
		ok "$mode: $writes writes and $flushes flushes acknowledged, $fb flushes before the cut at ${delay}s, $after writes acknowledged after it"
	else
		not_ok "$mode: writer exited $wrc with ${writes:-no} writes, ${fb:-no} flushes before the cut"
	fi
	if [ "${req:-0}" -gt 0 ] && [ "$((intact + newer))" = "$req" ]; then
		ok "$mode: $durable writes durable before the cut: all $req blocks they reached hold them ($intact) or newer ($newer)"
	else
		not_ok "$mode: of $req blocks written durably before the cut, $intact hold that write and $newer a newer one"
	fi
	if [ "$vrc" = 0 ] && [ "$lost" = 0 ] && [ "$corrupt" = 0 ]; then
		ok "$mode: 0 blocks lost, 0 corrupt"
	else
		not_ok "$mode: $lost blocks lost, $corrupt corrupt (verify exited $vrc)"
	fi
}

for mode in $MODES; do
	round "$mode"
done

tap_done
