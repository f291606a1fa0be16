#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Races between attach, detach, open, partition scans and GET_INFO.
#
# For FBLK_RACE_SECONDS (default 30), and on a slow kernel (the debug build)
# until each loop has run its minimum of rounds (at most 3 times as long
# again), these run in parallel:
#  - two attachers: `fblksetup -f --show -P` of an image with a partition
#    table (one image each), then `fblksetup -d`, over and over;
#  - a reader: opens and reads /dev/fblkN and /dev/fblkNp1 of whatever is
#    attached; a p1 read that succeeds must return p1's marker sector;
#  - a rescanner: `blockdev --rereadpt` and `partx -u` on those devices;
#  - an inspector: `fblksetup -a` and `fblksetup -l -J` (GET_INFO on all).
# Then ROUNDS rounds of NPAR concurrent `fblksetup -f --show IMG`: each must
# get a device, no two the same; all detach concurrently.
# Asserts: each loop ran, every failure was one of the expected errnos
# (EBUSY, ENXIO; ENOENT for a vanished node; EINVAL from a partition scan of
# an unbound device), no wrong partition data, distinct devices, everything
# unbound at the end with no partition left in sysfs or /dev, and once the
# devices fblksetup added are removed, the same devices as before.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

SECS=${FBLK_RACE_SECONDS:-$(fblk_load 30 10)}
NPAR=6
ROUNDS=3

tap_plan 11
fblk_require_module || tap_done

S=$FBLK_T_STATE
ls -d /sys/block/fblk* 2>/dev/null | sed 's|.*/||' | sort >"$S/baseline"
diag "devices before: $(tr '\n' ' ' <"$S/baseline")"

# Images with a DOS label: p1 at 1 MiB (2 MiB), p2 at 3 MiB (rest), and the
# same marker sector at the start of p1.
marker() { printf 'FBLKRACE-P1-MARKER%494s' '' | tr ' ' '.'; }
marker >"$S/marker"
mkimg() {
	local f
	f=$(fblk_image "$FBLK_SCRATCH" 8M) || return 1
	printf 'label: dos\nstart=2048, size=4096\nstart=6144\n' | sfdisk -q "$f" >/dev/null || return 1
	dd if="$S/marker" of="$f" bs=512 seek=2048 conv=notrunc status=none || return 1
	echo "$f"
}
img1=$(mkimg) && img2=$(mkimg)
if [ -n "$img1" ] && [ -n "$img2" ]; then
	ok "two images with a partition table"
else
	not_ok "two images with a partition table"
	tap_done
fi
for ((i = 0; i < NPAR; i++)); do
	eval "pimg$i=\$(fblk_image \"$FBLK_SCRATCH\" 1M)"
done

# Everything any worker attached, for cleanup and the final checks.
: >"$S/used"
fblk_at_exit "for d in \$(sort -u '$S/used'); do fblksetup -d \$d; done"

# run_ok WORKER ALLOWED CMD...: run CMD with a time limit; a failure whose
# message names an errno outside ALLOWED (an ERE of strerror texts) is
# logged to $S/WORKER.bad.  Returns CMD's status.
run_ok() {
	local w=$1 allowed=$2 rc
	shift 2
	timeout 30 "$@" >"$S/$w.out" 2>"$S/$w.err"
	rc=$?
	if [ $rc = 124 ]; then
		echo "timed out: $*" >>"$S/$w.bad"
	elif [ $rc != 0 ] && ! grep -Eq "$allowed" "$S/$w.err"; then
		echo "$* (rc $rc): $(tr '\n' ' ' <"$S/$w.err")" >>"$S/$w.bad"
	fi
	return $rc
}

BUSY='Device or resource busy|No such device or address'
# A read that reaches the device as it unbinds fails with EIO, as loop's does.
GONE="$BUSY|No such file or directory|Input/output error"
SCAN="$GONE|Invalid argument"

# The loops run until the main script stops them; each notes its rounds so
# far in $S/WORKER.n.
running() { [ ! -e "$S/stop" ]; }

