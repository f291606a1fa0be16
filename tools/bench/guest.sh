#!/bin/bash
# `make bench`, the guest side: runs in the test VM (guest-run.sh, MODE=bench)
# as root, from /fblk/bench/ (copied there by bench.sh with the target list
# and the profile), and writes into /results:
#   env.txt         the guest: kernel, CPUs, memory, tool versions, settings
#   cells.tsv       one line per fio run: what ran, /proc/stat CPU ticks, status
#   fio/*.json      fio's own output, one file per run
#   fio/*.stats     fblk's engine counters after each fblk run
#   fio/*.perf*.txt perf's profile of each run, with PERF set
#   qemu-img.tsv    qemu-img bench against the block device targets
#   attach.tsv      the time to attach and detach ATTACH_N devices
#   bench.log       what happened (also on the console)
# and progress for the host on fd 3 (FBLK-BEGIN/FBLK-END per cell, which
# also arms the host's per-cell watchdog).
#
# Settings come from /results/bench.env: RUNTIME (s per run), ROUNDS (runs
# of every target per cell), NULL_LAT_US, SIZE_NULL and SIZE_BRD (MiB of
# image), QEMUIMG_COUNT and ATTACH_N (0: not measured), PERF (perf's sampling
# rate in Hz for a profile of each run; empty: none).
set -u

B=/fblk/bench
R=/results
RUNTIME=6 ROUNDS=1 NULL_LAT_US=1000 NULL_BS=4096 SIZE_NULL=2048 SIZE_BRD=192
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

# The CPU ticks that count as the I/O path's cost: system, irq, softirq.
cpu_ticks() { awk '/^cpu /{print $4 + $7 + $8; exit}'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }

# --- the device models ---------------------------------------------------

MODEL_DEV= IMG= SIZE=
model_up() {
	local model=$1
	case $model in
	null)
		mkdir "$NB" || return 1
		echo 1 >"$NB/memory_backed"
		echo 2 >"$NB/irqmode"
		echo $((NULL_LAT_US * 1000)) >"$NB/completion_nsec"
		echo $((SIZE_NULL + 512)) >"$NB/size"
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
	*) say "unknown fs $1"; return 1 ;;
	esac
	mount "$MODEL_DEV" $MNT
}
group_down() {
	umount $MNT 2>/dev/null
	model_down
}

# prealloc: every block written once (fallocate alone would leave unwritten
# extents that read as zeroes without I/O); sparse: a hole.
make_image() {
	rm -f "$IMG"
	case $1 in
	prealloc) dd if=/dev/zero of="$IMG" bs=1M count="$SIZE" oflag=direct status=none ;;
	sparse) truncate -s "${SIZE}M" "$IMG" ;;
	*) say "unknown image $1"; return 1 ;;
	esac
}

# --- the targets ---------------------------------------------------------

# attach KIND OPTS...: sets DEV (the device, or the image for kind file) and
# NOTE (what the target really does, from sysfs).
DEV= NOTE= UBLK_ID=
attach() {
	local kind=$1 o attrs=() opts=() out
	shift
	NOTE=
	case $kind in
	file) DEV=$IMG ;;
	loop)
		DEV=$(/sbin/losetup -f --show "$@" "$IMG") || return 1
		NOTE="dio=$(cat "/sys/block/${DEV#/dev/}/loop/dio" 2>/dev/null) $(lbs)"
		;;
	ublk)
		[ -x "$KUBLK" ] && [ -e /dev/ublk-control ] || { NOTE="no ublk"; return 1; }
		out=$("$KUBLK" add -t loop "$@" "$IMG") || { NOTE="kublk add failed"; return 1; }
		UBLK_ID=$(printf '%s\n' "$out" | awk -F '[ :]' '/dev id/{print $3; exit}')
		DEV=/dev/ublkb$UBLK_ID
		for _ in $(seq 50); do [ -b "$DEV" ] && break; sleep 0.1; done
		[ -b "$DEV" ] || { NOTE="no $DEV"; return 1; }
		NOTE=$(lbs)
		;;
	fblk)
		for o; do
			case $o in @*) attrs+=("${o#@}") ;; *) opts+=("$o") ;; esac
		done
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
lbs() { echo "lbs=$(cat "/sys/block/${DEV#/dev/}/queue/logical_block_size")"; }
detach() {
	case $1 in
	loop) /sbin/losetup -d "$DEV" ;;
	ublk) "$KUBLK" del -n "$UBLK_ID" >/dev/null ;;
	fblk) fblksetup -d "$DEV" ;;
	esac
	DEV=
	settle
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

