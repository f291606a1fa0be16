#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A stack that broke loop's inline submission (lib_stacks.sh): ext4 on fblk
# (and loop: FBLK_STACKS_DRIVERS) over a file on ext4, the load in a cgroup v2
# with a small memory.max and vm.dirty_bytes 4 MiB: reclaim and dirty
# throttling write back through the driver; fsck after; the deepest kernel
# stack of each run against THREAD_SIZE.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_stacks.sh
. "$(dirname "$0")/lib_stacks.sh"

stacks_begin 1
for drv in $DRIVERS; do
	stack3 "$drv"
done
stacks_end
