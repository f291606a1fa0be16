#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Detach while fio is doing I/O on the device: the detach returns at once
# (deferred, since the device is open), fio's I/O keeps working to the end
# of its time without an error, the device comes unbound at its last close,
# and then the filesystem the image lives on unmounts: the engine's work is
# done with the file before it is closed (on the debug kernel, KASAN and
# kmemleak watch that).  In buffered and direct modes.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

LOWER=/dev/ram2

tap_plan 10
fblk_require_module || tap_done

# wait_for_writes DEV SECONDS: until a write has completed on DEV, so that fio
# surely has it open.
wait_for_writes() {
	local i stat
	for ((i = 0; i < $2 * 10; i++)); do
		read -ra stat <"/sys/block/${1##*/}/stat"
		[ "${stat[4]}" -gt 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# unmount_soon DIR: an fput from the engine's last close may still be on
# its way for a moment; a file left open keeps the filesystem busy for good.
unmount_soon() {
	local i
	for ((i = 0; i < 20; i++)); do
		umount "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	umount "$1"
}

# detach_under_fio MODE: the image on a fresh ext4 of its own.
detach_under_fio() {
	local mode=$1 what=${1:-buffered} dev img pid rc i lm
	lm=$(fblk_mkdir)
	if ! mkfs.ext4 -q -F "$LOWER" >/dev/null 2>&1 || ! fblk_mount "$LOWER" "$lm"; then
		for i in 1 2 3 4 5; do
			not_ok "$what: case $i" "no lower filesystem on $LOWER"
		done
		return
	fi
	img=$(fblk_image "$lm" 64M)
	dev=$(fblk_attach "$img" ${mode:+"$mode"}) || {
		not_ok "$what: attach"
		return
	}
	# time-based, so that it surely runs on well after the detach
	fio --name=busy --filename="$dev" --ioengine=libaio --direct=1 \
		--rw=randrw --bs=4k --iodepth=32 --numjobs=2 --size=16M \
		--offset_increment=16M --time_based --runtime=8 \
		--output="$FBLK_T_STATE/fio-$what.out" >/dev/null 2>&1 &
	pid=$!
	fblk_at_exit "kill $pid"
	if ! wait_for_writes "$dev" 60; then
		kill $pid
		sed 's/^/# /' "$FBLK_T_STATE/fio-$what.out"
		for i in 1 2 3 4 5; do
			not_ok "$what: case $i" "fio never wrote to $dev"
		done
		return
	fi
	# Held open by us too: a time-based fio job closes and reopens its
	# file at each pass, and both jobs at once would be a last close.
	exec 3<"$dev"
	if timeout 10 python3 -c "$_FBLK_PY" detach "$dev"; then
		if [ "$(fblk_attr "$dev" state)" = bound ] && [ "$(fblk_attr "$dev" autoclear)" = 1 ]; then
			ok "$what: detach under I/O returns 0 and is deferred (bound, autoclear)"
		else
			not_ok "$what: detach under I/O returns 0 and is deferred (bound, autoclear)" \
				"state $(fblk_attr "$dev" state), autoclear $(fblk_attr "$dev" autoclear)"
		fi
	else
		not_ok "$what: detach under I/O returns 0 and is deferred (bound, autoclear)" \
			"detach failed or hung"
	fi
	wait $pid
	rc=$?
	exec 3<&-
	if [ $rc = 0 ] && ! grep -q "err=[ ]*[1-9]" "$FBLK_T_STATE/fio-$what.out"; then
		ok "$what: fio finishes with no errors after the detach"
	else
		sed 's/^/# /' "$FBLK_T_STATE/fio-$what.out"
		not_ok "$what: fio finishes with no errors after the detach" "fio exited $rc"
	fi
	if fblk_wait_attr "$dev" state unbound 10; then
		ok "$what: the device is unbound after its last close"
	else
		not_ok "$what: the device is unbound after its last close" "state $(fblk_attr "$dev" state)"
	fi
	check "$what: the device reports size 0 once unbound" test "$(bdev_size "$dev")" = 0
	check "$what: then the image's filesystem unmounts" unmount_soon "$lm"
}

detach_under_fio ""
detach_under_fio direct

tap_done