attacher() {
	local w=$1 img=$2 dev n=0 fails=0
	: >"$S/$w.bad"
	while running; do
		if run_ok "$w" "$BUSY" fblksetup -f --show -P "$img"; then
			dev=$(cat "$S/$w.out")
			echo "$dev" >>"$S/used"
			echo "$dev" >"$S/$w.cur.tmp" && mv "$S/$w.cur.tmp" "$S/$w.cur"
			sleep "0.0$((RANDOM % 5))"
			run_ok "$w" "$BUSY" fblksetup -d "$dev" || fails=$((fails + 1))
			n=$((n + 1))
			echo "$n" >"$S/$w.n"
		else
			fails=$((fails + 1))
		fi
	done
	echo "$n $fails" >"$S/$w.count"
}

# the devices the attachers hold now
current() { cat "$S"/att*.cur 2>/dev/null; }

reader() {
	local dev n=0 p1=0 bad=0
	: >"$S/reader.bad"
	while running; do
		for dev in $(current); do
			run_ok reader "$GONE" dd if="$dev" of=/dev/null bs=4k count=4 status=none
			if run_ok reader "$GONE" dd if="${dev}p1" of="$S/p1" bs=512 count=1 status=none &&
			    [ -s "$S/p1" ]; then
				p1=$((p1 + 1))
				if ! cmp -s "$S/p1" "$S/marker"; then
					bad=$((bad + 1))
					echo "${dev}p1 read something other than p1's marker" >>"$S/reader.bad"
				fi
			fi
			n=$((n + 1))
		done
		echo "$n" >"$S/reader.n"
		sleep 0.1
	done
	echo "$n $p1 $bad" >"$S/reader.count"
}

rescanner() {
	local dev n=0
	: >"$S/rescan.bad"
	while running; do
		for dev in $(current); do
			run_ok rescan "$SCAN" blockdev --rereadpt "$dev"
			run_ok rescan "$SCAN|failed to|partition table" partx -u "$dev"
			n=$((n + 1))
		done
		echo "$n" >"$S/rescan.n"
		sleep 0.1
	done
	echo "$n" >"$S/rescan.count"
}

inspector() {
	local n=0
	: >"$S/info.bad"
	while running; do
		run_ok info "$GONE" fblksetup -a
		run_ok info "$GONE" fblksetup -l -J
		n=$((n + 1))
		echo "$n" >"$S/info.n"
		sleep 0.2
	done
	echo "$n" >"$S/info.count"
}

# rounds WORKER: how many it has run so far
rounds() { cat "$S/$1.n" 2>/dev/null || echo 0; }
enough_rounds() {
	[ $(($(rounds att1) + $(rounds att2))) -ge 6 ] && [ "$(rounds reader)" -ge 5 ] &&
		[ "$(rounds rescan)" -ge 5 ] && [ "$(rounds info)" -ge 5 ]
}

