#!/usr/bin/env bash
# `make check`: lint, build, boot, test, report.
#
#   check.sh                 the CI set: lint; the full suite on 6.1 (but
#                            fblksetup.sh, a tool's test that 7.3 runs);
#                            the tests that hunt races, leaks and error
#                            paths (FBLK_CI_DEBUG_TESTS) on the debug kernel
#                            (7.3 with KASAN, lockdep, kmemleak, fault
#                            injection; built first if it is not cached)
#                            and the rest of the suite on the stock 7.3;
#                            build, boot and a load test on 6.12; the Debian
#                            packages installed and booted on Debian 12 and
#                            13 (pkg-test.sh; with KVER=6.1 or 7.3, that
#                            line's; T=pkg selects them); the CI subsets of
#                            blktests and xfstests on 7.3 and 6.1
#                            (tools/suites; T=suites selects them).
#                            FBLK_CI_DEBUG=full: the whole suite on the
#                            debug kernel, the stock 7.3 only a few tests
#                            (FBLK_SMOKE_TESTS); FBLK_CI_DEBUG=off: no debug
#                            kernel, the whole suite on the stock 7.3.
#   KVER=6.12 check.sh       lint and the full suite on one kernel line
#   KVER=debug check.sh      the full suite on the debug kernel (KASAN,
#                            lockdep, kmemleak: debug-kernel.sh builds it)
#   T=pattern                only tests whose name matches (glob or substring,
#                            comma-separated); skips lint unless LINT=1
#   LINT=0                   no lint
#   check.sh --demo          build for KVER (default 6.1) and run the demo
#
# Each VM run keeps its files in results/<date>-<kver>/ (with tap.txt, the
# run's own report); the combined TAP goes to stdout and
# results/<date>-check.tap.  Ends with "N passed, N failed"; exits 1 on any
# failure.
set -uo pipefail
# Parsed whole before it runs: editing this file cannot derail a running make.
{
. "$(dirname "$0")/lib.sh"
FBLK_LOG_TAG=check
vm=$FBLK_TOP/tools/vm

stamp=$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$FBLK_RESULTS"
T=${T:-}
phase_log=()

# phase NAME CMD...: run CMD, remember how long it took.
phase() {
	local name=$1 t0 rc
	shift
	t0=$(date +%s)
	"$@"
	rc=$?
	phase_log+=("$(printf '%-28s %4d s%s' "$name" $(($(date +%s) - t0)) \
		"$([ $rc = 0 ] || echo "  (failed)")")")
	return $rc
}

# one_kernel SPEC MODE [FILTER]: build and run one kernel line (FILTER:
# these tests instead of T's); adds its run dir to runs.  A failed build
# still yields a run dir, whose report names the failure.
one_kernel() {
	local spec=$1 mode=$2 filter=${3:-$T} full line dir load
	# The debug kernel is built once per debug.config and linux-source
	# version (cached outside the clone); the first time takes about 15 min.
	if [ "$spec" = debug ] && ! phase "debug kernel" "$vm/debug-kernel.sh" >/dev/null; then
		dir=$FBLK_RESULTS/$stamp-debug
		mkdir -p "$dir"
		printf 'MODE=%s\nKLINE=debug\n' "$mode" >"$dir/run.env"
		echo "FBLK-SETUP-FAIL the debug kernel did not build (tools/vm/debug-kernel.sh)" >"$dir/stream.log"
		"$vm/report.py" "$dir" >"$dir/tap.txt"
		runs+=("$dir")
		return 0
	fi
	(resolve_kernel "$spec") || return 1
	resolve_kernel "$spec"
	# The stock kernels run the tests' loads at FBLK_CHECK_LOAD_SCALE
	# percent (fblk_load in selftests/fblk/lib.sh), which keeps make check
	# within CI's budget; FBLK_LOAD_SCALE=100 gives the full soak.  The
	# debug kernel has its own default (vm.sh).
	load=()
	[ "$spec" = debug ] || [ -n "${FBLK_LOAD_SCALE:-}" ] ||
		load=(FBLK_LOAD_SCALE="${FBLK_CHECK_LOAD_SCALE:-25}")
	full=$KVER_FULL line=$(kline "$KVER_FULL")
	dir=$FBLK_RESULTS/$stamp-$full
	mkdir -p "$dir" "$FBLK_BUILD"
	# Another make check of this clone and kernel would rebuild the tree
	# this VM runs from: take turns.
	exec 7>>"$FBLK_BUILD/.lock-$full"
	flock -n 7 || { log "[$line] waiting for another make check of $full"; flock 7; }
	if ! phase "build $line" "$vm/build.sh" "$spec" >"$dir/build.log" 2>&1; then
		log "[$line] build failed:"
		tail -n 30 "$dir/build.log" >&2
		printf 'MODE=%s\nKLINE=%s\n' "$mode" "$line" >"$dir/run.env"
		echo "FBLK-SETUP-FAIL build failed (see ${dir#"$FBLK_TOP"/}/build.log)" >"$dir/stream.log"
	else
		phase "boot+test $line ($mode${3:+: $3})" env "${load[@]}" \
			"$vm/vm.sh" -k "$spec" -m "$mode" -t "$filter" -o "$dir" >/dev/null
	fi
	"$vm/report.py" "$dir" >"$dir/tap.txt"
	exec 7>&-
	runs+=("$dir")
}

# pkg_test LINE: the Debian packages built, installed on a fresh Debian
# machine of LINE (6.1: Debian 12, 7.3: Debian 13) and booted with systemd
# and udev (pkg-test.sh); its TAP and console join the report.  It runs
# when T is empty or names "pkg".
pkg_test() {
	local line=$1 dir=$FBLK_RESULTS/$stamp-pkg-$1 rc=0
	case ",$T," in ,,|*pkg*) ;; *) return 0 ;; esac
	mkdir -p "$dir"
	phase "packages $line" "$vm/pkg-test.sh" -k "$line" -o "$dir" \
		>"$dir/pkg.tap" 2>"$dir/pkg.log" || rc=$?
	[ "$rc" = 0 ] || tail -n 20 "$dir/pkg.log" >&2
	report_args+=(--tap "packages $line" "$rc" "$dir/pkg.tap" "$dir/console.log")
}

