#!/usr/bin/env python3
"""Turn a `make bench` run directory into results.csv, report.md and chart data.

    report.py RUN_DIR

Reads what tools/bench/guest.sh wrote (cells.tsv, fio/*.json,
fio/*.qemu-img.txt, qemu-img.tsv, attach.tsv, images.tsv, many.tsv, env.txt,
targets.txt) and host.env from bench.sh.  Every figure comes from fio's JSON,
qemu-img's output or the guest's own counters.  Writes:
  results.csv      one row per cell and target
  report.md        the summary table (IOPS per target, fblk's ratios), the
                   best ublk line, submit=async against submit=threads, the
                   fragmented images, the many-devices costs, the detail
                   table, qemu-img bench, attach cost
  summary.md       the part of report.md that `make bench` prints
  charts/*.dat     IOPS per workload (rows) and target (columns), one file
                   per device model/filesystem/image, for chart.gp
  charts/*.xy      IOPS against CPU time per I/O, a block per target, one
                   file per device model/filesystem/image, for chart-cpu.gp

Runs from before a column existed (no opts, ctxt, many.tsv...) render as
they did.
"""
import csv
import json
import os
import re
import sys

CELL_FIELDS = ["model", "fs", "image", "rw", "bs", "depth", "target", "mode",
               "kind", "json", "cpu_ticks", "t0", "t1", "status", "note", "round",
               "opts", "ctxt"]
MANY_FIELDS = ["model", "fs", "devs", "target", "mode", "kind", "round", "attached",
               "attach_s", "detach_s", "kt0", "kt1", "kt2", "slab_kb",
               "sunreclaim_kb", "vmalloc_kb", "percpu_kb", "kt_grown_attach",
               "kt_grown_io", "detach_fails", "note"]
IMAGE_FIELDS = ["model", "fs", "image", "mib", "writes", "extents", "fill_s"]
# Within this fraction of each other, two runs tie (single runs under
# emulation swing by tens of percent: see Documentation/bench.md).
TIE = 0.05


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


