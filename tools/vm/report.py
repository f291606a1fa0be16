#!/usr/bin/env python3
"""Turn test VM runs (and lint results) into one TAP report.

    report.py [--lint LINT.tap] [--tap NAME RC TAP CONSOLE]... RUN_DIR...

--tap: a test that printed its own TAP (exit status RC) outside the suite's
VMs, such as pkg-test.sh; CONSOLE is its VM's console, searched for splats.

A RUN_DIR is what vm.sh wrote: stream.log (the guest runner's line protocol,
see guest-run.sh), console.log, dmesg.txt, host.log, run.env.  Every sub-test
of a test executable counts as one test, numbered globally; with more than
one run each name starts with the kernel line ("6.1: fblk_ioctl: ...").
Kernel splats in console.log or dmesg.txt fail the run, named after the test
that was running (the guest marks each test in the kernel log).  A run that
timed out, died, or ran no test fails too.

Prints TAP on stdout, ending with the line "N passed, N failed"; exits 1 on
any failure.  A skip passes only when its reason names a missing kernel
feature (the word "kernel" in the reason), unless FBLK_ALLOW_SKIP=1.
"""

import os
import re
import sys

SPLAT = re.compile(
    r"WARNING:|BUG:|Oops|KASAN|UBSAN|general protection fault|kernel BUG"
    r"|possible circular locking|possible recursive locking"
    r"|inconsistent lock state|suspicious RCU usage"
    r"|INFO: task .* blocked for more than|rcu_.*detected stall|RCU stall"
    r"|unreferenced object|Kernel panic|Call Trace:")
NEW_REPORT = re.compile(r"WARNING:")
MARKER = re.compile(r"fblk-selftest: (begin|end) (\S+)")
TIMESTAMP = re.compile(r"^\s*\[\s*\d+\.\d+\]\s?")
TAP_RESULT = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(.*))?$")
TAP_PLAN = re.compile(r"^1\.\.(\d+)")
# Lines of one splat report: a second match this close to the first (e.g. the
# Call Trace of a WARNING) belongs to the same report.
SPLAT_SPAN = 60
CONTEXT_LINES = 40
DIAG_LINES = 30
ALLOW_SKIP = os.environ.get("FBLK_ALLOW_SKIP") == "1"
# Splats of the kernel's own making, reported as such (ok, with the splat
# shown) instead of failing the run: each names the test that may meet it,
# the title, a function its call trace must show, and why it is not ours.
# Keep this list short and every entry proven; remove an entry once the
# kernel lines we test have the fix.
KNOWN_SPLATS = [
    ("fblk_failslab.sh",
     re.compile(r"WARNING: kernel/rcu/srcutree\.c:\d+ at cleanup_srcu_struct"),
     "blk_mq_alloc_tag_set",
     "7.3 blk_mq_alloc_tag_set() error path: tags freed by call_srcu() on "
     "tags_srcu, then cleanup_srcu_struct() without srcu_barrier() "
     "(block/blk-mq.c, blk-mq-tag.c); met when an injected allocation "
     "failure fails the tag set of FBLK_CTL_ADD"),
]


class Report:
    def __init__(self):
        self.results = []  # (ok, name, directive or None, [diagnostics])

    def add(self, ok, name, directive=None, diag=()):
        self.results.append((ok, name, directive, list(diag)))

    def skip(self, name, reason, diag=()):
        reason = reason or "no reason given"
        if ALLOW_SKIP or re.search(r"kernel", reason, re.I):
            self.add(True, name, "SKIP " + reason, diag)
        else:
            self.add(False, name, None, list(diag) + [
                "skipped: " + reason,
                "a skip passes only for a missing kernel feature "
                "(its reason must say 'kernel')"])

    def print(self, out):
        passed = failed = 0
        out.write("TAP version 13\n1..%d\n" % len(self.results))
        for i, (ok, name, directive, diag) in enumerate(self.results, 1):
            line = "%s %d - %s" % ("ok" if ok else "not ok", i, name)
            if directive:
                line += " # " + directive
            out.write(line + "\n")
            for d in diag:
                out.write("#   %s\n" % d)
            if ok:
                passed += 1
            else:
                failed += 1
        out.write("%d passed, %d failed\n" % (passed, failed))
        return failed


