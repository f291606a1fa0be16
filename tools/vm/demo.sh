#!/bin/bash
# `make demo`: what fblk is, in two minutes, inside the test VM.
#
# 1. load the module; 2. attach a sparse image with fblksetup; 3. a
# filesystem on it, files written and read back after a remount; 4. fio
# random reads through fblk and through loop on the same file.
#
# Runs as the guest runner's demo mode (guest-run.sh), with its environment:
# FBLK_KO, fblksetup on PATH, configfs mounted.  Every command it runs is
# printed first, prefixed with "$ ".
set -eu

WORK=/mnt/demo
IMG=$WORK/disk.img
FIO_SECS=${FIO_SECS:-5}

say() { printf '\n=== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# The backing device for the image: null_blk with a 1 ms completion time,
# a more disk-like latency than a RAM disk (brd answers in microseconds, so
# every target would look alike).  Falls back to the ext4 scratch on brd.
make_backing() {
	mkdir -p "$WORK"
	if modprobe -q null_blk nr_devices=0 2>/dev/null && [ -d /sys/kernel/config/nullb ]; then
		local nb=/sys/kernel/config/nullb/demo
		mkdir "$nb"
		echo 1 >"$nb/memory_backed"
		echo 2 >"$nb/irqmode"			# timer completions...
		echo 1000000 >"$nb/completion_nsec"	# ...after 1 ms
		echo 1024 >"$nb/size"			# MiB
		echo 512 >"$nb/blocksize"		# direct I/O at 512-byte alignment
		echo 128 >"$nb/hw_queue_depth"
		echo 2 >"$nb/submit_queues"
		echo 1 >"$nb/power"
		mkfs.ext4 -q /dev/demo
		mount /dev/demo "$WORK"
		echo "backing store: ext4 on null_blk /dev/demo (memory backed, 1 ms per I/O)"
	else
		mount --bind "$FBLK_SCRATCH" "$WORK"
		echo "backing store: ext4 on a RAM disk ($FBLK_SCRATCH; null_blk unavailable)"
	fi
}

cleanup() {
	set +e
	umount /mnt/demo-fs 2>/dev/null
	fblksetup -D 2>/dev/null
	/sbin/losetup -D 2>/dev/null
	umount "$WORK" 2>/dev/null
	rmdir /sys/kernel/config/nullb/demo 2>/dev/null
}
trap cleanup EXIT

say "1. Load the module: it makes /dev/fblk-control and one free device"
run insmod "$FBLK_KO"
run ls -l /dev/fblk-control /dev/fblk0

say "2. A sparse 1 GiB image, attached like losetup would"
make_backing
run truncate -s 1G "$IMG"
dev=$(fblksetup -f --show "$IMG")
printf '$ fblksetup -f --show %s\n%s\n' "$IMG" "$dev"
run fblksetup -l
run cat "/sys/block/${dev#/dev/}/fblk/io_mode"

say "3. ext4 on $dev: write files, remount, read them back"
run mkfs.ext4 -q "$dev"
mkdir -p /mnt/demo-fs
run mount "$dev" /mnt/demo-fs
run dd if=/dev/urandom of=/mnt/demo-fs/random.bin bs=1M count=16 status=none
run cp /fblk/vm/demo.sh /mnt/demo-fs/demo.sh
written=$(cd /mnt/demo-fs && md5sum random.bin demo.sh)
run umount /mnt/demo-fs
drop_caches
run mount "$dev" /mnt/demo-fs
read_back=$(cd /mnt/demo-fs && md5sum random.bin demo.sh)
printf 'written:\n%s\nread back after a remount:\n%s\n' "$written" "$read_back"
if [ "$written" = "$read_back" ]; then echo "=> the checksums match"; else echo "=> MISMATCH"; exit 1; fi
run df -h /mnt/demo-fs
run umount /mnt/demo-fs
printf '$ du -h --apparent-size %s; du -h %s   (still sparse)\n' "$IMG" "$IMG"
du -h --apparent-size "$IMG"
du -h "$IMG"
run fblksetup -d "$dev"

say "4. fio: 4 KiB random reads, iodepth 32, io_uring, ${FIO_SECS} s, caches dropped"
# A 256 MiB file with real blocks (a sparse one would read holes).
FILE=$WORK/fio.img
run dd if=/dev/zero of="$FILE" bs=1M count=256 oflag=direct status=none

# iops TARGET: fio's read IOPS on TARGET (O_DIRECT on the target itself; the
# backing mode is what differs between the rows).
iops() {
	drop_caches
	fio --name=demo --filename="$1" --rw=randread --bs=4k --iodepth=32 \
		--ioengine=io_uring --direct=1 --time_based --runtime="$FIO_SECS" \
		--size=256M --output-format=json 2>/dev/null |
		python3 -c 'import json,sys; print(int(json.load(sys.stdin)["jobs"][0]["read"]["iops"]))'
}

rows=()
measure() {
	local label=$1 target=$2 n
	n=$(iops "$target")
	printf '  %-40s %8s IOPS\n' "$label" "$n"
	rows+=("$(printf '| %-40s | %8s |' "$label" "$n")")
}

measure "the file itself, O_DIRECT" "$FILE"
fblk_row() {
	local dev
	dev=$(fblksetup -f --show --direct-io="$1" "$FILE")
	measure "fblk, dio $1 ($dev, $(cat "/sys/block/${dev#/dev/}/fblk/io_mode"))" "$dev"
	fblksetup -d "$dev"
}
fblk_row off
fblk_row on
# The rows say what the kernel reports, not what was asked: loop falls back
# to buffered I/O silently when it cannot do direct I/O.
loop_row() {
	local dev
	dev=$(/sbin/losetup -f --show --direct-io="$1" "$FILE")
	measure "loop, dio $1 ($dev, dio=$(cat "/sys/block/${dev#/dev/}/loop/dio"))" "$dev"
	/sbin/losetup -d "$dev"
}
loop_row off
loop_row on

printf '\n| %-40s | %8s |\n| %s | %s |\n' target IOPS "$(printf '%.0s-' {1..40})" "--------"
printf '%s\n' "${rows[@]}"
echo
echo "Emulated CPUs (TCG) make every cycle expensive: compare rows of one run,"
echo "not figures between runs.  Kernel $(uname -r)."
