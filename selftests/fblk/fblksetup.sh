#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# fblksetup, end to end: every option a losetup user would reach for, checked
# against sysfs (/sys/block/fblkN/fblk/) rather than against the tool's own
# output where possible.  Runs as root in the test VM with the fblk module
# loaded; prints TAP, one line per check; exits 1 if any check failed.
#
# Files live in $FBLK_SCRATCH (ext4).  Everything attached or added here is
# detached and removed again on exit, failed checks or not.

# Most checks are strings for eval, which shellcheck cannot look into.
# shellcheck disable=SC2016,SC2034

FBLKSETUP=${FBLK_BIN:+$FBLK_BIN/}fblksetup
command -v "$FBLKSETUP" >/dev/null || FBLKSETUP=fblksetup
SCRATCH=${FBLK_SCRATCH:-/tmp}
TMPFS=${FBLK_SCRATCH_TMP:-/tmp}
DIR=$SCRATCH/fblksetup.$$
MiB=$((1024 * 1024))

# ---- TAP ----

tests=0
failures=0

ok() {
	tests=$((tests + 1))
	echo "ok $tests - $*"
}

not_ok() {
	tests=$((tests + 1))
	failures=$((failures + 1))
	echo "not ok $tests - $*"
}

# check "description" command...: one TAP line from a command's status.
check() {
	local desc=$1

	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# Each line of each argument as a TAP comment.
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }

# ---- helpers ----

