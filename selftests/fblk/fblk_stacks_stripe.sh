#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A stack that broke loop's inline submission (lib_stacks.sh): xfs on fblk
# (and loop: FBLK_STACKS_DRIVERS), over a file on xfs, over dm-stripe (two
# legs) over two null_blk devices, wbt enabled on every blk-mq layer; under
# verified fio and a file-churn load, then fsck of both filesystems; the
# deepest kernel stack of each run against THREAD_SIZE.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_stacks.sh
. "$(dirname "$0")/lib_stacks.sh"

stacks_begin 1
for drv in $DRIVERS; do
	stack1 "$drv"
done
stacks_end