def shown(path):
    """A path as short as it can be while still pointing at the file."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def read_lines(path):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [l.rstrip("\r") for l in data.replace("\r\n", "\n").split("\n")]


def read_env(path):
    env = {}
    for line in read_lines(path):
        m = re.match(r"^(\w+)=(.*)$", line)
        if m:
            env[m.group(1)] = m.group(2).strip("'\"")
    return env


def parse_tap(lines):
    """Top-level TAP results of one test executable's output.

    Returns (plan, [[ok, name, directive, diagnostics]], trailing lines).
    Indented lines are nested sub-tests' output and count only as
    diagnostics.  kselftest_harness prints a failure's details before its
    result line (in a block that starts with "#  RUN"); lib.sh-style shell
    tests print them after it: a block between two results goes to the
    failure it explains.
    """
    plan, results, block = None, [], []

    def flush_block(next_is_result):
        if not block:
            return []
        harness_style = any(l.lstrip("# ").startswith("RUN ") for l in block)
        if results and not results[-1][0] and not harness_style:
            results[-1][3].extend(block[:DIAG_LINES])
            return []
        return block[-DIAG_LINES:] if next_is_result else list(block)

    for line in lines:
        m = TAP_PLAN.match(line)
        if m and plan is None:
            plan = int(m.group(1))
            continue
        m = TAP_RESULT.match(line)
        if m:
            before = flush_block(True)
            block = []
            ok = m.group(1) == "ok"
            results.append([ok, m.group(3).strip(), (m.group(4) or "").strip(),
                             [] if ok else before])
        elif line.strip() and not line.startswith("TAP version"):
            block.append(line.strip() if line.startswith((" ", "\t")) else line)
    trailing = flush_block(False)
    return plan, results, trailing


def report_test(rep, prefix, name, lines, rc, note=None):
    """One test executable's results: its TAP sub-tests, or itself."""
    plan, results, trailing = parse_tap(lines)
    label = prefix + name
    failed_any = False
    for n, (ok, sub, directive, diag) in enumerate(results, 1):
        full = "%s: %s" % (label, sub or "test %d" % n)
        if directive.upper().startswith("SKIP"):
            rep.skip(full, directive[4:].strip(" :-"), [])
        elif ok:
            rep.add(True, full)
        else:
            failed_any = True
            rep.add(False, full, None, diag)
    tail = [l for l in trailing][-DIAG_LINES:]
    if note:
        rep.add(False, "%s: %s" % (label, note), None, tail)
    elif rc in (124, 137):
        rep.add(False, "%s: timed out" % label, None, tail)
    elif not results:
        if rc == 0:
            rep.add(True, label)
        elif rc == 4:
            reasons = [l.lstrip("# ").strip() for l in trailing if l.startswith("#")]
            rep.skip(label, reasons[-1] if reasons else "exit status 4", tail)
        else:
            rep.add(False, "%s: exit status %s" % (label, rc), None, tail)
    elif plan is not None and len(results) < plan:
        rep.add(False, "%s: planned %d tests, ran %d" % (label, plan, len(results)),
                None, tail)
    elif rc not in (0, 4) and not failed_any:
        rep.add(False, "%s: exit status %s" % (label, rc), None, tail)


def find_splats(lines):
    """Kernel splats in a kernel log: [(test, title, context)].

    test is the test whose begin marker came last before the splat ("boot"
    before the first one); after its end marker it is "after <test>".
    """
    found, test, last_start = [], "boot", None
    for i, raw in enumerate(lines):
        line = TIMESTAMP.sub("", raw)
        m = MARKER.search(line)
        if m:
            test = m.group(2) if m.group(1) == "begin" else "after " + m.group(2)
            last_start = None
            continue
        if not SPLAT.search(line):
            continue
        # A WARNING always opens a report of its own: two can follow each
        # other closer than SPLAT_SPAN, and the second must not be known
        # only by its "Call Trace:".
        if last_start is not None and i - last_start < SPLAT_SPAN and \
                not NEW_REPORT.search(line):
            continue
        last_start = i
        context = []
        for c in lines[i:i + CONTEXT_LINES]:
            c = TIMESTAMP.sub("", c)
            if MARKER.search(c):
                break
            context.append(c)
        found.append((test, line.strip(), context))
    return found


def known_splat(test, title, context):
    """Why a splat is the kernel's own (KNOWN_SPLATS), or None."""
    for k_test, k_title, k_frame, why in KNOWN_SPLATS:
        if test == k_test and k_title.search(title) and \
                any(k_frame in c for c in context):
            return why
    return None


