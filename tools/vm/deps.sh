#!/usr/bin/env bash
# Install what building, testing and benchmarking fblk need, for every kernel
# line we support: 6.1 (Debian 12), 6.12 (bookworm-backports) and 7.3 (a
# Debian 13 root with trixie-backports, cached outside the clone because its
# headers need Debian 13's compiler and libc).  Safe to run again: every step
# checks whether it is already done.
#
#   deps.sh               install what is missing (root)
#   deps.sh --if-missing  the same, but first a quick offline test: if a
#                         run of this very script completed and what it
#                         installed is still there, do nothing (make check
#                         and make demo call this)
set -euo pipefail

CACHE=${FBLK_CACHE:-/var/cache/fblk}
ROOT13=$CACHE/trixie-root
STAMP=$CACHE/.deps-done
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
FBLK_LOG_TAG=deps

# What a completed run leaves behind; the stamp holds this script's hash, so
# a deps.sh that asks for more runs again.
deps_present() {
	[ "$(cat "$STAMP" 2>/dev/null)" = "$(sha256sum <"$0" | cut -d' ' -f1)" ] &&
		command -v qemu-system-x86_64 >/dev/null &&
		[ -e "$ROOT13/.fblk-ready" ] &&
		compgen -G '/lib/modules/6.1.*/build' >/dev/null &&
		compgen -G '/lib/modules/6.12.*/build' >/dev/null &&
		compgen -G "$ROOT13/lib/modules/7.*/build" >/dev/null &&
		[ -e "$CACHE/pkgtest-bookworm-root/.fblk-ready" ]
}
if [ "${1:-}" = --if-missing ]; then
	deps_present && exit 0
	log "something make deps installs is missing: running it first"
fi

[ "$(id -u)" = 0 ] || { log "must run as root (apt-get, debootstrap)"; exit 1; }
mkdir -p "$CACHE"

mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

bpo=/etc/apt/sources.list.d/fblk-backports.sources
if [ ! -e "$bpo" ]; then
	log "adding bookworm-backports ($mirror)"
	cat >"$bpo" <<EOS
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
	rm -f "$CACHE/.apt-updated"
fi

# apt-get update once a day at most: CI reruns this on every submission.
if [ -z "$(find "$CACHE/.apt-updated" -mtime -1 2>/dev/null)" ]; then
	apt-get update -qq
	touch "$CACHE/.apt-updated"
fi

export DEBIAN_FRONTEND=noninteractive
# ROOT's packages are installed, never started (nfs-kernel-server's init
# script would start a server here): policy-rc.d says no to every service.
no_services() {
	printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d"
	chmod 0755 "$1/usr/sbin/policy-rc.d"
}
apt_install() {
	local rc=0 had=
	[ -e /usr/sbin/policy-rc.d ] && had=1
	[ -n "$had" ] || no_services /
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
		>/dev/null || rc=$?
	[ -n "$had" ] || rm -f /usr/sbin/policy-rc.d
	return $rc
}

k61=$(apt-cache depends linux-image-amd64/bookworm 2>/dev/null |
	awk '/Depends: linux-image-6\.1\./ {print $2; exit}')
k61=${k61#linux-image-}
[ -n "$k61" ] || { log "cannot find the 6.1 kernel package"; exit 1; }
k612=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9.]+\+deb12-amd64$' |
	awk '{print $1}' | sed 's/^linux-image-//' | sort -V | tail -n1)
[ -n "$k612" ] || { log "cannot find the 6.12 backports kernel"; exit 1; }

host_pkgs=(build-essential bc bison flex libelf-dev libssl-dev kmod cpio gzip xz-utils
	qemu-system-x86 busybox-static debootstrap sparse python3 perl
	fio liburing-dev pkg-config e2fsprogs xfsprogs util-linux fdisk dmsetup procps
	gnuplot-nox qemu-utils jq shellcheck
	btrfs-progs nfs-kernel-server fuse3 fuse2fs
	dkms dh-dkms debhelper dpkg-dev fakeroot lintian bash-completion
	"linux-image-$k61" "linux-headers-$k61" linux-source-6.1)
missing=()
for p in "${host_pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing: ${missing[*]}"
	apt_install "${missing[@]}"
fi
if ! dpkg-query -W -f='${Status}' "linux-image-$k612" 2>/dev/null | grep -q 'ok installed'; then
	log "installing 6.12 from bookworm-backports ($k612)"
	apt_install -t bookworm-backports "linux-image-$k612" "linux-headers-$k612"
fi

# What the guest needs of the Debian 13 root (it is the 7.x guest's whole
# userland) and what building there needs.
root13_pkgs=(gcc make libc6-dev fio liburing-dev pkg-config e2fsprogs xfsprogs
	util-linux fdisk dmsetup kmod procps python3 busybox-static qemu-utils
	btrfs-progs nfs-kernel-server fuse3 fuse2fs)

if [ ! -e "$ROOT13/.fblk-ready" ]; then
	log "making the Debian 13 root in $ROOT13 (takes a few minutes once)"
	rm -rf "$ROOT13"
	debootstrap --variant=minbase trixie "$ROOT13" "$mirror" >/dev/null
	cat >"$ROOT13/etc/apt/sources.list.d/backports.sources" <<EOS
Types: deb
URIs: $mirror
Suites: trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
	chroot "$ROOT13" apt-get update -qq
	no_services "$ROOT13"
	chroot "$ROOT13" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${root13_pkgs[@]}" >/dev/null
	rm -f "$ROOT13/usr/sbin/policy-rc.d"
	# The kernel's initramfs hook fails inside a chroot; the harness does not
	# use the Debian initramfs, so that failure is harmless.
	chroot "$ROOT13" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends -t trixie-backports linux-image-amd64 \
		linux-headers-amd64 >/dev/null || true
	ls "$ROOT13"/boot/vmlinuz-7.* >/dev/null 2>&1 ||
		{ log "the 7.x kernel did not install in $ROOT13"; exit 1; }
	chroot "$ROOT13" apt-get clean
	touch "$ROOT13/.fblk-ready"
fi
# A root made by an older deps.sh may lack packages added to the list since.
root_install_missing "$ROOT13" "${root13_pkgs[@]}"

# What blktests and xfstests need (make check runs their CI subsets).
"$FBLK_TOP/tools/suites/deps.sh"

# The Debian 12 machine make check installs the packages on (pkg-test.sh).
"$(dirname "$0")/pkg-test.sh" -p -k 6.1

log "kernels: 6.1=$k61 6.12=$k612 7.x=$(basename "$(ls -d "$ROOT13"/lib/modules/7.* | tail -n1)")"
sha256sum <"$0" | cut -d' ' -f1 >"$STAMP"
