#!/bin/bash
# `make bench`, the guest side: runs in the test VM (guest-run.sh, MODE=bench)
# as root, from /fblk/bench/ (copied there by bench.sh with the target list
# and the profile), and writes into /results:
#   env.txt         the guest: kernel, CPUs, memory, tool versions, settings
#   cells.tsv       one line per run: what ran, /proc/stat CPU ticks, status,
#                   the cell's options, context switches
#   fio/*.json      fio's own output, one file per run
#   fio/*.stats     fblk's engine counters after each fblk run (many
#                   devices: the run's own, summed over the devices)
#   fio/*.perf*.txt perf's profile of each run, with PERF set
#   qemu-img.tsv    qemu-img bench against the block device targets
#   attach.tsv      the time to attach and detach ATTACH_N devices
#   images.tsv      each fragmented image: its fill order and filefrag's extents
#   many.tsv        the many-devices cells: attach time, kernel threads and
#                   memory that N devices of a target cost
#   bench.log       what happened (also on the console)
# and progress for the host on fd 3 (FBLK-BEGIN/FBLK-END per cell, which
# also arms the host's per-cell watchdog).
#
# Settings come from /results/bench.env: RUNTIME (s per run), ROUNDS (runs
# of every target per cell), NULL_LAT_US, SIZE_NULL and SIZE_BRD (MiB of
# image), SIZE_FRAG (MiB of a fragmented image), QEMUIMG_COUNT and ATTACH_N
# (0: not measured), PERF (perf's sampling rate in Hz for a profile of each
# run; empty: none).
set -u

B=/fblk/bench
R=/results
RUNTIME=6 ROUNDS=1 NULL_LAT_US=1000 NULL_BS=4096 SIZE_NULL=2048 SIZE_BRD=192 SIZE_FRAG=1024
QEMUIMG_COUNT=20000 ATTACH_N=200 PERF=
# shellcheck disable=SC1091
[ -r $R/bench.env ] && . $R/bench.env
KUBLK=$B/kublk
MNT=/mnt/bench
NB=/sys/kernel/config/nullb/bench
export PATH=/fblk/bin:$PATH

{ true >&3; } 2>/dev/null || exec 3>/dev/null
emit() { printf '%s\n' "$*" >&3; }
exec > >(tee -a $R/bench.log) 2>&1
say() { printf 'bench: %s\n' "$*"; }

# The CPU ticks that count as the I/O path's cost: system, irq, softirq;
# and the context switches since boot.  Both read /proc/stat on stdin.
cpu_ticks() { awk '/^cpu /{print $4 + $7 + $8; exit}'; }
ctxt_count() { awk '/^ctxt /{print $2; exit}'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b - a}'; }

# --- the device models ---------------------------------------------------

# null@LAT: null_blk with completion_nsec LAT instead of NULL_LAT_US; LAT is
# 0, 500ns, 10us, 1ms or a bare number of microseconds.
lat_ns() {
	case $1 in
	*ns) echo "${1%ns}" ;;
	*us) echo $((${1%us} * 1000)) ;;
	*ms) echo $((${1%ms} * 1000000)) ;;
	'' | *[!0-9]*) return 1 ;;
	*) echo $(($1 * 1000)) ;;
	esac
}

MODEL_DEV='' IMG='' SIZE=''
model_up() {
	local model=$1 lat
	case $model in
	null | null@*)
		lat=$((NULL_LAT_US * 1000))
		if [ "$model" != null ]; then
			lat=$(lat_ns "${model#null@}") || { say "bad latency in $model"; return 1; }
		fi
		mkdir "$NB" || return 1
		echo 1 >"$NB/memory_backed"
		echo 2 >"$NB/irqmode"
		echo "$lat" >"$NB/completion_nsec"
		echo $((SIZE_NULL > SIZE_FRAG ? SIZE_NULL + 512 : SIZE_FRAG + 512)) >"$NB/size"
		echo "$NULL_BS" >"$NB/blocksize"
		echo 128 >"$NB/hw_queue_depth"
		echo 2 >"$NB/submit_queues"
		echo 1 >"$NB/power" || return 1
		MODEL_DEV=/dev/bench SIZE=$SIZE_NULL
		;;
	brd)
		# guest-run.sh loads brd with four 256 MiB disks; ram2 is free.
		MODEL_DEV=/dev/ram2 SIZE=$SIZE_BRD
		blkdiscard "$MODEL_DEV" 2>/dev/null
		;;
	*) say "unknown model $model"; return 1 ;;
	esac
	[ -b "$MODEL_DEV" ]
}
model_down() {
	[ -d "$NB" ] && { echo 0 >"$NB/power"; rmdir "$NB"; }
	[ "$MODEL_DEV" = /dev/ram2 ] && blkdiscard /dev/ram2 2>/dev/null
	MODEL_DEV=
}

group_up() {
	local model=$1 fs=$2 image=$3
	model_up "$model" || return 1
	mkdir -p $MNT
	mkfs_and_mount "$fs" || return 1
	IMG=$MNT/disk.img
	make_image "$image"
}
mkfs_and_mount() {
	case $1 in
	# Inode tables and journal zeroed now: left to ext4lazyinit, they
	# would be written in the background during the cell's first round.
	ext4) mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 \
		"$MODEL_DEV" >/dev/null || return 1 ;;
	xfs) mkfs.xfs -q -f "$MODEL_DEV" >/dev/null || return 1 ;;
	# The image in memory (the model's device stays idle): where CI and
	# test images often live, and what has no O_DIRECT before 6.6.
	tmpfs) mount -t tmpfs -o "size=$((SIZE + 64))m" tmpfs $MNT; return ;;
	*) say "unknown fs $1"; return 1 ;;
	esac
	mount "$MODEL_DEV" $MNT
}
group_down() {
	umount $MNT 2>/dev/null
	model_down
}

