#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run-time settings of a bound device: io_mode (buffered, direct, dontcache,
# auto), submit (async, threads) and pool_size, switched through sysfs and
# through FBLK_SET_PARAMS.  What the kernel or the backing file cannot do is
# refused with EOPNOTSUPP, a value out of range with EINVAL, and a refused
# change changes nothing.  Data written in one mode reads back in every
# other (tools/fblk-verify), and switching back and forth while fio verifies
# a random read/write load loses nothing.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

tap_plan 14
fblk_require_module || tap_done

dmesg_start=$(dmesg | wc -l)
VERIFY=$(command -v fblk-verify || echo "${FBLK_BIN:-/fblk/bin}/fblk-verify")

# The ioctls and errno-exact writes, in python3.  Sizes from fblk.h:
# struct fblk_params 64 bytes, struct fblk_info 400.
_MODES_PY='
import errno, fcntl, os, struct, sys

def ioc(d, nr, size):
    return (d << 30) | (size << 16) | (0xFB << 8) | nr

GET_INFO = ioc(2, 0x03, 400)
SET_PARAMS = ioc(1, 0x05, 64)
MODES = {"buffered": 0, "direct": 1, "dontcache": 2, "auto": 3}
SUBMIT = {"async": 0, "threads": 1}
FIELD = {"io_mode": 1, "submit": 2, "pool_size": 4}

def result(fn):
    try:
        fn()
        print("OK")
    except OSError as e:
        # ENOTSUP and EOPNOTSUPP are one number on Linux: say the latter.
        if e.errno == errno.EOPNOTSUPP:
            print("EOPNOTSUPP")
        else:
            print(errno.errorcode.get(e.errno, str(e.errno)))

def setparams(dev, *kv):
    mask, vals, reserved = 0, {"io_mode": 0, "submit": 0, "pool_size": 0}, 0
    for a in kv:
        k, v = a.split("=", 1)
        if k == "mask":
            mask |= int(v, 0)
        elif k == "reserved":
            reserved = int(v, 0)
        else:
            mask |= FIELD[k]
            vals[k] = MODES.get(v, SUBMIT.get(v, None)) if k != "pool_size" else int(v)
            if vals[k] is None:
                vals[k] = int(v)
    # mask io_mode submit pool_size ra_policy ra_kb inline_depth reserved32
    # reserved[4]: "reserved" goes to reserved[0].
    buf = struct.pack("=IIIIIIII4Q", mask, vals["io_mode"], vals["submit"],
                      vals["pool_size"], 0, 0, 0, 0, reserved, 0, 0, 0)
    fd = os.open(dev, os.O_RDONLY)
    try:
        result(lambda: fcntl.ioctl(fd, SET_PARAMS, buf))
    finally:
        os.close(fd)

def getinfo(dev):
    fd = os.open(dev, os.O_RDONLY)
    buf = bytearray(400)
    fcntl.ioctl(fd, GET_INFO, buf)
    os.close(fd)
    number, state, flags, io_mode = struct.unpack_from("=IIII", buf, 0)
    mask, p_mode, p_submit, p_pool = struct.unpack_from("=IIII", buf, 336)
    names = {v: k for k, v in MODES.items()}
    print("io_mode=%s flags=%d requested=%s submit=%d pool_size=%d mask=%d" %
          (names.get(io_mode, io_mode), flags, names.get(p_mode, p_mode),
           p_submit, p_pool, mask))

def write(path, value):
    def w():
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    result(w)

def probe_direct(path):
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
        print("yes")
    except OSError:
        print("no")

def probe_dontcache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.preadv(fd, [bytearray(4096)], 0, 0x80)  # RWF_DONTCACHE
        print("yes")
    except OSError:
        print("no")
    finally:
        os.close(fd)

cmd, args = sys.argv[1], sys.argv[2:]
{"setparams": setparams, "getinfo": getinfo, "write": write,
 "probe_direct": probe_direct, "probe_dontcache": probe_dontcache}[cmd](*args)
