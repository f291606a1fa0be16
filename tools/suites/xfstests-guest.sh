#!/bin/bash
# `make xfstests`, the guest side: runs in the test VM (guest-run.sh,
# MODE=xfstests) as root, from /fblk/xfstests/ (copied there by xfstests.sh
# beside the built xfstests tree, src/), and writes into /results:
#   xfstests/<role>/   xfstests' results (RESULT_BASE: result.xml, check.log,
#                      <test>.out.bad and .full of what failed)
#   xfstests.log       ./check's output
#   xfstests.tsv       one line per test and role: test, device, role,
#                      status (pass, fail, not run), reason
# and progress for the host on fd 3 (FBLK-BEGIN/FBLK-END per role).
#
# Settings come from /results/xfstests.env: TESTS (test names), GROUP (an
# xfstests group instead), FSTYP (the filesystem under test), LOWER_FS (the
# filesystem the backing files are on), ROLES (the device kinds:
# fblk-buffered, fblk-direct, loop-dio-off, loop-dio-on) and IMG_MB (size of
# each backing file).
#
# Each role gets two devices, TEST_DEV and SCRATCH_DEV, over two fresh
# sparse files on LOWER_FS (ext4 or xfs) on a memory-backed null_blk disk,
# removed after the role's run.
set -u

B=/fblk/xfstests
R=/results
TESTS='' GROUP='' FSTYP=ext4 LOWER_FS=ext4 ROLES='fblk-buffered fblk-direct loop-dio-off loop-dio-on' IMG_MB=1024
# shellcheck disable=SC1091
[ -r $R/xfstests.env ] && . $R/xfstests.env
LOWER=/mnt/xt-lower
NB=/sys/kernel/config/nullb/xtlower
export PATH=/fblk/bin:$PATH

{ true >&3; } 2>/dev/null || exec 3>/dev/null
emit() { printf '%s\n' "$*" >&3; }
exec > >(tee -a $R/xfstests.log) 2>&1
say() { printf 'xfstests: %s\n' "$*"; }

# The lower filesystem: LOWER_FS on null_blk, memory-backed, big enough for both
# files of a role to be written in full.
lower_up() {
	modprobe -q null_blk nr_devices=0 || return 1
	mkdir "$NB" || return 1
	echo 1 >"$NB/memory_backed"
	echo 4096 >"$NB/blocksize"
	echo $((IMG_MB * 2 + 256)) >"$NB/size"
	echo 1 >"$NB/discard"
	echo 1 >"$NB/power" || return 1
	case $LOWER_FS in
	ext4) mkfs.ext4 -q -F /dev/xtlower ;;
	xfs) mkfs.xfs -q -f /dev/xtlower ;;
	*) say "LOWER_FS=$LOWER_FS: ext4 or xfs"; false ;;
	esac || return 1
	mkdir -p $LOWER
	mount /dev/xtlower $LOWER
}
lower_down() {
	umount $LOWER
	echo 0 >"$NB/power"
	rmdir "$NB"
}

# attach ROLE FILE: a device over FILE the way ROLE says; prints its path.
attach() {
	case $1 in
	fblk-buffered) fblksetup -f --show --direct-io=off "$2" ;;
	fblk-direct) fblksetup -f --show --direct-io=on "$2" ;;
	fblk-auto) fblksetup -f --show "$2" ;;
	loop-dio-off) /sbin/losetup -f --show "$2" ;;
	loop-dio-on) /sbin/losetup -f --show --direct-io=on "$2" ;;
	*) say "unknown role $1"; return 1 ;;
	esac
}
detach() {
	case $1 in
	/dev/fblk*) fblksetup -d "$1" ;;
	/dev/loop*) /sbin/losetup -d "$1" ;;
	esac
}

# xfstests' users (tests that need them are skipped without).
add_users() {
	local u
	for u in fsgqa fsgqa2 123456-fsgqa; do
		id "$u" &>/dev/null || useradd -m "$u" 2>/dev/null
	done
	getent group fsgqa >/dev/null || groupadd fsgqa 2>/dev/null
}

