#!/usr/bin/env bash
# `make blktests`: blktests on fblk devices, next to loop, in one VM boot.
#
#   blktests.sh [KVER]      (or KVER= in the environment; default as make check)
#
# Environment:
#   BLKTESTS=/path     a blktests checkout of your own (default: the snapshot
#                      in ../shared/third_party, see its README)
#   BT_TESTS="..."     the tests (names or groups) to run; default: blktests'
#                      device-agnostic block tests, the fblk group and the loop
#                      group (loop's own scenarios: the baseline of fblk's)
#   BT_TIMEOUT=10      blktests' TIMEOUT: seconds for each timed test
#   BT_ROLES="..."     which test devices, of fblk-auto fblk-buffered
#                      loop-dio-off loop-dio-on (default: all four)
#   SUITE_OUT=dir      the run directory (default: results/blktests-<date>-<kver>)
#   SUITE_PROFILE=ci   make check's subset (below) as the default of the above
#
# Unpacks and builds blktests for the kernel line's userland (under build/,
# or in the Debian 13 root for 7.x), adds the fblk group (tools/suites/
# blktests/fblk/, in blktests' own format) as tests/fblk, boots the VM in
# blktests mode (tools/vm/vm.sh -m blktests) and writes
# results/blktests-<date>-<kver>/: blktests.tsv (test, device, role, status,
# reason), blktests/ (blktests' results), blktests.log, summary.md.
# Exits 1 if a test failed on an fblk device or in the fblk group.
set -euo pipefail
# Parsed whole before it runs: editing this file cannot derail a running make.
{
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
FBLK_LOG_TAG=blktests

resolve_kernel "${1:-${KVER:-}}"
spec=${1:-${KVER:-$KVER_FULL}}
out=$FBLK_BUILD/$KVER_FULL

# Device-agnostic block tests: those with a test_device() that need no
# particular hardware (PCI, NVMe, zoned) -- block/007 (polling) and 008 (CPU
# hotplug) included, blktests skips what a device or kernel cannot do.
default_tests="block/003 block/004 block/005 block/007 block/008 block/012 block/036 block/042 block/043 fblk loop"
all_roles="fblk-auto fblk-buffered loop-dio-off loop-dio-on"
# make check's subset: discards, flushes, a read-only device and odd direct
# I/O offsets on fblk's two devices, and the fblk group; loop's baseline is
# for make blktests.
ci_tests="block/003 block/004 block/012 block/042 fblk"
ci_roles="fblk-auto fblk-buffered"
if [ "${SUITE_PROFILE:-}" = ci ]; then
	default_tests=$ci_tests all_roles=$ci_roles
	BT_TIMEOUT=${BT_TIMEOUT:-5}
fi
tests=${BT_TESTS:-$default_tests}
bt_timeout=${BT_TIMEOUT:-10}
roles=${BT_ROLES:-$all_roles}

stamp=$(date -u +%Y%m%d-%H%M%S)
run_dir=${SUITE_OUT:-$FBLK_RESULTS/blktests-$stamp-$KVER_FULL}
mkdir -p "$run_dir" "$FBLK_BUILD"
t_start=$(date +%s)

exec 7>>"$FBLK_BUILD/.lock-$KVER_FULL"
flock -n 7 || { log "waiting for another run of $KVER_FULL in this clone"; flock 7; }

suite_deps
log "building fblk for $KVER_FULL"
"$FBLK_TOP/tools/vm/build.sh" "$spec" >"$run_dir/build.log" 2>&1 ||
	{ tail -n 30 "$run_dir/build.log" >&2; die "build failed"; }

src=$(suite_source blktests "${BLKTESTS:-}")
suite_build blktests "$src" "$out/blktests/src" "$here/blktests/fblk" >>"$run_dir/build.log" 2>&1 ||
	{ tail -n 30 "$run_dir/build.log" >&2; die "blktests did not build"; }
# Results go to the run directory, not into the tree the guest shares.
rm -rf "$out/blktests/src/results"
cp "$here/blktests-guest.sh" "$out/blktests/guest.sh"

{
	printf 'TESTS=%q\n' "$tests"
	printf 'TIMEOUT=%q\n' "$bt_timeout"
	printf 'ROLES=%q\n' "$roles"
} >"$run_dir/blktests.env"

# Each test reports to the host as one "test" (all devices): timed tests run
# TIMEOUT per device and scheduler (block/005), plus setup under TCG.
export FBLK_TEST_TIMEOUT=${FBLK_TEST_TIMEOUT:-$((bt_timeout * 40 + 300))}
export FBLK_VM_TIMEOUT=${FBLK_VM_TIMEOUT:-3600}
"$FBLK_TOP/tools/vm/vm.sh" -k "$spec" -m blktests -o "$run_dir" >/dev/null
exec 7>&-

log "took $(( ($(date +%s) - t_start) / 60 )) min $(( ($(date +%s) - t_start) % 60 )) s"
[ -s "$run_dir/blktests.tsv" ] || die "no results: see $run_dir/console.log"
python3 "$here/report.py" blktests "$run_dir"
exit
}
