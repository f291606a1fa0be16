#!/usr/bin/env bash
# `make bench`: fblk next to the raw file, loop and ublk, in one VM boot.
#
#   bench.sh [KVER]        (or KVER= in the environment; default as make check)
#
# Environment:
#   PROFILE=default|seeds|full|smoke|<file>   the cells (tools/bench/profiles/)
#   RUNTIME=6              seconds per fio run
#   ROUNDS=1               runs of every target per cell, interleaved (all
#                          targets once, then again, each round starting
#                          further down the list): the tables show each
#                          target's median run, and the spread beside it
#   NULL_LAT_US=1000       null_blk completion latency
#   SIZE_NULL=2048         MiB of image on null_blk (the VM gets twice that
#                          and 2 GiB more: FBLK_VM_MEM overrides)
#   SIZE_FRAG=1024         MiB of a fragmented image (frag-* images)
#   TARGETS=<file>         the target list (default tools/bench/targets)
#   QEMUIMG_COUNT=20000 ATTACH_N=200
#   PERF=<Hz>              profile every fio run with perf record -a -g at
#                          that rate (perf must be in the guest's root)
#
# Builds build/<kver>/ (tools/vm/build.sh), copies the guest side there,
# builds kublk for 7.x, boots the VM in bench mode (tools/vm/vm.sh -m bench)
# and writes results/bench-<date>-<kver>/: fio/*.json, results.csv,
# report.md, charts/*.png|svg (IOPS per workload, and IOPS against CPU per
# I/O: *-cpu.png|svg).  Prints the summary table last.
set -euo pipefail
# Parsed whole before it runs: editing this file cannot derail a running make.
{
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../vm/lib.sh
. "$here/../vm/lib.sh"
# shellcheck disable=SC2034 # read by lib.sh's log()
FBLK_LOG_TAG=bench

resolve_kernel "${1:-${KVER:-}}"
spec=${1:-${KVER:-$KVER_FULL}}
out=$FBLK_BUILD/$KVER_FULL

profile=${PROFILE:-default}
[ -f "$profile" ] || profile=$here/profiles/$profile
[ -f "$profile" ] || die "no profile ${PROFILE:-default} (see $here/profiles/)"
targets=${TARGETS:-$here/targets}
runtime=${RUNTIME:-6}
rounds=${ROUNDS:-1}
case $rounds in '' | *[!0-9]* | 0) die "ROUNDS must be a positive number, not '$rounds'" ;; esac

stamp=$(date -u +%Y%m%d-%H%M%S)
run_dir=$FBLK_RESULTS/bench-$stamp-$KVER_FULL
mkdir -p "$run_dir" "$FBLK_BUILD"
t_start=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# Another make check or bench of this clone and kernel would rebuild the
# tree the VM runs from: take turns (the lock make check takes).
exec 7>>"$FBLK_BUILD/.lock-$KVER_FULL"
flock -n 7 || { log "waiting for another make check/bench of $KVER_FULL"; flock 7; }

# What was measured: the work tree as it was at the build.
tree="$(git -C "$FBLK_TOP" rev-parse --short HEAD 2>/dev/null)"
[ -n "$(git -C "$FBLK_TOP" status --porcelain -- drivers include 2>/dev/null)" ] &&
	tree+=" + uncommitted changes in drivers/ or include/"
log "building for $KVER_FULL"
"$here/../vm/build.sh" "$spec" >"$run_dir/build.log" 2>&1 ||
	{ tail -n 30 "$run_dir/build.log" >&2; die "build failed"; }

mkdir -p "$out/bench"
cp "$here/guest.sh" "$out/bench/guest.sh"
cp "$targets" "$out/bench/targets"
# A target's +ko=PATH (another build of the module: the engine before a
# change, side by side with the one under test) is copied into the run and
# named by its path in the guest.
rm -rf "$out/bench/ko"
n=0
while read -r ko; do
	[ -r "$ko" ] || die "targets: no module $ko"
	n=$((n + 1))
	mkdir -p "$out/bench/ko"
	cp "$ko" "$out/bench/ko/$n.ko"
	sed -i "s|+ko=$ko|+ko=/fblk/bench/ko/$n.ko|g" "$out/bench/targets"