# suites_ci LINE: the CI subsets of blktests and xfstests on LINE's fblk
# devices (tools/suites, SUITE_PROFILE=ci); their TAP and consoles join the
# report.  They run when T is empty or names "suites".  To fit CI's budget
# each line runs them in one mode: blktests' block tests on the buffered
# device and xfstests with ext4 over files on ext4 on 6.1, on the direct
# (auto on ext4) device and with xfs over files on xfs on 7.3 (make blktests
# and make xfstests run every mode, and loop's).
suites_ci() {
	local line=$1 suite dir rc fs=ext4 role=fblk-buffered bt_role=fblk-buffered
	case ",$T," in ,,|*suites*) ;; *) return 0 ;; esac
	[ "$line" = 6.1 ] || fs=xfs role=fblk-direct bt_role=fblk-auto
	for suite in blktests xfstests; do
		dir=$FBLK_RESULTS/$stamp-$suite-$line rc=0
		mkdir -p "$dir"
		phase "$suite $line" env SUITE_PROFILE=ci SUITE_OUT="$dir" \
			BT_ROLES="${BT_ROLES:-$bt_role}" \
			XT_FSTYP="${XT_FSTYP:-$fs}" XT_LOWER="${XT_LOWER:-$fs}" \
			XT_ROLES="${XT_ROLES:-$role}" \
			"$FBLK_TOP/tools/suites/$suite.sh" "$line" >"$dir/run.log" 2>&1 || rc=$?
		[ "$rc" = 0 ] || tail -n 20 "$dir/run.log" >&2
		"$FBLK_TOP/tools/suites/report.py" --tap "$suite" "$dir" >"$dir/ci.tap"
		report_args+=(--tap "$suite $line" "$rc" "$dir/ci.tap" "$dir/console.log")
	done
}

