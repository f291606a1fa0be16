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

# Bad usage: exit 2 and a message, before anything is opened.
expect 2 "unrecognized option '--no-such'" --no-such
expect 2 "invalid option -- 'Z'" -Z
expect 2 "option '--sizelimit' requires an argument" -f "$NOFILE" --sizelimit
expect 2 "option '--show' doesn't allow an argument" --show=yes -f "$NOFILE"
expect 2 "not a size" -o 12abc -f "$NOFILE"
expect 2 "not a size" -o -512 -f "$NOFILE"
expect 2 "not a size" --sizelimit=-1M -f "$NOFILE"
expect 2 "not a size" -o 1.5K -f "$NOFILE"
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

# Failures: exit 1, naming the file or device.
expect 1 "^fblksetup: $NOFILE: failed to open backing file: No such file or directory$" -f "$NOFILE"
expect 1 "^fblksetup: $NOFILE: failed to open backing file: No such file or directory$" /dev/fblk0 "$NOFILE"
expect 1 "^fblksetup: /dev/null: not an fblk device \(expected /dev/fblkN\)$" /dev/null "$NOFILE"
expect 1 "fblk0p1: not an fblk device" -d fblk0p1
if [ ! -e /dev/fblk-control ]; then
	expect 1 "^fblksetup: /dev/fblk-control: cannot open control device: No such file or directory \(is the fblk module loaded\?\)$" \
		-f /dev/null
	expect 1 "fblk-control.*is the fblk module loaded" -f
	expect 1 "^fblksetup: /dev/fblk7: detach failed: No such file or directory$" -d /dev/fblk7
	expect 1 "^fblksetup: /dev/fblk7: No such file or directory$" /dev/fblk7
	out=$("$PROG" -l --json)
	[ $? = 0 ] && python3 -c 'import json,sys; assert json.load(sys.stdin) == {"fblkdevices": []}' <<<"$out"
	result $? "-l --json without devices is an empty array"
	out=$("$PROG" -l --json -O NAME,STATS)
	[ $? = 0 ] && python3 -c 'import json,sys; assert json.load(sys.stdin) == {"fblkdevices": []}' <<<"$out"
	result $? "-l --json -O NAME,STATS without devices is an empty array"
	out=$("$PROG" -a)
	[ $? = 0 ] && [ -z "$out" ]
	result $? "-a without devices prints nothing"
fi

echo "1..$tests"
[ $failures = 0 ]
