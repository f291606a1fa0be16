#!/usr/bin/env bash
# Build the debug kernel (KASAN, lockdep, DEBUG_ATOMIC_SLEEP, kmemleak, fault
# injection: tools/vm/debug.config) of the newest line from Debian's
# linux-source-7.3, inside the Debian 13 root, into a cache outside the clone:
#
#   /var/cache/fblk/debug-kernel/<key>/
#       bzImage  config  release  info  build.log
#       modules/lib/modules/<release>/   (modules_install; its build -> linux)
#       linux/                           (the object tree `make M=` needs)
#
# <key> hashes debug.config and the linux-source package version, so a
# change to either builds anew; the same key is never built twice.  A build
# happens in a work directory and is renamed to <key> only when it is
# finished and checked: a directory named <key> is always complete.
#
#   debug-kernel.sh           build if needed; print the directory
#   debug-kernel.sh --path    print the directory if built, else exit 1
#   debug-kernel.sh --key     print the key
#   debug-kernel.sh --verify FRAGMENT CONFIG
#                             check every option of FRAGMENT in CONFIG
#
# The build runs in the Debian 13 root (its gcc-14), in
# <root>/var/tmp/fblk-debug-kernel/<key>, and is then renamed into the cache
# (same filesystem).  The cache is bind-mounted read-only at the same path
# inside the root, so `make M=` in the chroot finds the tree where the host
# does (and nothing that deletes the root can reach into the cache).  The
# config starts from allnoconfig (debug.config lists everything the harness
# and the tests need): a build takes about 15 minutes on 2 idle cores (nice
# 19, -j2: others run VMs here), 48 from defconfig.
set -euo pipefail
# Parsed whole before it runs: editing this file cannot derail a build.
{
. "$(dirname "$0")/lib.sh"
FBLK_LOG_TAG=debug-kernel

LINE=${FBLK_DEBUG_LINE:-7.3}
SRC_PKG=linux-source-$LINE
DK_BASE=${FBLK_DEBUG_CACHE:-$FBLK_CACHE/debug-kernel}
FRAGMENT=$FBLK_TOP/tools/vm/debug.config
JOBS=${FBLK_DEBUG_JOBS:-2}

# Every CONFIG_X=v line of the fragment must be in the config as such, and
# every "# CONFIG_X is not set" must be unset there (absent counts: an option
# whose dependencies are off does not appear at all).
verify_config() {
	awk '
	FNR == NR {
		if (match($0, /^CONFIG_[A-Za-z0-9_]+=/)) {
			name = substr($0, 1, RLENGTH - 1); want[name] = $0
		} else if (match($0, /^# CONFIG_[A-Za-z0-9_]+ is not set/)) {
			name = $2; want[name] = "n"
		}
		next
	}
	/^CONFIG_/ { split($0, kv, "="); have[kv[1]] = $0 }
	END {
		bad = 0
		for (name in want) {
			w = want[name]
			if (w == "n") {
				if (name in have) {
					print "dropped: want " name " off, got " have[name]; bad = 1
				}
			} else if (have[name] != w) {
				got = (name in have) ? have[name] : "# " name " is not set"
				print "dropped: want " w ", got " got; bad = 1
			}
		}
		exit bad
	}' "$1" "$2"
}

run_root() {
	chroot "$FBLK_ROOT13" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

src_version() {
	run_root dpkg-query -W -f '${Version}' "$SRC_PKG" 2>/dev/null
}

dk_key() {
	{ cat "$FRAGMENT"; echo "$SRC_PKG $1"; } | sha256sum | cut -c1-16
}

# The chroot needs /proc (objtool) and the cache at the same path, read-only.
mount_root() {
	local t=$FBLK_ROOT13$DK_BASE
	[ -e "$FBLK_ROOT13/.fblk-ready" ] || die "the Debian 13 root is not complete (make deps)"
	mountpoint -q "$FBLK_ROOT13/proc" || mount -t proc proc "$FBLK_ROOT13/proc"
	mkdir -p "$DK_BASE" "$t"
	if ! mountpoint -q "$t"; then
		mount --bind "$DK_BASE" "$t"
		mount -o remount,bind,ro "$t"
	elif [ "$(findmnt -no OPTIONS "$t" | cut -d, -f1)" != ro ]; then
		mount -o remount,bind,ro "$t"
	fi
}

# linux-source and what building a kernel needs, in the Debian 13 root.
install_deps() {
	local p missing=()
	for p in "$SRC_PKG" bc bison flex libelf-dev libssl-dev cpio kmod xz-utils make gcc; do
		run_root dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} = 0 ] && return 0
	log "installing ${missing[*]} in $FBLK_ROOT13"
	run_root apt-get install -y -q -t trixie-backports "${missing[@]}" >&2 ||
		{ run_root apt-get update -q >&2 &&
			run_root apt-get install -y -q -t trixie-backports "${missing[@]}" >&2; }
}

# build INNER FINAL: INNER is the work directory as seen in the root (host:
# $FBLK_ROOT13$INNER).  Everything it prints goes to the log.
build() {
	local inner=$1 final=$2 w=$FBLK_ROOT13$1 t0 rel
	local mk=(nice -n 19 chroot "$FBLK_ROOT13" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin
		HOME=/root LANG=C.UTF-8 make -C "$inner/linux")
	t0=$(date +%s)
	echo "== $(date -u +%FT%TZ) building $SRC_PKG $ver, key $key, -j$JOBS"
	run_root tar -C "$inner" -xJf "/usr/src/$SRC_PKG.tar.xz"
	mv "$w/$SRC_PKG" "$w/linux"
	cp "$FRAGMENT" "$w/debug.config"
	echo "== $(date -u +%T) configuring"
	# allnoconfig, not defconfig: only what debug.config asks for (and what
	# that selects) is built.  48 minutes from defconfig, about 15 so.
	"${mk[@]}" -s allnoconfig
	run_root sh -c "cd '$inner/linux' && scripts/kconfig/merge_config.sh -m .config '$inner/debug.config'"
	"${mk[@]}" -s olddefconfig
	if ! verify_config "$w/debug.config" "$w/linux/.config"; then
		echo "== options of debug.config that did not survive olddefconfig (above)"
		return 1
	fi
	echo "== $(date -u +%T) compiling"
	"${mk[@]}" -j"$JOBS" bzImage modules
	rel=$("${mk[@]}" -s kernelrelease)
	echo "== $(date -u +%T) installing modules of $rel"
	"${mk[@]}" -s INSTALL_MOD_PATH="$inner/modules" modules_install
	# It points at the tree under its temporary name.
	ln -sfn "$final/linux" "$w/modules/lib/modules/$rel/build"
	cp "$w/linux/arch/x86/boot/bzImage" "$w/bzImage"
	cp "$w/linux/.config" "$w/config"
	echo "$rel" >"$w/release"
	# What `make M=` does not need: objects (but the host tools' and
	# objtool's), the module copies modules_install made, link leftovers.
	find "$w/linux" \( -path "$w/linux/scripts" -o -path "$w/linux/tools" \) -prune -o \
		-type f \( -name '*.o' -o -name '*.ko' -o -name '.tmp_vmlinux*' \) -print0 |
		xargs -0r rm -f
	rm -f "$w/linux/vmlinux.o" "$w/linux/vmlinux.a"
	printf 'key=%s\nsource=%s %s\nrelease=%s\nbuilt=%s\nseconds=%s\n' "$key" "$SRC_PKG" "$ver" \
		"$rel" "$(date -u +%FT%TZ)" "$(($(date +%s) - t0))" >"$w/info"
	echo "== $(date -u +%T) done in $(($(date +%s) - t0)) s; $(du -sh "$w" | cut -f1)"
}

case ${1:-} in
--verify) verify_config "$2" "$3"; exit ;;
esac

