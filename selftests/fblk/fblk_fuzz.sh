#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The ioctl fuzzer (tools/fblk-fuzz): FBLK_FUZZ_CALLS random calls (default
# 100,000, stopped at FBLK_FUZZ_SECONDS, default 130 s, whichever comes
# first) on /dev/fblk-control and on devices it adds, images on the ext4
# scratch filesystem.  Asserts: the fuzzer ran (at least FBLK_FUZZ_MIN_CALLS
# calls), it returned clean (no errno outside the expected set, no model,
# data or leftover error), and independently of it: the fblk devices are the
# ones present before, in the same state, none bound that was not bound.
# Splats fail the run through the runner's dmesg check.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

CALLS=${FBLK_FUZZ_CALLS:-100000}
SECS=${FBLK_FUZZ_SECONDS:-$(fblk_load 130 20)}
MIN_CALLS=${FBLK_FUZZ_MIN_CALLS:-$(fblk_load 20000 3000)}
SEED=${FBLK_FUZZ_SEED:-1}

tap_plan 5
fblk_require_module || tap_done

S=$FBLK_T_STATE

# state of every fblk device: "fblkN state", sorted
devices() {
	local d
	for d in /sys/block/fblk*; do
		[ -e "$d" ] || continue
		echo "${d##*/} $(cat "$d/fblk/state" 2>/dev/null)"
	done | sort
}

devices >"$S/before"
diag "devices before: $(tr '\n' ' ' <"$S/before")"

dir=$FBLK_SCRATCH
diag "fblk-fuzz --seed $SEED --calls $CALLS --seconds $SECS --dir $dir --json"
fblk-fuzz --seed "$SEED" --calls "$CALLS" --seconds "$SECS" --dir "$dir" \
	--json >"$S/json" 2>"$S/err"
rc=$?
sed 's/^/# /' "$S/err" | head -n 80
diag "json: $(cat "$S/json")"

calls=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["calls"])' "$S/json" 2>/dev/null)
rate=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rate"])' "$S/json" 2>/dev/null)
if [ -n "$calls" ] && [ "$calls" -ge "$MIN_CALLS" ]; then
	ok "fuzzer made $calls calls ($rate/s), seed $SEED"
else
	not_ok "fuzzer made ${calls:-no} calls, at least $MIN_CALLS expected" "exit $rc"
fi

if [ $rc = 0 ] && grep -q '"result": "clean"' "$S/json"; then
	ok "every call returned 0 or an expected errno, model and data checks clean"
else
	not_ok "fuzzer exited $rc: unexpected errnos, model/data errors or leftovers (see above)"
fi

for k in unexpected_errno model_errors data_errors leftovers; do
	eval "n_$k=\$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"$k\"])' \"$S/json\" 2>/dev/null)"
done
if [ "${n_unexpected_errno:-x}" = 0 ] && [ "${n_leftovers:-x}" = 0 ]; then
	ok "no unexpected errno, nothing left attached or added by the fuzzer"
else
	not_ok "unexpected errnos: ${n_unexpected_errno:-?}, leftovers: ${n_leftovers:-?}"
fi

devices >"$S/after"
if cmp -s "$S/before" "$S/after"; then
	ok "fblk devices and their states are as before ($(wc -l <"$S/after") device(s))"
else
	not_ok "fblk devices changed" "$(diff "$S/before" "$S/after" | tr '\n' ' ')"
fi

# Nothing holds an image or a partition node any more.
left=$(ls "$dir"/fblk-fuzz.* 2>/dev/null; ls /dev/fblk*p* 2>/dev/null)
if [ -z "$left" ]; then
	ok "no image file or partition node left"
else
	not_ok "left behind: $(echo "$left" | tr '\n' ' ')"
	rm -f "$dir"/fblk-fuzz.*
fi

tap_done
