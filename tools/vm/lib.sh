# shellcheck shell=bash
# Shared by the host-side scripts of tools/vm/ (sourced, not run).
#
# The three kernel lines live in two places: 6.1 and 6.12 are installed on
# this Debian 12 host, 7.x only inside the Debian 13 root made by deps.sh
# (its headers need Debian 13's gcc).  resolve_kernel turns what a user types
# (6.1, 6.12, 7.3, 7, or a full `uname -r`) into the facts every other script
# needs, so no script guesses paths on its own.

FBLK_CACHE=${FBLK_CACHE:-/var/cache/fblk}
FBLK_ROOT13=${FBLK_ROOT13:-$FBLK_CACHE/trixie-root}
# The repository this copy of tools/vm/ belongs to.
FBLK_TOP=${FBLK_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
FBLK_BUILD=${FBLK_BUILD:-$FBLK_TOP/build}
FBLK_RESULTS=${FBLK_RESULTS:-$FBLK_TOP/results}
LINUX_SRC_TARBALL=${LINUX_SRC_TARBALL:-/usr/src/linux-source-6.1.tar.xz}

log() { printf '%s: %s\n' "${FBLK_LOG_TAG:-vm}" "$*" >&2; }
die() { log "$*"; exit 1; }

# root_install_missing ROOT PKG...: install into the Debian root ROOT those
# of PKG it lacks (a root made before they were added to a list), with
# policy-rc.d saying no to every service their scripts would start.
root_install_missing() {
	local root=$1 p rc=0 missing=() policy=
	shift
	for p in "$@"; do
		chroot "$root" dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	log "installing in $root: ${missing[*]}"
	# A policy-rc.d of the root's own (the host's, say) is left alone.
	[ -e "$root/usr/sbin/policy-rc.d" ] || {
		printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
		chmod 0755 "$root/usr/sbin/policy-rc.d"
		policy=$root/usr/sbin/policy-rc.d
	}
	{ chroot "$root" apt-get update -qq &&
		chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
	[ -z "$policy" ] || rm -f "$policy"
	chroot "$root" apt-get clean
	return $rc
}

# Newest version in $1/lib/modules matching the glob $2 (empty if none).
_newest_kver() {
	local root=$1 pattern=$2 d best=
	for d in "$root"/lib/modules/$pattern; do
		[ -d "$d" ] || continue
		best+="${d##*/}"$'\n'
	done
	printf '%s' "$best" | sort -V | tail -n1
}

# The release a bzImage was built as (its setup header points at the
# version string), so KERNEL= alone is enough to pick headers and modules.
image_release() {
	python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read(65536)
off = struct.unpack_from("<H", data, 0x20E)[0] + 0x200
print(data[off:off + 256].split(b" ")[0].decode())
PY
}

# resolve_kernel SPEC: sets
#   KVER_FULL  the kernel release (uname -r)
#   KROOT      the userland the guest runs and the build happens in: "/" or
#              the Debian 13 root
#   KIMAGE     the kernel image to boot (KERNEL= overrides)
#   KDIR       the kbuild directory, as seen from inside KROOT
#   KCHROOT    1 if builds must run with chroot KROOT, else 0
#   KMODROOT   the tree whose lib/modules/KVER_FULL holds its modules: KROOT,
#              but for the debug kernel (its cache, shared with the guest)
#
# "debug" is the debug kernel (KASAN, lockdep, kmemleak...) that
# debug-kernel.sh builds from linux-source-7.3 into a cache; it runs on the
# Debian 13 root like 7.x.  Run debug-kernel.sh first (check.sh does).
resolve_kernel() {
	local spec=${1:-} image=
	if [ -z "$spec" ] && [ -n "${KERNEL:-}" ]; then
		spec=$(image_release "$KERNEL") || die "cannot read the release of $KERNEL"
	fi
	KCHROOT=0
	KROOT=/
	KMODROOT=
	case $spec in
	debug | *-fblk-debug)
		local dk
		dk=$("$FBLK_TOP/tools/vm/debug-kernel.sh" --path) ||
			die "the debug kernel is not built: tools/vm/debug-kernel.sh (about 15 min the first time)"
		KVER_FULL=$(cat "$dk/release")
		KROOT=$FBLK_ROOT13
		KMODROOT=$dk/modules
		image=$dk/bzImage
		KDIR=${KDIR:-$dk/linux}
		;;
	"")
		if [ -d "/lib/modules/$(uname -r)/build" ]; then
			KVER_FULL=$(uname -r)
		else
			KVER_FULL=$(_newest_kver / '6.1.*')
		fi
		;;
	6.1)	KVER_FULL=$(_newest_kver / '6.1.*') ;;
	6.12)	KVER_FULL=$(_newest_kver / '6.12.*+deb12-*') ;;
	7 | 7.*)
		KROOT=$FBLK_ROOT13
		case $spec in 7 | 7.x) spec='7' ;; esac
		if [ -d "$FBLK_ROOT13/lib/modules/$spec" ]; then
			KVER_FULL=$spec
		else
			KVER_FULL=$(_newest_kver "$FBLK_ROOT13" "$spec.*")
		fi
		;;
	*)
		if [ -d "/lib/modules/$spec" ]; then
			KVER_FULL=$spec
		elif [ -d "$FBLK_ROOT13/lib/modules/$spec" ]; then
			KVER_FULL=$spec
			KROOT=$FBLK_ROOT13
		else
			KVER_FULL=
		fi
		;;
	esac
	[ -n "$KVER_FULL" ] ||
		die "no installed kernel matches '$spec' (run 'make deps'; 7.x lives in $FBLK_ROOT13)"
	[ "$KROOT" = / ] || KCHROOT=1
	KMODROOT=${KMODROOT:-$KROOT}
	KIMAGE=${KERNEL:-${image:-${KROOT%/}/boot/vmlinuz-$KVER_FULL}}
	KDIR=${KDIR:-/lib/modules/$KVER_FULL/build}
	[ -r "$KIMAGE" ] || die "no kernel image $KIMAGE"
}

