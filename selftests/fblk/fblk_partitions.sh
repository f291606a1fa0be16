#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Partitions: with FBLK_FL_PARTSCAN a partition table on the image shows up
# as /dev/fblkNpM at the right offsets and sizes; without it, none does, but
# partitions added by hand (partx --add, BLKPG) work as on loop, and every
# partition goes at detach: none is left for the device's next user.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

tap_plan 12
fblk_require_module || tap_done

img=$(fblk_image "$FBLK_SCRATCH" 64M)
# p1: 1 MiB..17 MiB, p2: 17 MiB..end (sfdisk leaves the GPT backup at the end)
if ! printf 'label: gpt\nstart=2048, size=32768\nstart=34816\n' | sfdisk -q "$img" >/dev/null; then
	not_ok "sfdisk writes a partition table on the image"
	tap_done
fi

dev=$(fblk_attach "$img" partscan)
name=${dev##*/}
if [ -n "$dev" ] && fblk_wait_node "${dev}p1" && fblk_wait_node "${dev}p2"; then
	ok "partscan: ${dev}p1 and ${dev}p2 appear"
else
	not_ok "partscan: ${dev}p1 and ${dev}p2 appear" "$(ls /sys/block/"$name" 2>&1 | tr '\n' ' ')"
fi

check "partscan shows in sysfs" test "$(fblk_attr "$dev" partscan)" = 1

start=$(cat "/sys/block/$name/${name}p1/start" 2>/dev/null)
size=$(cat "/sys/block/$name/${name}p1/size" 2>/dev/null)
check "p1 starts at sector 2048 and has 32768 sectors" test "$start:$size" = "2048:32768"

# Data written to p1 lands 1 MiB into the image.
head -c 4M /dev/urandom >"$FBLK_T_STATE/data"
dd if="$FBLK_T_STATE/data" of="${dev}p1" bs=1M oflag=direct status=none 2>&1
sync
drop_caches
check "data written to p1 is at 1 MiB in the image" \
	cmp -n 4194304 "$FBLK_T_STATE/data" <(dd if="$img" bs=1M skip=1 count=4 status=none)
check "data written to p1 reads back through the whole device" \
	cmp -n 4194304 "$FBLK_T_STATE/data" <(dd if="$dev" bs=1M skip=1 count=4 iflag=direct status=none)

fblk_detach "$dev"
if fblk_wait_attr "$dev" state unbound && [ ! -e "/sys/block/$name/${name}p1" ]; then
	ok "detach removes the partitions"
else
	not_ok "detach removes the partitions"
fi

dev2=$(fblk_attach "$img")
name2=${dev2##*/}
sleep 1
if [ -n "$dev2" ] && [ ! -e "/sys/block/$name2/${name2}p1" ] && [ ! -e "${dev2}p1" ]; then
	ok "without partscan no partitions appear"
else
	not_ok "without partscan no partitions appear"
fi
check "partscan is off in sysfs" test "$(fblk_attr "$dev2" partscan)" = 0

# loop/013's case: the administrator adds what the kernel did not scan.
if out=$(partx --add "$dev2" 2>&1) && fblk_wait_node "${dev2}p1" &&
	[ "$(cat "/sys/block/$name2/${name2}p1/start" 2>/dev/null)" = 2048 ]; then
	ok "without partscan partx --add adds p1 at sector 2048"
else
	not_ok "without partscan partx --add adds p1 at sector 2048" "$out"
fi
fblk_detach "$dev2"
fblk_wait_attr "$dev2" state unbound
: <"$dev2"
if [ ! -e "/sys/block/$name2/${name2}p1" ]; then
	ok "detach drops a partition added by hand"
else
	not_ok "detach drops a partition added by hand"
fi
# An unbound device has no contents a partition could point into.
if out=$(addpart "$dev2" 1 2048 32768 2>&1); then
	not_ok "BLKPG_ADD_PARTITION on an unbound device is refused" "addpart succeeded: $out"
else
	ok "BLKPG_ADD_PARTITION on an unbound device is refused"
fi
check "and left no partition" test ! -e "/sys/block/$name2/${name2}p1"

tap_done