[ -d "$FBLK_ROOT13/usr" ] || die "no Debian 13 root at $FBLK_ROOT13 (run 'make deps')"
ver=$(src_version) || ver=
case ${1:-} in
--key | --path)
	[ -n "$ver" ] || die "$SRC_PKG is not installed in $FBLK_ROOT13"
	key=$(dk_key "$ver")
	[ "$1" = --key ] && { echo "$key"; exit 0; }
	[ -s "$DK_BASE/$key/bzImage" ] || exit 1
	mount_root
	echo "$DK_BASE/$key"
	exit 0
	;;
"") ;;
*) die "usage: $0 [--path|--key|--verify FRAGMENT CONFIG]" ;;
esac

if [ -z "$ver" ] || ! [ -s "$DK_BASE/$(dk_key "$ver")/bzImage" ]; then
	install_deps
	ver=$(src_version)
fi
key=$(dk_key "$ver")
final=$DK_BASE/$key
mount_root
if [ ! -s "$final/bzImage" ]; then
	# One build of a key at a time; whoever waited finds it done.
	exec 9>>"$DK_BASE/.lock"
	if ! flock -n 9; then
		log "waiting for another build of the debug kernel"
		flock 9
	fi
fi
if [ ! -s "$final/bzImage" ]; then
	inner=/var/tmp/fblk-debug-kernel/$key
	work=$FBLK_ROOT13$inner
	logf=$DK_BASE/build-$key.log
	# A build killed half-way left this behind: never used, start over.
	rm -rf "$work"
	mkdir -p "$work"
	log "building the debug kernel ($SRC_PKG $ver, key $key); log: $logf"
	t0=$(date +%s)
	# In the background, not under `if`: set -e holds inside build only so.
	rc=0
	build "$inner" "$final" >"$logf" 2>&1 &
	wait $! || rc=$?
	if [ $rc != 0 ]; then
		tail -n 40 "$logf" >&2
		die "debug kernel build failed after $(($(date +%s) - t0)) s; log: $logf"
	fi
	cp "$logf" "$work/build.log"
	mv -T "$work" "$final"
	log "debug kernel $(cat "$final/release") built in $(($(date +%s) - t0)) s: $final"
	# Older keys are dead weight (a few GB each).
	for old in "$DK_BASE"/*/; do
		old=${old%/}
		[ "$old" = "$final" ] || [ ! -e "$old/info" ] || rm -rf "$old"
	done
fi
echo "$final"
exit
}