'
mpy() {
	python3 -c "$_MODES_PY" "$@"
}

# sysw DEV ATTR VALUE: OK or the errno name of the write
sysw() {
	mpy write "/sys/block/${1##*/}/fblk/$2" "$3"
}

# settings DEV: the three settings as sysfs shows them, one line
settings() {
	echo "io_mode=$(fblk_attr "$1" io_mode) requested=$(fblk_attr "$1" io_mode_requested)" \
		"submit=$(fblk_attr "$1" submit) pool_size=$(fblk_attr "$1" pool_size)" \
		"direct_io=$(fblk_attr "$1" direct_io)"
}

# expect DESC WANT GOT: ok if equal
expect() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1" "want '$2', got '$3'"
	fi
}

splats() {
	dmesg | tail -n +"$((dmesg_start + 1))" |
		grep -E 'BUG:|WARNING:|blocked for more than|Call Trace|lockdep|KASAN|Oops'
}

img=$(fblk_image "$FBLK_SCRATCH" 64M)
dd if=/dev/zero of="$img" bs=1M count=64 conv=notrunc status=none
dev=$(fblk_attach "$img")
if [ -z "$dev" ]; then
	diag "attach failed"
	tap_done
fi
dontcache=$(mpy probe_dontcache "$img")
diag "backing file on ext4: RWF_DONTCACHE $dontcache"

# ---- 1: switching through sysfs ----
got=""
for m in direct buffered auto buffered direct; do
	r=$(sysw "$dev" io_mode "$m")
	got+="$m:$r:$(fblk_attr "$dev" io_mode)/$(fblk_attr "$dev" io_mode_requested)/$(fblk_attr "$dev" direct_io) "
done
expect "io_mode through sysfs: buffered, direct, auto (direct on ext4)" \
	"direct:OK:direct/direct/1 buffered:OK:buffered/buffered/0 auto:OK:direct/auto/1 buffered:OK:buffered/buffered/0 direct:OK:direct/direct/1 " \
	"$got"

# ---- 2: switching through FBLK_SET_PARAMS, read back with FBLK_GET_INFO ----
got=""
for m in buffered auto direct buffered; do
	got+="$(mpy setparams "$dev" io_mode=$m) $(mpy getinfo "$dev" | cut -d' ' -f1,3); "
done
expect "io_mode through FBLK_SET_PARAMS and FBLK_GET_INFO" \
	"OK io_mode=buffered requested=buffered; OK io_mode=direct requested=auto; OK io_mode=direct requested=direct; OK io_mode=buffered requested=buffered; " \
	"$got"

# ---- 3: dontcache where offered, else EOPNOTSUPP and nothing changed ----
before=$(settings "$dev")
r1=$(sysw "$dev" io_mode dontcache)
after1=$(settings "$dev")
r2=$(mpy setparams "$dev" io_mode=dontcache)
after2=$(settings "$dev")
diag "dontcache: sysfs $r1 ($after1), ioctl $r2 ($after2)"
if [ "$dontcache" = yes ]; then
	expect "dontcache offered by this kernel: accepted through sysfs and ioctl" \
		"OK dontcache/dontcache OK dontcache/dontcache" \
		"$r1 $(fblk_attr "$dev" io_mode)/$(fblk_attr "$dev" io_mode_requested) $r2 $(mpy getinfo "$dev" | cut -d' ' -f1,3 | sed 's/io_mode=//; s/ requested=/\//')"
	sysw "$dev" io_mode buffered >/dev/null
else
	expect "dontcache not offered by this kernel: EOPNOTSUPP, mode unchanged" \
		"EOPNOTSUPP EOPNOTSUPP $before $before" "$r1 $r2 $after1 $after2"
fi