# N of /dev/fblkN
num() { local d=${1##*/}; echo "${d#fblk}"; }
# (Builtins rather than cat: every fork is slow in an emulated VM.)
attr() { local d=${1##*/}; echo "$(<"/sys/block/$d/fblk/$2")"; } 2>/dev/null
size_bytes() { local d=${1##*/}; echo $(($(<"/sys/block/$d/size") * 512)); }

# Devices bound now, and devices present now, one name per line.
bound_devices() {
	local d
	for d in /sys/block/fblk*; do
		[ -e "$d/fblk/state" ] || continue
		[ "$(<"$d/fblk/state")" = unbound ] || echo "${d##*/}"
	done
}
all_devices() {
	local d
	for d in /sys/block/fblk*; do
		[ -e "$d" ] && echo "${d##*/}"
	done
}

# FBLK_CTL_REMOVE (_IO(0xFB, 0x81)) of each N given: fblksetup has no such
# option, like losetup, but the tests must take away the devices they made.
ctl_remove() {
	python3 - "$@" <<'EOF'
import fcntl, os, sys
fd = os.open("/dev/fblk-control", os.O_RDWR)
for n in sys.argv[1:]:
    try:
        fcntl.ioctl(fd, 0xFB81, int(n))
    except OSError as e:
        print("# FBLK_CTL_REMOVE %s: %s" % (n, e))
EOF
}

DEVICES_AT_START=" $(all_devices | tr '\n' ' ') "

cleanup() {
	local d f extra=()

	# Ours are the devices backed by files in $DIR.
	"$FBLKSETUP" -l -n --raw -O NAME,BACK-FILE 2>/dev/null | while read -r d f; do
		case $f in "$DIR"/* | "$TMPFS/fblksetup-tmpfs.$$.img" | /dev/ram2) "$FBLKSETUP" -d "$d" ;; esac
	done
	# Devices made by -f, --queues/--depth or DEV FILE go away again.
	for d in $(all_devices); do
		[[ $DEVICES_AT_START == *" $d "* ]] && continue
		[ "$(<"/sys/block/$d/fblk/state")" = unbound ] && extra+=("${d#fblk}")
	done
	[ ${#extra[@]} -eq 0 ] || ctl_remove "${extra[@]}"
	rm -rf "$DIR" "$TMPFS/fblksetup-tmpfs.$$.img"
}
trap cleanup EXIT

mkimg() {
	truncate -s "$2" "$DIR/$1" && echo "$DIR/$1"
}

# attach FILE [options...]: -f --show, the device name on stdout.
attach() {
	local file=$1

	shift
	"$FBLKSETUP" "$@" -f --show "$file"
}

mkdir -p "$DIR" || { echo "1..0 # SKIP cannot make $DIR"; exit 4; }
if ! command -v "$FBLKSETUP" >/dev/null; then
	echo "not ok 1 - fblksetup is not in PATH or FBLK_BIN"
	echo "1..1"
	exit 1
fi
[ -e /dev/fblk-control ] || { echo "not ok 1 - /dev/fblk-control missing: module not loaded"; echo "1..1"; exit 1; }

# ---- help, version, the first free device ----

out=$("$FBLKSETUP" --help)
rc=$?
check "--help exits 0 and shows the usage" \
	eval '[ $rc -eq 0 ] && grep -q -- --find <<<"$out" && grep -q QUEUES <<<"$out"'
out=$("$FBLKSETUP" --version)
rc=$?
check "--version exits 0 and names the tool" eval '[ $rc -eq 0 ] && grep -q ^fblksetup <<<"$out"'

free=$("$FBLKSETUP" -f)
check "-f alone prints a free device ($free)" \
	eval '[[ $free =~ ^/dev/fblk[0-9]+$ ]] && [ "$(attr "$free" state)" = unbound ]'

# ---- attach with -f --show, and the ways to look at it ----

img1=$(mkimg a.img 16M)
ino1=$(stat -c %i "$img1")
dev1=$(attach "$img1")
rc=$?
check "-f --show attaches and prints the device ($dev1)" \
	eval '[ $rc -eq 0 ] && [[ $dev1 =~ ^/dev/fblk[0-9]+$ ]] && [ -b "$dev1" ]'
check "sysfs shows $dev1 bound to $img1" \
	eval '[ "$(attr "$dev1" state)" = bound ] && [ "$(attr "$dev1" backing_file)" = "$img1" ]'
check "device size is the file size" [ "$(size_bytes "$dev1")" = $((16 * MiB)) ]

out=$("$FBLKSETUP" -a)
check "-a prints losetup's line for $dev1" \
	grep -qE "^$dev1: \[[0-9]+\]:$ino1 \($img1\)\$" <<<"$out"

out=$("$FBLKSETUP" "$dev1")
check "fblksetup DEV prints the same line" \
	grep -qE "^$dev1: \[[0-9]+\]:$ino1 \($img1\)\$" <<<"$out"

out=$("$FBLKSETUP" -l)
diag "fblksetup -l:" "$out"
check "-l prints losetup's default columns plus fblk's" \
	[ "$(head -n1 <<<"$out" | tr -s ' ' | sed 's/ $//')" = \
	  "NAME SIZELIMIT OFFSET AUTOCLEAR RO BACK-FILE DIO LOG-SEC QUEUES DEPTH MODE STATE" ]
row=$(grep "^$dev1 " <<<"$out" | tr -s ' ')
check "-l row for $dev1: 0 0 0 0 $img1 0 512 ... buffered bound" \
	eval '[[ "$row" =~ ^$dev1\ 0\ 0\ 0\ 0\ $img1\ 0\ 512\ [0-9]+\ [0-9]+\ buffered\ bound$ ]]'

out=$("$FBLKSETUP")
check "no arguments lists like -l" grep -q "^$dev1 " <<<"$out"

out=$("$FBLKSETUP" -l -n --raw -O NAME,BACK-FILE,SIZE "$dev1")
check "-l -n --raw -O NAME,BACK-FILE,SIZE DEV" [ "$out" = "$dev1 $img1 $((16 * MiB))" ]

json=$("$FBLKSETUP" -l --json)
check "-l --json is JSON with losetup's fields, typed" python3 - "$json" "$dev1" "$img1" <<'EOF'
import json, sys
doc = json.loads(sys.argv[1])
dev = [d for d in doc["fblkdevices"] if d["name"] == sys.argv[2]]
assert len(dev) == 1, dev
d = dev[0]
want = {"name": sys.argv[2], "sizelimit": 0, "offset": 0, "autoclear": False,
        "ro": False, "back-file": sys.argv[3], "dio": False, "log-sec": 512,
        "mode": "buffered", "state": "bound"}
for k, v in want.items():
    assert d[k] == v and type(d[k]) is type(v), (k, d[k], v)
assert type(d["queues"]) is int and d["queues"] >= 1, d
assert type(d["depth"]) is int and d["depth"] >= 1, d
assert list(d) == ["name", "sizelimit", "offset", "autoclear", "ro", "back-file",
                   "dio", "log-sec", "queues", "depth", "mode", "state"], list(d)
EOF
check "--json values agree with sysfs" python3 - "$json" "$dev1" \
	"$(attr "$dev1" nr_hw_queues)" "$(attr "$dev1" queue_depth)" <<'EOF'
import json, sys
d = [d for d in json.loads(sys.argv[1])["fblkdevices"] if d["name"] == sys.argv[2]][0]
assert d["queues"] == int(sys.argv[3]) and d["depth"] == int(sys.argv[4]), d
EOF

img2=$(mkimg b.img 8M)
out=$("$FBLKSETUP" -j "$img1")
check "-j finds $dev1 by its file" [ "$out" = "$("$FBLKSETUP" "$dev1")" ]
out=$("$FBLKSETUP" -j "$img2")
check "-j on a file nothing uses prints nothing" [ -z "$out" ]
ln -s "$img1" "$DIR/link"
out=$("$FBLKSETUP" -j "$DIR/link" -l -n -O NAME)
check "-j matches the inode, not the name (symlink)" [ "$out" = "$dev1" ]

# ---- -d ----

"$FBLKSETUP" -d "$dev1"
rc=$?
check "-d detaches $dev1" eval '[ $rc -eq 0 ] && [ "$(attr "$dev1" state)" = unbound ]'
"$FBLKSETUP" "$dev1" 2>/dev/null
check "fblksetup DEV on a detached device exits 1" [ $? -eq 1 ]
err=$("$FBLKSETUP" -d "$dev1" 2>&1)
rc=$?
check "-d on a detached device exits 1 naming it" \
	eval '[ $rc -eq 1 ] && grep -qF "$dev1" <<<"$err"'

# ---- -o, --sizelimit, -b ----

dev=$(attach "$img1" -o 1MiB --sizelimit 4M)
check "-o 1MiB --sizelimit 4M: size 4 MiB, offset in sysfs" \
	eval '[ "$(size_bytes "$dev")" = $((4 * MiB)) ] && [ "$(attr "$dev" offset)" = $MiB ] &&
	      [ "$(attr "$dev" sizelimit)" = $((4 * MiB)) ]'
out=$("$FBLKSETUP" -a)
check "-a shows offset and sizelimit" \
	grep -qE "^$dev: \[[0-9]+\]:$ino1 \($img1\), offset $MiB, sizelimit $((4 * MiB))\$" <<<"$out"
out=$("$FBLKSETUP" -j "$img1" -o 1M -l -n -O NAME)
check "-j FILE -o N matches the offset" [ "$out" = "$dev" ]
out=$("$FBLKSETUP" -j "$img1" -o 2M -l -n -O NAME)
check "-j FILE -o other does not" [ -z "$out" ]

out=$("$FBLKSETUP" -L -f --show -o 1M --sizelimit 4M "$img1")
check "-L -f with the same offset and size limit reuses $dev" [ "$out" = "$dev" ]
err=$("$FBLKSETUP" -L -f --show -o 2M "$img1" 2>&1)
rc=$?
check "-L -f with an overlapping range fails, naming $dev" \
	eval '[ $rc -eq 1 ] && grep -qF "$dev: overlapping" <<<"$err" &&
	      [ "$("$FBLKSETUP" -j "$img1" -l -n -O NAME)" = "$dev" ]'

out=$("$FBLKSETUP" -l -O +SIZE "$dev" | head -n1)
check "-O +SIZE adds to the default columns" eval '[[ $out =~ ^NAME\ .*\ STATE\ +SIZE$ ]]'
ncols=$("$FBLKSETUP" --help | sed -n '/^Available output columns:/,/^$/p' | grep -c '^  *[A-Z]')
check "--output-all --json has every column of --help ($ncols)" eval \
	'"$FBLKSETUP" --output-all --json "$dev" | python3 -c "import json,sys; d = json.load(sys.stdin)[\"fblkdevices\"][0]; assert len(d) == $ncols and $ncols >= 17 and d[\"size\"] == 4194304 and d[\"back-ino\"] == $ino1, d"'

# Users who cannot open /dev/fblkN list from sysfs, as with losetup.
if command -v setpriv >/dev/null && [ "$(stat -c %a "$dev")" != 666 ]; then
	asroot=$("$FBLKSETUP" -l --raw -O NAME,BACK-FILE,BACK-INO,OFFSET,SIZELIMIT,RO,LOG-SEC,QUEUES,DEPTH,MODE,STATE "$dev")
	asuser=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$FBLKSETUP" -l --raw -O NAME,BACK-FILE,BACK-INO,OFFSET,SIZELIMIT,RO,LOG-SEC,QUEUES,DEPTH,MODE,STATE "$dev")
	check "an unprivileged user sees the same listing (from sysfs)" \
		eval '[ -n "$asuser" ] && [ "$asuser" = "$asroot" ]'
	diag "as nobody: $asuser"
fi
"$FBLKSETUP" -d "$dev"

dev=$(attach "$img1" --offset=0x100000)
check "-o 0x100000 alone: size is the rest of the file" [ "$(size_bytes "$dev")" = $((15 * MiB)) ]
"$FBLKSETUP" -d "$dev"

dev=$(attach "$img1" -b 4096)
check "-b 4096: logical block size 4096" \
	eval '[ "$(cat /sys/block/fblk$(num "$dev")/queue/logical_block_size)" = 4096 ] &&
	      [ "$("$FBLKSETUP" -l -n -O LOG-SEC "$dev" | tr -d " ")" = 4096 ]'
"$FBLKSETUP" -d "$dev"

# ---- -r ----

dev=$(attach "$img1" -r)
check "-r: read_only in sysfs and the block layer" \
	eval '[ "$(attr "$dev" read_only)" = 1 ] && [ "$(cat /sys/block/fblk$(num "$dev")/ro)" = 1 ]'
check "-r: writing to the device fails" \
	eval '! dd if=/dev/zero of="$dev" bs=4096 count=1 oflag=direct 2>/dev/null'
check "-r: RO column and JSON say so" \
	eval '[ "$("$FBLKSETUP" -l -n -O RO "$dev" | tr -d " ")" = 1 ] &&
	      "$FBLKSETUP" -J -O ro "$dev" | python3 -c "import json,sys; assert json.load(sys.stdin)[\"fblkdevices\"][0][\"ro\"] is True"'
"$FBLKSETUP" -d "$dev"

chmod 0444 "$img2"
chattr +i "$img2" 2>/dev/null && immutable=1 || immutable=0
if [ $immutable = 1 ]; then
	dev=$(attach "$img2")
	check "an immutable file is attached read-only (losetup's fallback)" \
		[ "$(attr "$dev" read_only)" = 1 ]
	"$FBLKSETUP" -d "$dev"
	chattr -i "$img2"
fi
chmod 0644 "$img2"

# ---- a block device as backing file ----

if [ -b /dev/ram2 ]; then
	dev=$(attach /dev/ram2 -r)
	check "-j /dev/ram2 finds the device it backs" \
		eval '[ -n "$dev" ] && [ "$("$FBLKSETUP" -j /dev/ram2 -l -n -O NAME)" = "$dev" ]'
	cols=NAME,BACK-FILE,BACK-MAJ:MIN,BACK-INO,SIZE,RO
	if command -v setpriv >/dev/null; then
		asroot=$("$FBLKSETUP" -l -n --raw -O $cols "$dev")
		asuser=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$FBLKSETUP" -l -n --raw -O $cols "$dev")
		check "... and an unprivileged user sees the same backing numbers" [ "$asuser" = "$asroot" ]
		diag "root: $asroot" "user: $asuser"
	fi
	"$FBLKSETUP" -d "$dev"
fi

# ---- -c ----

img3=$(mkimg c.img 8M)
dev=$(attach "$img3")
truncate -s 24M "$img3"
before=$(size_bytes "$dev")
"$FBLKSETUP" -c "$dev"
rc=$?
check "-c after growing the file: 8 MiB -> 24 MiB" \
	eval '[ $rc -eq 0 ] && [ "$before" = $((8 * MiB)) ] && [ "$(size_bytes "$dev")" = $((24 * MiB)) ]'
"$FBLKSETUP" -d "$dev"

# ---- DEV FILE, lazy detach, -D ----

dev=$("$FBLKSETUP" -f)
"$FBLKSETUP" "$dev" "$img2"
check "fblksetup DEV FILE attaches $dev" [ "$(attr "$dev" backing_file)" = "$img2" ]
err=$("$FBLKSETUP" "$dev" "$img3" 2>&1)
rc=$?
check "attaching a bound device fails with EBUSY, exit 1" \
	eval '[ $rc -eq 1 ] && grep -qF "$dev: failed to set up device: Device or resource busy" <<<"$err" &&
	      [ "$(attr "$dev" backing_file)" = "$img2" ]'

exec 7<"$dev"
"$FBLKSETUP" -d "$dev"
rc=$?
check "-d while open: deferred (autoclear), still bound" \
	eval '[ $rc -eq 0 ] && [ "$(attr "$dev" state)" = bound ] && [ "$(attr "$dev" autoclear)" = 1 ]'
exec 7<&-
for _ in 1 2 3 4 5 6 7 8 9 10; do
	[ "$(attr "$dev" state)" = unbound ] && break
	sleep 0.1
done
check "... and detached at the last close" [ "$(attr "$dev" state)" = unbound ]

d1=$(attach "$img1")
d2=$(attach "$img2")
d3=$(attach "$img3" -r)
"$FBLKSETUP" -D
rc=$?
check "-D detaches every device" eval '[ -n "$d1" ] && [ -n "$d2" ] && [ -n "$d3" ] && [ $rc -eq 0 ] && [ -z "$(bound_devices)" ] && [ -z "$("$FBLKSETUP" -a)" ]'

# ---- -P ----

img4=$(mkimg parts.img 32M)
printf 'label: dos\n,8M\n,8M\n' | sfdisk -q "$img4" >/dev/null 2>&1
dev=$(attach "$img4" -P)
for _ in 1 2 3 4 5 6 7 8 9 10; do
	[ -b "${dev}p2" ] && break
	sleep 0.1
done
check "-P: partitions ${dev}p1 and p2 appear" \
	eval '[ "$(attr "$dev" partscan)" = 1 ] && [ -b "${dev}p1" ] && [ -b "${dev}p2" ]'
"$FBLKSETUP" -d "$dev"

# ---- --direct-io ----

dev=$(attach "$img1" --direct-io=on)
check "--direct-io=on on ext4: DIO 1, MODE direct" \
	eval '[ "$(attr "$dev" direct_io)" = 1 ] &&
	      [ "$("$FBLKSETUP" -l -n --raw -O DIO,MODE "$dev")" = "1 direct" ]'
"$FBLKSETUP" -d "$dev"

tmpimg=$TMPFS/fblksetup-tmpfs.$$.img
truncate -s 4M "$tmpimg"
bound_before=$(bound_devices)
dev=$("$FBLKSETUP" -f --show --direct-io "$tmpimg" 2>"$DIR/err")
rc=$?
if [ $rc -eq 0 ]; then
	# tmpfs has O_DIRECT since 6.6
	check "--direct-io on tmpfs: accepted by this kernel, DIO 1" [ "$(attr "$dev" direct_io)" = 1 ]
	"$FBLKSETUP" -d "$dev"
else
	check "--direct-io on tmpfs: exit 1 with the direct I/O hint, nothing attached" \
		eval '[ $rc -eq 1 ] && grep -q "backing file does not support direct I/O" "$DIR/err" &&
		      [ "$(bound_devices)" = "$bound_before" ]'
	diag "$(<"$DIR/err")"
fi

# ---- run-time settings: --io-mode, --submit, --pool-size, --direct-io DEV ----

if "$FBLKSETUP" --help | grep -q -- --io-mode; then
	dev=$(attach "$img1")
	"$FBLKSETUP" --direct-io=on "$dev"
	rc=$?
	check "--direct-io=on DEV switches a bound device to direct I/O (losetup's way)" \
		eval '[ $rc -eq 0 ] && [ "$(attr "$dev" io_mode)" = direct ] && [ "$(attr "$dev" direct_io)" = 1 ]'
	"$FBLKSETUP" --direct-io=off "$dev"
	rc=$?
	check "--direct-io=off DEV switches it back to buffered" \
		eval '[ $rc -eq 0 ] && [ "$(attr "$dev" io_mode)" = buffered ] && [ "$(attr "$dev" direct_io)" = 0 ]'
	"$FBLKSETUP" --submit threads --pool-size 8 "$dev"
	rc=$?
	check "--submit threads --pool-size 8 DEV: sysfs and -l agree" \
		eval '[ $rc -eq 0 ] && [ "$(attr "$dev" submit)" = threads ] && [ "$(attr "$dev" pool_size)" = 8 ] &&
		      [ "$("$FBLKSETUP" -l -n --raw -O SUBMIT,POOL "$dev")" = "threads 8" ]'
	"$FBLKSETUP" -d "$dev"
	"$FBLKSETUP" --pool-size 3 "$dev" 2>"$DIR/err"
	rc=$?
	check "settings on a detached device: exit 1 with a message" \
		eval '[ $rc -eq 1 ] && grep -qF "$dev: failed to change settings" "$DIR/err"'

	dev=$(attach "$img1" --io-mode auto --submit threads --pool-size 4)
	check "-f --io-mode auto --submit threads --pool-size 4 at setup" \
		eval '[ -n "$dev" ] && [ "$(attr "$dev" io_mode_requested)" = auto ] &&
		      [ "$(attr "$dev" submit)" = threads ] && [ "$(attr "$dev" pool_size)" = 4 ] &&
		      [ "$("$FBLKSETUP" -l -n --raw -O IO-MODE,MODE "$dev")" = "auto $(attr "$dev" io_mode)" ]'
	"$FBLKSETUP" -d "$dev"

	dev=$("$FBLKSETUP" -f --show --io-mode dontcache "$img1" 2>"$DIR/err")
	rc=$?
	if [ $rc -eq 0 ]; then
		check "--io-mode dontcache: accepted by this kernel, MODE dontcache" \
			[ "$("$FBLKSETUP" -l -n --raw -O MODE "$dev")" = dontcache ]
		"$FBLKSETUP" -d "$dev"
	else
		check "--io-mode dontcache: exit 1 with the hint where the kernel lacks it" \
			eval '[ $rc -eq 1 ] && grep -q "uncached buffered I/O is not offered" "$DIR/err"'
	fi
	diag "$(<"$DIR/err")"
	bad_settings=1
else
	ok "# SKIP no run-time settings in this fblk ABI"
	bad_settings=0
fi

# ---- readahead and inline depth: --ra-policy, --ra-kb, --inline-depth ----

# "policy kb depth" of a device, from sysfs.
ra_state() { echo "$(attr "$1" ra_policy) $(attr "$1" ra_kb) $(attr "$1" inline_depth)"; }

if "$FBLKSETUP" --help | grep -q -- --ra-policy && compgen -G "/sys/block/fblk*/fblk/ra_policy" >/dev/null; then
	ra_settings=1
	dev=$(attach "$img1")
	check "defaults: RA-POLICY auto, RA-KB 0, INLINE-DEPTH the module's (sysfs and -l agree)" \
		eval '[ -n "$dev" ] && [ "$(attr "$dev" ra_policy)" = auto ] && [ "$(attr "$dev" ra_kb)" = 0 ] &&
		      [ "$("$FBLKSETUP" -l -n --raw -O RA-POLICY,RA-KB,INLINE-DEPTH "$dev")" = "$(ra_state "$dev")" ]'
	"$FBLKSETUP" -d "$dev"

	dev=$(attach "$img1" --ra-policy sequential --ra-kb 512 --inline-depth 4)
	check "-f --ra-policy sequential --ra-kb 512 --inline-depth 4 at setup: sysfs says so" \
		eval '[ -n "$dev" ] && [ "$(ra_state "$dev")" = "sequential 512 4" ]'
	check "... and so does -l -O RA-POLICY,RA-KB,INLINE-DEPTH" \
		[ "$("$FBLKSETUP" -l -n --raw -O RA-POLICY,RA-KB,INLINE-DEPTH "$dev")" = "sequential 512 4" ]
	json=$("$FBLKSETUP" -J -O NAME,RA-POLICY,RA-KB,INLINE-DEPTH "$dev")
	check "... and --json, typed: a string and two numbers" python3 - "$json" "$dev" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])["fblkdevices"][0]
assert d == {"name": sys.argv[2], "ra-policy": "sequential", "ra-kb": 512, "inline-depth": 4}, d
assert type(d["ra-kb"]) is int and type(d["inline-depth"]) is int, d
EOF

	"$FBLKSETUP" --ra-policy random "$dev"
	rc=$?
	check "--ra-policy random DEV: only the policy changes" \
		eval '[ $rc -eq 0 ] && [ "$(ra_state "$dev")" = "random 512 4" ]'
	"$FBLKSETUP" --ra-kb 0 --inline-depth 0 "$dev"
	rc=$?
	check "--ra-kb 0 --inline-depth 0 DEV: sysfs and -l agree, policy kept" \
		eval '[ $rc -eq 0 ] && [ "$(ra_state "$dev")" = "random 0 0" ] &&
		      [ "$("$FBLKSETUP" -l -n --raw -O RA-POLICY,RA-KB,INLINE-DEPTH "$dev")" = "random 0 0" ]'
	"$FBLKSETUP" --ra-policy off --ra-kb 65536 --inline-depth 1024 "$dev"
	rc=$?
	check "--ra-policy off --ra-kb 65536 --inline-depth 1024 DEV: the maxima are taken" \
		eval '[ $rc -eq 0 ] && [ "$(ra_state "$dev")" = "off 65536 1024" ]'
	"$FBLKSETUP" --ra-policy auto --ra-kb 256 --inline-depth 2 --submit threads "$dev"
	rc=$?
	check "with --submit in one call: all applied, I/O still works" \
		eval '[ $rc -eq 0 ] && [ "$(ra_state "$dev")" = "auto 256 2" ] && [ "$(attr "$dev" submit)" = threads ] &&
		      dd if="$dev" of=/dev/null bs=64k count=16 iflag=direct status=none'

	# Bad values for a bound device: usage errors that change nothing.
	ra_before=$(ra_state "$dev")
	for bad in "--ra-policy fast" "--ra-policy AUTO" "--ra-kb 65537" "--ra-kb -1" "--ra-kb 1M" \
		   "--inline-depth 1025" "--inline-depth 2x"; do
		# shellcheck disable=SC2086
		"$FBLKSETUP" $bad "$dev" >/dev/null 2>"$DIR/err"
		rc=$?
		if [ $rc -eq 2 ] && grep -q "invalid ${bad%% *} '" "$DIR/err" && [ "$(ra_state "$dev")" = "$ra_before" ] &&
		   [ "$(attr "$dev" state)" = bound ]; then
			ok "$bad DEV: exit 2 naming the option, $dev unchanged ($ra_before)"
		else
			not_ok "$bad DEV: exit 2 naming the option, $dev unchanged (rc $rc, now $(ra_state "$dev"))"
			diag "$(<"$DIR/err")"
		fi
	done

	if command -v setpriv >/dev/null && [ "$(stat -c %a "$dev")" != 666 ]; then
		cols=NAME,RA-POLICY,RA-KB,INLINE-DEPTH,SUBMIT,POOL
		asroot=$("$FBLKSETUP" -l -n --raw -O $cols "$dev")
		asuser=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$FBLKSETUP" -l -n --raw -O $cols "$dev")
		check "an unprivileged user sees the same RA-POLICY, RA-KB, INLINE-DEPTH (from sysfs)" \
			eval '[ -n "$asuser" ] && [ "$asuser" = "$asroot" ]'
		diag "root: $asroot" "user: $asuser"
	fi
	"$FBLKSETUP" -d "$dev"
	"$FBLKSETUP" --ra-kb 128 "$dev" 2>"$DIR/err"
	rc=$?
	check "--ra-kb on a detached device: exit 1 with a message" \
		eval '[ $rc -eq 1 ] && grep -qF "$dev: failed to change settings" "$DIR/err"'
else
	ok "# SKIP no --ra-policy, --ra-kb, --inline-depth in this fblksetup or module"
	ra_settings=0
fi

# ---- STATS: the engine's counters in --list ----

# /sys/block/fblkN/fblk/stats as JSON, {name: value}, in the file's order.
stats_json() {
	python3 -c 'import json, sys
print(json.dumps({l.split()[0]: int(l.split()[1]) for l in open(sys.argv[1]) if l.strip()}))' \
		"/sys/block/${1##*/}/fblk/stats"
}

if compgen -G "/sys/block/fblk*/fblk/stats" >/dev/null; then
	dev=$(attach "$img1")
	command -v udevadm >/dev/null && udevadm settle 2>/dev/null
	check "STATS is not a default column" eval '! "$FBLKSETUP" -l "$dev" | head -n1 | grep -q STATS'
	s0=$(stats_json "$dev")
	json=$("$FBLKSETUP" -J -O NAME,STATS "$dev")
	rc=$?
	s1=$(stats_json "$dev")
	check "-J -O NAME,STATS: an object of numbers with sysfs's names, in its order" \
		python3 - "$json" "$dev" "$s0" "$s1" <<'EOF'
import json, sys
doc = json.loads(sys.argv[1])
d = doc["fblkdevices"][0]
before, after = json.loads(sys.argv[3]), json.loads(sys.argv[4])
assert list(d) == ["name", "stats"] and d["name"] == sys.argv[2], d
st = d["stats"]
assert type(st) is dict and list(st) == list(before) and len(st) >= 1, (list(st), list(before))
for k, v in st.items():
    assert type(v) is int, (k, v)
    assert before[k] <= v <= after[k], (k, before[k], v, after[k])
EOF
	diag "before I/O: $json"

	dd if="$dev" of=/dev/null bs=64k count=64 iflag=direct status=none
	dd if=/dev/zero of="$dev" bs=64k count=16 oflag=direct conv=fsync status=none
	json2=$("$FBLKSETUP" -J -O NAME,STATS "$dev")
	check "after 80 direct reads and writes a counter in --json STATS has risen" \
		python3 - "$json" "$json2" <<'EOF'
import json, sys
a = json.loads(sys.argv[1])["fblkdevices"][0]["stats"]
b = json.loads(sys.argv[2])["fblkdevices"][0]["stats"]
assert list(a) == list(b), (list(a), list(b))
risen = [k for k in a if b[k] > a[k]]
assert risen, (a, b)
print("# risen:", " ".join("%s %d->%d" % (k, a[k], b[k]) for k in risen))
EOF

	raw=$("$FBLKSETUP" -l -n --raw -O NAME,STATS "$dev")
	s2=$(stats_json "$dev")
	check "--raw STATS: the non-zero counters as name=value,..." python3 - "$raw" "$dev" "$s2" <<'EOF'
import json, sys
name, text = sys.argv[1].split(" ")
assert name == sys.argv[2], sys.argv[1]
now = json.loads(sys.argv[3])
pairs = [p.split("=") for p in text.split(",")]
assert pairs and all(len(p) == 2 for p in pairs), text
for k, v in pairs:
    assert k in now and int(v) != 0, (k, v)
assert [k for k, _ in pairs] == [k for k in now if k in dict(pairs)], text
EOF
	diag "$raw"
	check "--output-all --json has STATS as an object" eval \
		'"$FBLKSETUP" --output-all --json "$dev" | python3 -c "import json,sys; d = json.load(sys.stdin)[\"fblkdevices\"][0]; assert type(d[\"stats\"]) is dict and list(d)[-1] == \"stats\", d"'
	"$FBLKSETUP" -d "$dev"
else
	ok "# SKIP no /sys/block/fblkN/fblk/stats in this module"
fi

# ---- a device backed by itself ----

dev=$("$FBLKSETUP" -f)
err=$("$FBLKSETUP" "$dev" "$dev" 2>&1)
rc=$?
check "a device backed by itself: exit 1, ELOOP with the hint" \
	eval '[ $rc -eq 1 ] && grep -qF "$dev: failed to set up device: " <<<"$err" &&
	      grep -qF "(the file is on this device)" <<<"$err" && [ "$(attr "$dev" state)" = unbound ]'
diag "$err"

# ---- concurrency ----

for i in 1 2 3 4 5 6 7 8; do
	truncate -s 4M "$DIR/par$i.img"
done
for i in 1 2 3 4 5 6 7 8; do
	("$FBLKSETUP" -f --show "$DIR/par$i.img" >"$DIR/par$i.out" 2>"$DIR/par$i.err"
	 echo $? >"$DIR/par$i.rc") &
done
wait
par_ok=1
for i in 1 2 3 4 5 6 7 8; do
	d=$(<"$DIR/par$i.out")
	if [ "$(<"$DIR/par$i.rc")" != 0 ] || [ "$(attr "$d" backing_file)" != "$DIR/par$i.img" ]; then
		par_ok=0
		diag "par$i: rc $(<"$DIR/par$i.rc") dev '$d' backing '$(attr "$d" backing_file)' $(<"$DIR/par$i.err")"
	fi
done
check "8 parallel -f --show: all succeed, each device backed by its own file" [ $par_ok = 1 ]
check "8 parallel -f --show: 8 distinct devices" \
	[ "$(cat "$DIR"/par*.out | sort -u | grep -c '^/dev/fblk')" = 8 ]
for i in 1 2 3 4 5 6 7 8; do
	"$FBLKSETUP" -d "$(<"$DIR/par$i.out")" 2>/dev/null
done

# ---- --queues, --depth ----

dev=$(attach "$img1" --queues 2 --depth 64)
check "-f --queues 2 --depth 64: nr_hw_queues 2, queue_depth 64 in sysfs" \
	eval '[ "$(attr "$dev" nr_hw_queues)" = 2 ] && [ "$(attr "$dev" queue_depth)" = 64 ]'
check "... and in -l" [ "$("$FBLKSETUP" -l -n --raw -O QUEUES,DEPTH "$dev")" = "2 64" ]

err=$("$FBLKSETUP" --depth 32 "$dev" "$img2" 2>&1)
rc=$?
check "--depth on a bound device of another depth: exit 1, clear error, device untouched" \
	eval '[ $rc -eq 1 ] && grep -qF "$dev: device is in use" <<<"$err" &&
	      [ "$(attr "$dev" queue_depth)" = 64 ] && [ "$(attr "$dev" backing_file)" = "$img1" ]'
"$FBLKSETUP" -d "$dev"

"$FBLKSETUP" --queues 1 --depth 32 "$dev" "$img2"
rc=$?
check "DEV FILE --queues 1 --depth 32 on a free device re-makes it with that geometry" \
	eval '[ $rc -eq 0 ] && [ "$(attr "$dev" nr_hw_queues)" = 1 ] && [ "$(attr "$dev" queue_depth)" = 32 ] &&
	      [ "$(attr "$dev" backing_file)" = "$img2" ]'
"$FBLKSETUP" -d "$dev"

dev=$(attach "$img1" --queues 64)
queues=$(attr "$dev" nr_hw_queues)
check "-f --queues 64: as many queues as blk-mq gives ($queues)" eval '[ "$queues" -ge 1 ] && [ "$queues" -le 64 ]'
"$FBLKSETUP" -d "$dev"
# Held open, the device cannot be removed: attaching must not try to.
exec 7<"$dev"
err=$("$FBLKSETUP" --queues 64 "$dev" "$img2" 2>&1)
rc=$?
exec 7<&-
check "DEV FILE --queues 64 again: the shape already fits, no remake" \
	eval '[ $rc -eq 0 ] && [ "$(attr "$dev" backing_file)" = "$img2" ]'
[ -z "$err" ] || diag "$err"
"$FBLKSETUP" -d "$dev"

# ---- bad input changes nothing ----

bound_before=$(bound_devices)
all_before=$(all_devices)
unchanged() { [ "$(bound_devices)" = "$bound_before" ] && [ "$(all_devices)" = "$all_before" ]; }

bad_usage() {
	local desc=$1

	shift
	"$FBLKSETUP" "$@" >/dev/null 2>"$DIR/err"
	local rc=$?
	if [ $rc -eq 2 ] && [ -s "$DIR/err" ] && unchanged; then
		ok "bad usage exits 2, changes nothing: $desc"
	else
		not_ok "bad usage exits 2, changes nothing: $desc (rc $rc)"
		diag "$(<"$DIR/err")"
	fi
}
bad_usage "unknown option" --no-such-option -f "$img1"
bad_usage "unknown short option" -Z -f "$img1"
bad_usage "garbage offset" -o 12abc -f "$img1"
bad_usage "negative offset" -o -512 -f "$img1"
bad_usage "negative size limit" --sizelimit=-1M -f "$img1"
bad_usage "overflowing offset" -o 99999999999999999999 -f "$img1"
bad_usage "overflowing suffix" --sizelimit 20EiB -f "$img1"
bad_usage "offset not a multiple of 512" -o 1000 -f "$img1"
bad_usage "bad sector size" -b 1000 -f "$img1"
bad_usage "queues 0" --queues 0 -f "$img1"
bad_usage "depth too big" --depth 4096 -f "$img1"
bad_usage "--direct-io=maybe" --direct-io=maybe -f "$img1"
bad_usage "unknown column" -l -O NAME,NOPE
bad_usage "-d without a device" -d
bad_usage "-a with -d" -a -d /dev/fblk0
bad_usage "--sizelimit without setup" --sizelimit 1M -a
bad_usage "extra argument" -f "$img1" "$img2"
if [ $bad_settings = 1 ]; then
	bad_usage "unknown --io-mode" --io-mode fast -f "$img1"
	bad_usage "unknown --submit" --submit later -f "$img1"
	bad_usage "--pool-size 0" --pool-size 0 -f "$img1"
	bad_usage "--direct-io=on with --io-mode buffered" --direct-io=on --io-mode buffered -f "$img1"
	bad_usage "settings with -a" --io-mode direct -a
fi
if [ $ra_settings = 1 ]; then
	bad_usage "unknown --ra-policy" --ra-policy fast -f "$img1"
	bad_usage "--ra-kb 65537" --ra-kb 65537 -f "$img1"
	bad_usage "--ra-kb with a suffix" --ra-kb 4M -f "$img1"
	bad_usage "--inline-depth 1025" --inline-depth 1025 -f "$img1"
	bad_usage "--inline-depth negative" --inline-depth -1 -f "$img1"
	bad_usage "--ra-kb with -a" --ra-kb 128 -a
fi

err=$("$FBLKSETUP" -f --show "$DIR/no-such-file.img" 2>&1)
rc=$?
check "a missing file: exit 1, message names it, nothing attached" \
	eval '[ $rc -eq 1 ] && grep -qF "$DIR/no-such-file.img" <<<"$err" &&
	      grep -q "No such file or directory" <<<"$err" && unchanged'
err=$("$FBLKSETUP" -f --show "$DIR" 2>&1)
rc=$?
check "a directory: exit 1 with a message, nothing attached" \
	eval '[ $rc -eq 1 ] && [ -n "$err" ] && unchanged'

echo "1..$tests"
[ $failures -eq 0 ]
