#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A stack that broke loop's inline submission (lib_stacks.sh): ext4 on fblk
# over a file on xfs on fblk over a file on ext4 on brd (two fblk levels;
# loop too with FBLK_STACKS_DRIVERS), both levels buffered, then both direct;
# under verified fio and a file-churn load, then fsck of all three
# filesystems; the deepest kernel stack of each run against THREAD_SIZE.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_stacks.sh
. "$(dirname "$0")/lib_stacks.sh"

stacks_begin 2
for mode in buffered direct; do
	for drv in $DRIVERS; do
		stack2 "$drv" "$mode"
	done
done
stacks_end