# ---- 4: invalid values are rejected with EINVAL and change nothing ----
sysw "$dev" io_mode buffered >/dev/null
sysw "$dev" submit async >/dev/null
sysw "$dev" pool_size 16 >/dev/null
before=$(settings "$dev")
got=""
for kv in "io_mode bogus" "io_mode directx" "io_mode 1" "submit bogus" "submit 2" \
	"pool_size 0" "pool_size 513" "pool_size -1" "pool_size abc"; do
	# shellcheck disable=SC2086
	got+="$(sysw "$dev" $kv) "
done
expect "sysfs: invalid io_mode, submit, pool_size values are EINVAL" \
	"EINVAL EINVAL EINVAL EINVAL EINVAL EINVAL EINVAL EINVAL EINVAL " "$got"
got=""
for a in io_mode=4 io_mode=99 submit=2 pool_size=0 pool_size=513 mask=0x40 mask=0x80000000 \
	"io_mode=direct reserved=1" "io_mode=direct pool_size=0" "io_mode=direct submit=5"; do
	# shellcheck disable=SC2086
	got+="$(mpy setparams "$dev" $a) "
done
expect "FBLK_SET_PARAMS: out-of-range fields, unknown mask bits, reserved are EINVAL" \
	"EINVAL EINVAL EINVAL EINVAL EINVAL EINVAL EINVAL EINVAL EINVAL EINVAL " "$got"
expect "nothing changed by the refused requests" "$before" "$(settings "$dev")"

# ---- 5: pool_size bounds ----
got="$(sysw "$dev" pool_size 1):$(fblk_attr "$dev" pool_size) "
got+="$(sysw "$dev" pool_size 512):$(fblk_attr "$dev" pool_size) "
got+="$(mpy setparams "$dev" pool_size=7):$(fblk_attr "$dev" pool_size) "
got+="$(mpy setparams "$dev" pool_size=512):$(mpy getinfo "$dev" | cut -d' ' -f5)"
expect "pool_size 1..512 accepted, read back in sysfs and GET_INFO" \
	"OK:1 OK:512 OK:7 OK:pool_size=512" "$got"
sysw "$dev" pool_size 16 >/dev/null

# ---- 6: auto on tmpfs ----
# auto is direct where the file can do O_DIRECT (tmpfs can since 6.6), else
# dontcache where offered, else buffered; direct on a tmpfs file without
# O_DIRECT is EOPNOTSUPP.
timg=$(fblk_image "$FBLK_SCRATCH_TMP" 16M)
tdev=$(fblk_attach "$timg")
if [ -z "$tdev" ]; then
	not_ok "auto on tmpfs follows what tmpfs can do" "attach failed"
else
	tdirect=$(mpy probe_direct "$timg")
	tdc=$(mpy probe_dontcache "$timg")
	r1=$(sysw "$tdev" io_mode auto)
	m1=$(fblk_attr "$tdev" io_mode)
	sysw "$tdev" io_mode buffered >/dev/null
	r2=$(sysw "$tdev" io_mode direct)
	m2=$(fblk_attr "$tdev" io_mode)
	diag "tmpfs: O_DIRECT $tdirect, RWF_DONTCACHE $tdc; auto -> $r1 $m1; direct -> $r2 $m2"
	if [ "$tdirect" = yes ]; then
		want="OK direct OK direct"
	elif [ "$tdc" = yes ]; then
		want="OK dontcache EOPNOTSUPP buffered"
	else
		want="OK buffered EOPNOTSUPP buffered"
	fi
	expect "auto on tmpfs follows what tmpfs can do (O_DIRECT: $tdirect)" "$want" "$r1 $m1 $r2 $m2"
	fblk_detach "$tdev"
fi