# record ROLE DEV: result.xml -> xfstests.tsv lines.
record() {
	python3 - "$R/xfstests/$1/result.xml" "$1" "$2" >>$R/xfstests.tsv <<'PY'
import sys, xml.etree.ElementTree as ET
path, role, dev = sys.argv[1:4]
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError) as e:
    print("(none)\t%s\t%s\tfail\tno result.xml: %s" % (dev, role, e))
    sys.exit(0)
for tc in root.iter("testcase"):
    status, reason = "pass", ""
    for child in tc:
        if child.tag == "skipped":
            status, reason = "not run", child.get("message", "")
        elif child.tag in ("failure", "error"):
            status, reason = "fail", child.get("message", "")
    reason = " ".join(reason.split())
    print("%s\t%s\t%s\t%s\t%s" % (tc.get("name"), dev, role, status, reason))
PY
}

# geometry DEV: what mkfs saw of DEV and made of it, to compare the roles.
geometry() {
	local q=/sys/block/${1#/dev/}/queue f
	for f in logical_block_size physical_block_size minimum_io_size \
		optimal_io_size rotational discard_granularity discard_max_bytes \
		write_zeroes_max_bytes max_sectors_kb nr_requests; do
		printf '%s: %s\n' "$f" "$(cat "$q/$f" 2>/dev/null)"
	done
	case $FSTYP in
	xfs) xfs_db -r -c info "$1" ;;
	ext4) dumpe2fs -h "$1" 2>/dev/null ;;
	esac
}

run_role() {
	local role=$1 test_dev scratch_dev rc start args
	emit "FBLK-BEGIN $role"
	printf 'fblk-xfstests: begin %s\n' "$role" >/dev/kmsg
	start=$(date +%s)
	truncate -s "${IMG_MB}M" $LOWER/test.img $LOWER/scratch.img
	if ! test_dev=$(attach "$role" $LOWER/test.img) ||
	   ! scratch_dev=$(attach "$role" $LOWER/scratch.img); then
		say "$role: cannot attach"
		emit "FBLK-END $role rc=1 secs=0"
		return 1
	fi
	say "$role: TEST_DEV=$test_dev SCRATCH_DEV=$scratch_dev ($FSTYP on files on $LOWER_FS)"
	"mkfs.$FSTYP" -q "$([ "$FSTYP" = xfs ] && echo -f || echo -F)" "$test_dev" >/dev/null
	mkdir -p /mnt/xt-test /mnt/xt-scratch "$R/xfstests/$role"
	geometry "$test_dev" >"$R/xfstests/$role/test-dev.txt" 2>&1
	if [ -n "$GROUP" ]; then
		args=(-g "$GROUP")
	else
		read -ra args <<<"$TESTS"
	fi
	# guest-run.sh's TEST_DEV and TEST_DIR (for mkfs.xfs) are replaced.
	(cd $B/src && env FSTYP="$FSTYP" TEST_DEV="$test_dev" TEST_DIR=/mnt/xt-test \
		SCRATCH_DEV="$scratch_dev" SCRATCH_MNT=/mnt/xt-scratch \
		RESULT_BASE="$R/xfstests/$role" ./check -R xunit "${args[@]}")
	rc=$?
	record "$role" "${test_dev#/dev/}"
	umount /mnt/xt-test /mnt/xt-scratch 2>/dev/null
	detach "$test_dev"
	detach "$scratch_dev"
	rm -f $LOWER/test.img $LOWER/scratch.img
	fstrim $LOWER 2>/dev/null
	printf 'fblk-xfstests: end %s rc=%s\n' "$role" "$rc" >/dev/kmsg
	emit "FBLK-END $role rc=$rc secs=$(($(date +%s) - start))"
}

main() {
	local role
	: >$R/xfstests.tsv
	[ -d /sys/module/fblk ] || insmod /fblk/fblk.ko || { say "insmod fblk.ko failed"; return 1; }
	modprobe -q loop
	lower_up || { say "cannot make the lower filesystem"; return 1; }
	add_users
	for role in $ROLES; do
		run_role "$role"
	done
	lower_down
}

main
say "done"
