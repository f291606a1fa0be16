#!/bin/bash
# `make blktests`, the guest side: runs in the test VM (guest-run.sh,
# MODE=blktests) as root, from /fblk/blktests/ (copied there by blktests.sh
# beside the built blktests tree, src/), and writes into /results:
#   blktests/<dev>/<group>/<test>*   blktests' own results (-o)
#   blktests.log                     ./check's output
#   blktests.tsv                     one line per test and device:
#                                    test, device, role, status, reason
# and progress for the host on fd 3 (FBLK-BEGIN/FBLK-END per test, which
# arms the host's per-test watchdog).
#
# Settings come from /results/blktests.env: TESTS (blktests test names or
# groups), TIMEOUT (blktests' limit for timed tests, s), IMG_MB (size of
# each image), ROLES (which of the four test devices to make).
#
# The test devices, all over files on the same ext4 scratch filesystem
# (guest-run.sh's /mnt/ext4 on brd, 256 MiB: the four files together must
# fit, or the last device to run a test gets ENOSPC from below): fblk in its default io_mode (auto:
# direct on ext4) and in buffered mode, loop with direct I/O off (losetup's
# default) and on, the baseline.
set -u

B=/fblk/blktests
R=/results
TESTS='' TIMEOUT=10 IMG_MB=48 ROLES='fblk-auto fblk-buffered loop-dio-off loop-dio-on'
# shellcheck disable=SC1091
[ -r $R/blktests.env ] && . $R/blktests.env
IMGDIR=/mnt/ext4/blktests
# blktests makes its per-test TMPDIR in its output directory: that needs
# fifos and O_DIRECT, which the 9p share /results has not; results are
# copied there after each test.
OUT=/mnt/xfs/blktests
UDEVD=
export PATH=/fblk/bin:$PATH

{ true >&3; } 2>/dev/null || exec 3>/dev/null
emit() { printf '%s\n' "$*" >&3; }
exec > >(tee -a $R/blktests.log) 2>&1
say() { printf 'blktests: %s\n' "$*"; }

declare -A ROLE=()

# make_devs: the test devices of ROLES; ROLE maps each to what it stands for.
make_devs() {
	local role file dev
	mkdir -p $IMGDIR
	for role in $ROLES; do
		file=$IMGDIR/$role.img
		truncate -s "${IMG_MB}M" "$file" || return 1
		case $role in
		fblk-auto) dev=$(fblksetup -f --show "$file") ;;
		fblk-buffered) dev=$(fblksetup -f --show --direct-io=off "$file") ;;
		loop-dio-off) dev=$(/sbin/losetup -f --show "$file") ;;
		loop-dio-on) dev=$(/sbin/losetup -f --show --direct-io=on "$file") ;;
		*) say "unknown role $role"; return 1 ;;
		esac
		[ -b "$dev" ] || { say "cannot attach $role"; return 1; }
		ROLE[${dev#/dev/}]=$role
		say "$role: $dev"
	done
	fblksetup -l
	/sbin/losetup -l
}

# record TEST OUTPUT: ./check's OUTPUT -> one line per device (or nodev):
# "block/003 => fblk0 (description)  [passed]", or [failed] or [not run]
# followed by indented lines (for not run: the reasons, which blktests keeps
# nowhere else).
record() {
	python3 - "$1" "$2" "$(declare -p ROLE)" >>$R/blktests.tsv <<'PY'
import re, sys
test, path, roles = sys.argv[1:4]
role = dict(re.findall(r'\[([^]]+)\]="([^"]*)"', roles))
status_re = re.compile(r'^(\S+)(?: => (\S+))? .*\[(passed|failed|not run)\]\s*$')
rows, cur = [], None
for line in open(path, errors="replace"):
    m = status_re.match(line)
    if m:
        st = {"passed": "pass", "failed": "fail"}.get(m.group(3), m.group(3))
        cur = [m.group(1), m.group(2) or "nodev", st, []]
        rows.append(cur)
    elif cur and line.startswith("    ") and cur[2] == "not run":
        cur[3].append(line.strip())
    elif not line.startswith(" "):
        cur = None
if not rows:
    rows.append([test, "nodev", "none", ["no status line from ./check"]])
for t, dev, st, why in rows:
    print("\t".join([t, dev, role.get(dev, "nodev"), st, "; ".join(why)]))
PY
}

run_one() {
	local t=$1 cfg=$2 rc start out
	emit "FBLK-BEGIN $t"
	printf 'fblk-blktests: begin %s\n' "$t" >/dev/kmsg
	out=$(mktemp)
	start=$(date +%s)
	(cd $B/src && ./check -c "$cfg" -o $OUT "$t") >"$out" 2>&1
	rc=$?
	cp -r "$OUT/." $R/blktests/
	cat "$out"
	record "$t" "$out"
	rm -f "$out"
	printf 'fblk-blktests: end %s rc=%s\n' "$t" "$rc" >/dev/kmsg
	emit "FBLK-END $t rc=$rc secs=$(($(date +%s) - start))"
}

# The tests of TESTS, a group as its numbered tests (one watchdog each).
expand_tests() {
	local t f
	for t in $TESTS; do
		if [ -d "$B/src/tests/$t" ]; then
			for f in "$B/src/tests/$t"/[0-9][0-9][0-9]; do
				[ -f "$f" ] && echo "$t/${f##*/}"
			done
		else
			echo "$t"
		fi
	done
}

# udevd, as on the machines blktests is written for: `udevadm settle` then
# waits for the devices a test makes (scsi_debug's disks appear
# asynchronously), and `udevadm control --ping` answers.  Not systemd's
# unit (systemd is not init here), so tests that stop udevd leave it be.
start_udevd() {
	local d
	for d in /lib/systemd/systemd-udevd /usr/lib/systemd/systemd-udevd; do
		[ -x $d ] || continue
		mkdir -p /run/udev
		$d --daemon || return 0
		udevadm trigger --action=add --subsystem-match=block
		udevadm settle -t 30
		UDEVD=1
		say "udevd started"
		return 0
	done
	say "no systemd-udevd: udevadm settle will not wait"
}

main() {
	local cfg=/tmp/blktests.config t devs=()
	: >$R/blktests.tsv
	mkdir -p $OUT $R/blktests
	start_udevd
	[ -d /sys/module/fblk ] || insmod /fblk/fblk.ko || { say "insmod fblk.ko failed"; return 1; }
	modprobe -q loop
	# blktests' scsi_debug helpers and block/036 want these.
	modprobe -q scsi_debug 2>/dev/null && rmmod scsi_debug
	make_devs || return 1
	for t in "${!ROLE[@]}"; do devs+=("/dev/$t"); done
	# Device tests run on every TEST_DEV, the others (the fblk and loop
	# groups) once: a second config without devices keeps ours out of them.
	printf 'TEST_DEVS=(%s)\nTIMEOUT=%s\n' "${devs[*]}" "$TIMEOUT" >$cfg
	printf 'TEST_DEVS=()\nTIMEOUT=%s\n' "$TIMEOUT" >$cfg.nodev
	for t in $(expand_tests); do
		if grep -qs '^test_device()' "$B/src/tests/$t"; then
			run_one "$t" $cfg
		else
			run_one "$t" $cfg.nodev
		fi
	done
	for t in "${!ROLE[@]}"; do
		case $t in
		fblk*) fblksetup -d "/dev/$t" ;;
		loop*) /sbin/losetup -d "/dev/$t" ;;
		esac
	done
	rm -rf $IMGDIR
	[ -z "$UDEVD" ] || udevadm control --exit
}

main
say "done"