# ---- 6b: auto on overlayfs over tmpfs (a container's image) ----
# 6.1's overlayfs takes O_DIRECT opens of every file and fails each direct
# read of a file on tmpfs with EINVAL: what counts is whether a direct read
# works, which auto must find out, not what the open said.
ovl=$FBLK_T_STATE/ovl
mkdir -p "$ovl/lower" "$ovl/rw" "$ovl/m"
if mount -t tmpfs tmpfs "$ovl/rw" && mkdir -p "$ovl/rw/upper" "$ovl/rw/work" &&
	head -c 8M /dev/urandom >"$ovl/lower/img" &&
	mount -t overlay overlay -o "lowerdir=$ovl/lower,upperdir=$ovl/rw/upper,workdir=$ovl/rw/work" "$ovl/m"; then
	fblk_at_exit "umount '$ovl/m' '$ovl/rw' 2>/dev/null"
	: >>"$ovl/m/img"	# copy-up: the file is on tmpfs now
	if dd if="$ovl/m/img" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null; then
		odirect=yes
	else
		odirect=no
	fi
	odc=$(mpy probe_dontcache "$ovl/m/img")
	odev=$(fblk_attach "$ovl/m/img")
	if [ -z "$odev" ]; then
		not_ok "auto on overlayfs over tmpfs picks a mode that works" "attach failed"
		not_ok "and the device reads back the image"
	else
		sysw "$odev" io_mode auto >/dev/null
		m1=$(fblk_attr "$odev" io_mode)
		r2=$(sysw "$odev" io_mode direct)
		m2=$(fblk_attr "$odev" io_mode)
		sysw "$odev" io_mode auto >/dev/null
		diag "overlayfs/tmpfs: a direct read $odirect; auto -> $m1; direct -> $r2 $m2"
		if [ "$odirect" = yes ]; then
			want="direct OK direct"
		else
			want="$([ "$odc" = yes ] && echo dontcache || echo buffered) EOPNOTSUPP $m1"
		fi
		expect "auto on overlayfs over tmpfs picks a mode that works (direct read: $odirect)" \
			"$want" "$m1 $r2 $m2"
		oerr() { awk '$1 == "errors" {print $2}' "/sys/block/${odev##*/}/fblk/stats"; }
		if out=$(cmp "$odev" "$ovl/m/img" 2>&1) && [ "$(oerr)" = 0 ]; then
			ok "and the device reads back the image, no request failing"
		else
			not_ok "and the device reads back the image, no request failing" \
				"$out; errors $(oerr)"
		fi
		fblk_detach "$odev"
	fi
else
	not_ok "auto on overlayfs over tmpfs picks a mode that works" "cannot mount the overlay"
	not_ok "and the device reads back the image, no request failing"
fi

# ---- 7: data written in each mode reads back in every other ----
# In each mode fblk-verify runs its mixed load (reads checked against the
# latest generation while writes go on), then writes with the map saved;
# the next mode verifies all of that before its own turn.
modes="buffered direct auto"
[ "$dontcache" = yes ] && modes+=" dontcache"
if [ ! -x "$VERIFY" ]; then
	not_ok "fblk-verify in every io_mode: zero mismatches" "no fblk-verify binary"
else
	log=$FBLK_T_STATE/verify
	state=$FBLK_T_STATE/verify.map
	fails=""
	prev=""
	for m in $modes buffered; do
		[ "$(sysw "$dev" io_mode "$m")" = OK ] || { fails+=" $m:refused"; continue; }
		if [ -n "$prev" ]; then
			"$VERIFY" --mode verify --state "$state" "$dev" >>"$log" 2>&1 ||
				fails+=" $prev->$m:verify"
		fi
		"$VERIFY" --mode mixed --seconds 2 --seed 7 --json "$dev" >>"$log" 2>&1 ||
			fails+=" $m:mixed"
		"$VERIFY" --mode write-only --seconds 2 --seed 7 --state "$state" "$dev" >>"$log" 2>&1 ||
			fails+=" $m:write"
		prev=$m
	done
	sed 's/^/# /' "$log"
	if [ -z "$fails" ]; then
		ok "fblk-verify in every io_mode ($modes): zero mismatches"
	else
		not_ok "fblk-verify in every io_mode ($modes): zero mismatches" "failed:$fails"
	fi
	# And with every I/O from the pool.
	sysw "$dev" submit threads >/dev/null
	if "$VERIFY" --mode mixed --seconds 2 --seed 9 --json "$dev" >"$log" 2>&1; then
		ok "fblk-verify with submit=threads: zero mismatches"
	else
		sed 's/^/# /' "$log"
		not_ok "fblk-verify with submit=threads: zero mismatches"
	fi
	sysw "$dev" submit async >/dev/null
