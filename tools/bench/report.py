#!/usr/bin/env python3
"""Turn a `make bench` run directory into results.csv, report.md and chart data.

    report.py RUN_DIR

Reads what tools/bench/guest.sh wrote (cells.tsv, fio/*.json, qemu-img.tsv,
attach.tsv, env.txt, targets.txt) and host.env from bench.sh.  Every figure
comes from fio's JSON or the guest's own counters.  Writes:
  results.csv      one row per cell and target
  report.md        the summary table (IOPS per target, fblk's ratios), the
                   detail table, qemu-img bench, attach cost
  summary.md       the part of report.md that `make bench` prints
  charts/*.dat     IOPS per workload (rows) and target (columns), one file
                   per device model/filesystem/image, for chart.gp
"""
import csv
import json
import os
import sys

CELL_FIELDS = ["model", "fs", "image", "rw", "bs", "depth", "target", "mode",
               "kind", "json", "cpu_ticks", "t0", "t1", "status", "note", "round"]


def read_kv(path):
    out = {}
    if os.path.exists(path):
        for line in open(path):
            if "\t" in line:
                k, v = line.rstrip("\n").split("\t", 1)
                out[k] = v
    return out


def read_tsv(path, fields):
    rows = []
    if os.path.exists(path):
        for line in open(path):
            parts = line.rstrip("\n").split("\t")
            parts += [""] * (len(fields) - len(parts))
            rows.append(dict(zip(fields, parts)))
    return rows


def fio_figures(path):
    """IOPS, MB/s, mean and p99 latency (us), I/Os of one fio JSON file.

    Mixed workloads: IOPS and bandwidth are summed, the mean latency is
    weighted by I/O count, p99 is the larger of the read and write p99."""
    job = json.load(open(path))["jobs"][0]
    iops = bw = ios = lat_sum = 0.0
    p99 = 0.0
    for d in ("read", "write"):
        s = job[d]
        n = s["total_ios"]
        if n == 0:
            continue
        iops += s["iops"]
        bw += s["bw_bytes"]
        ios += n
        lat_sum += s["lat_ns"]["mean"] * n
        pct = s["clat_ns"].get("percentile", {})
        p99 = max(p99, pct.get("99.000000", 0))
    if ios == 0:
        return None
    return {"iops": iops, "mbps": bw / 1e6, "lat_us": lat_sum / ios / 1e3,
            "p99_us": p99 / 1e3, "ios": ios}


