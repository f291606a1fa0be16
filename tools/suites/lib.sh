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

# suite_build NAME SOURCE OUT [GROUP]: NAME built from SOURCE (suite_source)
# for KVER_FULL's userland, and its tree copied to OUT (under build/, which
# the guest sees).  A snapshot is built once per userland in FBLK_CACHE,
# outside the clone, since make check runs from fresh clones: for 7.x inside
# the Debian 13 root (in_kroot), for the host's kernels in FBLK_CACHE/suites.
# A checkout of the user's is built under build/.  GROUP: a directory copied
# in as tests/<its name> first (blktests' fblk group).
suite_build() {
	local name=$1 src=$2 out=$3 group=${4:-} key inner work rc=0
	if [ -f "$src" ]; then
		key=$(basename "$src" .tar.gz)
	else
		key=$(printf '%s' "$FBLK_TOP/$KVER_FULL" | md5sum | cut -c1-12)/$name
	fi
	if [ "$KCHROOT" = 1 ]; then
		inner=/tmp/fblk-suites/$key work=$KROOT/tmp/fblk-suites/$key
	elif [ -f "$src" ] && mkdir -p "$FBLK_CACHE/suites" 2>/dev/null &&
		[ -w "$FBLK_CACHE/suites" ]; then
		inner=$FBLK_CACHE/suites/$key work=$inner
	else
		inner=$FBLK_BUILD/$KVER_FULL/$name/work work=$inner
	fi
	mkdir -p "$work"
	# Another clone may be building the same cached tree.
	exec 6>>"$work.lock"
	flock 6
	suite_unpack "$src" "$work"
	if [ -n "$group" ]; then
		rm -rf "$work/tests/${group##*/}"
		cp -r "$group" "$work/tests/${group##*/}"
	fi
	log "building $name (${src##*/}; the first build takes a few minutes)"
	in_kroot nice make -s -C "$inner" -j"$(nproc)" || rc=$?
	if [ "$rc" = 0 ]; then
		rm -rf "$out"
		mkdir -p "${out%/*}"
		cp -a "$work" "$out" || rc=$?
	fi
	exec 6>&-
	return $rc
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
