#!/usr/bin/env bash
# Install what `make blktests` and `make xfstests` need to build and run the
# field's suites, on this host (6.1 and 6.12 guests run its userland) and in
# the Debian 13 root (7.x guests run that one).  Neither suite is in Debian's
# archive (their sources are snapshots in ../shared/third_party); their build
# and run-time dependencies are.  Safe to run again: only what is missing is
# installed.  Needs `make deps` first (the root, apt's sources).
set -euo pipefail

CACHE=${FBLK_CACHE:-/var/cache/fblk}
ROOT13=${FBLK_ROOT13:-$CACHE/trixie-root}
log() { printf 'suites-deps: %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { log "must run as root (apt-get)"; exit 1; }

# Both suites' build dependencies, and what their tests call.
pkgs=(gawk autoconf automake libtool make gcc g++ pkg-config
	xfslibs-dev uuid-dev libattr1-dev libacl1-dev libaio-dev libgdbm-dev
	libcap-dev libssl-dev libinih-dev liburing-dev
	acl attr bc dump psmisc quota xfsprogs e2fsprogs fio
	parted fdisk util-linux bsdextrautils udev kmod)

# missing ROOT: the packages of $pkgs not installed in ROOT.
missing() {
	local root=$1 p
	for p in "${pkgs[@]}"; do
		# shellcheck disable=SC2016 # dpkg-query's own format
		chroot "$root" dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'ok installed' || printf '%s\n' "$p"
	done
}

install_in() {
	local root=$1 want
	mapfile -t want < <(missing "$root")
	[ ${#want[@]} -gt 0 ] || return 0
	log "installing in $root: ${want[*]}"
	chroot "$root" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null ||
		{ chroot "$root" apt-get update -qq &&
		  chroot "$root" env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null; }
}

install_in /
if [ -d "$ROOT13" ]; then
	install_in "$ROOT13"
	chroot "$ROOT13" apt-get clean
else
	log "no Debian 13 root at $ROOT13 (make deps): 7.x will lack the suites' tools"
fi