# prealloc: every block written once (fallocate alone would leave unwritten
# extents that read as zeroes without I/O); sparse: a hole; frag-ORDER: a
# sparse file of SIZE_FRAG MiB (at most the model's) filled by 64 KiB
# O_DIRECT writes in ORDER (seq, rev, rand, or part: shuffled within each
# MiB), so that the filesystem allocates in that order: buffered writes
# would reach it sorted by delayed allocation.  Its extent count goes to
# images.tsv.
make_image() {
	local t0 n ext
	rm -f "$IMG"
	case $1 in
	prealloc) dd if=/dev/zero of="$IMG" bs=1M count="$SIZE" status=none \
		"$([ "$FS" = tmpfs ] && echo conv=fsync || echo oflag=direct)" ;;
	sparse) truncate -s "${SIZE}M" "$IMG" ;;
	frag-seq | frag-rev | frag-rand | frag-part)
		[ "$SIZE_FRAG" -lt "$SIZE" ] && SIZE=$SIZE_FRAG
		truncate -s "${SIZE}M" "$IMG" || return 1
		n=$((SIZE * 16))
		t0=$(now)
		frag_order "${1#frag-}" "$n" | xfs_io -d "$IMG" >/dev/null || return 1
		sync
		ext=$(filefrag "$IMG" | sed -n 's/.*: \([0-9][0-9]*\) extents* found.*/\1/p')
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$MODEL" "$FS" "$1" "$SIZE" "$n" \
			"${ext:-?}" "$(secs "$t0" "$(now)")" >>$R/images.tsv
		say "image $1 on $FS: $n writes of 64 KiB, ${ext:-?} extents"
		;;
	many) mkdir -p $MNT/many ;;
	*) say "unknown image $1"; return 1 ;;
	esac
}

# frag_order ORDER N: xfs_io commands writing N 64 KiB blocks in ORDER, each
# once (xfs_io's own pwrite -R picks offsets with repeats and leaves holes).
# A fixed seed: every target of a run, and every run, reads the same layout.
frag_order() {
	awk -v order="$1" -v n="$2" '
	function shuffle(a, b,   i, j, t) {
		for (i = b - 1; i > a; i--) {
			j = a + int(rand() * (i - a + 1))
			t = o[i]; o[i] = o[j]; o[j] = t
		}
	}
	BEGIN {
		srand(22)
		for (i = 0; i < n; i++) o[i] = order == "rev" ? n - 1 - i : i
		if (order == "rand")
			shuffle(0, n)
		else if (order == "part")
			for (i = 0; i < n; i += 16) shuffle(i, i + 16 < n ? i + 16 : n)
		for (i = 0; i < n; i++) printf "pwrite -q -b 65536 %.0f 65536\n", o[i] * 65536
	}'
}

# many_images N: N preallocated images of an Nth of the model's image size
# each (whole 64 KiB), in $MNT/many; kept while N stays the same.
MANY_KIB=
many_images() {
	local n=$1 i d=$MNT/many
	MANY_KIB=$((SIZE * 1024 / n / 64 * 64))
	[ "$MANY_KIB" -gt 0 ] || { say "$SIZE MiB is too small for $n images"; return 1; }
	[ "$(cat $d/count 2>/dev/null)" = "$n" ] && return 0
	rm -rf $d && mkdir -p $d || return 1
	for ((i = 0; i < n; i++)); do
		dd if=/dev/zero of=$d/$i.img bs=64k count=$((MANY_KIB / 64)) oflag=direct status=none ||
			return 1
	done
	echo "$n" >$d/count
}

# --- the targets ---------------------------------------------------------

# attach KIND OPTS...: sets DEV (the device, or the image for kind file) and
# NOTE (what the target really does, from sysfs).
DEV='' NOTE='' UBLK_ID=''
attach() {
	local kind=$1 o attrs=() opts=() out ko=$FBLK_KO
	shift
	NOTE=
	case $kind in
	file) DEV=$IMG ;;
	loop)
		DEV=$(/sbin/losetup -f --show "$@" "$IMG") || return 1
		NOTE="dio=$(cat "/sys/block/${DEV#/dev/}/loop/dio" 2>/dev/null) $(lbs)"
		;;
	ublk)
		{ [ -x "$KUBLK" ] && [ -e /dev/ublk-control ]; } || { NOTE="no ublk"; return 1; }
		out=$("$KUBLK" add -t loop "$@" "$IMG") || { NOTE="kublk add failed"; return 1; }
		UBLK_ID=$(printf '%s\n' "$out" | awk -F '[ :]' '/dev id/{print $3; exit}')
		DEV=/dev/ublkb$UBLK_ID
		for _ in $(seq 50); do [ -b "$DEV" ] && break; sleep 0.1; done
		[ -b "$DEV" ] || { NOTE="no $DEV"; return 1; }
		NOTE=$(lbs)
		;;
	fblk)
		for o; do
			case $o in
			@*) attrs+=("${o#@}") ;;
			+ko=*) ko=${o#+ko=} ;;
			*) opts+=("$o") ;;
			esac
		done
		use_module "$ko" || { NOTE="cannot load $ko"; return 1; }
		DEV=$(fblksetup -f --show "${opts[@]}" "$IMG") || { NOTE="fblksetup ${opts[*]} failed"; return 1; }
		for o in "${attrs[@]}"; do
			echo "${o#*=}" >"/sys/block/${DEV#/dev/}/fblk/${o%%=*}" ||
				{ NOTE="cannot set ${o}"; detach fblk; return 1; }
		done
		local d=/sys/block/${DEV#/dev/}/fblk a
		for a in io_mode nr_hw_queues queue_depth $(printf '%s\n' "${attrs[@]}" | sed 's/=.*//'); do
			[ -r "$d/$a" ] && NOTE+="$a=$(cat "$d/$a") "
		done
		NOTE+=$(lbs)
		;;
	*) NOTE="unknown kind $kind"; return 1 ;;
	esac
}
# use_module KO: make KO the loaded fblk module (a target's +ko= variant, or
# the build under test).  Every device is detached between targets, so the
# module can be swapped.
LOADED_KO=$FBLK_KO
use_module() {
	[ "$1" = "$LOADED_KO" ] && return 0
	rmmod fblk || return 1
	if ! insmod "$1"; then
		insmod "$FBLK_KO"
		LOADED_KO=$FBLK_KO
		return 1
	fi
	LOADED_KO=$1
}
lbs() { echo "lbs=$(cat "/sys/block/${DEV#/dev/}/queue/logical_block_size")"; }
detach() {
	detach_dev "$1"
	local rc=$?
	DEV=
	settle
	return $rc
}
detach_dev() {
	case $1 in
	loop) /sbin/losetup -d "$DEV" ;;
	ublk) "$KUBLK" del -n "$UBLK_ID" >/dev/null ;;
	fblk) fblksetup -d "$DEV" ;;
	esac
}