# run_cell GROUP RW BS DEPTH TARGETLINE ROUND: one fio run, a line in
# cells.tsv.
run_cell() {
	local group=$1 rw=$2 bs=$3 depth=$4 round=$6 name mode kind opts direct id json
	local c0 c1 cpu t0 t1 rc status=ok extra=() ready
	read -r name mode kind opts <<<"$5"
	id="${group// /-}-$rw-$bs-qd$depth-$name"
	[ "$ROUNDS" -gt 1 ] && id+="-r$round"
	json=fio/$id.json
	NOTE= ready=1
	if [ "$IMAGE" = sparse ] && ! fresh_sparse; then
		NOTE="no fresh filesystem" ready=0
	fi
	# shellcheck disable=SC2086
	if [ $ready = 0 ] || ! attach "$kind" $opts; then
		say "$id: skipped (${NOTE:-setup failed})"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\t\t\t\t%s\t%s\t%s\n' $group "$rw" "$bs" "$depth" \
			"$name" "$mode" "$kind" skip "${NOTE:-setup failed}" "$round" >>$R/cells.tsv
		return 0
	fi
	direct=1
	[ "$kind" = file ] && [ "$mode" = buffered ] && direct=0
	[ "$rw" = randrw ] && extra+=(--rwmixread=70)
	# A read run reads the image once at most (fio's random map: no block
	# twice), so every read is cold: run for RUNTIME over and over, a 256
	# KiB random read of a 512 MiB image came round again after 0.5 s and
	# the cell measured the page cache, the more the faster the target.
	case $rw in
	read | randread) ;;
	*) extra+=(--time_based) ;;
	esac
	drop_caches
	# fio takes seconds to start under TCG: the CPU window is its job's
	# own, /proc/stat copied by exec_prerun and exec_postrun (fio writes
	# their output to <job>.prerun.txt and <job>.postrun.txt).
	rm -rf /tmp/bench-cpu && mkdir /tmp/bench-cpu
	perf_start "$id"
	t0=$(now)
	(cd /tmp/bench-cpu && timeout -k 10 $((RUNTIME * 4 + 60)) fio --name="$id" \
		--filename="$DEV" --rw="$rw" "${extra[@]}" --bs="$bs" --iodepth="$depth" \
		--ioengine=io_uring --direct=$direct --runtime="$RUNTIME" \
		--size="${SIZE}M" --fallocate=none \
		--exec_prerun="cat /proc/stat" --exec_postrun="cat /proc/stat" \
		--output-format=json --output="$R/$json" >/dev/null 2>$R/fio/$id.err)
	rc=$?
	t1=$(now)
	perf_stop "$id"
	c0=$(cpu_ticks </tmp/bench-cpu/"$id".prerun.txt)
	c1=$(cpu_ticks </tmp/bench-cpu/"$id".postrun.txt)
	cpu=
	[ -n "$c0" ] && [ -n "$c1" ] && cpu=$((c1 - c0))
	[ $rc = 0 ] || status="fail(rc=$rc)"
	[ -s $R/fio/$id.err ] || rm -f $R/fio/$id.err
	# The engine's counters for this run (they start at zero on attach).
	[ "$kind" = fblk ] && cp "/sys/block/${DEV#/dev/}/fblk/stats" "$R/fio/$id.stats"
	detach "$kind" || status="fail(detach)"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $group "$rw" "$bs" "$depth" \
		"$name" "$mode" "$kind" "$json" "$cpu" "$t0" "$t1" "$status" "$NOTE" "$round" >>$R/cells.tsv
	say "$id: $status"
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
	echo "null_blk	memory backed, irqmode=2 (timer), completion_nsec=$((NULL_LAT_US * 1000)), blocksize=$NULL_BS, hw_queue_depth=128, submit_queues=2; $SIZE_NULL MiB image"
	echo "brd	/dev/ram2 (256 MiB RAM disk, no latency); $SIZE_BRD MiB image"
	echo "user_hz	$(getconf CLK_TCK)"
	echo "ublk	$([ -x "$KUBLK" ] && [ -e /dev/ublk-control ] && echo "kublk (linux-source selftests)" || echo no)"
	echo "fblksetup_help	$(fblksetup --help 2>&1 | grep -o -- '--[a-z-]*' | sort -u | tr '\n' ' ')"
	echo "fblk_sysfs	$(ls /sys/block/fblk0/fblk/ 2>/dev/null | tr '\n' ' ')"
} >$R/env.txt
printf '%s\n' "${TARGETS[@]}" >$R/targets.txt

# The profile, each line expanded to every combination of its fields.
expand() {
	local m f i w b d
	for m in ${1//,/ }; do for f in ${2//,/ }; do for i in ${3//,/ }; do
		for w in ${4//,/ }; do for b in ${5//,/ }; do for d in ${6//,/ }; do
			echo "$m $f $i $w $b $d"
		done; done; done
	done; done; done
}
CELLS=()
while read -r -a fld; do
	[ ${#fld[@]} -eq 6 ] || { say "bad profile line: ${fld[*]}"; continue; }
	mapfile -t -O ${#CELLS[@]} CELLS < <(expand "${fld[@]}")
done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' $B/profile)
mapfile -t GROUPS_ < <(printf '%s\n' "${CELLS[@]}" | awk '!seen[$1 " " $2 " " $3]++ {print $1, $2, $3}')
say "${#CELLS[@]} cells x ${#TARGETS[@]} targets, $RUNTIME s each, in ${#GROUPS_[@]} groups"

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
	for cell in "${CELLS[@]}"; do
		read -r m f i rw bs depth <<<"$cell"
		[ "$m $f $i" = "$group" ] || continue
		label="${group// /-} $rw $bs qd$depth"
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
