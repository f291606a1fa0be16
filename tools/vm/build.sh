#!/usr/bin/env bash
# Build everything a test VM needs for one kernel into build/<kver>/:
#   fblk.ko, bin/fblksetup, bin/fblk-verify, selftests/ (test binaries, *.sh, lib.sh).
#
#   build.sh [KVER]   (6.1, 6.12, 7.3 or a full release; default: the release
#                     of KERNEL= if set, else the running kernel if its headers
#                     are installed, else 6.1)
#
# The sources are copied first (build/<kver>/src/) so that kernel lines never
# share object files: kbuild writes into M=.  For 7.x everything is built in
# the Debian 13 root with chroot, because its headers need Debian 13's gcc,
# and the guest runs that root's userland (its glibc) anyway.
set -euo pipefail
# Parsed whole before it runs: editing this file cannot derail a running make.
{
. "$(dirname "$0")/lib.sh"
FBLK_LOG_TAG=build

resolve_kernel "${1:-${KVER:-}}"
out=$FBLK_BUILD/$KVER_FULL
mkdir -p "$out"
linux_src_files "$FBLK_BUILD" || exit 1

# copy_sources DEST: the module, uapi header, tool and selftest sources as
# they are in the work tree (tracked or new, never ignored build outputs).
# mtimes are kept, so kbuild and make rebuild only what changed.
copy_sources() {
	local dest=$1 f
	mkdir -p "$dest"
	# Tests and tools are found by wildcards: a file deleted from the tree
	# must disappear from the copy too.
	rm -rf "$dest/selftests" "$dest/tools" "$dest/drivers" "$dest/include"/uapi/linux/fblk.h
	(cd "$FBLK_TOP" && git ls-files -z --cached --others --exclude-standard -- \
		Kbuild drivers/block/fblk include/uapi tools/Makefile tools/fblksetup tools/fblk-verify tools/fblk-fuzz tools/fblk-powercut \
		selftests/fblk |
		while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
		tar --null -T - -cf -) | tar -C "$dest" -xf -
}

# prune_tests SRC OUT: drop from OUT/selftests what no longer has a source
# (make only adds files there; a deleted test would still run).
prune_tests() {
	local src=$1/selftests/fblk f name
	for f in "$2"/selftests/*; do
		[ -e "$f" ] || continue
		name=${f##*/}
		[ -e "$src/$name" ] || [ -e "$src/$name.c" ] || rm -f "$f"
	done
}

# make_all SRC OUT KSFT: build the three parts; paths as seen by in_kroot.
make_all() {
	local src=$1 dst=$2 ksft=$3 jobs
	jobs=$(nproc)
	[ -e "$FBLK_TOP/Kbuild" ] || die "no Kbuild at the top of $FBLK_TOP"
	log "module for $KVER_FULL"
	in_kroot make -s -j"$jobs" -C "$KDIR" M="$src" modules
	log "fblksetup and selftests"
	in_kroot make -s -j"$jobs" -C "$src/tools" O="$dst"
	in_kroot make -s -j"$jobs" -C "$src/selftests/fblk" O="$dst" KSFT_DIR="$ksft"
}

if [ "$KCHROOT" = 0 ]; then
	copy_sources "$out/src"
	make_all "$out/src" "$out" "$FBLK_BUILD/ksft"
	prune_tests "$out/src" "$out"
	cp "$out/src/fblk.ko" "$out/fblk.ko"
else
	# A work directory inside the root, one per clone and kernel, kept
	# between runs for incremental builds.  flock: two makes of one clone.
	key=$(printf '%s' "$FBLK_TOP/$KVER_FULL" | md5sum | cut -c1-12)
	inner=/tmp/fblk-build/$key
	work=$KROOT$inner
	mkdir -p "$work"
	exec 9>"$work.lock"
	flock 9
	copy_sources "$work/src"
	rm -rf "$work/ksft"
	cp -r "$FBLK_BUILD/ksft" "$work/ksft"
	make_all "$inner/src" "$inner/out" "$inner/ksft"
	prune_tests "$work/src" "$work/out"
	rm -rf "${out:?}/bin" "${out:?}/selftests"
	cp "$work/src/fblk.ko" "$out/fblk.ko"
	cp -r "$work/out/bin" "$work/out/selftests" "$out/"
fi
log "$out: fblk.ko bin/ selftests/"
exit
}
