#!/usr/bin/env python3
"""The field's suites on fblk next to loop: a run directory -> summary.md.

    report.py blktests|xfstests RUN_DIR
    report.py --tap blktests|xfstests RUN_DIR

Reads RUN_DIR/<suite>.tsv (test, device, role, status, reason; written by
the guest side) and prints, and writes to RUN_DIR/summary.md, a table per
test with the status on each role (fblk's and loop's), the counts per role,
and what fblk fails where loop passes.  Exits 1 if any fblk result failed.
With --tap it prints fblk's results as TAP instead (for make check): a line
per test and fblk role, and per test of the fblk group; "not run" is a skip
with the suite's reason; a failure is followed by the start of its
.out.bad.
"""
import collections
import os
import sys

# Each fblk role and the loop role it is compared with.
PAIRS = {
    "fblk-auto": "loop-dio-on",
    "fblk-buffered": "loop-dio-off",
    "fblk-direct": "loop-dio-on",
}
SHORT = {"pass": "pass", "fail": "FAIL", "not run": "skip", "none": "-"}


def load(path):
    res = collections.OrderedDict()    # test -> role -> status
    reasons = collections.defaultdict(set)
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 4:
                continue
            test, dev, role, status = parts[:4]
            reason = parts[4] if len(parts) > 4 else ""
            if reason:
                reasons[test].add(reason)
            if dev == "-":
                continue
            res.setdefault(test, {})[role] = status
    return res, reasons


def group_pairs(res):
    """blktests: fblk/NNN next to loop/NNN, as one row each."""
    rows = collections.OrderedDict()
    for test, by_role in res.items():
        grp, _, num = test.partition("/")
        if grp in ("fblk", "loop") and "nodev" in by_role:
            rows.setdefault(num, {})[grp] = by_role["nodev"]
    return rows


def is_fblk(test, role):
    return role.startswith("fblk") or (role == "nodev" and test.startswith("fblk/"))


def failure_output(run_dir, suite, test, dev, role, limit=20):
    """The first LIMIT lines of a failed test's .out.bad, as TAP comments."""
    if suite == "blktests":
        sub = "nodev" if role == "nodev" else dev
    else:
        sub = role
    path = os.path.join(run_dir, suite, sub, test + ".out.bad")
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return ["# " + line for line in lines[:limit]]


def print_tap(path, suite):
    """fblk's results in PATH (a suite's tsv) as TAP; 1 if any failed."""
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 4 and is_fblk(parts[0], parts[2]):
                rows.append(parts + [""] * (5 - len(parts)))
    print("TAP version 13")
    print("1..%d" % len(rows))
    failed = 0
    for n, (test, dev, role, status, reason) in enumerate(rows, 1):
        name = test if role == "nodev" else "%s on %s (%s)" % (test, role, dev)
        if status == "pass":
            print("ok %d %s" % (n, name))
        elif status == "not run":
            print("ok %d %s # SKIP %s" % (n, name, reason or "not run"))
        else:
            failed += 1
            print("not ok %d %s" % (n, name))
            if reason:
                print("# %s" % reason)
            for line in failure_output(os.path.dirname(path), suite, test,
                                       dev, role):
                print(line)
    return 1 if failed or not rows else 0


def main():
    if sys.argv[1] == "--tap":
        return print_tap(os.path.join(sys.argv[3], sys.argv[2] + ".tsv"),
                         sys.argv[2])
    suite, run_dir = sys.argv[1], sys.argv[2]
    res, reasons = load(os.path.join(run_dir, suite + ".tsv"))
    roles = []
    for by_role in res.values():
        for r in by_role:
            if r != "nodev" and r not in roles:
                roles.append(r)
    roles.sort(key=lambda r: (not r.startswith("fblk"), r))
    out = []
    bad = []
    fblk_failed = 0
    counts = collections.defaultdict(collections.Counter)

    dev_tests = [t for t, b in res.items() if any(r != "nodev" for r in b)]
    if dev_tests:
        out.append("| test | " + " | ".join(roles) + " | skip reason |")
        out.append("|" + " --- |" * (len(roles) + 2))
        for t in dev_tests:
            b = res[t]
            cells = []
            for r in roles:
                st = b.get(r, "none")
                counts[r][st] += 1
                cells.append(SHORT.get(st, st))
                if r.startswith("fblk") and st == "fail":
                    fblk_failed += 1
                    base = b.get(PAIRS.get(r, ""), "none")
                    if base != "fail":
                        bad.append("%s on %s (loop: %s)" % (t, r, base))
            why = "; ".join(sorted(reasons.get(t, ())))
            out.append("| %s | %s | %s |" % (t, " | ".join(cells), why))
        out.append("")

    pairs = group_pairs(res)
    if pairs:
        out.append("| scenario | fblk/ | loop/ | skip reason (fblk; loop) |")
        out.append("| --- | --- | --- | --- |")
        for num, b in pairs.items():
            f, l = b.get("fblk", "none"), b.get("loop", "none")
            if "fblk" in b:
                counts["fblk group"][f] += 1
            if "loop" in b:
                counts["loop group"][l] += 1
            if f == "fail":
                fblk_failed += 1
                if l != "fail":
                    bad.append("fblk/%s (loop/%s: %s)" % (num, num, l))
            why = "; ".join(sorted(reasons.get("fblk/" + num, ()))) + " ; " + \
                "; ".join(sorted(reasons.get("loop/" + num, ())))
            out.append("| %s | %s | %s | %s |" % (num, SHORT.get(f, f), SHORT.get(l, l),
                                                  why.strip(" ;")))
        out.append("")

    out.append("| role | pass | fail | not run |")
    out.append("| --- | --- | --- | --- |")
    for r, c in counts.items():
        out.append("| %s | %d | %d | %d |" % (r, c["pass"], c["fail"], c["not run"]))
    out.append("")
    if bad:
        out.append("fblk fails where loop does not: " + ", ".join(bad))
    else:
        out.append("fblk fails nothing that loop passes.")
    text = "\n".join(out) + "\n"
    with open(os.path.join(run_dir, "summary.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 1 if fblk_failed else 0


if __name__ == "__main__":
    sys.exit(main())
