#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Backing files where users keep images beyond ext4 and xfs: NFS 4.2 (the
# kernel's server exporting a local ext4 to this machine over loopback),
# btrfs, tmpfs and a FUSE filesystem (fuse2fs).  On each:
#  - auto picks a mode the file can do, and the whole device reads back the
#    image with no request failing;
#  - in buffered and in direct mode, fio writes at random and verifies every
#    block (crc32c); where the filesystem has no O_DIRECT, direct is refused
#    at attach with EOPNOTSUPP and nothing is bound;
#  - ext4 made on the device survives an unmount, a cache drop and a
#    remount, and e2fsck finds it clean.
# How fast fblk is on each, against loop, is tools/bench's to measure.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

BTRFS_DEV=/dev/ram2
NFS_DEV=/dev/ram3
IMG_MB=32

tap_plan 16
fblk_require_module || tap_done

base=$FBLK_T_STATE/b
mkdir -p "$base"
# Loading nfsd may mount its filesystem by itself (7.3's userland): what
# was not mounted now is unmounted at exit, after the server stops.
mountpoint -q /proc/fs/nfsd || fblk_at_exit "umount /proc/fs/nfsd"

# The fblk ioctl's errno name for a direct attach, or OK.
direct_attach_errno() {
	python3 - "$1" "$2" <<'EOF'
import errno, fcntl, os, struct, sys
dev, path = sys.argv[1], sys.argv[2]
CONFIGURE = (1 << 30) | (96 << 16) | (0xFB << 8) | 0x01
fd = os.open(dev, os.O_RDWR)
backing = os.open(path, os.O_RDWR)
try:
    fcntl.ioctl(fd, CONFIGURE, struct.pack("=IIQQII64x", backing, 0, 0, 0, 8, 0))
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
}

# Whether a direct read of FILE works (what auto and direct should follow).
file_direct_ok() {
	dd if="$1" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null
}

errors_of() {
	awk '$1 == "errors" {print $2}' "/sys/block/${1##*/}/fblk/stats"
}

# fio_verify DEV: random 4 KiB writes over the device, every block read
# back and checked.
fio_verify() {
	fio --name=verify --filename="$1" --ioengine=io_uring --direct=1 \
		--rw=randwrite --bs=4k --iodepth=16 --size=8M \
		--verify=crc32c --verify_fatal=1 --do_verify=1 \
		--output="$FBLK_T_STATE/fio-verify" >/dev/null 2>&1
}

# ext4_round_trip DEV: files written survive a remount; fsck is clean.
ext4_round_trip() {
	local dev=$1 mnt=$base/fs sum1 sum2
	mkdir -p "$mnt"
	mkfs.ext4 -q -F "$dev" || return 1
	mount "$dev" "$mnt" || return 1
	head -c 4M /dev/urandom >"$mnt/a" && seq 1 20000 >"$mnt/b"
	sum1=$(cd "$mnt" && md5sum a b)
	umount "$mnt" || return 1
	drop_caches
	mount "$dev" "$mnt" || return 1
	sum2=$(cd "$mnt" && md5sum a b)
	umount "$mnt" || return 1
	[ -n "$sum1" ] && [ "$sum1" = "$sum2" ] || { echo "contents changed across remount"; return 1; }
	e2fsck -fn "$dev"
}