# What a target leaves behind (a ublk server exiting, its io_uring torn
# down in a kworker, dirty metadata) must not run into the next target's run:
# the target after ublk-loop ran up to 40% slower than its twin later in
# the same round.
settle() {
	local i
	for i in $(seq 50); do
		pgrep -x "${KUBLK##*/}" >/dev/null || break
		sleep 0.1
	done
	sync
	sleep 1
}

# --- a guest's disk: a QEMU NBD export of the target (option nbd=AIO/CACHE) --

# qemu-storage-daemon opens DEV as a VM's disk would be (aio=native, io_uring
# or threads; cache=none is O_DIRECT, writeback the page cache of DEV) and
# exports it over NBD on a Unix socket; fio drives the export with its nbd
# engine (libnbd), as a guest's virtio disk queue would.
QSD_SOCK=/tmp/bench-qsd.sock QSD_PID=/tmp/bench-qsd.pid
export_up() {
	local aio=${1%/*} cache=${1#*/} driver=file direct out
	case $cache in none) direct=on ;; writeback) direct=off ;; *) NOTE="bad nbd=$1"; return 1 ;; esac
	command -v qemu-storage-daemon >/dev/null || { NOTE="no qemu-storage-daemon"; return 1; }
	[ -b "$DEV" ] && driver=host_device
	rm -f $QSD_SOCK $QSD_PID
	# --daemonize returns once the export is listening.
	out=$(qemu-storage-daemon --daemonize --pidfile $QSD_PID \
		--blockdev "driver=$driver,node-name=disk,filename=$DEV,aio=$aio,cache.direct=$direct" \
		--nbd-server addr.type=unix,addr.path=$QSD_SOCK \
		--export type=nbd,id=exp,node-name=disk,name=bench,writable=on 2>&1) ||
		{ NOTE="qemu-storage-daemon: $(printf '%s' "$out" | tail -n1 | sed 's/.*: //')"; return 1; }
	NOTE="${NOTE:+$NOTE }nbd aio=$aio cache=$cache"
}
export_down() {
	local pid i
	pid=$(cat $QSD_PID 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	rm -f $QSD_SOCK $QSD_PID
}

# A write run starts from a fresh filesystem holding an empty file, not
# from the last run's file removed: freeing its tens of thousands of extents
# went on in the background (xfs inodegc) into the next target's run, and
# whichever target followed the fastest writer lost half its IOPS (6.1, xfs:
# loop dio on 844 after fblk-buffered, 3035 after loop).
fresh_sparse() {
	local i
	for i in $(seq 20); do
		umount $MNT 2>/dev/null && break
		sleep 0.5
	done
	mountpoint -q $MNT && return 1
	mkfs_and_mount "$FS" || return 1
	make_image sparse
}

# The target list: name mode kind options, comments and blank lines skipped.
mapfile -t TARGETS < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' $B/targets)

# round_order ROUND: the target lines in the order round ROUND runs them.
# Each round starts ROUND-1 Nths of the list further on (N rounds), so no
# target always runs first or last: identical fblk targets ran faster the
# later they came in a round (7.3: 10791, 12195, 12542 IOPS), which read as
# one readahead policy beating another that did the same work earlier.
round_order() {
	local n=${#TARGETS[@]} i start
	start=$(((($1 - 1) * n / ROUNDS) % n))
	for ((i = 0; i < n; i++)); do
		printf '%s\n' "${TARGETS[(start + i) % n]}"
	done
}

# --- a profile of each run (PERF=<Hz>) ------------------------------------

# perf records every CPU while fio runs, into the guest's /tmp (perf cannot
# write its data over 9p), and leaves its reports in fio/: <id>.perf.txt by
# symbol, <id>.perf.cpu.txt by CPU and command.  The samples include the
# idle loop: what a CPU did not do shows too.
PERF_PID=
perf_start() {
	PERF_PID=
	[ -n "${PERF:-}" ] || return 0
	command -v perf >/dev/null || { say "PERF set, but no perf in the guest"; return 0; }
	# Started disabled, enabled through its control FIFO once it is set up
	# (seconds under emulation), so that the profile covers all of the run.
	rm -f /tmp/perf.ctl /tmp/perf.ack
	mkfifo /tmp/perf.ctl /tmp/perf.ack || return 0
	exec 5<>/tmp/perf.ctl 6<>/tmp/perf.ack
	perf record -a -g -F "$PERF" -D -1 --control=fifo:/tmp/perf.ctl,/tmp/perf.ack \
		-o "/tmp/$1.perf" >"$R/fio/$1.perf.log" 2>&1 &
	PERF_PID=$!
	echo enable >&5
	read -r -t 120 _ <&6 || say "perf did not start: see fio/$1.perf.log"
}
perf_stop() {
	[ -n "$PERF_PID" ] || return 0
	kill -INT "$PERF_PID"
	wait "$PERF_PID"
	exec 5>&- 6>&-
	perf report -i "/tmp/$1.perf" --stdio --no-children --sort comm,sym -g none \
		--percent-limit 0.2 >"$R/fio/$1.perf.txt" 2>>"$R/fio/$1.perf.log"
	perf report -i "/tmp/$1.perf" --stdio --no-children --sort cpu,comm -g none \
		>"$R/fio/$1.perf.cpu.txt" 2>>"$R/fio/$1.perf.log"
	rm -f "/tmp/$1.perf"
}

# --- one run -------------------------------------------------------------

# A cell's options (profile fields after the sixth): jobs=N (fio jobs, each
# on its own Nth of the image), devs=N (image many: N devices at once),
# nbd=AIO/CACHE (fio through a QEMU NBD export of the target) and
# targets=GLOB,... (the targets the cell runs; all without it).
JOBS=1 DEVS='' NBD='' CELL_TARGETS='' CELL_OPTS=''
parse_opts() {
	local kv kvs
	JOBS=1 DEVS='' NBD='' CELL_TARGETS='' CELL_OPTS=''
	read -ra kvs <<<"$1"
	for kv in "${kvs[@]}"; do
		case $kv in
		jobs=*) JOBS=${kv#jobs=} ;;
		devs=*) DEVS=${kv#devs=} ;;
		nbd=*) NBD=${kv#nbd=} ;;
		targets=*) CELL_TARGETS=${kv#targets=}; continue ;;
		*) say "unknown cell option $kv"; continue ;;
		esac
		CELL_OPTS+="${CELL_OPTS:+ }$kv"
	done
}
# wanted NAME: whether the cell's targets= globs take target NAME.
wanted() {
	local g globs
	[ -n "$CELL_TARGETS" ] || return 0
	IFS=, read -ra globs <<<"$CELL_TARGETS"
	for g in "${globs[@]}"; do
		# shellcheck disable=SC2053
		[[ $1 == $g ]] && return 0
	done
	return 1
}
# run_id GROUP RW BS DEPTH NAME ROUND: the run's file name stem.
run_id() {
	local sfx=${CELL_OPTS// /-} id
	sfx=${sfx//\//-}
	id="${1// /-}-$2-$3-qd$4${sfx:+-${sfx//=/}}-$5"
	[ "$ROUNDS" -gt 1 ] && id+="-r$6"
	echo "$id"
}
# record GROUP FIELDS...: a line of cells.tsv (GROUP's three words are its
# first three fields).
record() {
	local group=${1// /$'\t'}
	shift
	local IFS=$'\t'
	printf '%s\t%s\n' "$group" "$*" >>$R/cells.tsv
}

# fio_args RW BS DEPTH DIRECT: FIO_ARGS, fio's options for every job.
fio_args() {
	FIO_ARGS=(--rw="$1" --bs="$2" --iodepth="$3" --runtime="$RUNTIME" --fallocate=none)
	if [ -n "$NBD" ]; then
		FIO_ARGS+=(--ioengine=nbd "--uri=nbd+unix:///bench?socket=$QSD_SOCK")
	else
		FIO_ARGS+=(--ioengine=io_uring --direct="$4")
	fi
	[ "$1" = randrw ] && FIO_ARGS+=(--rwmixread=70)
	# A read run reads the image once at most (fio's random map: no block
	# twice), so every read is cold: run for RUNTIME over and over, a 256
	# KiB random read of a 512 MiB image came round again after 0.5 s and
	# the cell measured the page cache, the more the faster the target.
	case $1 in
	read | randread) ;;
	*) FIO_ARGS+=(--time_based) ;;
	esac
}

# run_fio ID: fio with FIO_ARGS and FIO_JOBS (a --name=... group per job),
# output in fio/ID.json.  fio takes seconds to start under TCG: the CPU and
# context-switch window is the jobs' own, /proc/stat copied by every job's
# exec_prerun and exec_postrun (into <job>.prerun.txt and <job>.postrun.txt):
# from the first job's start to the last one's end.  Sets RC, CPU, CTXT, T0,
# T1 and JSON.
RC='' CPU='' CTXT='' T0='' T1='' JSON=''
run_fio() {
	local id=$1 njobs
	njobs=$(printf '%s\n' "${FIO_JOBS[@]}" | grep -c '^--name=')
	[ "$njobs" -gt 1 ] && FIO_ARGS+=(--group_reporting)
	JSON=fio/$id.json
	rm -rf /tmp/bench-cpu && mkdir /tmp/bench-cpu
	perf_start "$id"
	T0=$(now)
	(cd /tmp/bench-cpu && timeout -k 10 $((RUNTIME * 4 + 60 + njobs)) fio "${FIO_ARGS[@]}" \
		--exec_prerun="cat /proc/stat" --exec_postrun="cat /proc/stat" \
		--output-format=json --output="$R/$JSON" "${FIO_JOBS[@]}" >/dev/null 2>"$R/fio/$id.err")
	RC=$?
	T1=$(now)
	perf_stop "$id"
	CPU='' CTXT=''
	local c0 c1 x0 x1
	c0=$(cat /tmp/bench-cpu/*.prerun.txt 2>/dev/null | awk '/^cpu /{print $4 + $7 + $8}' | sort -n | head -n1)
	c1=$(cat /tmp/bench-cpu/*.postrun.txt 2>/dev/null | awk '/^cpu /{print $4 + $7 + $8}' | sort -n | tail -n1)
	x0=$(cat /tmp/bench-cpu/*.prerun.txt 2>/dev/null | awk '/^ctxt /{print $2}' | sort -n | head -n1)
	x1=$(cat /tmp/bench-cpu/*.postrun.txt 2>/dev/null | awk '/^ctxt /{print $2}' | sort -n | tail -n1)
	[ -n "$c0" ] && [ -n "$c1" ] && CPU=$((c1 - c0))
	[ -n "$x0" ] && [ -n "$x1" ] && CTXT=$((x1 - x0))
	[ -s "$R/fio/$id.err" ] || rm -f "$R/fio/$id.err"
}

# to_bytes SIZE: 4k, 1m, 1M, 512 -> bytes.
to_bytes() {
	local n=${1%[kKmMgG]}
	case $n in '' | *[!0-9]*) return 1 ;; esac
	case $1 in
	*[kK]) echo $((n << 10)) ;;
	*[mM]) echo $((n << 20)) ;;
	*[gG]) echo $((n << 30)) ;;
	*) echo "$n" ;;
	esac
}

# qemu_img_cell ID RW BS DEPTH KIND MODE: a qi-read or qi-write workload, the
# qcow2 study's own run: `qemu-img bench -f raw -t none -n -d DEPTH -s BS`
# (-w for writes) over the target's device, one pass of the image
# (the raw file of buffered mode: -t writeback, no -n: native AIO needs
# O_DIRECT).  Output in fio/ID.qemu-img.txt; sets what run_fio sets.
qemu_img_cell() {
	local id=$1 rw=$2 b n args pre post
	JSON=fio/$id.qemu-img.txt
	b=$(to_bytes "$3") || { RC=2; echo "bad block size $3" >"$R/$JSON"; return; }
	n=$((SIZE * 1048576 / b))
	args=(-f raw -c "$n" -d "$4" -s "$b")
	if [ "$5" = file ] && [ "$6" = buffered ]; then
		args+=(-t writeback)
	else
		args+=(-t none -n)
	fi
	[ "$rw" = qi-write ] && args+=(-w)
	pre=$(cat /proc/stat)
	T0=$(now)
	timeout -k 10 $((RUNTIME * 4 + 120)) qemu-img bench "${args[@]}" "$DEV" >"$R/$JSON" 2>&1
	RC=$?
	T1=$(now)
	post=$(cat /proc/stat)
	CPU=$(($(cpu_ticks <<<"$post") - $(cpu_ticks <<<"$pre")))
	CTXT=$(($(ctxt_count <<<"$post") - $(ctxt_count <<<"$pre")))
}

# run_cell GROUP RW BS DEPTH TARGETLINE ROUND: one run (the cell's options
# parsed already), a line in cells.tsv.
run_cell() {
	local group=$1 rw=$2 bs=$3 depth=$4 round=$6 name mode kind opts direct id k part
	local status=ok ready
	read -r name mode kind opts <<<"$5"
	wanted "$name" || return 0
	id=$(run_id "$group" "$rw" "$bs" "$depth" "$name" "$round")
	NOTE='' ready=1
	if [ "$IMAGE" = sparse ] && ! fresh_sparse; then
		NOTE="no fresh filesystem" ready=0
	fi
	# shellcheck disable=SC2086
	if [ $ready = 0 ] || ! attach "$kind" $opts; then
		say "$id: skipped (${NOTE:-setup failed})"
		record "$group" "$rw" "$bs" "$depth" "$name" "$mode" "$kind" "" "" "" "" skip \
			"${NOTE:-setup failed}" "$round" "$CELL_OPTS" ""
		return 0
	fi
	if [ -n "$NBD" ] && ! export_up "$NBD"; then
		detach "$kind"
		say "$id: skipped ($NOTE)"
		record "$group" "$rw" "$bs" "$depth" "$name" "$mode" "$kind" "" "" "" "" skip "$NOTE" \
			"$round" "$CELL_OPTS" ""
		return 0
	fi
	direct=1
	[ "$kind" = file ] && [ "$mode" = buffered ] && direct=0
	drop_caches
	case $rw in
	qi-*) qemu_img_cell "$id" "$rw" "$bs" "$depth" "$kind" "$mode" ;;
	*)
		fio_args "$rw" "$bs" "$depth" "$direct"
		FIO_JOBS=()
		if [ "$JOBS" -gt 1 ]; then
			# Each job on its own part of the image: a read run still
			# reads every block once at most.
			part=$((SIZE * 1024 / JOBS))
			for ((k = 0; k < JOBS; k++)); do
				FIO_JOBS+=(--name="$id.$k" --offset="$((k * part))k" --size="${part}k")
				[ -n "$NBD" ] || FIO_JOBS+=(--filename="$DEV")
			done
		else
			FIO_JOBS=(--name="$id" --size="${SIZE}M")
			[ -n "$NBD" ] || FIO_JOBS+=(--filename="$DEV")
		fi
		run_fio "$id"
		;;
	esac
	[ -n "$NBD" ] && export_down
	[ "$RC" = 0 ] || status="fail(rc=$RC)"
	# The engine's counters for this run (they start at zero on attach).
	[ "$kind" = fblk ] && cp "/sys/block/${DEV#/dev/}/fblk/stats" "$R/fio/$id.stats"
	detach "$kind" || status="fail(detach)"
	record "$group" "$rw" "$bs" "$depth" "$name" "$mode" "$kind" "$JSON" "$CPU" "$T0" "$T1" \
		"$status" "$NOTE" "$round" "$CELL_OPTS" "$CTXT"
	say "$id: $status"
}

# --- many devices (image many, option devs=N) ------------------------------

# fblk_stats_sum DEV...: the engine's counters of all DEVs, summed, as
# "name value" lines (for the gauges, pool_depth and the *_max ones, a sum
# says little).
fblk_stats_sum() {
	local d
	for d; do
		cat "/sys/block/${d#/dev/}/fblk/stats"
	done | awk '{ sum[$1] += $2; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
		END { for (i = 0; i < n; i++) print order[i], sum[order[i]] }'
}

# Kernel threads (children of kthreadd) by name, numbers folded ("loopN",
# "kworker/uN:N"), one "name count" line each, sorted for join.  A worker's
# "-wq" suffix (the work it runs now) is dropped, a rescuer's
# ("kworker/R-wq", its workqueue for life) kept.
kthread_names() {
	ps -e -o ppid=,comm= | awk '$1 == 2 { n = $2; if (n !~ /^kworker\/R-/) sub(/-.*/, "", n)
		gsub(/[0-9]+/, "N", n); c[n]++ }
		END { for (n in c) print n, c[n] }' | LC_ALL=C sort
}
kthread_total() { awk '{ s += $2 } END { print s + 0 }' "$1"; }
# kthread_grown BEFORE AFTER: the names that gained threads, "name+N ...".
kthread_grown() {
	LC_ALL=C join -a 2 -e 0 -o 0,1.2,2.2 "$1" "$2" | awk '$3 > $2 { printf "%s+%d ", $1, $3 - $2 }'
}
# Slab, SUnreclaim, VmallocUsed and Percpu from /proc/meminfo (KiB).
meminfo4() { awk '/^(Slab|SUnreclaim|VmallocUsed|Percpu):/ { printf "%s ", $2 }' /proc/meminfo; }

# run_many DEVS ROUND TARGETLINE CELL...: attach DEVS devices of the target,
# one per image, and measure what they cost (attach time, kernel threads,
# memory); then run each CELL ("rw bs depth") with one fio job per device,
# all at once; then detach them all.  A line in many.tsv, one in cells.tsv
# per CELL.
run_many() {
	local devs=$1 round=$2 name mode kind opts i c rw bs depth id status fails=0
	local t0 t1 t2 t3 m0 m1 devlist=() ok=1 group="$MODEL $FS $IMAGE"
	read -r name mode kind opts <<<"$3"
	shift 3
	wanted "$name" || return 0
	case $kind in loop | fblk) ;; *) return 0 ;; esac
	drop_caches
	kthread_names >/tmp/bench-kt0
	m0=$(meminfo4)
	t0=$(now)
	for ((i = 0; i < devs; i++)); do
		IMG=$MNT/many/$i.img
		# shellcheck disable=SC2086
		attach "$kind" $opts || { ok=0; NOTE="device $i: ${NOTE:-attach failed}"; break; }
		devlist+=("$DEV")
	done
	t1=$(now)
	IMG=$MNT/disk.img
	sleep 1
	drop_caches
	kthread_names >/tmp/bench-kt1
	m1=$(meminfo4)
	for c; do
		read -r rw bs depth <<<"$c"
		id=$(run_id "$group" "$rw" "$bs" "$depth" "$name" "$round")
		if [ $ok = 0 ]; then
			record "$group" "$rw" "$bs" "$depth" "$name" "$mode" "$kind" "" "" "" "" skip "$NOTE" \
				"$round" "$CELL_OPTS" ""
			say "$id: skipped ($NOTE)"
			continue
		fi
		fio_args "$rw" "$bs" "$depth" 1
		FIO_JOBS=()
		for ((i = 0; i < devs; i++)); do
			FIO_JOBS+=(--name="$id.$i" --filename="${devlist[i]}" --size="${MANY_KIB}k")
		done
		[ "$kind" = fblk ] && fblk_stats_sum "${devlist[@]}" >/tmp/bench-stats0
		drop_caches
		run_fio "$id"
		status=ok
		[ "$RC" = 0 ] || status="fail(rc=$RC)"
		# The engine's counters of this run: every device's, summed, less
		# what the workload before it on the same devices left.
		[ "$kind" = fblk ] && fblk_stats_sum "${devlist[@]}" |
			awk 'NR == FNR { before[$1] = $2; next } { print $1, $2 - before[$1] }' \
				/tmp/bench-stats0 - >"$R/fio/$id.stats"
		record "$group" "$rw" "$bs" "$depth" "$name" "$mode" "$kind" "$JSON" "$CPU" "$T0" "$T1" \
			"$status" "$NOTE" "$round" "$CELL_OPTS" "$CTXT"
		say "$id: $status"
	done
	kthread_names >/tmp/bench-kt2
	t2=$(now)
	for DEV in "${devlist[@]}"; do
		detach_dev "$kind" || fails=$((fails + 1))
	done
	t3=$(now)
	DEV=
	settle
	[ $ok = 1 ] && NOTE=
	{
		printf '%s\t' "$MODEL" "$FS" "$devs" "$name" "$mode" "$kind" "$round" "${#devlist[@]}" \
			"$(secs "$t0" "$t1")" "$(secs "$t2" "$t3")" "$(kthread_total /tmp/bench-kt0)" \
			"$(kthread_total /tmp/bench-kt1)" "$(kthread_total /tmp/bench-kt2)"
		# Slab, SUnreclaim, VmallocUsed, Percpu: after the attach minus before.
		awk -v a="$m0" -v b="$m1" 'BEGIN { n = split(a, x, " "); split(b, y, " ")
			for (i = 1; i <= n; i++) printf "%d\t", y[i] - x[i] }'
		printf '%s\t' "$(kthread_grown /tmp/bench-kt0 /tmp/bench-kt1)" \
			"$(kthread_grown /tmp/bench-kt1 /tmp/bench-kt2)" "$fails"
		printf '%s\n' "$NOTE"
	} >>$R/many.tsv
	say "$devs x $name: attach $(secs "$t0" "$t1") s," \
		"kernel threads $(kthread_total /tmp/bench-kt0) -> $(kthread_total /tmp/bench-kt1) -> $(kthread_total /tmp/bench-kt2)"
}

