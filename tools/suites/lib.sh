# shellcheck shell=bash source-path=SCRIPTDIR
# Shared by tools/suites/*.sh (sourced, not run): where the field's suites
# come from and how they are built for a kernel line's userland.  Sources
# tools/vm/lib.sh, so resolve_kernel, in_kroot, log and die are here too.

# shellcheck source=../vm/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../vm/lib.sh"

# The snapshots of the suites' repositories (third_party/README.md): beside
# the main clone, which for a git worktree is where its common .git is.
third_party_dir() {
	local d common
	for d in "${FBLK_THIRD_PARTY:-}" "$FBLK_TOP/../shared/third_party"; do
		[ -n "$d" ] && [ -d "$d" ] && { (cd "$d" && pwd); return 0; }
	done
	common=$(git -C "$FBLK_TOP" rev-parse --path-format=absolute --git-common-dir 2>/dev/null) &&
		[ -d "$common/../../shared/third_party" ] &&
		{ (cd "$common/../../shared/third_party" && pwd); return 0; }
	return 1
}

# suite_source NAME USER_DIR: prints the source to build NAME from: the
# user's checkout if USER_DIR is set, else the snapshot NAME-*.tar.gz.
suite_source() {
	local name=$1 user=${2:-} tp tarball
	if [ -n "$user" ]; then
		[ -d "$user" ] || die "$user: no such directory"
		(cd "$user" && pwd)
		return 0
	fi
	tp=$(third_party_dir) || die "no third_party directory with the $name snapshot (set FBLK_THIRD_PARTY)"
	tarball=$(find "$tp" -maxdepth 1 -name "$name-*.tar.gz" | sort | tail -n1)
	[ -n "$tarball" ] || die "no $name-*.tar.gz in $tp"
	echo "$tarball"
}

# suite_unpack SOURCE DEST: DEST holds SOURCE's tree (a tarball with one top
# directory, or a checkout, copied without .git).  A tarball already
# unpacked there is kept, so make rebuilds only what changed.
suite_unpack() {
	local src=$1 dest=$2 stamp=$2/.fblk-source
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$src" ] && [ -f "$src" ]; then
		return 0
	fi
	rm -rf "$dest"
	mkdir -p "$dest"
	if [ -f "$src" ]; then
		log "unpacking ${src##*/}"
		tar -C "$dest" --strip-components=1 -xzf "$src" || die "cannot unpack $src"
	else
		log "copying $src"
		(cd "$src" && tar --exclude=.git -cf - .) | tar -C "$dest" -xf - ||
			die "cannot copy $src"
	fi
	echo "$src" >"$stamp"
}

# suite_workdir NAME: where NAME is built for KVER_FULL, as seen from the
# host: in build/ for the host's kernels, in the Debian 13 root for 7.x
# (whose userland the guest runs); suite_inner gives the same path as seen
# by in_kroot.
suite_inner() {
	if [ "$KCHROOT" = 1 ]; then
		echo "/tmp/fblk-suites/$(printf '%s' "$FBLK_TOP/$KVER_FULL" | md5sum | cut -c1-12)/$1"
	else
		echo "$FBLK_BUILD/$KVER_FULL/$1/src"
	fi
}
suite_workdir() {
	if [ "$KCHROOT" = 1 ]; then
		echo "$KROOT$(suite_inner "$1")"
	else
		suite_inner "$1"
	fi
}

# suite_deps: the suites' build and run-time packages, on the host and in
# the Debian 13 root (deps.sh; quick when nothing is missing).
suite_deps() {
	if [ "$(id -u)" = 0 ]; then
		"$FBLK_TOP/tools/suites/deps.sh" || die "tools/suites/deps.sh failed"
	else
		log "not root: skipping tools/suites/deps.sh (run it once as root)"
	fi
}