def qemu_img_figures(path):
    """IOPS, MB/s, mean latency (us), I/Os of a `qemu-img bench` output.

    qemu-img prints the requests it sends and the time they took; the mean
    latency is Little's law over the queue depth (no percentiles)."""
    text = open(path).read()
    m = re.search(r"Sending (\d+) \w+ requests, (\d+) bytes each, (\d+) in parallel", text)
    t = re.search(r"Run completed in ([0-9.]+) seconds", text)
    if not m or not t or float(t.group(1)) <= 0:
        return None
    n, size, depth = (int(x) for x in m.groups())
    secs = float(t.group(1))
    return {"iops": n / secs, "mbps": n * size / secs / 1e6,
            "lat_us": depth * secs / n * 1e6, "p99_us": None, "ios": n}


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
        if c["opts"]:
            r["cell"] += " " + c["opts"]
        r["group"] = f'{c["model"]}/{c["fs"]}/{c["image"]}'
        figs = None
        if c["status"] == "ok" and c["json"]:
            try:
                if c["json"].endswith(".qemu-img.txt"):
                    figs = qemu_img_figures(os.path.join(run, c["json"]))
                    if figs is None:
                        r["status"] = "no qemu-img result"
                else:
                    figs = fio_figures(os.path.join(run, c["json"]))
            except (OSError, ValueError, KeyError, IndexError) as e:
                r["status"] = f"bad json ({e.__class__.__name__})"
        if figs:
            r.update(figs)
            if c["cpu_ticks"]:
                r["cpu_us"] = int(c["cpu_ticks"]) * 1e6 / user_hz / figs["ios"]
            if c["ctxt"]:
                r["ctx_io"] = int(c["ctxt"]) / figs["ios"]
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

    # The best ublk line of each workload, the one with the highest median
    # IOPS among the ublk targets (kublk's queues, zero copy, auto_zc): the
    # direct fblk targets' ×ublk is against it, run by run against its run of
    # the same round.
    ublks = [t["name"] for t in targets if t["kind"] == "ublk"]
    best_ublk = {}
    for k in by_key:
        wk = k[:2]
        if wk in best_ublk:
            continue
        cands = [(by_key[wk + (n,)]["iops"], n) for n in ublks
                 if by_key.get(wk + (n,), {}).get("iops")]
        best_ublk[wk] = max(cands)[1] if cands else None
    for coll, look in ((by_key.values(), lambda m, b: by_key.get((m["group"], m["cell"], b))),
                       (rows, lambda m, b: by_round.get((m["group"], m["cell"], b, m["round"])))):
        for m in coll:
            b = best_ublk.get((m["group"], m["cell"]))
            m["ublk_best"] = b or ""
            other = look(m, b) if b and m["kind"] == "fblk" and m["mode"] == "direct" else None
            m["x_ublk"] = ratio(m.get("iops"), other.get("iops") if other else None)
    ublk_ran = any(best_ublk.values())

    # CSV
    cols = ["kernel", "model", "fs", "image", "rw", "bs", "depth", "target",
            "mode", "iops", "mb_s", "lat_mean_us", "lat_p99_us",
            "cpu_us_per_io", "x_loop", "x_raw", "status", "note", "fio_json",
            "round", "opts", "ctx_per_io", "x_ublk", "ublk_best"]
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
                        r["round"], r["opts"], num("ctx_io", 2), num("x_ublk", 3),
                        r["ublk_best"]])

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
    def with_ublk(t):
        return ublk_ran and t["mode"] == "direct"
    for t in fblks:
        head += [f'{t["name"]} ×loop', f'{t["name"]} ×raw']
        if with_ublk(t):
            head.append(f'{t["name"]} ×ublk')
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
            if with_ublk(t):
                line.append(fmt(x.get("x_ublk"), 2))
        out.append("| " + " | ".join(line) + " |")
    out.append("")
    if ublk_ran:
        out.append("×ublk: a direct fblk target's IOPS over the best ublk line's of the "
                   "same workload:")
        out.append("")
        out.append("| group | workload | best ublk line | IOPS | CPU us/IO | the other lines |")
        out.append("| --- | --- | --- | ---: | ---: | --- |")
        for k in seen:
            b = best_ublk.get(k)
            if not b:
                continue
            x = by_key[k + (b,)]
            others = ", ".join(f'{n} {fmt(by_key[k + (n,)]["iops"])}' for n in ublks
                               if n != b and by_key.get(k + (n,), {}).get("iops"))
            out.append(f'| {k[0]} | {k[1]} | {b} | {fmt(x["iops"])} | '
                       f'{fmt(x.get("cpu_us"), 1)} | {others or "-"} |')
        out.append("")
    out += async_threads(targets, by_key, seen)
    out += fragmented(run)
    out += many_devices(run, by_key, ref)
    out += goals(run, env, by_key, best_ublk)

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
           "CPU us/IO | ctx/IO | ×loop | ×raw | note |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        if r["status"] != "ok" or r.get("iops") is None:
            det.append(f'| {r["group"]} | {r["cell"]} | {r["target"]} | {r["round"]} '
                       f'| {r["status"]} | | | | | | | | {r["note"]} |')
            continue
        det.append(" | ".join([
            f'| {r["group"]}', r["cell"], r["target"], r["round"], fmt(r["iops"]),
            fmt(r["mbps"], 1), fmt(r["lat_us"]), fmt(r.get("p99_us")),
            fmt(r.get("cpu_us")), fmt(r.get("ctx_io"), 2), fmt(r["x_loop"], 2),
            fmt(r["x_raw"], 2), (r["note"] or "") + " |"]))
    det.append("")
    det.append("CPU us/IO: guest system + irq + softirq time (/proc/stat) over the "
               "run, divided by the I/Os fio completed; ctx/IO: context switches "
               "(/proc/stat ctxt) over the same window, per I/O.  With several fio "
               "jobs the window runs from the first job's start to the last one's "
               "end.  Mean latency is fio's lat_ns (submission to completion), p99 "
               "its clat percentile; qi-read and qi-write are `qemu-img bench` runs "
               "(no percentiles; mean latency from the depth and the run time).")
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
        # IOPS against CPU per I/O: a block per target (gnuplot's index),
        # a point per workload.
        blocks = []
        for n in have:
            pts = [by_key.get((g, c, n)) for c in cells_g]
            pts = [(p["cpu_us"], p["iops"], c) for p, c in zip(pts, cells_g)
                   if p and p.get("iops") and p.get("cpu_us")]
            if pts:
                blocks.append(f'"{n}" "iops" "workload"\n' + "".join(
                    f'{cpu:.1f} {iops:.0f} "{c}"\n' for cpu, iops, c in pts))
        if blocks:
            with open(fname[:-len(".dat")] + ".xy", "w") as fh:
                fh.write("\n\n".join(blocks))


