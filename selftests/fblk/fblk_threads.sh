#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Devices share fblk's workers: adding and using many devices, each with its
# pool busy (submit=threads), starts no kernel thread of a device's own (a
# workqueue per device with WQ_MEM_RECLAIM used to cost a rescuer thread
# each, named after the device), and every device's I/O completes.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

NDEV=${FBLK_THREADS_DEVICES:-16}

tap_plan 2
fblk_require_module || tap_done

S=$FBLK_T_STATE

# Kernel threads named after a device (fblkN), as a per-device workqueue's
# rescuer is.
device_threads() {
	pgrep -c -x 'fblk[0-9]+'
}

before=$(device_threads)
devs=()
for ((i = 0; i < NDEV; i++)); do
	img=$(fblk_image "$FBLK_SCRATCH" 8M) || break
	dev=$(fblk_attach "$img") || break
	echo threads >"/sys/block/${dev##*/}/fblk/submit" || break
	echo 2 >"/sys/block/${dev##*/}/fblk/pool_size" || break
	devs+=("$dev")
done
if [ ${#devs[@]} != "$NDEV" ]; then
	not_ok "$NDEV devices with busy pools: I/O completes on each" "only ${#devs[@]} devices attached"
else
	args=()
	for dev in "${devs[@]}"; do
		args+=(--name="${dev##*/}" --filename="$dev")
	done
	if fio --rw=randwrite --bs=4k --direct=1 --ioengine=io_uring --iodepth=8 \
		--size=8M --io_size=2M --verify=crc32c --verify_fatal=1 \
		--group_reporting "${args[@]}" >"$S/fio" 2>&1; then
		ok "$NDEV devices with busy pools: I/O completes on each"
	else
		sed 's/^/# /' "$S/fio" | tail -n 10
		not_ok "$NDEV devices with busy pools: I/O completes on each" "fio failed"
	fi
fi
after=$(device_threads)
diag "kernel threads named after a device: $before before, $after with $NDEV devices"
if [ "$after" -le "$before" ]; then
	ok "no kernel thread of a device's own"
else
	not_ok "no kernel thread of a device's own" "$((after - before)) more"
fi

tap_done
