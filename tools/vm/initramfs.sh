#!/usr/bin/env bash
# Make the test VM's initramfs for one kernel: busybox-static, /init, and the
# modules /init needs to reach its root (virtio_pci where modular,
# 9pnet_virtio, 9p, overlay, with their dependencies).
#
#   initramfs.sh KVER ROOT OUT.cpio.gz
#
# FBLK_INIT=FILE puts another /init in (pkg-test.sh boots systemd with it).
#
# ROOT is the tree whose /lib/modules/KVER holds the kernel's modules: / for
# the host's kernels, the Debian 13 root for 7.x.  The result is cached: it is
# only rebuilt when /init or this script changed.
set -euo pipefail
# Parsed whole before it runs: editing this file cannot derail a running make.
{

kver=$1 root=${2%/} out=$3
here=$(cd "$(dirname "$0")" && pwd)
init=${FBLK_INIT:-$here/init}

if [ -s "$out" ] && [ "$out" -nt "$init" ] && [ "$out" -nt "$0" ]; then
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,dev,proc,sys,mnt/lower,mnt/rw,newroot,lib/modules}
cp /bin/busybox "$tmp/bin/busybox"
for applet in sh mount insmod mkdir echo cat poweroff switch_root sleep; do
	ln -s busybox "$tmp/bin/$applet"
done
install -m 0755 "$init" "$tmp/init"
# The kernel opens /dev/console for /init before anything is mounted.
mknod -m 600 "$tmp/dev/console" c 5 1

# Each module name needs its own modprobe call: further names on one command
# line would be taken as module parameters.  Built-in ones print "builtin".
: >"$tmp/modules.list"
for m in virtio_pci 9pnet_virtio 9p overlay; do
	modprobe --show-depends -d "${root:-/}" -S "$kver" "$m"
done | awk '$1 == "insmod" && !seen[$2]++ {print $2}' |
while read -r path; do
	src=$root${path#"$root"}
	name=${path##*/}
	# busybox's insmod takes plain ELF only; Debian compresses from 6.12 on.
	case $name in
	*.ko.xz)  xz -dc "$src" >"$tmp/lib/modules/${name%.xz}"; name=${name%.xz} ;;
	*.ko.zst) zstd -qdc "$src" >"$tmp/lib/modules/${name%.zst}"; name=${name%.zst} ;;
	*.ko.gz)  gzip -dc "$src" >"$tmp/lib/modules/${name%.gz}"; name=${name%.gz} ;;
	*)        cp "$src" "$tmp/lib/modules/$name" ;;
	esac
	echo "$name" >>"$tmp/modules.list"
done

mkdir -p "$(dirname "$out")"
# Written aside and renamed: another make may be booting the old one.
(cd "$tmp" && find . | LC_ALL=C sort | cpio --quiet -o -H newc) | gzip -1 >"$out.$$"
mv "$out.$$" "$out"
exit
}
