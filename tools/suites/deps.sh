#!/usr/bin/env bash
# Install what `make blktests` and `make xfstests` need to build and run the
# field's suites, on this host (6.1 and 6.12 guests run its userland) and in
# the Debian 13 root (7.x guests run that one).  Neither suite is in Debian's
# archive (their sources are snapshots in ../shared/third_party); their build
# and run-time dependencies are.  Safe to run again: only what is missing is
# installed.  make deps runs it; make blktests and make xfstests too.
set -euo pipefail

CACHE=${FBLK_CACHE:-/var/cache/fblk}
ROOT13=${FBLK_ROOT13:-$CACHE/trixie-root}
# shellcheck source=../vm/lib.sh
. "$(dirname "$0")/../vm/lib.sh"
FBLK_LOG_TAG=suites-deps

[ "$(id -u)" = 0 ] || { log "must run as root (apt-get)"; exit 1; }

# Both suites' build dependencies, and what their tests call.
pkgs=(gawk autoconf automake libtool make gcc g++ pkg-config
	xfslibs-dev uuid-dev libattr1-dev libacl1-dev libaio-dev libgdbm-dev
	libcap-dev libssl-dev libinih-dev liburing-dev
	acl attr bc dump psmisc quota xfsprogs e2fsprogs fio
	parted fdisk util-linux bsdextrautils udev kmod)

root_install_missing / "${pkgs[@]}"
if [ -d "$ROOT13" ]; then
	root_install_missing "$ROOT13" "${pkgs[@]}"
else
	log "no Debian 13 root at $ROOT13 (make deps): 7.x will lack the suites' tools"
fi
