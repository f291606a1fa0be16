#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host checks of fblksetup that need no fblk module: option and size parsing,
# exit codes, help and version, and the message when the module is missing.
# Safe on any machine: every case is refused before anything is opened, or
# names a file that does not exist.  TAP on stdout.
#
#   test-host.sh [path/to/fblksetup]     (make test runs it)

PROG=${1:-$(dirname "$0")/../bin/fblksetup}
# Never load a module from a test: fblksetup runs no modprobe with this empty.
export FBLK_MODPROBE=
NOFILE=/nonexistent/fblksetup-test.img
tests=0
failures=0

result() {
	tests=$((tests + 1))
	if [ "$1" = 0 ]; then
		echo "ok $tests - $2"
	else
		failures=$((failures + 1))
		echo "not ok $tests - $2"
		[ -z "$3" ] || printf '%s\n' "$3" | sed 's/^/# /'
	fi
}

# expect RC STDERR-PATTERN ARGS...: exit status and a line of stderr.
expect() {
	local want=$1 pattern=$2 err rc

	shift 2
	err=$("$PROG" "$@" 2>&1 >/dev/null)
	rc=$?
	[ "$rc" = "$want" ] && grep -qE -- "$pattern" <<<"$err"
	result $? "fblksetup $* -> $want" "rc $rc: $err"
}

# size VALUE PARSED: an offset parses to PARSED (seen through the refusal
# of an offset that is not a multiple of 512), or to a multiple of 512.
size() {
	local err

	err=$("$PROG" -o "$1" -f "$NOFILE" 2>&1 >/dev/null)
	case $2 in
	ok) grep -q "$NOFILE: failed to open backing file" <<<"$err" ;;
	*) grep -qF "invalid offset '$2': not a multiple of 512 bytes" <<<"$err" ;;
	esac
	result $? "offset '$1' is $2" "$err"
}

out=$("$PROG" --help)
rc=$?
[ $rc = 0 ] && grep -q -- '--detach-all' <<<"$out" && grep -q 'LOG-SEC' <<<"$out"
result $? "--help exits 0 with options and columns"
out=$("$PROG" -V)
[ $? = 0 ] && grep -qE '^fblksetup from fblk [0-9]' <<<"$out"
result $? "-V exits 0: $out"
# Output that scripts read: a write error is a failure, and says so.
if [ -w /dev/full ]; then
	err=$("$PROG" --help 2>&1 >/dev/full)
	rc=$?
	[ $rc = 1 ] && grep -q "write error" <<<"$err"
	result $? "--help >/dev/full exits 1" "rc $rc: $err"
	err=$("$PROG" -V 2>&1 >/dev/full)
	rc=$?
	[ $rc = 1 ] && grep -q "write error" <<<"$err"
	result $? "-V >/dev/full exits 1" "rc $rc: $err"
fi

# Sizes, as losetup takes them.
size 1KB 1000
size 1kb 1000
size 1MB 1000000
size 0x3e8 1000
size 010 10
size 1K ok
size 1k ok
size 1KiB ok
size 3M ok
size 2GiB ok
size 7EiB ok
size 9223372036854775807 9223372036854775807
# Fractions, with a suffix, as losetup takes them; below a byte is dropped.
size 1.5K ok
size 0.5M ok
size 1.5KB 1500
size 2.25k 2304
size 1.0001K ok
size 0.1KiB 102

