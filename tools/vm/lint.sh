#!/usr/bin/env bash
# Static checks of the module, one TAP line each:
#   checkpatch  scripts/checkpatch.pl --strict over the module and uapi header
#   w1          a W=1 build against the 6.1 headers, no warning allowed
#   sparse      a sparse pass (C=2) over the same build, no warning allowed
#   shell       every shell script of the tree, severity warning (.shellcheckrc)
#   tools       the user-space tools built with ASan and UBSan, no warning
#   fblksetup   fblksetup's host checks (tools/fblksetup/test-host.sh, no
#               module needed) on that sanitizer build
#   install     make install and uninstall into staging trees (DESTDIR,
#               PREFIX, INSTALL_MOD_PATH: install-test.sh)
#
#   lint.sh [OUT_DIR]     (default build/lint; writes lint.tap and *.log there)
#
# checkpatch.pl and its data files come from Debian's linux-source-6.1
# tarball (cached in build/scripts/).  The one type ignored is
# LINUX_VERSION_CODE: a module built for three kernel lines needs it.
# Prints the TAP on stdout; exits 1 if a check failed.
set -uo pipefail
# Parsed whole before it runs: editing this file cannot derail a running make.
{
. "$(dirname "$0")/lib.sh"
FBLK_LOG_TAG=lint

out=${1:-$FBLK_BUILD/lint}
mkdir -p "$out"
linux_src_files "$FBLK_BUILD" || exit 1
resolve_kernel 6.1
tap=$out/lint.tap
n=0

# result NAME STATUS LOG: a TAP line, with the log's interesting lines as
# diagnostics when the check failed.
result() {
	local name=$1 status=$2 logf=$3
	n=$((n + 1))
	if [ "$status" = 0 ]; then
		echo "ok $n $name"
	else
		grep -E 'warning|error|ERROR|WARNING|CHECK|^#|^not ok|^In |^[^ ]+:[0-9]+:' "$logf" |
			head -n 40 | sed 's/^/# /'
		echo "not ok $n $name"
	fi
}

files=()
for f in "$FBLK_TOP"/drivers/block/fblk/*.[ch] "$FBLK_TOP"/include/uapi/linux/fblk.h; do
	[ -e "$f" ] && files+=("${f#"$FBLK_TOP"/}")
done

{
	echo "TAP version 13"
	echo "1..7"

	(cd "$FBLK_TOP" && perl "$FBLK_BUILD/scripts/checkpatch.pl" --strict --no-tree \
		--no-summary --show-types --ignore LINUX_VERSION_CODE -f "${files[@]}") \
		>"$out/checkpatch.log" 2>&1
	result checkpatch $? "$out/checkpatch.log"

	# A clean copy, so that every file is compiled (and so reported) again.
	src=$out/src
	rm -rf "$src"
	mkdir -p "$src"
	(cd "$FBLK_TOP" && tar -cf - Kbuild drivers/block/fblk include/uapi) | tar -C "$src" -xf -
	make -s -C "$KDIR" M="$src" W=1 modules >"$out/w1.log" 2>&1
	rc=$?
	grep -q 'warning:' "$out/w1.log" && rc=1
	result "w1 (W=1 build against $KVER_FULL)" $rc "$out/w1.log"

	# C=2 runs sparse on every source whether or not it is rebuilt.
	make -s -C "$KDIR" M="$src" C=2 modules >"$out/sparse.log" 2>&1
	rc=$?
	grep -Eq 'warning:|error:' "$out/sparse.log" && rc=1
	result "sparse (C=2 against $KVER_FULL)" $rc "$out/sparse.log"
	rm -rf "$src"

	# Every shell script git knows of: by name, or by a shell #! line.
	mapfile -t scripts < <(cd "$FBLK_TOP" && git ls-files -- '*.sh' tools/vm/init tools/vm/pkg-init \
		.ci/run '*.bash-completion' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
	if command -v shellcheck >/dev/null; then
		(cd "$FBLK_TOP" && shellcheck -S warning "${scripts[@]}") >"$out/shellcheck.log" 2>&1
		result "shellcheck (${#scripts[@]} scripts)" $? "$out/shellcheck.log"
	else
		echo "shellcheck is not installed (make deps)" >"$out/shellcheck.log"
		result "shellcheck" 1 "$out/shellcheck.log"
	fi

	# The tools under ASan and UBSan (any report aborts the program), then
	# fblksetup's host checks on that build.
	asan=$out/asan
	rm -rf "$asan"
	make -s -C "$FBLK_TOP/tools" O="$asan" SANITIZE=1 all >"$out/tools-asan.log" 2>&1
	rc=$?
	grep -q 'warning:' "$out/tools-asan.log" && rc=1
	result "tools (ASan and UBSan build)" $rc "$out/tools-asan.log"
	if [ -x "$asan/bin/fblksetup" ]; then
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
			"$FBLK_TOP/tools/fblksetup/test-host.sh" "$asan/bin/fblksetup" \
			>"$out/fblksetup-host.log" 2>&1
		rc=$?
	else
		rc=1
	fi
	result "fblksetup host checks ($(grep -c '^ok' "$out/fblksetup-host.log" 2>/dev/null || echo 0) passed, ASan and UBSan)" \
		$rc "$out/fblksetup-host.log"
	rm -rf "$asan"

	"$FBLK_TOP/tools/vm/install-test.sh" "$KVER_FULL" >"$out/install.log" 2>&1
	rc=$?
	result "install (make install and uninstall into staging trees, $(grep -c '^ok' "$out/install.log") passed)" \
		$rc "$out/install.log"
} | tee "$tap"
grep -q '^not ok' "$tap" && exit 1
exit 0
exit
}
