#!/usr/bin/env python3
"""Merge the per-rank Chrome traces of `moco train --timeline FILE` (FILE.rank0.json, ...) into one
trace that Perfetto (ui.perfetto.dev) or chrome://tracing opens with every rank's lanes.

    python3 scripts/merge_timelines.py runs/x/trace.rank*.json -o runs/x/trace.json

Each rank's events already carry pid = rank, so merging is concatenation. A trace whose run died
is read without its closing bracket (the Trace Event Format's array form allows that). Only the
standard library is needed.
"""
import argparse
import json
import os
import sys


def read_events(path):
    text = open(path, encoding="utf-8").read().rstrip()
    if not text.startswith("["):
        raise ValueError(f"{path}: not a trace in the JSON array form (it does not start with '[')")
    if not text.endswith("]"):
        text = text.rstrip(",") + "]"   # a run that died: the closing bracket is optional
    events = json.loads(text)
    if not isinstance(events, list):
        raise ValueError(f"{path}: not a JSON array")
    return events


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("traces", nargs="+", help="per-rank trace files")
    ap.add_argument("-o", "--out", required=True, help="merged trace to write (not replaced if it exists)")
    a = ap.parse_args()
    if os.path.exists(a.out):
        sys.exit(f"merge_timelines.py: {a.out} exists (remove it or name another file)")
    merged, pids = [], set()
    for p in a.traces:
        try:
            ev = read_events(p)
        except (OSError, ValueError) as e:
            sys.exit(f"merge_timelines.py: {e}")
        ranks = {e.get("pid") for e in ev}
        if ranks & pids:
            sys.exit(f"merge_timelines.py: {p} holds rank(s) {sorted(ranks & pids)} already merged from another file")
        pids |= ranks
        merged += ev
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(merged, f, separators=(",", ":"))
        f.write("\n")
    spans = sum(1 for e in merged if e.get("ph") == "X")
    print(f"{a.out}: {spans} spans of {len(pids)} rank(s) from {len(a.traces)} file(s)")


if __name__ == "__main__":
    main()
