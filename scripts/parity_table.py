#!/usr/bin/env python3
"""kNN top-1 per epoch of the parity runs (scripts/parity.sh, and PyTorch runs of
scripts/pytorch_moco_train.py): one row per run, then mean and spread (min-max) per group.

Usage: python3 scripts/parity_table.py DIR [DIR ...]   (each DIR holds run folders with metrics.jsonl;
a run folder named GROUP-sSEED is grouped by GROUP)
"""
import json
import os
import sys


def knn_by_epoch(path):
    out = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r.get("type") == "knn":
                out[int(r["epoch"])] = float(r["knn_top1"])
    return out


def main(dirs):
    runs = []
    for d in dirs:
        for name in sorted(os.listdir(d)):
            m = os.path.join(d, name, "metrics.jsonl")
            if os.path.exists(m):
                group = name.rsplit("-s", 1)[0] if "-s" in name else name
                runs.append((group, name, knn_by_epoch(m)))
    if not runs:
        sys.exit("no runs with metrics.jsonl in " + ", ".join(dirs))
    epochs = sorted({e for _, _, k in runs for e in k})
    head = "| run | " + " | ".join(str(e) for e in epochs) + " |"
    print(head)
    print("|" + "---|" * (len(epochs) + 1))
    for _, name, k in runs:
        print(f"| {name} | " + " | ".join(f"{k[e]:.2f}" if e in k else "" for e in epochs) + " |")
    for group in sorted({g for g, _, _ in runs}):
        cells = []
        for e in epochs:
            v = [k[e] for g, _, k in runs if g == group and e in k]
            cells.append(f"{sum(v) / len(v):.2f} ({min(v):.2f}-{max(v):.2f}, n={len(v)})" if v else "")
        print(f"| **{group} mean** | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["runs/parity"])