rm -f "$S/stop" "$S"/*.n
attacher att1 "$img1" &
attacher att2 "$img2" &
reader &
rescanner &
inspector &
sleep "$SECS"
deadline=$(($(date +%s) + 3 * SECS))
while ! enough_rounds && [ "$(date +%s)" -lt "$deadline" ]; do
	sleep 1
done
touch "$S/stop"
wait

read -r a1 f1 <"$S/att1.count"
read -r a2 f2 <"$S/att2.count"
read -r rn rp1 rbad <"$S/reader.count"
rs=$(cat "$S/rescan.count")
in=$(cat "$S/info.count")
diag "attach/detach cycles: $a1 and $a2 (failed steps $f1, $f2); reads: $rn (p1: $rp1, wrong: $rbad); rescans: $rs; listings: $in"

# bad LIST: ok when the .bad files are empty
bad_of() { cat "$@" 2>/dev/null | head -n 20; }

b=$(bad_of "$S/att1.bad" "$S/att2.bad")
if [ $((a1 + a2)) -ge 6 ] && [ -z "$b" ]; then
	ok "attach -P / detach loops: $((a1 + a2)) cycles, only EBUSY/ENXIO failures"
else
	not_ok "attach -P / detach loops: $((a1 + a2)) cycles (6 expected)" "$b"
fi
b=$(bad_of "$S/reader.bad")
if [ "$rn" -ge 5 ] && [ -z "$b" ]; then
	ok "reader: $rn rounds, $rp1 p1 reads all returned p1's marker, only expected errors"
else
	not_ok "reader: $rn rounds, $rbad wrong p1 reads" "$b"
fi
b=$(bad_of "$S/rescan.bad")
if [ "$rs" -ge 5 ] && [ -z "$b" ]; then
	ok "rereadpt/partx: $rs rounds, only expected errors"
else
	not_ok "rereadpt/partx: $rs rounds" "$b"
fi
b=$(bad_of "$S/info.bad")
if [ "$in" -ge 5 ] && [ -z "$b" ]; then
	ok "GET_INFO listings: $in rounds, only expected errors"
else
	not_ok "GET_INFO listings: $in rounds" "$b"
fi

# ---- concurrent fblksetup -f ----
dups=0 fails=0 detfail=0
for ((r = 0; r < ROUNDS; r++)); do
	for ((i = 0; i < NPAR; i++)); do
		eval "f=\$pimg$i"
		( timeout 60 fblksetup -f --show "$f" >"$S/par$i.out" 2>"$S/par$i.err"; echo $? >"$S/par$i.rc" ) &
	done
	wait
	: >"$S/round"
	for ((i = 0; i < NPAR; i++)); do
		if [ "$(cat "$S/par$i.rc")" = 0 ] && [ -s "$S/par$i.out" ]; then
			cat "$S/par$i.out" >>"$S/round"
			cat "$S/par$i.out" >>"$S/used"
		else
			fails=$((fails + 1))
			diag "round $r: fblksetup -f #$i: $(cat "$S/par$i.err")"
		fi
	done
	d=$(sort "$S/round" | uniq -d)
	if [ -n "$d" ]; then
		dups=$((dups + 1))
		diag "round $r: devices given twice: $d"
	fi
	for dev in $(sort -u "$S/round"); do
		( timeout 30 fblksetup -d "$dev" 2>"$S/det.${dev##*/}.err" ||
			echo "$dev: $(cat "$S/det.${dev##*/}.err")" >>"$S/detfail" ) &
	done
	wait
done
[ -s "$S/detfail" ] && detfail=$(wc -l <"$S/detfail")
if [ $fails = 0 ]; then
	ok "$ROUNDS rounds of $NPAR concurrent fblksetup -f --show: every one got a device"
else
	not_ok "concurrent fblksetup -f: $fails of $((ROUNDS * NPAR)) failed"
fi
if [ $dups = 0 ]; then
	ok "no device was handed out twice in a round"
else
	not_ok "$dups rounds handed out a device twice"
fi
if [ "$detfail" = 0 ]; then
	ok "all concurrent detaches succeeded"
else
	not_ok "$detfail concurrent detaches failed" "$(head -n 5 "$S/detfail" | tr '\n' ' ')"
fi

# ---- the end state ----
# Detach deferred to a last close may still be finishing.
stale=
for dev in $(sort -u "$S/used"); do
	n=${dev##*/}
	if ! fblk_wait_attr "$dev" state unbound 10; then
		stale="$stale $n:$(fblk_attr "$dev" state 2>/dev/null)"
	fi
done
if [ -z "$stale" ]; then
	ok "every device used ($(sort -u "$S/used" | wc -l)) is unbound"
else
	not_ok "devices still bound:$stale"
fi

parts=$(ls -d /sys/block/fblk*/fblk*p* /dev/fblk*p* 2>/dev/null | tr '\n' ' ')
if [ -z "$parts" ]; then
	ok "no partition left in sysfs or /dev"
else
	not_ok "stale partitions: $parts"
fi

# Remove what fblksetup -f added (GET_FREE makes a device when none is free).
rmfail=
for d in /sys/block/fblk*; do
	n=${d##*/}
	grep -qx "$n" "$S/baseline" && continue
	_fblk_ioctl remove "/dev/$n" 2>>"$S/rm.err" || rmfail="$rmfail $n"
done
ls -d /sys/block/fblk* 2>/dev/null | sed 's|.*/||' | sort >"$S/after"
if [ -z "$rmfail" ] && cmp -s "$S/baseline" "$S/after"; then
	ok "the devices added were removed: back to the $(wc -l <"$S/after") from before"
else
	not_ok "device set differs from before (removal failed:${rmfail:- none})" \
		"$(diff "$S/baseline" "$S/after" | tr '\n' ' ') $(cat "$S/rm.err" 2>/dev/null)"
fi

tap_done
