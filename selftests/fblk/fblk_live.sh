#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A device's life changed while fio verifies a random write load on it
# (40 s): rmmod fblk tried (refused with EBUSY: the open device holds the
# module), io_mode switched back and forth (sysfs io_mode and fblksetup
# --io-mode), and a detach (deferred until the device's last close).  Every
# change is either done or refused, never hangs (each is given 30 s); fio's
# crc32c verification passes for everything it wrote; once the device is
# closed it is unbound with nothing in flight and nothing left in the pool;
# then rmmod succeeds and the module is loaded again.
# The test holds the device open itself until fio is done: a time-based fio
# job closes and reopens its file at each pass, and when both jobs did so at
# once the deferred detach rightly took place in the middle of the run (its
# later I/O then met an unbound device: ENOSPC, and reads that left fio's
# buffers as they were).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

tap_plan 6
fblk_require_module || tap_done
if [ ! -r "${FBLK_KO:-}" ]; then
	not_ok "FBLK_KO names the module file" "FBLK_KO='${FBLK_KO:-}'"
	tap_done
fi

# Whatever happens, the runner wants the module back.
fblk_at_exit "[ -d /sys/module/fblk ] || insmod '$FBLK_KO'"

S=$FBLK_T_STATE

# wait_for_writes DEV SECONDS: until a write has completed on DEV.
wait_for_writes() {
	local i stat
	for ((i = 0; i < $2 * 10; i++)); do
		read -ra stat <"/sys/block/${1##*/}/stat"
		[ "${stat[4]}" -gt 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# fio_json_ok FILE: no job failed, each wrote and verified (read) something.
fio_json_ok() {
	python3 - "$1" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
report = json.loads(text[text.index("{"):])
bad = 0
for job in report["jobs"]:
    err, rd, wr = job["error"], job["read"]["io_bytes"], job["write"]["io_bytes"]
    print("# job %s: error %d, wrote %d, verified %d" % (job["jobname"], err, wr, rd))
    if err or wr == 0 or rd == 0:
        bad += 1
sys.exit(1 if bad or not report["jobs"] else 0)
PY
}

# fio must outlast the switches (at most 15 s) and still hold the device
# open at the detach that follows them.
FIO_SECS=$(fblk_load 40 24)
img=$(fblk_image "$FBLK_SCRATCH" 32M)
dev=$(fblk_attach "$img" bs=4096)
if [ -z "$dev" ]; then
	for t in 1 2 3 4 5 6; do not_ok "case $t" "attach failed"; done
	tap_done
fi
fio --name=live --filename="$dev" --ioengine=libaio --direct=1 --rw=randwrite \
	--bsrange=4k-64k --iodepth=16 --numjobs=2 --size=12M --offset_increment=16M \
	--verify=crc32c --verify_fatal=1 --verify_backlog=64 --time_based --runtime="$FIO_SECS" \
	--output-format=json --output="$S/fio.json" >"$S/fio.out" 2>&1 &
pid=$!
start=$SECONDS
fblk_at_exit "kill $pid"
if ! wait_for_writes "$dev" 60; then
	kill $pid
	for t in 1 2 3 4 5 6; do not_ok "case $t" "fio never wrote to $dev"; done
	tap_done
fi

# 1: rmmod refused while fio has the device open
out=$(timeout 30 rmmod fblk 2>&1)
rc=$?
diag "rmmod: rc $rc: $out"
if [ $rc = 0 ]; then
	not_ok "rmmod under load is refused (in use), the device stays bound" "rmmod succeeded"
elif [ $rc = 124 ]; then
	not_ok "rmmod under load is refused (in use), the device stays bound" "rmmod hung"
elif [ ! -d /sys/module/fblk ] || [ "$(fblk_attr "$dev" state)" != bound ]; then
	not_ok "rmmod under load is refused (in use), the device stays bound" "module or device gone"
elif ! echo "$out" | grep -q "in use"; then
	not_ok "rmmod under load is refused (in use), the device stays bound" "refused otherwise: $out"
else
	ok "rmmod under load is refused (in use), the device stays bound"
fi

# 2: io_mode back and forth, by sysfs and by fblksetup
why=
n=0
for m in direct buffered direct buffered; do
	t0=$EPOCHREALTIME
	if [ $((n % 2)) = 0 ]; then
		timeout 30 sh -c "echo $m >/sys/block/${dev##*/}/fblk/io_mode" || why+=" sysfs:$m failed"
	else
		timeout 30 fblksetup --io-mode "$m" "$dev" || why+=" fblksetup:$m failed"
	fi
	got=$(fblk_attr "$dev" io_mode)
	[ "$got" = "$m" ] || why+=" asked $m, got $got"
	diag "io_mode $m: $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s"
	n=$((n + 1))
	kill -0 $pid 2>/dev/null || break
	# a switch drains the device, which takes seconds under TCG: leave
	# fio enough of its time for the detach
	[ $((SECONDS - start)) -lt 15 ] || break
	sleep 0.3
done
if ! kill -0 $pid 2>/dev/null; then
	why+=" fio ended before the switches did (after $n)"
fi
if [ -z "$why" ]; then
	ok "$n io_mode switches under fio verify (sysfs, fblksetup --io-mode) each took effect"
else
	not_ok "$n io_mode switches under fio verify (sysfs, fblksetup --io-mode) each took effect" "$why"
fi

# 3: detach, deferred; we hold the device open until fio is done
exec 3<"$dev"
# is_open DEV: some process (fio's jobs) has DEV open.
is_open() {
	[ -n "$(find /proc/[0-9]*/fd -lname "$1" 2>/dev/null | head -n 1)" ]
}
diag "detach at $((SECONDS - start)) s of fio's $FIO_SECS"
if ! kill -0 $pid 2>/dev/null || ! is_open "$dev"; then
	not_ok "detach under load returns 0 and is deferred (bound, autoclear)" "fio had closed the device before the detach"
elif ! timeout 30 python3 -c "$_FBLK_PY" detach "$dev"; then
	not_ok "detach under load returns 0 and is deferred (bound, autoclear)" "detach failed or hung"
elif [ "$(fblk_attr "$dev" state)" = bound ] && [ "$(fblk_attr "$dev" autoclear)" = 1 ]; then
	ok "detach under load returns 0 and is deferred (bound, autoclear)"
else
	not_ok "detach under load returns 0 and is deferred (bound, autoclear)" \
		"state $(fblk_attr "$dev" state), autoclear $(fblk_attr "$dev" autoclear)"
fi

# 4: fio
timeout 60 sh -c "while kill -0 $pid 2>/dev/null; do sleep 0.2; done"
wait $pid
rc=$?
if [ $rc = 0 ] && fio_json_ok "$S/fio.json"; then
	ok "fio's verify passes through the switches, rmmod and detach"
else
	sed 's/^/# /' "$S/fio.out" | tail -n 20
	dmesg | grep -w "${dev##*/}" | tail -n 5 | sed 's/^/# /'
	not_ok "fio's verify passes through the switches, rmmod and detach" "fio exited $rc"
fi

# 5: drained, once the last opener, we, closed the device
exec 3<&-
why=
if ! fblk_wait_attr "$dev" state unbound 10; then
	why="state $(fblk_attr "$dev" state) after fio closed it"
else
	read -r inr inw <"/sys/block/${dev##*/}/inflight"
	pool=$(awk '$1 == "pool_depth" {print $2}' "/sys/block/${dev##*/}/fblk/stats")
	diag "inflight $inr $inw, pool_depth $pool"
	[ "$inr $inw" = "0 0" ] || why="inflight $inr $inw"
	[ "${pool:-0}" = 0 ] || why+=" pool_depth $pool"
fi
if [ -z "$why" ]; then
	ok "unbound once fio closed the device, nothing in flight"
else
	not_ok "unbound once fio closed the device, nothing in flight" "$why"
fi

# 6: unload and load.  The unload took our device with it: lib.sh must not
# detach or remove a device of the same number after the reload.
if ! timeout 60 rmmod fblk; then
	not_ok "rmmod then insmod once the device is closed" "rmmod failed"
elif : >"$S/devices" && { [ -e /dev/fblk-control ] || [ -d /sys/module/fblk ]; }; then
	not_ok "rmmod then insmod once the device is closed" "fblk still there after rmmod"
elif ! insmod "$FBLK_KO" || ! [ -c /dev/fblk-control ]; then
	not_ok "rmmod then insmod once the device is closed" "insmod failed"
else
	ok "rmmod then insmod once the device is closed"
fi

tap_done
