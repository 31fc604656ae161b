#!/usr/bin/env python3
"""Table of a recipe sweep (scripts/sweep.sh): for every variant, the kNN top-1 after the last
epoch of each seed, their mean and standard deviation, and the paired difference from the base
variant (the same seeds) with its standard error, sd(differences) / sqrt(n). Seeds share the
initial weights and data order across variants, so the paired difference removes most of the
seed-to-seed spread; with one seed there is no error bar, only the single-run figure.

Usage: python3 scripts/sweep_report.py OUT [--variants FILE] [--seeds "1 2"] [--base NAME]
  OUT holds run folders NAME-sSEED with metrics.jsonl; FILE lists the variants as name|flags lines
  (default: every NAME found); --base defaults to `base`, else the first variant.
Writes OUT/sweep.csv and prints the markdown table.
"""
import argparse
import csv
import json
import math
import os
import re
import statistics
import sys


def final_knn(path):
    """(kNN top-1 of the last evaluated epoch, that epoch, minutes of wall-clock) or None."""
    best = None
    with open(path) as f:
        for line in f:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if r.get("type") == "knn" and (best is None or r["epoch"] >= best[1]):
                best = (float(r["knn_top1"]), int(r["epoch"]), float(r.get("elapsed_s", 0)) / 60)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--variants", help="file of name|flags lines")
    p.add_argument("--seeds", help="seeds to include (default: all found)")
    p.add_argument("--base", help="variant the others are compared with")
    a = p.parse_args(argv)

    if not os.path.isdir(a.out):
        sys.exit(f"sweep_report: {a.out} is not a folder")
    flags = {}
    if a.variants:
        with open(a.variants) as f:
            for line in f:
                line = line.rstrip("\n")
                if line:
                    name, _, fl = line.partition("|")
                    flags[name] = fl
    results = {}  # name -> seed -> (top1, epoch, minutes)
    for entry in sorted(os.listdir(a.out)):
        m = re.fullmatch(r"(.+)-s(\d+)", entry)
        metrics = os.path.join(a.out, entry, "metrics.jsonl")
        if not m or not os.path.exists(metrics):
            continue
        k = final_knn(metrics)
        if k:
            results.setdefault(m.group(1), {})[int(m.group(2))] = k
    names = list(flags) if flags else sorted(results)
    if not any(n in results for n in names):
        sys.exit(f"sweep_report: no finished runs (NAME-sSEED/metrics.jsonl with a kNN record) in {a.out}")
    seeds = [int(s) for s in a.seeds.split()] if a.seeds else sorted({s for r in results.values() for s in r})
    base = a.base or ("base" if "base" in names else names[0])
    epochs = {k[1] for r in results.values() for k in r.values()}

    def fmt(x, digits=2):
        return "" if x is None else f"{x:.{digits}f}"

    rows = []
    for name in names:
        got = results.get(name, {})
        vals = [got[s][0] for s in seeds if s in got]
        mean = statistics.mean(vals) if vals else None
        sd = statistics.stdev(vals) if len(vals) > 1 else None
        diffs = [got[s][0] - results[base][s][0] for s in seeds if s in got and s in results.get(base, {})]
        dmean = statistics.mean(diffs) if diffs and name != base else None
        dse = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 and name != base else None
        minutes = statistics.mean(got[s][2] for s in seeds if s in got) if vals else None
        rows.append(dict(name=name, flags=flags.get(name, ""), n=len(vals), mean=mean, sd=sd, diff=dmean, se=dse,
                         minutes=minutes, per_seed={s: got[s][0] for s in seeds if s in got}))

    with open(os.path.join(a.out, "sweep.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["variant", "flags", "seeds", "knn_mean", "knn_sd", f"diff_vs_{base}", "diff_se", "minutes"]
                   + [f"seed_{s}" for s in seeds])
        for r in rows:
            w.writerow([r["name"], r["flags"], r["n"], fmt(r["mean"], 4), fmt(r["sd"], 4), fmt(r["diff"], 4), fmt(r["se"], 4),
                        fmt(r["minutes"], 2)] + [fmt(r["per_seed"].get(s), 2) for s in seeds])

    ep = ", ".join(str(e) for e in sorted(epochs))
    print(f"| variant | flags | kNN top-1 % after epoch {ep}, per seed ({', '.join(map(str, seeds))}) | mean (sd) "
          f"| − {base} (± se) | minutes per run |")
    print("|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: -(r["mean"] if r["mean"] is not None else -1)):
        per = " / ".join(fmt(r["per_seed"].get(s)) or "–" for s in seeds)
        mean = f"{fmt(r['mean'])}" + (f" ({fmt(r['sd'])})" if r["sd"] is not None else "") if r["mean"] is not None else "not run"
        diff = "" if r["diff"] is None else f"{r['diff']:+.2f}" + (f" (±{r['se']:.2f})" if r["se"] is not None else "")
        shown = "" if r["name"] not in flags else f"`{r['flags']}`" if r["flags"] else "(none)"
        print(f"| {r['name']} | {shown} | {per} | {mean} | {diff} | {fmt(r['minutes'], 1)} |")


if __name__ == "__main__":
    main()