# Bad usage: exit 2 and a message, before anything is opened.
expect 2 "unrecognized option '--no-such'" --no-such
expect 2 "invalid option -- 'Z'" -Z
expect 2 "option '--sizelimit' requires an argument" -f "$NOFILE" --sizelimit
expect 2 "option '--show' doesn't allow an argument" --show=yes -f "$NOFILE"
expect 2 "not a size" -o 12abc -f "$NOFILE"
expect 2 "not a size" -o -512 -f "$NOFILE"
expect 2 "not a size" --sizelimit=-1M -f "$NOFILE"
expect 2 "not a size" -o 1.5 -f "$NOFILE"
expect 2 "not a size" -o 1. -f "$NOFILE"
expect 2 "not a size" -o 1.K -f "$NOFILE"
expect 2 "not a size" -o .5K -f "$NOFILE"
expect 2 "not a size" -o 0x1.8K -f "$NOFILE"
expect 2 "not a size" -o 1.5.0K -f "$NOFILE"
expect 2 "too large" -o 7.9999999999ZiB -f "$NOFILE"
expect 2 "not a size" -o '' -f "$NOFILE"
expect 2 "not a size" -o 1Ki -f "$NOFILE"
expect 2 "too large" -o 99999999999999999999 -f "$NOFILE"
expect 2 "too large" -o 8EiB -f "$NOFILE"
expect 2 "too large" --sizelimit 1YB -f "$NOFILE"
expect 2 "not a multiple of 512" --sizelimit 1000 -f "$NOFILE"
expect 2 "expected 512, 1024, 2048 or 4096" -b 1000 -f "$NOFILE"
expect 2 "expected 512, 1024, 2048 or 4096" -b 8K -f "$NOFILE"
expect 2 "from 1 to 64" --queues 0 -f "$NOFILE"
expect 2 "from 1 to 64" --queues 65 -f "$NOFILE"
expect 2 "from 1 to 64" --queues 2x -f "$NOFILE"
expect 2 "from 1 to 1024" --depth 1025 -f "$NOFILE"
expect 2 "from 1 to 1024" --depth 99999999999999999999 -f "$NOFILE"
expect 2 "expected on or off" --direct-io=yes -f "$NOFILE"
if "$PROG" --help | grep -q -- --ra-policy; then
	out=$("$PROG" --help)
	grep -q -- '--inline-depth' <<<"$out" && grep -q 'RA-POLICY' <<<"$out" &&
		grep -q 'INLINE-DEPTH' <<<"$out" && grep -q 'STATS' <<<"$out"
	result $? "--help has --ra-policy, --ra-kb, --inline-depth and their columns"
	expect 2 "^fblksetup: invalid --ra-policy 'fast': expected auto, sequential, random or off$" \
		--ra-policy fast -f "$NOFILE"
	expect 2 "invalid --ra-policy 'Auto'" --ra-policy Auto /dev/fblk0
	expect 2 "option '--ra-policy' requires an argument" -f "$NOFILE" --ra-policy
	expect 2 "^fblksetup: invalid --ra-kb '65537': expected a number from 0 to 65536$" \
		--ra-kb 65537 -f "$NOFILE"
	expect 2 "invalid --ra-kb '-1'" --ra-kb -1 /dev/fblk0
	expect 2 "invalid --ra-kb '1M'" --ra-kb 1M /dev/fblk0
	expect 2 "invalid --ra-kb ''" --ra-kb '' /dev/fblk0
	expect 2 "invalid --ra-kb '99999999999999999999'" --ra-kb 99999999999999999999 /dev/fblk0
	expect 2 "^fblksetup: invalid --inline-depth '1025': expected a number from 0 to 1024$" \
		--inline-depth 1025 -f "$NOFILE"
	expect 2 "invalid --inline-depth '4x'" --inline-depth 4x /dev/fblk0
	expect 2 "allowed during setup or with one device only" --ra-kb 128 -a
	expect 2 "allowed during setup or with one device only" --inline-depth 2 -l /dev/fblk0
	expect 2 "allowed during setup or with one device only" --ra-policy off -D
	# In range: refused only later, for the missing file or device.
	expect 1 "$NOFILE: failed to open backing file" --ra-policy off --ra-kb 0 --inline-depth 0 -f "$NOFILE"
	expect 1 "$NOFILE: failed to open backing file" --ra-policy sequential --ra-kb 65536 --inline-depth 1024 -f "$NOFILE"