done < <(sed -e 's/#.*//' "$targets" | grep -o '+ko=[^[:space:]]*' | sed 's/^+ko=//' | sort -u)
cp "$profile" "$out/bench/profile"
rm -f "$out/bench/kublk"

# ublk's loop target: the kublk server from the selftests of the kernel's
# own linux-source, built in that kernel's userland once and kept there.
build_kublk() {
	local tarball dir=/tmp/fblk-bench src pkg
	pkg=linux-source-$(kline "$KVER_FULL")
	if [ ! -e "$KROOT/usr/src/$pkg.tar.xz" ]; then
		log "installing $pkg in $KROOT (once)"
		in_kroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends -t trixie-backports "$pkg" >>"$run_dir/build.log" 2>&1 ||
			{ log "no $pkg in $KROOT: no ublk target"; return 0; }
	fi
	tarball=usr/src/$pkg.tar.xz
	src=$dir/linux-source-$(kline "$KVER_FULL")
	if [ ! -x "$KROOT$dir/kublk-$KVER_FULL" ]; then
		log "building kublk from ${tarball##*/}"
		mkdir -p "$KROOT$dir"
		tar -C "$KROOT$dir" -xJf "$KROOT/$tarball" --wildcards \
			"${src##*/}/tools/testing/selftests/ublk/*" \
			"${src##*/}/tools/testing/selftests/kselftest.h" \
			"${src##*/}/include/uapi/linux/ublk_cmd.h"
		in_kroot sh -c "cd $src/tools/testing/selftests/ublk &&
			gcc -O2 -D_GNU_SOURCE -I../../../../include/uapi -I.. \
			-o $dir/kublk-$KVER_FULL \$(ls *.c | grep -v metadata_size.c) \
			-lpthread -lm -luring" >>"$run_dir/build.log" 2>&1 ||
			{ log "kublk did not build (see build.log): no ublk target"; return 0; }
	fi
	cp "$KROOT$dir/kublk-$KVER_FULL" "$out/bench/kublk"
}
[ "$KCHROOT" = 1 ] && build_kublk

{
	printf 'RUNTIME=%q\n' "$runtime"
	printf 'ROUNDS=%q\n' "$rounds"
	printf 'NULL_LAT_US=%q\n' "${NULL_LAT_US:-1000}"
	printf 'QEMUIMG_COUNT=%q\n' "${QEMUIMG_COUNT:-20000}"
	printf 'ATTACH_N=%q\n' "${ATTACH_N:-200}"
	printf 'SIZE_NULL=%q\n' "${SIZE_NULL:-2048}"
	printf 'SIZE_FRAG=%q\n' "${SIZE_FRAG:-1024}"
	printf 'PERF=%q\n' "${PERF:-}"
} >"$run_dir/bench.env"

