#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Module life: rmmod with bound devices removes them all; rmmod with a device
# open fails (EBUSY) and works after the close; module parameters seed the
# devices made at load.  The module is loaded again (insmod $FBLK_KO, default
# parameters) before the script exits, whatever happens.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

tap_plan 8
fblk_require_module || tap_done
if [ ! -r "${FBLK_KO:-}" ]; then
	not_ok "FBLK_KO names the module file" "FBLK_KO='${FBLK_KO:-}'"
	tap_done
fi

reload() {
	[ -d /sys/module/fblk ] || insmod "$FBLK_KO"
}
fblk_at_exit reload

count_devices() {
	local n=0 d
	for d in /sys/block/fblk*; do
		[ -e "$d" ] && n=$((n + 1))
	done
	echo $n
}

# Devices bound to a file and not open: rmmod takes them down.
img=$(fblk_image "$FBLK_SCRATCH" 16M)
a=$(fblk_attach "$img")
b=$(fblk_attach "$img" ro)
if [ -n "$a" ] && [ -n "$b" ] && rmmod fblk; then
	ok "rmmod with bound devices succeeds"
else
	not_ok "rmmod with bound devices succeeds"
fi
check "rmmod removed every device and the control node" \
	test "$(count_devices)" = 0 -a ! -e /dev/fblk-control -a ! -d /sys/module/fblk
reload
check "insmod brings back fblk0 and the control node" \
	test -c /dev/fblk-control -a "$(fblk_attr /dev/fblk0 state)" = unbound

# A device held open: rmmod refuses until it is closed.
a=$(fblk_attach "$img")
exec 7<"$a"
if rmmod fblk 2>"$FBLK_T_STATE/rmmod.err"; then
	not_ok "rmmod with an open device fails with EBUSY and leaves it bound" "rmmod succeeded"
	exec 7<&-
	not_ok "rmmod works once the device is closed" "not reached"
	reload
else
	if grep -qi "in use\|busy" "$FBLK_T_STATE/rmmod.err" && [ -d /sys/module/fblk ] &&
		[ "$(fblk_attr "$a" state)" = bound ]; then
		ok "rmmod with an open device fails with EBUSY and leaves it bound"
	else
		not_ok "rmmod with an open device fails with EBUSY and leaves it bound" \
			"$(cat "$FBLK_T_STATE/rmmod.err")"
	fi
	exec 7<&-
	check "rmmod works once the device is closed" rmmod fblk
	reload
fi

# Parameters seed the devices made at load.
if rmmod fblk && insmod "$FBLK_KO" nr_devices=3 nr_hw_queues=2 queue_depth=32; then
	check "nr_devices=3 makes fblk0..fblk2" test "$(count_devices)" = 3 -a -b /dev/fblk2
	check "nr_hw_queues=2 queue_depth=32 apply to them" \
		test "$(fblk_attr /dev/fblk2 nr_hw_queues):$(fblk_attr /dev/fblk2 queue_depth)" = 2:32
	rmmod fblk
else
	not_ok "nr_devices=3 makes fblk0..fblk2" "reload with parameters failed"
	not_ok "nr_hw_queues=2 queue_depth=32 apply to them" "reload with parameters failed"
fi
reload
q=$(fblk_attr /dev/fblk0 nr_hw_queues)
cpus=$(getconf _NPROCESSORS_ONLN)
[ "$cpus" -ge 2 ] || cpus=2
if [ "$(count_devices)" = 1 ] && [ "$(fblk_attr /dev/fblk0 queue_depth)" = 128 ] &&
	[ "$q" = "$cpus" ]; then
	ok "defaults: one device, queue_depth 128, a queue per CPU (at least 2)"
else
	not_ok "defaults: one device, queue_depth 128, a queue per CPU (at least 2)" \
		"$(count_devices) devices, nr_hw_queues $q, queue_depth $(fblk_attr /dev/fblk0 queue_depth)"
fi

tap_done