# --- qemu-img bench and attach cost (on the first group's image) -----------

run_qemu_img() {
	local line name mode kind opts aio out secs c0 c1
	for line in "${TARGETS[@]}"; do
		read -r name mode kind opts <<<"$line"
		case $kind in loop | fblk) ;; *) continue ;; esac
		for aio in native io_uring; do
			# shellcheck disable=SC2086
			attach "$kind" $opts || continue
			drop_caches
			c0=$(cpu_ticks </proc/stat)
			out=$(timeout -k 10 300 qemu-img bench -f raw -t none -i $aio -d 64 \
				-c "$QEMUIMG_COUNT" -s 4096 "$DEV" 2>&1)
			c1=$(cpu_ticks </proc/stat)
			secs=$(printf '%s\n' "$out" | sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p')
			detach "$kind"
			printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$mode" "$aio" "$QEMUIMG_COUNT" \
				"${secs:-}" $((c1 - c0)) >>$R/qemu-img.tsv
			say "qemu-img bench $name $aio: ${secs:-failed: $out} s"
		done
	done
}

run_attach() {
	local f=/tmp/attach.img i t0 t1 dev fails
	truncate -s 64M $f
	for tool in fblksetup losetup; do
		fails=0
		t0=$(now)
		for ((i = 0; i < ATTACH_N; i++)); do
			if [ $tool = fblksetup ]; then
				dev=$(fblksetup -f --show $f) && fblksetup -d "$dev" || fails=$((fails + 1))
			else
				dev=$(/sbin/losetup -f --show $f) && /sbin/losetup -d "$dev" || fails=$((fails + 1))
			fi
		done
		t1=$(now)
		printf '%s\t%s\t%s\t%s\t%s\n' $tool "$ATTACH_N" "$t0" "$t1" $fails >>$R/attach.tsv
		say "attach+detach x$ATTACH_N with $tool: $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}') s, $fails failed"
	done
	rm -f $f
}