def async_threads(targets, by_key, seen):
    """submit=async against submit=threads: each fblk target with
    --submit=threads and its twin without it, workload by workload."""
    fb = [t for t in targets if t["kind"] == "fblk"]
    pairs = []
    for t in fb:
        o = t["opts"].split()
        if "--submit=threads" not in o:
            continue
        base = sorted(x for x in o if x != "--submit=threads")
        twin = next((a for a in fb if sorted(a["opts"].split()) == base), None)
        if twin:
            pairs.append((twin["name"], t["name"]))
    rows = []
    score = {p: {"async": [], "threads": [], "tie": []} for p in pairs}
    for k in seen:
        line, any_run = [k[0], k[1]], False
        for a, th in pairs:
            x, y = by_key.get(k + (a,), {}), by_key.get(k + (th,), {})
            q = ratio(x.get("iops"), y.get("iops"))
            if q is None:
                line.append("-")
                continue
            any_run = True
            win = "async" if q > 1 + TIE else "threads" if q < 1 - TIE else "tie"
            score[(a, th)][win].append(f"{k[0]} {k[1]}")
            line.append(f'{fmt(x["iops"])} / {fmt(y["iops"])} = {q:.2f} {win}')
        if any_run:
            rows.append(line)
    if not rows:
        return []
    out = ["submit=async against submit=threads (IOPS async / threads; within "
           f"{TIE:.0%}: tie):", ""]
    out.append("| group | workload | " + " | ".join(f"{a} / {th}" for a, th in pairs) + " |")
    out.append("| --- | --- |" + " ---: |" * len(pairs))
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out.append("")
    for (a, th), sc in score.items():
        n = sum(len(v) for v in sc.values())
        if not n:
            continue
        out.append(f'- {a} (async) wins {len(sc["async"])} of {n}, {th} wins '
                   f'{len(sc["threads"])}' +
                   (f' ({"; ".join(sc["threads"])})' if sc["threads"] else "") +
                   f', {len(sc["tie"])} ties')
    out.append("")
    return out