runs=()
report_args=()
if [ "${1:-}" = --demo ]; then
	spec=${KVER:-}
	phase "build $spec" "$vm/build.sh" "$spec" || exit 1
	resolve_kernel "$spec"
	dir=$FBLK_RESULTS/$stamp-$KVER_FULL-demo
	phase "demo $spec" "$vm/vm.sh" -k "$spec" -m demo -o "$dir" >/dev/null
	printf '%s\n' "${phase_log[@]}" >&2
	"$vm/report.py" "$dir" >"$dir/tap.txt" && exit 0
	log "the demo failed:"
	cat "$dir/tap.txt" >&2
	exit 1
fi

lint=${LINT:-$([ -n "$T" ] && echo 0 || echo 1)}
if [ "$lint" = 1 ]; then
	lintdir=$FBLK_RESULTS/$stamp-lint
	phase lint "$vm/lint.sh" "$lintdir" >/dev/null
	report_args+=(--lint "$lintdir/lint.tap")
fi

if [ "$T" = pkg ] || [ "$T" = suites ]; then
	case ${KVER:-} in
	6.1|7.3) pkg_test "$KVER"; suites_ci "$KVER" ;;
	*) pkg_test 7.3; pkg_test 6.1; suites_ci 7.3; suites_ci 6.1 ;;
	esac
elif [ -n "${KVER:-}" ] || [ -n "${KERNEL:-}" ]; then
	# With only KERNEL=, the image's own release picks headers and modules.
	one_kernel "${KVER:-}" check || exit 1
	case ${KVER:-} in 6.1|7.3) pkg_test "$KVER"; suites_ci "$KVER" ;; esac
else
	# The debug kernel is 7.3 with the same compat paths as the stock one,
	# at two to four times the cost under emulation: it runs what its
	# checkers find bugs in (failslab needs its fault injection), and the
	# stock 7.3 everything else, so that each test runs once per line.
	debug_tests=${FBLK_CI_DEBUG_TESTS:-fblk_failslab,fblk_races,fblk_detach_busy,fblk_partitions,fblk_ctl,fblk_life,fblk_config}
	# T= picks tests on 6.1 and the stock 7.3 alone, as with KVER=.
	mode=${FBLK_CI_DEBUG:-$([ -n "$T" ] && echo off || echo subset)}
	case $mode in
	subset)
		one_kernel 6.1 check '!fblksetup.sh'
		FBLK_LOAD_SCALE=${FBLK_LOAD_SCALE:-${FBLK_CHECK_LOAD_SCALE:-25}} \
			one_kernel debug check "$debug_tests"
		one_kernel 7.3 check "!${debug_tests//,/,!}"
		;;
	full|1)
		one_kernel 6.1 check
		one_kernel debug check
		# The stock 7.3 still boots and runs a few tests (the debug
		# kernel ran them all).
		one_kernel 7.3 check "${FBLK_SMOKE_TESTS:-fblk_module,fblk_ctl,fblk_data}"
		;;
	off|0)
		one_kernel 6.1 check
		one_kernel 7.3 check
		;;
	*) die "FBLK_CI_DEBUG is subset, full or off, not '$mode'" ;;
	esac
	one_kernel 6.12 smoke
	pkg_test 7.3
	pkg_test 6.1
	suites_ci 7.3
	suites_ci 6.1
fi

"$vm/report.py" "${report_args[@]}" "${runs[@]}" | tee "$FBLK_RESULTS/$stamp-check.tap"
rc=${PIPESTATUS[0]}
{
	echo "check: phases"
	printf '  %s\n' "${phase_log[@]}"
	echo "check: results in ${FBLK_RESULTS#"$FBLK_TOP"/}/$stamp-*"
} >&2
# The summary line must stay the last line of stdout for CI.
exit "$rc"
exit
}