fi

# ---- 8: switching while fio verifies a random read/write load ----
# Four fio jobs, each on its own 12 MiB of the device, write and read at
# random (verify=crc32c checks every block read back against what the job
# wrote), and fblk-verify runs its mixed mode on a second device, while
# io_mode, submit and pool_size change every few hundred milliseconds.
vimg=$(fblk_image "$FBLK_SCRATCH" 32M)
vdev=$(fblk_attach "$vimg")
switch_secs=$(fblk_load 20 8)
fio --name=switch --filename="$dev" --ioengine=io_uring --direct=1 --bs=4k \
	--iodepth=16 --numjobs=4 --size=12M --offset_increment=16M --rw=randrw \
	--verify=crc32c --verify_fatal=1 --verify_backlog=64 --runtime="$switch_secs" --time_based \
	--group_reporting >"$FBLK_T_STATE/fio-switch" 2>&1 &
fio_pid=$!
vpid=
if [ -n "$vdev" ] && [ -x "$VERIFY" ]; then
	"$VERIFY" --mode mixed --seconds $((switch_secs - 2)) --depth 32 --json "$vdev" >"$FBLK_T_STATE/v-switch" 2>&1 &
	vpid=$!
fi
switches=0
refused=""
seq="direct auto buffered"
[ "$dontcache" = yes ] && seq+=" dontcache"
while kill -0 "$fio_pid" 2>/dev/null; do
	for m in $seq; do
		for d in "$dev" $vdev; do
			r=$(sysw "$d" io_mode "$m")
			[ "$r" = OK ] || refused+=" io_mode=$m:$r"
		done
		switches=$((switches + 1))
		sleep 0.3
	done
	r=$(mpy setparams "$dev" submit=threads pool_size=4)
	[ "$r" = OK ] || refused+=" threads:$r"
	sleep 0.3
	r=$(mpy setparams "$dev" submit=async pool_size=64 io_mode=auto)
	[ "$r" = OK ] || refused+=" async:$r"
	switches=$((switches + 2))
done
wait "$fio_pid"
fio_rc=$?
v_rc=0
[ -n "$vpid" ] && { wait "$vpid"; v_rc=$?; }
grep -E '^ +(read|write):|err=|verify' "$FBLK_T_STATE/fio-switch" | sed 's/^ */# /'
[ -n "$vpid" ] && sed 's/^/# /' "$FBLK_T_STATE/v-switch"
diag "$switches switches; stats: $(tr '\n' ' ' <"/sys/block/${dev##*/}/fblk/stats")"
if [ "$fio_rc" = 0 ] && [ "$v_rc" = 0 ] && [ -z "$refused" ] && [ -n "$vpid" ]; then
	ok "switching io_mode/submit/pool_size under fio verify and fblk-verify: no error"
else
	[ "$fio_rc" = 0 ] || sed 's/^/# /' "$FBLK_T_STATE/fio-switch" | tail -n 30
	not_ok "switching io_mode/submit/pool_size under fio verify and fblk-verify: no error" \
		"fio rc=$fio_rc fblk-verify rc=$v_rc${vpid:- (not run)} refused:${refused:- none}"
fi

# ---- 9: no splat ----
out=$(splats)
if [ -z "$out" ]; then
	ok "no kernel warning, hung task or lockdep report"
else
	not_ok "no kernel warning, hung task or lockdep report" "$(echo "$out" | head -n 5)"
fi

tap_done
