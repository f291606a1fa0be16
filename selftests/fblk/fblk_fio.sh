#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# fio with crc32c verification: four jobs of random writes, each verifying
# its blocks by reading them back as it goes (verify_backlog) and at the end,
# on fblk in buffered and direct modes over files on ext4 and xfs and over a
# block device.  fio must exit 0, and its JSON report must show error 0 and
# every written byte read back for every job.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

RAMDISK=/dev/ram2
JOB_SIZE=8M

tap_plan 6
fblk_require_module || tap_done

# fio_json_ok FILE: every job has error 0 and read back what it wrote.
fio_json_ok() {
	python3 - "$1" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
report = json.loads(text[text.index("{"):])	# fio may print warnings first
bad = 0
for job in report["jobs"]:
    err, rd, wr = job["error"], job["read"]["io_bytes"], job["write"]["io_bytes"]
    if err or wr == 0 or rd < wr:
        print("# job %s: error %d, wrote %d, verified %d" % (job["jobname"], err, wr, rd))
        bad += 1
sys.exit(1 if bad or not report["jobs"] else 0)
PY
}

# fio_verify DESC BACKING MODE
fio_verify() {
	local desc=$1 backing=$2 mode=$3 dev rc
	dev=$(fblk_attach "$backing" ${mode:+"$mode"}) || { not_ok "$desc" "attach failed"; return; }
	fio --name=verify --filename="$dev" --ioengine=libaio --direct=1 \
		--rw=randwrite --bsrange=4k-64k --iodepth=16 --numjobs=4 \
		--size=$JOB_SIZE --offset_increment=$JOB_SIZE \
		--verify=crc32c --verify_backlog=128 --do_verify=1 \
		--output-format=json --output="$FBLK_T_STATE/fio.json" \
		>"$FBLK_T_STATE/fio.out" 2>&1
	rc=$?
	if [ $rc != 0 ]; then
		sed 's/^/# /' "$FBLK_T_STATE/fio.out"
		not_ok "$desc" "fio exited $rc"
	elif ! fio_json_ok "$FBLK_T_STATE/fio.json"; then
		not_ok "$desc" "fio reported errors"
	else
		ok "$desc"
	fi
	fblk_detach "$dev"
}

img=$(fblk_image "$FBLK_SCRATCH" 64M)
fio_verify "fio verify over a file on ext4, buffered" "$img" ""
fio_verify "fio verify over a file on ext4, direct" "$img" direct

if [ -n "$FBLK_SCRATCH_XFS" ] && [ -d "$FBLK_SCRATCH_XFS" ]; then
	img=$(fblk_image "$FBLK_SCRATCH_XFS" 64M)
	fio_verify "fio verify over a file on xfs, buffered" "$img" ""
	fio_verify "fio verify over a file on xfs, direct" "$img" direct
else
	not_ok "fio verify over a file on xfs, buffered" "FBLK_SCRATCH_XFS is not set"
	not_ok "fio verify over a file on xfs, direct" "FBLK_SCRATCH_XFS is not set"
fi

if [ -b "$RAMDISK" ]; then
	fio_verify "fio verify over $RAMDISK, buffered" "$RAMDISK" ""
	fio_verify "fio verify over $RAMDISK, direct" "$RAMDISK" direct
else
	skip "fio verify over $RAMDISK, buffered" "no $RAMDISK (brd not loaded)"
	skip "fio verify over $RAMDISK, direct" "no $RAMDISK (brd not loaded)"
fi

tap_done