# The short name of a kernel line, for TAP names and logs: 6.1, 6.12, 7.3.
kline() {
	local v=$1 tag=
	case $v in *-fblk-debug) tag=-debug ;; esac
	v=${v%%-*}; v=${v%%+*}; echo "${v%.*}$tag"
}

# Run a command in the kernel's userland: directly for the host's kernels, in
# the Debian 13 root for 7.x.  Build paths are passed as seen from there.
in_kroot() {
	if [ "$KCHROOT" = 1 ]; then
		# objtool reads /proc/self/limits while linking the module.
		mountpoint -q "$KROOT/proc" || mount -t proc proc "$KROOT/proc"
		chroot "$KROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root LANG=C.UTF-8 "$@"
	else
		"$@"
	fi
}

# Extract a few files from Debian's linux-source-6.1 tarball into $1 once.
# One tar pass decompresses the whole 138 MB stream (about 10 s), so ask for
# everything any caller needs at once.
linux_src_files() {
	local dest=$1 stamp=$1/.extracted tmp top
	[ -e "$stamp" ] && [ "$stamp" -nt "$LINUX_SRC_TARBALL" ] && return 0
	[ -r "$LINUX_SRC_TARBALL" ] || die "missing $LINUX_SRC_TARBALL (run 'make deps')"
	log "extracting checkpatch and kselftest headers from ${LINUX_SRC_TARBALL##*/}"
	# A fresh clone has no build directory yet; the stamp is written only
	# after every file is in place, so a failed extraction is retried.
	mkdir -p "$dest/scripts" "$dest/ksft" || die "cannot create $dest"
	tmp=$(mktemp -d "$dest/.src-XXXXXX") || die "cannot create a directory in $dest"
	top=linux-source-6.1
	if ! tar -C "$tmp" -xJf "$LINUX_SRC_TARBALL" \
		$top/scripts/checkpatch.pl $top/scripts/spelling.txt \
		$top/scripts/const_structs.checkpatch \
		$top/tools/testing/selftests/kselftest_harness.h \
		$top/tools/testing/selftests/kselftest.h ||
	   ! mv "$tmp/$top"/scripts/* "$dest/scripts/" ||
	   ! mv "$tmp/$top"/tools/testing/selftests/*.h "$dest/ksft/"; then
		rm -rf "$tmp"
		die "cannot extract kernel files from $LINUX_SRC_TARBALL"
	fi
	rm -rf "$tmp"
	touch "$stamp"
}