def report_run(rep, run_dir, prefix):
    env = read_env(os.path.join(run_dir, "run.env"))
    mode = env.get("MODE", "check")
    stream = read_lines(os.path.join(run_dir, "stream.log"))
    host = read_lines(os.path.join(run_dir, "host.log"))
    kills = [l.split(None, 1)[1] for l in host if l.startswith("FBLK-HOST-KILL")]
    kill = kills[0] if kills else None
    # vm.sh boots once more a kernel that crashed before the runner started
    # (none of our code had run): on record, not a failure of the run.
    for l in host:
        if l.startswith("FBLK-HOST-REBOOT "):
            rep.add(True, "%sboot: the kernel crashed while booting, before any "
                    "test, and was booted again" % prefix, diag=[l.split(None, 1)[1]])

    ready = done = setup_failed = False
    current, lines, ran, leaks = None, [], 0, []
    for line in stream:
        if line.startswith("FBLK-READY"):
            ready = True
        elif line.startswith("FBLK-SETUP-FAIL "):
            setup_failed = True
            rep.add(False, "%ssetup: %s" % (prefix, line.split(None, 1)[1]))
        elif line.startswith("FBLK-BEGIN "):
            current, lines = line.split(None, 1)[1], []
            ran += 1
        elif line.startswith("FBLK-END ") and current:
            m = re.search(r"rc=(\d+)", line)
            report_test(rep, prefix, current, lines, int(m.group(1)) if m else -1)
            for test, what in leaks:
                rep.add(False, "%s%s: left behind: %s" % (prefix, test, what))
            current, leaks = None, []
        elif line.startswith("FBLK-LEAK "):
            _, test, what = line.split(None, 2)
            leaks.append((test, what))
        elif line.startswith("FBLK-KMEMLEAK "):
            pass  # reported with the kernel splats below
        elif line.startswith("FBLK-DONE"):
            done = True
        elif current is not None:
            lines.append(line)

    if current is not None:
        if kill and kill.startswith("test-timeout"):
            note = "killed by the host watchdog (%s)" % kill
        else:
            note = "did not finish: the VM died (%s)" % (kill or "see console.log")
        report_test(rep, prefix, current, lines, -1, note)
    elif not ready and not setup_failed:
        rep.add(False, "%sboot: the VM never reached the test runner (%s)"
                % (prefix, kill or "see console.log"))
    elif not done and not setup_failed:
        rep.add(False, "%svm: the guest stopped before the end (%s)"
                % (prefix, kill or "see console.log"))
    if ready and ran == 0 and mode in ("check", "smoke"):
        rep.add(False, "%sno tests ran (T=%s)" % (prefix, env.get("FILTER", "")))

    # Kernel splats, each once even when both logs show it.
    seen = set()
    sources = [os.path.join(run_dir, "dmesg.txt"), os.path.join(run_dir, "console.log")]
    for path in sources:
        for test, title, context in find_splats(read_lines(path)):
            key = (test, title)
            if key in seen:
                continue
            seen.add(key)
            known = known_splat(test, title, context)
            if known:
                rep.add(True, "%s%s: known kernel splat: %s" % (prefix, test, title),
                        diag=["not fblk's: " + known] + context +
                        ["(from %s)" % shown(path)])
                continue
            rep.add(False, "%s%s: kernel splat: %s" % (prefix, test, title), None,
                    context + ["(from %s)" % shown(path)])
    for line in stream:
        if line.startswith("FBLK-KMEMLEAK "):
            _, test, what = line.split(None, 2)
            rep.add(False, "%s%s: kernel splat: kmemleak: %s" % (prefix, test, what),
                    None, ["(see kmemleak.txt in %s)" % shown(run_dir)])


def main(argv):
    rep = Report()
    runs, lint, taps = [], None, []
    args = iter(argv)
    for a in args:
        if a == "--lint":
            lint = next(args)
        elif a == "--tap":
            taps.append((next(args), next(args), next(args), next(args)))
        else:
            runs.append(a)
    if lint:
        report_test(rep, "", "lint", read_lines(lint), 0)
    for name, rc, tap, console in taps:
        report_test(rep, "", name, read_lines(tap), int(rc))
        for _, title, context in find_splats(read_lines(console)):
            rep.add(False, "%s: kernel splat: %s" % (name, title), None,
                    context[:DIAG_LINES])
    for run in runs:
        prefix = ""
        if len(runs) > 1:
            prefix = read_env(os.path.join(run, "run.env")).get("KLINE", run) + ": "
        report_run(rep, run, prefix)
    failed = rep.print(sys.stdout)
    if not rep.results:
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