# test_backing NAME DIR: the four cases on an image in DIR.
test_backing() {
	local name=$1 dir=$2 img dev mode caps want have err out
	img=$dir/fblk.img
	if ! head -c "${IMG_MB}M" /dev/urandom >"$img"; then
		not_ok "$name: auto picks a mode that works" "cannot write $img"
		not_ok "$name: buffered: fio writes and verifies"
		not_ok "$name: direct: fio verifies, or the attach is refused"
		not_ok "$name: ext4 on fblk survives a remount, fsck clean"
		return
	fi

	dev=$(fblk_attach "$img")
	mode=none caps=
	if [ -n "$dev" ] && echo auto >"/sys/block/${dev##*/}/fblk/io_mode"; then
		mode=$(fblk_attr "$dev" io_mode)
		caps=$(fblk_attr "$dev" backing_caps)
	fi
	diag "$name: backing_caps: $caps; auto -> $mode"
	# The caps say direct exactly when a direct read of the file works.
	file_direct_ok "$img" && want=yes || want=no
	[[ " $caps " == *" direct "* ]] && have=yes || have=no
	if [ -n "$dev" ] && [ "$want" = "$have" ] && cmp "$dev" "$img" >/dev/null 2>&1 &&
		[ "$(errors_of "$dev")" = 0 ]; then
		ok "$name: auto picks a mode that works ($mode)"
	else
		not_ok "$name: auto picks a mode that works ($mode)" \
			"direct read works: $want, caps say direct: $have; or the device and image differ, or errors $(errors_of "$dev" 2>/dev/null)"
	fi

	echo buffered >"/sys/block/${dev##*/}/fblk/io_mode"
	if fio_verify "$dev" && [ "$(errors_of "$dev")" = 0 ]; then
		ok "$name: buffered: fio writes and verifies"
	else
		sed -n '/err=/p; /verify/p' "$FBLK_T_STATE/fio-verify" | head -n 5 | sed 's/^/# /'
		not_ok "$name: buffered: fio writes and verifies" "errors $(errors_of "$dev")"
	fi
	fblk_detach "$dev"
	fblk_wait_attr "$dev" state unbound

	err=$(direct_attach_errno "$dev" "$img")
	if [ "$err" = OK ]; then
		if fio_verify "$dev" && [ "$(errors_of "$dev")" = 0 ]; then
			ok "$name: direct: fio verifies, or the attach is refused (it verifies)"
		else
			sed -n '/err=/p; /verify/p' "$FBLK_T_STATE/fio-verify" | head -n 5 | sed 's/^/# /'
			not_ok "$name: direct: fio verifies, or the attach is refused" "errors $(errors_of "$dev")"
		fi
	elif { [ "$err" = EOPNOTSUPP ] || [ "$err" = ENOTSUP ]; } && ! file_direct_ok "$img" &&
		[ "$(fblk_attr "$dev" state)" = unbound ]; then
		ok "$name: direct: fio verifies, or the attach is refused (EOPNOTSUPP: no O_DIRECT)"
	else
		not_ok "$name: direct: fio verifies, or the attach is refused" "attach: $err"
	fi
	[ "$err" = OK ] && fblk_detach "$dev" && fblk_wait_attr "$dev" state unbound

	dev=$(fblk_attach "$img")
	echo auto >"/sys/block/${dev##*/}/fblk/io_mode"
	if out=$(ext4_round_trip "$dev" 2>&1) && [ "$(errors_of "$dev")" = 0 ]; then
		ok "$name: ext4 on fblk survives a remount, fsck clean"
	else
		printf '%s\n' "$out" | tail -n 5 | sed 's/^/# /'
		diag "$(tr '\n' ' ' <"/sys/block/${dev##*/}/fblk/stats")"
		not_ok "$name: ext4 on fblk survives a remount, fsck clean" "errors $(errors_of "$dev")"
	fi

	fblk_detach "$dev"
	fblk_wait_attr "$dev" state unbound
	rm -f "$img"
}

# skip_backing NAME WHY: the four cases, skipped (a kernel without the
# filesystem, such as the debug kernel's).
skip_backing() {
	local c
	for c in "auto picks a mode that works" "buffered: fio writes and verifies" \
		"direct: fio verifies, or the attach is refused" \
		"ext4 on fblk survives a remount, fsck clean"; do
		skip "$1: $c" "$2"
	done
}

# fail_backing NAME WHY: the four cases, failed (a setup that should work).
fail_backing() {
	local c
	for c in "auto picks a mode that works" "buffered: fio writes and verifies" \
		"direct: fio verifies, or the attach is refused" \
		"ext4 on fblk survives a remount, fsck clean"; do
		not_ok "$1: $c" "$2"
	done
}

# ---- tmpfs ----
mkdir -p "$base/tmpfs"
if mount -t tmpfs -o size=128m tmpfs "$base/tmpfs"; then
	test_backing tmpfs "$base/tmpfs"
	umount "$base/tmpfs"
else
	fail_backing tmpfs "cannot mount tmpfs"
fi

# ---- btrfs ----
mkdir -p "$base/btrfs"
if ! modprobe btrfs 2>/dev/null && ! grep -qw btrfs /proc/filesystems; then
	skip_backing btrfs "no btrfs in this kernel"
elif ! command -v mkfs.btrfs >/dev/null; then
	fail_backing btrfs "no mkfs.btrfs (make deps installs btrfs-progs)"
elif mkfs.btrfs -q -f "$BTRFS_DEV" >/dev/null 2>&1 && mount "$BTRFS_DEV" "$base/btrfs"; then
	test_backing btrfs "$base/btrfs"
	umount "$base/btrfs"
else
	fail_backing btrfs "cannot make or mount btrfs on $BTRFS_DEV"
fi

# ---- FUSE (fuse2fs: an ext4 image served by a user-space process) ----
mkdir -p "$base/fuse"
if ! modprobe fuse 2>/dev/null && [ ! -c /dev/fuse ]; then
	skip_backing fuse "no FUSE in this kernel"
elif ! command -v fuse2fs >/dev/null; then
	fail_backing fuse "no fuse2fs (make deps installs it)"
elif mkfs.ext4 -q -F "$NFS_DEV" >/dev/null 2>&1 &&
	fuse2fs "$NFS_DEV" "$base/fuse" -o rw >"$FBLK_T_STATE/fuse2fs.log" 2>&1; then
	fblk_at_exit "umount '$base/fuse'"
	test_backing fuse "$base/fuse"
	umount "$base/fuse"
	# The daemon lets go of the device after the unmount returns.
	for ((i = 0; i < 50; i++)); do pgrep -x fuse2fs >/dev/null || break; sleep 0.1; done
else
	sed 's/^/# /' "$FBLK_T_STATE/fuse2fs.log"
	fail_backing fuse "cannot serve $NFS_DEV with fuse2fs"
fi

# ---- NFS 4.2 over loopback ----
# The kernel's server exports an ext4 of this machine to itself; version 4
# only, so neither rpcbind nor statd is needed.  The grace period a server
# starts with would hold every OPEN for 90 s: 10 s is the least it takes.
nfs_start() {
	mkdir -p "$base/export" "$base/nfs" /var/lib/nfs/v4recovery
	# The test VM has no network but loopback, which must be up.
	ip link set lo up 2>/dev/null || busybox ip link set lo up ||
		{ echo "cannot bring up lo"; return 1; }
	mkfs.ext4 -q -F "$NFS_DEV" >/dev/null 2>&1 && mount "$NFS_DEV" "$base/export" || return 1
	fblk_at_exit "umount '$base/export'"
	mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd ||
		{ echo "cannot mount nfsd"; return 1; }
	echo 10 >/proc/fs/nfsd/nfsv4leasetime 2>/dev/null
	echo 10 >/proc/fs/nfsd/nfsv4gracetime 2>/dev/null
	: >/etc/exports
	# fsid=0: the export is the root of the server's NFSv4 tree, so the
	# client needs no path through the guest's own root (an overlay that
	# cannot be exported).
	exportfs -o rw,no_root_squash,insecure,fsid=0 "127.0.0.1:$base/export" ||
		{ echo "exportfs failed"; return 1; }
	fblk_at_exit "exportfs -ua"
	rpc.mountd -N 3 --no-udp || { echo "rpc.mountd failed"; return 1; }
	fblk_at_exit "pkill -x rpc.mountd"
	rpc.nfsd -N 3 -V 4.2 --no-udp 4 || { echo "rpc.nfsd failed"; return 1; }
	fblk_at_exit "rpc.nfsd 0"
	mount -t nfs -o vers=4.2,proto=tcp,hard 127.0.0.1:/ "$base/nfs" ||
		{ echo "mount -t nfs failed"; return 1; }
	fblk_at_exit "umount -f '$base/nfs'"
}
if ! modprobe nfsd 2>/dev/null || ! modprobe nfsv4 2>/dev/null; then
	skip_backing nfs "no NFS server or client in this kernel"
elif ! command -v rpc.nfsd >/dev/null || ! command -v mount.nfs >/dev/null; then
	fail_backing nfs "no nfs-kernel-server (make deps installs it)"
elif nfs_start >"$FBLK_T_STATE/nfs.log" 2>&1; then
	test_backing "nfs 4.2" "$base/nfs"
	umount "$base/nfs"
else
	sed 's/^/# /' "$FBLK_T_STATE/nfs.log" | tail -n 10
	fail_backing "nfs 4.2" "cannot export and mount NFS 4.2 over loopback"
fi

tap_done