# Time limits: each cell (all targets of one workload, or all workloads of a
# device count) reports to the host as one "test"; the whole VM gets what the
# profile needs and then some.  Every comma list of a line (but targets=)
# multiplies its cells; a many-devices cell attaches and detaches devs=N
# devices per target (up to a second each under emulation); filling a
# fragmented image takes minutes.
profile_sum() {
	sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$targets" | awk '{ print "target", $1 }' >"$run_dir/.targets"
	sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$profile" |
	awk -v what="$1" '
	$1 == "target" { names[++nt] = $2; next }
	{
		n = 1; devs = 0; ndevs = 0; m = nt
		for (i = 1; i <= NF; i++) {
			if ($i ~ /^targets=/) {
				# The targets its globs take.
				k = split(substr($i, 9), g, ",")
				m = 0
				for (t = 1; t <= nt; t++) for (j = 1; j <= k; j++) {
					re = g[j]; gsub(/[.]/, "[.]", re); gsub(/[*]/, ".*", re); gsub(/[?]/, ".", re)
					if (names[t] ~ ("^" re "$")) { m++; break }
				}
				continue
			}
			k = split($i, a, ",")
			n *= k
			if ($i ~ /^devs=/) for (j = 1; j <= k; j++) {
				sub(/^devs=/, "", a[j]); if (a[j] + 0 > devs) devs = a[j] + 0; ndevs += a[j]
			}
		}
		cells += n; runs += n * m
		if (devs > maxdevs) maxdevs = devs
		attaches += ndevs * m * split($1, b, ",") * split($2, c, ",")
		# Fragmented images: one fill per model, fs and image.
		split($1, b, ","); split($2, c, ",")
		k = split($3, a, ",")
		for (j = 1; j <= k; j++) if (a[j] ~ /^frag-/)
			for (x in b) for (y in c) if (!seen[b[x] " " c[y] " " a[j]]++) frag++
	}
	END {
		if (what == "cells") print cells + 0
		else if (what == "runs") print runs + 0
		else if (what == "devs") print maxdevs + 0
		else if (what == "attaches") print attaches + 0
		else if (what == "frag") print frag + 0
	}' "$run_dir/.targets" -
}
ncells=$(profile_sum cells)
nruns=$(profile_sum runs)
maxdevs=$(profile_sum devs)
nattach=$(profile_sum attaches)
nfrag=$(profile_sum frag)
rm -f "$run_dir/.targets"
ntargets=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$targets" | wc -l)
export FBLK_TEST_TIMEOUT=$((rounds * ntargets * (runtime * 4 + 90 + 2 * maxdevs)))
export FBLK_VM_TIMEOUT=$((1200 + rounds * nruns * (runtime + 15) + nfrag * 600 + rounds * nattach * 2))
# What a run costs under TCG beyond RUNTIME (caches dropped, attach, fio's
# start, detach, a settling second): about 4 s; an attach and detach of a
# many-devices cell about half a second; a 1 GiB fragmented image's fill
# about a minute.  Targets a kernel lacks (ublk on 6.x) are counted too.
log "about $(((rounds * (nruns * (runtime + 4) + nattach) + nfrag * 60) / 60)) min:" \
	"$nruns runs of $runtime s x $rounds round(s) (upper bound)"
log "$ncells cells x $ntargets targets x $runtime s x $rounds round(s) (profile ${profile##*/})"

# The null_blk model keeps its image (the larger of a plain and a
# fragmented one) in the guest's memory, beside the page cache that reads it.
null_mib=$((${SIZE_NULL:-2048} > ${SIZE_FRAG:-1024} ? ${SIZE_NULL:-2048} : ${SIZE_FRAG:-1024}))
FBLK_VM_MEM=${FBLK_VM_MEM:-$((null_mib * 2 + 2048))} \
	"$here/../vm/vm.sh" -k "$spec" -m bench -o "$run_dir" >/dev/null
exec 7>&-

{
	printf 'profile\t%s\n' "${profile##*/}"
	printf 'rounds\t%s\n' "$rounds"
	printf 'tree\t%s\n' "$tree"
	printf 'host_cpu\t%s x %s\n' "$(nproc)" "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
	printf 'load_before\t%s\n' "$load_before"
	printf 'load_after\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf 'duration\t%s\n' "$(( ($(date +%s) - t_start) / 60 )) min $(( ($(date +%s) - t_start) % 60 )) s"
} >"$run_dir/host.env"

[ -s "$run_dir/cells.tsv" ] || die "no results: see $run_dir/console.log"
python3 "$here/report.py" "$run_dir"
for dat in "$run_dir"/charts/*.dat; do
	[ -e "$dat" ] || continue
	name=$(basename "$dat" .dat)
	gnuplot -e "dat='$dat'; out='${dat%.dat}'; ttl='IOPS, $name, $KVER_FULL'" \
		"$here/chart.gp" 2>>"$run_dir/gnuplot.log" || log "gnuplot failed for $name"
done
for xy in "$run_dir"/charts/*.xy; do
	[ -e "$xy" ] || continue
	name=$(basename "$xy" .xy)
	gnuplot -e "dat='$xy'; out='${xy%.xy}-cpu'; ttl='IOPS against CPU per I/O, $name, $KVER_FULL'" \
		"$here/chart-cpu.gp" 2>>"$run_dir/gnuplot.log" || log "gnuplot failed for $name (CPU)"
done
grep -h -E 'WARNING|BUG|Oops|KASAN|lockdep|hung task|blocked for more' \
	"$run_dir/dmesg.txt" 2>/dev/null | head -n 5 | sed 's/^/bench: guest kernel: /' >&2 || true
log "results in ${run_dir#"$FBLK_TOP"/}/ (report.md, results.csv, charts/)"
cat "$run_dir/summary.md"
exit
}