# --- main ----------------------------------------------------------------

mkdir -p $R/fio
: >$R/cells.tsv
: >$R/qemu-img.tsv
: >$R/attach.tsv
: >$R/images.tsv
: >$R/many.tsv

[ -d /sys/module/fblk ] || insmod "$FBLK_KO" || { emit "FBLK-SETUP-FAIL insmod fblk"; exit 1; }
modprobe -q loop
modprobe -q null_blk nr_devices=0
[ -x "$KUBLK" ] && modprobe -q ublk_drv

{
	echo "kernel	$(uname -r)"
	echo "cpus	$(nproc) x $(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
	echo "memory	$(awk '/^MemTotal/{print int($2 / 1024) " MiB"}' /proc/meminfo)"
	echo "fio	$(fio --version)"
	echo "qemu-img	$(qemu-img --version | head -n1)"
	echo "runtime	$RUNTIME s per run (reads: or one pass of the image, if sooner), $ROUNDS round(s)"
	echo "null_blk	memory backed, irqmode=2 (timer), completion_nsec=$((NULL_LAT_US * 1000)) (null@LAT: LAT), blocksize=$NULL_BS, hw_queue_depth=128, submit_queues=2; $SIZE_NULL MiB image"
	echo "brd	/dev/ram2 (256 MiB RAM disk, no latency); $SIZE_BRD MiB image"
	echo "user_hz	$(getconf CLK_TCK)"
	echo "ublk	$([ -x "$KUBLK" ] && [ -e /dev/ublk-control ] && echo "kublk (linux-source selftests)" || echo no)"
	[ -x "$KUBLK" ] && [ -e /dev/ublk-control ] &&
		echo "ublk_features	$("$KUBLK" features 2>&1 | grep -o 'UBLK_F_[A-Z_]*' | sed 's/UBLK_F_//' | tr '\n' ' ')"
	echo "qemu-storage-daemon	$(qemu-storage-daemon --version 2>/dev/null | head -n1)"
	echo "frag	fragmented images: $SIZE_FRAG MiB at most, 64 KiB O_DIRECT writes (xfs_io)"
	echo "fblksetup_help	$(fblksetup --help 2>&1 | grep -o -- '--[a-z-]*' | sort -u | tr '\n' ' ')"
	echo "fblk_sysfs	$(cd /sys/block/fblk0/fblk/ 2>/dev/null && printf '%s ' *)"
} >$R/env.txt
printf '%s\n' "${TARGETS[@]}" >$R/targets.txt

