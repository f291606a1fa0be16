#!/usr/bin/env bash
# `make xfstests`: xfstests with TEST_DEV and SCRATCH_DEV on fblk devices,
# next to loop, in one VM boot.
#
#   xfstests.sh [--build-only] [KVER]   (or KVER= in the environment)
#
# Environment:
#   XFSTESTS=/path     an xfstests checkout of your own (default: the snapshot
#                      in ../shared/third_party, see its README)
#   GROUP=quick        an xfstests group (-g) instead of the curated list
#   XT_TESTS="..."     the tests to run (default: the curated list below)
#   XT_FSTYP=ext4      the filesystem under test (ext4 or xfs)
#   XT_LOWER=ext4      the filesystem the backing files are on (ext4 or xfs)
#   XT_ROLES="..."     which devices, of fblk-buffered fblk-direct
#                      loop-dio-off loop-dio-on (default: all four)
#   XT_IMG_MB=1024     size of TEST_DEV's and SCRATCH_DEV's backing files
#                      (512 with SUITE_PROFILE=ci)
#   SUITE_OUT=dir      the run directory (default: results/xfstests-<date>-<kver>)
#   SUITE_PROFILE=ci   make check's subset (below) as the default of the above
#
# The backing files live on XT_LOWER on a memory-backed null_blk disk in the
# guest; each role gets its own fresh pair.  Writes
# results/xfstests-<date>-<kver>/: xfstests.tsv (test, device, role, status,
# reason), xfstests/<role>/ (xfstests' results: result.xml, *.out.bad,
# *.full), xfstests.log, summary.md.  Exits 1 if a test failed on fblk.
set -euo pipefail
# Parsed whole before it runs: editing this file cannot derail a running make.
{
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
FBLK_LOG_TAG=xfstests

build_only=0
[ "${1:-}" = --build-only ] && { build_only=1; shift; }
resolve_kernel "${1:-${KVER:-}}"
spec=${1:-${KVER:-$KVER_FULL}}
out=$FBLK_BUILD/$KVER_FULL

# The curated list for CI: quick generic tests that put the block device
# through data paths a filesystem uses (buffered, direct, aio, mmap, fsync,
# truncate, punch holes, renames, many small files).
curated="generic/001 generic/002 generic/005 generic/011 generic/013 generic/014 generic/028 generic/075 generic/091 generic/112 generic/263"
all_roles="fblk-buffered fblk-direct loop-dio-off loop-dio-on"
# make check's subset, about three minutes per kernel line: fsx over
# buffered, direct and mmap I/O (091, 263), the curated list's tests that
# move the most data through the device for their time, on fblk's two
# modes; loop's baseline, the many-small-files and truncate tests (011,
# 014), the namespace tests (002's link counts, 005's symlink loops, 028's
# getcwd race) and the long tests are for make xfstests.  Its tests fit in
# 512 MiB images, where mkfs and the fsck after each test take less time
# than on 1 GiB.
ci_tests="generic/091 generic/263"
img_mb=1024
if [ "${SUITE_PROFILE:-}" = ci ]; then
	curated=$ci_tests all_roles="fblk-buffered fblk-direct" img_mb=512
fi
tests=${XT_TESTS:-$curated}
group=${GROUP:-}
fstyp=${XT_FSTYP:-ext4}
lower=${XT_LOWER:-ext4}
roles=${XT_ROLES:-$all_roles}

stamp=$(date -u +%Y%m%d-%H%M%S)
run_dir=${SUITE_OUT:-$FBLK_RESULTS/xfstests-$stamp-$KVER_FULL}
mkdir -p "$run_dir" "$FBLK_BUILD"
t_start=$(date +%s)

exec 7>>"$FBLK_BUILD/.lock-$KVER_FULL"
flock -n 7 || { log "waiting for another run of $KVER_FULL in this clone"; flock 7; }

suite_deps
log "building fblk for $KVER_FULL"
"$FBLK_TOP/tools/vm/build.sh" "$spec" >"$run_dir/build.log" 2>&1 ||
	{ tail -n 30 "$run_dir/build.log" >&2; die "build failed"; }

src=$(suite_source xfstests "${XFSTESTS:-}")
suite_build xfstests "$src" "$out/xfstests/src" >>"$run_dir/build.log" 2>&1 ||
	{ tail -n 30 "$run_dir/build.log" >&2; die "xfstests did not build"; }
cp "$here/xfstests-guest.sh" "$out/xfstests/guest.sh"
[ "$build_only" = 1 ] && { log "built in $out/xfstests"; exit 0; }

{
	printf 'TESTS=%q\n' "$tests"
	printf 'GROUP=%q\n' "$group"
	printf 'FSTYP=%q\n' "$fstyp"
	printf 'LOWER_FS=%q\n' "$lower"
	printf 'ROLES=%q\n' "$roles"
	printf 'IMG_MB=%q\n' "${XT_IMG_MB:-$img_mb}"
} >"$run_dir/xfstests.env"

# Each role reports to the host as one "test".
export FBLK_TEST_TIMEOUT=${FBLK_TEST_TIMEOUT:-$([ -n "$group" ] && echo 14400 || echo 1800)}
export FBLK_VM_TIMEOUT=${FBLK_VM_TIMEOUT:-$((FBLK_TEST_TIMEOUT * 4 + 600))}
FBLK_VM_MEM=${FBLK_VM_MEM:-4096} \
	"$FBLK_TOP/tools/vm/vm.sh" -k "$spec" -m xfstests -o "$run_dir" >/dev/null
exec 7>&-

log "took $(( ($(date +%s) - t_start) / 60 )) min $(( ($(date +%s) - t_start) % 60 )) s"
[ -s "$run_dir/xfstests.tsv" ] || die "no results: see $run_dir/console.log"
python3 "$here/report.py" xfstests "$run_dir"
exit
}