def fragmented(run):
    """The fragmented images: fill order and filefrag's extent count."""
    im = read_tsv(os.path.join(run, "images.tsv"), IMAGE_FIELDS)
    if not im:
        return []
    out = ["Fragmented images (sparse, filled by 64 KiB O_DIRECT writes in the "
           "order named; extents: filefrag):", "",
           "| model | fs | image | MiB | writes | extents | fill s |",
           "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for i in im:
        out.append(f'| {i["model"]} | {i["fs"]} | {i["image"]} | {i["mib"]} | '
                   f'{i["writes"]} | {i["extents"]} | {i["fill_s"]} |')
    out.append("")
    return out


def many_devices(run, by_key, ref):
    """What N devices of a target cost: attach time, kernel threads, memory
    per device, and the aggregate IOPS of fio on all of them (×loop: over
    loop's with the same count and mode)."""
    md = read_tsv(os.path.join(run, "many.tsv"), MANY_FIELDS)
    if not md:
        return []
    cells = {}
    for (g, c, n), m in by_key.items():
        mm = re.search(r"devs=(\d+)", c)
        if g.endswith("/many") and mm:
            cells.setdefault((g, mm.group(1), n), []).append((c, m))
    out = ["Many devices (each on its own image; per device: the attach's cost "
           "divided by the devices attached; kernel threads: children of "
           "kthreadd before -> after the attach -> after the I/O):", "",
           "| group | devices | target | ms/attach | ms/detach | kernel threads | "
           "slab KiB/dev | unreclaimable KiB/dev | vmalloc KiB/dev | percpu KiB/dev | "
           "threads that grew (attach / I/O) | aggregate IOPS, median (×loop) |",
           "| --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |"]
    several = any(d["round"] not in ("", "1") for d in md)
    for d in md:
        g = f'{d["model"]}/{d["fs"]}/many'
        try:
            n = int(d["attached"])
        except ValueError:
            n = 0

        def per(v, nd=1, scale=1.0):
            try:
                return fmt(float(v) * scale / n, nd) if n else "-"
            except ValueError:
                return "-"
        iops = []
        for c, m in sorted(cells.get((g, d["devs"], d["target"]), [])):
            if not m.get("iops"):
                continue
            other = by_key.get((g, c, ref.get(("loop", m["mode"]))))
            x = ratio(m["iops"], other.get("iops") if other else None)
            iops.append(f'{c.split()[0]} {fmt(m["iops"])}' + (f" ({x:.2f})" if x else ""))
        grown = (d["kt_grown_attach"].strip() or "-") + " / " + (d["kt_grown_io"].strip() or "-")
        out.append(" | ".join([
            f'| {g}', d["devs"] + ("" if d["attached"] == d["devs"] else f' ({d["attached"]} attached)'),
            d["target"] + (f' (round {d["round"]})' if several else ""),
            per(d["attach_s"], 1, 1000), per(d["detach_s"], 1, 1000),
            f'{d["kt0"]} -> {d["kt1"]} -> {d["kt2"]}', per(d["slab_kb"]),
            per(d["sunreclaim_kb"]), per(d["vmalloc_kb"]), per(d["percpu_kb"]),
            grown, "; ".join(iops) or "-"]) + " |")
        if d["note"]:
            out[-1] += f' {d["note"]}'
    out.append("")
    return out


def goals(run, env, by_key, best_ublk):
    """Issue 22's goals, checked against this run where it has the cells.
    Single runs under emulation: a miss by a few percent is noise, not a
    verdict."""
    def iops(g, c, n):
        return by_key.get((g, c, n), {}).get("iops")

    def cpu(g, c, n):
        return by_key.get((g, c, n), {}).get("cpu_us")

    res = []

    def check(what, where, a, b, higher=True):
        q = ratio(a, b)
        if q is None:
            return
        met = q >= 1 if higher else q <= 1
        nd = 0 if higher else 1     # IOPS, or CPU us per I/O
        res.append((what, where, f"{fmt(a, nd)} / {fmt(b, nd)} = {q:.2f}", "yes" if met else "no"))

    for (g, c) in sorted({k[:2] for k in by_key}):
        model, _, image = g.split("/")
        f = c.split()
        if (model in ("brd", "null@0", "null@10us") and image == "prealloc" and
                f[:3] == ["randread", "4k", "qd32"] and f[3:] in ([], ["jobs=1"])):
            w = f"{g} {c}"
            check("fblk direct ≥ loop dio on", w, iops(g, c, "fblk-direct"), iops(g, c, "loop-dio-on"))
            b = best_ublk.get((g, c))
            if b:
                check(f"fblk direct ≥ best ublk ({b})", w, iops(g, c, "fblk-direct"), iops(g, c, b))
            check("fblk direct CPU/IO ≤ loop dio on's", w, cpu(g, c, "fblk-direct"),
                  cpu(g, c, "loop-dio-on"), higher=False)
            check("fblk buffered ≥ io_uring buffered on the file", w,
                  iops(g, c, "fblk-buffered"), iops(g, c, "raw-buffered"))
        if image.startswith("frag-"):
            w = f"{g} {c}"
            check("fragmented: fblk buffered ≥ loop dio off", w,
                  iops(g, c, "fblk-buffered"), iops(g, c, "loop-dio-off"))
            check("fragmented: fblk direct ≥ loop dio on", w,
                  iops(g, c, "fblk-direct"), iops(g, c, "loop-dio-on"))
        if image == "many":
            w = f"{g} {c}"
            check("many devices: fblk buffered ≥ loop dio off", w,
                  iops(g, c, "fblk-buffered"), iops(g, c, "loop-dio-off"))
            check("many devices: fblk direct ≥ loop dio on", w,
                  iops(g, c, "fblk-direct"), iops(g, c, "loop-dio-on"))
    try:
        ncpu = int(env.get("cpus", "").split()[0])
    except (ValueError, IndexError):
        ncpu = None
    for d in read_tsv(os.path.join(run, "many.tsv"), MANY_FIELDS):
        if d["kind"] != "fblk" or not ncpu:
            continue
        try:
            grown = max(int(d["kt1"]), int(d["kt2"])) - int(d["kt0"])
        except ValueError:
            continue
        res.append((f"many devices: at most one kernel thread per CPU ({ncpu})",
                    f'{d["model"]}/{d["fs"]}/many devs={d["devs"]} {d["target"]}',
                    f"+{grown} threads", "yes" if grown <= ncpu else "no"))
    if not res:
        return []
    out = ["Issue 22's goals in this run (single runs under emulation swing by "
           "tens of percent: a near miss is not a verdict):", "",
           "| goal | where | figures | met |", "| --- | --- | --- | --- |"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in res]
    out.append("")
    return out


if __name__ == "__main__":
    main()