# The profile, each line expanded to every combination of its fields and of
# its options' values (but targets=, a list of globs).
expand() {
	local m f i w b d kv v c vals combos=("") new
	for kv in "${@:7}"; do
		new=()
		case $kv in
		targets=*) for c in "${combos[@]}"; do new+=("$c $kv"); done ;;
		*)
			IFS=, read -ra vals <<<"${kv#*=}"
			for c in "${combos[@]}"; do
				for v in "${vals[@]}"; do new+=("$c ${kv%%=*}=$v"); done
			done
			;;
		esac
		combos=("${new[@]}")
	done
	for m in ${1//,/ }; do for f in ${2//,/ }; do for i in ${3//,/ }; do
		for w in ${4//,/ }; do for b in ${5//,/ }; do for d in ${6//,/ }; do
			for c in "${combos[@]}"; do echo "$m $f $i $w $b $d$c"; done
		done; done; done
	done; done; done
}
CELLS=()
while read -r -a fld; do
	[ ${#fld[@]} -ge 6 ] || { say "bad profile line: ${fld[*]}"; continue; }
	mapfile -t -O ${#CELLS[@]} CELLS < <(set -f; expand "${fld[@]}")
done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' $B/profile)
mapfile -t GROUPS_ < <(printf '%s\n' "${CELLS[@]}" | awk '!seen[$1 " " $2 " " $3]++ {print $1, $2, $3}')
say "${#CELLS[@]} cells x ${#TARGETS[@]} targets, $RUNTIME s each, in ${#GROUPS_[@]} groups"

# run_group_many: the cells of a many group, by device count: every target
# attaches its devices once and runs all the count's cells on them.
run_group_many() {
	local counts n cell m f i rw bs depth opts list s0 keep
	mapfile -t counts < <(for cell in "${CELLS[@]}"; do
		read -r m f i rw bs depth opts <<<"$cell"
		[ "$m $f $i" = "$group" ] || continue
		parse_opts "$opts"
		echo "${DEVS:-64}"
	done | awk '!seen[$0]++')
	for n in "${counts[@]}"; do
		list=()
		for cell in "${CELLS[@]}"; do
			read -r m f i rw bs depth opts <<<"$cell"
			[ "$m $f $i" = "$group" ] || continue
			parse_opts "$opts"
			[ "${DEVS:-64}" = "$n" ] || continue
			list+=("$rw $bs $depth")
			keep=$opts
		done
		# The count's options (targets=) as its first line gave them.
		parse_opts "$keep"
		[ -n "$DEVS" ] || parse_opts "$keep devs=$n"
		emit "FBLK-BEGIN ${group// /-} x$n devices"
		s0=$(date +%s)
		if many_images "$n"; then
			for ((round = 1; round <= ROUNDS; round++)); do
				mapfile -t order < <(round_order "$round")
				for t in "${order[@]}"; do
					run_many "$n" "$round" "$t" "${list[@]}"
				done
			done
		else
			say "group $group: no images for $n devices"
		fi
		emit "FBLK-END ${group// /-} x$n devices rc=0 secs=$(($(date +%s) - s0))"
	done
}

for group in "${GROUPS_[@]}"; do
	read -r MODEL FS IMAGE <<<"$group"
	say "group $group: setting up"
	if ! group_up "$MODEL" "$FS" "$IMAGE"; then
		say "group $group: setup failed"
		emit "FBLK-BEGIN setup $group"
		emit "FBLK-END setup $group rc=1 secs=0"
		group_down
		continue
	fi
	if [ "$IMAGE" = many ]; then
		run_group_many
		group_down
		continue
	fi
	for cell in "${CELLS[@]}"; do
		read -r m f i rw bs depth opts <<<"$cell"
		[ "$m $f $i" = "$group" ] || continue
		parse_opts "$opts"
		label="${group// /-} $rw $bs qd$depth${CELL_OPTS:+ $CELL_OPTS}"
		emit "FBLK-BEGIN $label"
		s0=$(date +%s)
		# Rounds interleaved: a drift of the host over the cell's
		# minutes falls on every target alike.
		for ((round = 1; round <= ROUNDS; round++)); do
			mapfile -t order < <(round_order "$round")
			for t in "${order[@]}"; do
				run_cell "$group" "$rw" "$bs" "$depth" "$t" "$round"
			done
		done
		emit "FBLK-END $label rc=0 secs=$(($(date +%s) - s0))"
	done
	group_down
done

# Last, so that a driver crashing under another client costs none of the
# fio cells: qemu-img bench and attach cost on a preallocated image of the
# first group's model and filesystem.
read -r MODEL FS IMAGE <<<"${GROUPS_[0]}"
if [ "$QEMUIMG_COUNT" -gt 0 ] || [ "$ATTACH_N" -gt 0 ] && group_up "$MODEL" "$FS" prealloc; then
	echo "qemu_img_group	$MODEL $FS prealloc" >>$R/env.txt
	if [ "$QEMUIMG_COUNT" -gt 0 ]; then
		emit "FBLK-BEGIN qemu-img bench"
		s0=$(date +%s)
		run_qemu_img
		emit "FBLK-END qemu-img bench rc=0 secs=$(($(date +%s) - s0))"
	fi
	if [ "$ATTACH_N" -gt 0 ]; then
		emit "FBLK-BEGIN attach cost x$ATTACH_N"
		s0=$(date +%s)
		run_attach
		emit "FBLK-END attach cost x$ATTACH_N rc=0 secs=$(($(date +%s) - s0))"
	fi
fi
group_down
say "done"