def fmt(v, nd=0):
    if v is None or v == "":
        return "-"
    if isinstance(v, str):
        return v
    return f"{v:.{nd}f}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def main():
    run = sys.argv[1]
    env = read_kv(os.path.join(run, "env.txt"))
    host = read_kv(os.path.join(run, "host.env"))
    user_hz = int(env.get("user_hz", "100") or 100)
    targets = []
    for line in open(os.path.join(run, "targets.txt")):
        f = line.split()
        if f:
            targets.append({"name": f[0], "mode": f[1], "kind": f[2],
                            "opts": " ".join(f[3:])})
    cells = read_tsv(os.path.join(run, "cells.tsv"), CELL_FIELDS)

    # Reference targets per mode: the raw file and loop.
    ref = {}
    for t in targets:
        if t["kind"] in ("file", "loop"):
            ref.setdefault((t["kind"], t["mode"]), t["name"])

    rows = []
    for c in cells:
        r = dict(c)
        r["cell"] = f'{c["rw"]} {c["bs"]} qd{c["depth"]}'
        r["group"] = f'{c["model"]}/{c["fs"]}/{c["image"]}'
        figs = None
        if c["status"] == "ok" and c["json"]:
            try:
                figs = fio_figures(os.path.join(run, c["json"]))
            except (OSError, ValueError, KeyError, IndexError) as e:
                r["status"] = f"bad json ({e.__class__.__name__})"
        if figs:
            r.update(figs)
            if c["cpu_ticks"]:
                r["cpu_us"] = int(c["cpu_ticks"]) * 1e6 / user_hz / figs["ios"]
        rows.append(r)

    # Each run's ratios are against the references' run of the same round.
    by_round = {(r["group"], r["cell"], r["target"], r["round"]): r for r in rows}
    for r in rows:
        for kind, col in (("loop", "x_loop"), ("file", "x_raw")):
            name = ref.get((kind, r["mode"]))
            other = by_round.get((r["group"], r["cell"], name, r["round"])) if name else None
            r[col] = ratio(r.get("iops"), other.get("iops") if other else None)

    # The tables show each target's median run (the lower one of an even
    # count), with the spread of its rounds; ratios are of the medians.
    runs = {}
    for r in rows:
        runs.setdefault((r["group"], r["cell"], r["target"]), []).append(r)
    by_key = {}
    for k, rs in runs.items():
        good = sorted((r for r in rs if r.get("iops")), key=lambda r: r["iops"])
        if not good:
            by_key[k] = rs[0]
            continue
        m = dict(good[(len(good) - 1) // 2])
        m.update(n=len(good), iops_min=good[0]["iops"], iops_max=good[-1]["iops"])
        by_key[k] = m
    for k, m in by_key.items():
        for kind, col in (("loop", "x_loop"), ("file", "x_raw")):
            name = ref.get((kind, m["mode"]))
            other = by_key.get((k[0], k[1], name)) if name else None
            m[col] = ratio(m.get("iops"), other.get("iops") if other else None)
    rounds = max((m.get("n", 1) for m in by_key.values()), default=1)

    # CSV
    cols = ["kernel", "model", "fs", "image", "rw", "bs", "depth", "target",
            "mode", "iops", "mb_s", "lat_mean_us", "lat_p99_us",
            "cpu_us_per_io", "x_loop", "x_raw", "status", "note", "fio_json",
            "round"]
    with open(os.path.join(run, "results.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            def num(k, nd):
                v = r.get(k)
                return "" if v is None else round(v, nd)
            w.writerow([env.get("kernel", ""), r["model"], r["fs"], r["image"],
                        r["rw"], r["bs"], r["depth"], r["target"], r["mode"],
                        num("iops", 1), num("mbps", 2), num("lat_us", 1),
                        num("p99_us", 1), num("cpu_us", 1), num("x_loop", 3),
                        num("x_raw", 3), r["status"], r["note"], r["json"],
                        r["round"]])

    groups = []
    for r in rows:
        if r["group"] not in groups:
            groups.append(r["group"])
    # Targets that never ran (no ublk, an fblk option this kernel lacks)
    # get no column; the list under the table says why.
    ran = {r["target"] for r in rows if r.get("iops")}
    names = [t["name"] for t in targets if t["name"] in ran]
    fblks = [t for t in targets if t["kind"] == "fblk" and t["name"] in ran]

    out = []
    out.append(f'## fblk bench: {env.get("kernel", "?")}, profile {host.get("profile", "?")}')
    out.append("")
    out.append(f'- guest: {env.get("cpus", "?")}, {env.get("memory", "?")} '
               f'(qemu TCG on {host.get("host_cpu", "?")}); {env.get("fio", "")}')
    vm_secs = "?"
    hl = os.path.join(run, "host.log")
    if os.path.exists(hl):
        for line in open(hl):
            if line.startswith("qemu exited after "):
                n = int(line.split()[3])
                vm_secs = f"{n // 60} min {n % 60} s"
    out.append(f'- {env.get("runtime", "")}, caches dropped before each run; '
               f'the VM ran {vm_secs} (make bench took {host.get("duration", "?")}, '
               f'with the build and waiting for other VMs); host load average '
               f'before/after: {host.get("load_before", "?")} / {host.get("load_after", "?")}')
    out.append(f'- fblk: {host.get("tree", "?")}; targets {", ".join(t["name"] for t in targets)}')
    out.append(f'- null: null_blk {env.get("null_blk", "")}')
    out.append(f'- brd: {env.get("brd", "")}')
    out.append("- IOPS from fio (io_uring; O_DIRECT on every block device, the raw "
               "file as its mode says); ×loop and ×raw: a target's IOPS over loop's "
               "and the raw file's of the same mode (buffered or direct)")
    if rounds > 1:
        out.append(f"- {rounds} rounds of every target, interleaved: each figure is "
                   "the target's median run, its rounds' lowest-highest in brackets; "
                   "ratios are of the medians")
    out.append("")
    head = ["group", "workload"] + names
    for t in fblks:
        head += [f'{t["name"]} ×loop', f'{t["name"]} ×raw']
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join([" --- "] * 2 + [" ---: "] * (len(head) - 2)) + "|")
    seen = []
    for r in rows:
        k = (r["group"], r["cell"])
        if k in seen:
            continue
        seen.append(k)
        line = [r["group"], r["cell"]]
        for n in names:
            x = by_key.get(k + (n,))
            cell = (fmt(x.get("iops")) if x and x.get("iops") else
                    ("skip" if x and x["status"] == "skip" else "-"))
            if x and x.get("n", 1) > 1:
                cell += f' ({fmt(x["iops_min"])}-{fmt(x["iops_max"])})'
            line.append(cell)
        for t in fblks:
            x = by_key.get(k + (t["name"],), {})
            line += [fmt(x.get("x_loop"), 2), fmt(x.get("x_raw"), 2)]
        out.append("| " + " | ".join(line) + " |")
    out.append("")

    # qemu-img bench
    qi = read_tsv(os.path.join(run, "qemu-img.tsv"),
                  ["target", "mode", "aio", "count", "secs", "cpu_ticks"])
    if qi:
        out.append(f'qemu-img bench (4 KiB sequential reads, -t none, -d 64, '
                   f'{qi[0]["count"]} requests) on {env.get("qemu_img_group", "?")}:')
        out.append("")
        out.append("| target | aio | IOPS | CPU us/IO |")
        out.append("| --- | --- | ---: | ---: |")
        for q in qi:
            try:
                secs = float(q["secs"])
                n = int(q["count"])
                iops = fmt(n / secs)
                cpu = fmt(int(q["cpu_ticks"]) * 1e6 / user_hz / n, 1)
            except (ValueError, ZeroDivisionError):
                iops, cpu = "failed", "-"
            out.append(f'| {q["target"]} | {q["aio"]} | {iops} | {cpu} |')
        out.append("")
    at = read_tsv(os.path.join(run, "attach.tsv"), ["tool", "n", "t0", "t1", "fails"])
    if at:
        out.append("| attach + detach | total s | ms each | failures |")
        out.append("| --- | ---: | ---: | ---: |")
        for a in at:
            if not int(a["n"] or 0):
                continue    # ATTACH_N=0: not measured
            secs = float(a["t1"]) - float(a["t0"])
            out.append(f'| {a["n"]} x {a["tool"]} | {secs:.1f} | '
                       f'{secs * 1000 / int(a["n"]):.1f} | {a["fails"]} |')
        out.append("")
    skipped = sorted({(r["target"], r["status"], r["note"]) for r in rows
                      if r["status"] != "ok"})
    for t, st, note in skipped:
        out.append(f"- {t}: {st} ({note or 'see bench.log'})")
    if skipped:
        out.append("")
    summary = "\n".join(out)

    det = ["### Every run", "",
           "| group | workload | target | round | IOPS | MB/s | mean lat us | p99 us | "
           "CPU us/IO | ×loop | ×raw | note |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        if r["status"] != "ok" or r.get("iops") is None:
            det.append(f'| {r["group"]} | {r["cell"]} | {r["target"]} | {r["round"]} '
                       f'| {r["status"]} | | | | | | | {r["note"]} |')
            continue
        det.append(" | ".join([
            f'| {r["group"]}', r["cell"], r["target"], r["round"], fmt(r["iops"]),
            fmt(r["mbps"], 1), fmt(r["lat_us"]), fmt(r["p99_us"]),
            fmt(r["cpu_us"]), fmt(r["x_loop"], 2), fmt(r["x_raw"], 2),
            (r["note"] or "") + " |"]))
    det.append("")
    det.append("CPU us/IO: guest system + irq + softirq time (/proc/stat) over the "
               "run, divided by the I/Os fio completed.  Mean latency is fio's "
               "lat_ns (submission to completion), p99 its clat percentile.")
    det.append("")
    with open(os.path.join(run, "summary.md"), "w") as fh:
        fh.write(summary + "\n")
    with open(os.path.join(run, "report.md"), "w") as fh:
        fh.write(summary + "\n" + "\n".join(det) + "\n")

    # Chart data: per group, a row per workload, a column per target.
    os.makedirs(os.path.join(run, "charts"), exist_ok=True)
    for g in groups:
        fname = os.path.join(run, "charts", g.replace("/", "-") + ".dat")
        cells_g = []
        for r in rows:
            if r["group"] == g and r["cell"] not in cells_g:
                cells_g.append(r["cell"])
        have = [n for n in names
                if any(by_key.get((g, c, n), {}).get("iops") for c in cells_g)]
        with open(fname, "w") as fh:
            fh.write("workload " + " ".join(have) + "\n")
            for cell in cells_g:
                vals = []
                for n in have:
                    x = by_key.get((g, cell, n))
                    vals.append(f'{x["iops"]:.0f}' if x and x.get("iops") else "NaN")
                fh.write('"' + cell + '" ' + " ".join(vals) + "\n")


if __name__ == "__main__":
    main()