fi
expect 2 "invalid --io-mode 'fast': expected buffered, direct, dontcache or auto" --io-mode fast -f "$NOFILE"
expect 2 "unknown column: NOPE" -l -O NAME,NOPE
expect 2 "unknown column" -l -O ''
expect 2 "mutually exclusive" -a -d /dev/fblk0
expect 2 "mutually exclusive" -f -D
expect 2 "mutually exclusive" -c /dev/fblk0 -j "$NOFILE"
expect 2 "mutually exclusive" -l -d /dev/fblk0
expect 2 "mutually exclusive" --json -f
expect 2 "during setup only" --sizelimit 1M -a
expect 2 "during setup only" -r -d /dev/fblk0
expect 2 "during setup only" -P -f
expect 2 "--offset is allowed" -o 1M -a
expect 2 "--queues and --depth" --queues 2 -a
expect 2 "--nooverlap makes sense with --find only" -L /dev/fblk0 "$NOFILE"
expect 2 "--show is allowed" --show -a
expect 2 "unexpected argument" -f "$NOFILE" extra
expect 2 "unexpected argument" /dev/fblk0 "$NOFILE" extra
expect 2 "no fblk device specified" -r
expect 2 "option requires an argument -- 'd'" -d
expect 2 "^fblksetup: option '--de' is ambiguous; possibilities: '--detach' '--detach-all' '--depth'$" --de /dev/fblk0
expect 2 "option '--r' is ambiguous; possibilities: '--read-only' '--raw'" --r -f "$NOFILE"
expect 2 "unrecognized option '--dex'" --dex
expect 2 "no fblk device specified" --remove
expect 2 "--remove is allowed with --detach, --detach-all or devices only" --remove -a
expect 2 "--remove is allowed with --detach" --remove -f "$NOFILE"
expect 2 "mutually exclusive" --remove -l /dev/fblk0
expect 2 "during setup only" -b 4096 -r /dev/fblk0
expect 2 "during setup only" -b 4096 -a

# Failures: exit 1, naming the file or device.
expect 1 "^fblksetup: $NOFILE: failed to open backing file: No such file or directory$" -f "$NOFILE"
expect 1 "^fblksetup: $NOFILE: failed to open backing file: No such file or directory$" /dev/fblk0 "$NOFILE"
expect 1 "^fblksetup: /dev/null: not an fblk device \(expected /dev/fblkN\)$" /dev/null "$NOFILE"
expect 1 "fblk0p1: not an fblk device" -d fblk0p1
if [ ! -e /dev/fblk-control ] && [ ! -e /sys/module/fblk ]; then
	expect 1 "^fblksetup: /dev/fblk-control: cannot open control device: No such file or directory \(is the fblk module loaded\?\)$" \
		-f /dev/null
	expect 1 "fblk-control.*is the fblk module loaded" -f
	# First use loads the module; a failing modprobe is named.
	FBLK_MODPROBE=false expect 1 "^fblksetup: /dev/fblk-control: cannot open control device: No such file or directory \(the fblk module is not loaded and 'modprobe fblk' failed\)$" \
		-f /dev/null
	FBLK_MODPROBE=false expect 1 "'modprobe fblk' failed" --queues 2 -f
	FBLK_MODPROBE=false expect 1 "'modprobe fblk' failed" /dev/fblk3 /dev/null
	expect 1 "^fblksetup: /dev/fblk7: detach failed: No such file or directory \(the fblk module is not loaded\)$" -d /dev/fblk7
	expect 1 "^fblksetup: /dev/fblk7: detach failed: .*module is not loaded" --remove /dev/fblk7
	expect 1 "^fblksetup: /dev/fblk7: set capacity failed: No such file or directory \(the fblk module is not loaded\)$" -c /dev/fblk7
	expect 1 "^fblksetup: /dev/fblk7: No such file or directory \(the fblk module is not loaded\)$" /dev/fblk7
	expect 1 "^fblksetup: /dev/fblk7: No such file or directory \(the fblk module is not loaded\)$" -l /dev/fblk7
	expect 1 "^fblksetup: /dev/fblk7: cannot set the sector size: .*module is not loaded" -b 4096 /dev/fblk7
	expect 0 "^fblksetup: the fblk module is not loaded: no devices$" -l
	out=$("$PROG" -l --json 2>/dev/null)
	[ $? = 0 ] && python3 -c 'import json,sys; assert json.load(sys.stdin) == {"fblkdevices": []}' <<<"$out"
	result $? "-l --json without devices is an empty array"
	out=$("$PROG" -l --json -O NAME,STATS 2>/dev/null)
	[ $? = 0 ] && python3 -c 'import json,sys; assert json.load(sys.stdin) == {"fblkdevices": []}' <<<"$out"
	result $? "-l --json -O NAME,STATS without devices is an empty array"
	out=$("$PROG" -a 2>/dev/null)
	[ $? = 0 ] && [ -z "$out" ]
	result $? "-a without devices prints nothing"
fi

echo "1..$tests"
[ $failures = 0 ]
