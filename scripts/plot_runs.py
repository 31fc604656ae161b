#!/usr/bin/env python3
"""Training curves of one or several `moco train` runs, from their metrics.jsonl, as PNGs.

  plot_runs.py RUN [RUN ...] --out DIR [--label NAME ...] [--baseline NAME=VALUE ...] [--no-baselines]

RUN is a run's output folder (OUT, holding metrics.jsonl) or a metrics.jsonl file. Writes
  DIR/loss.png               training loss
  DIR/contrastive_top1.png   contrastive top-1: how often the positive key has the largest logit (%)
  DIR/knn_top1.png           kNN monitor top-1 on the test set (%), with the baselines
each with two panels, against epoch and against wall-clock minutes, the runs overlaid (labels:
--label, one per run in order, else the folder names).

Baselines are horizontal lines on the kNN plot: each --baseline NAME=VALUE (repeatable, VALUE in
%); without any, the kNN of the same classifier on raw pixels (81.78) and on a random ResNet-20
(71.68) when every run is on Fashion-MNIST (its config.json says so; docs/results.md, measured
with `moco knn --raw-pixels` and `moco knn --random-init`), none otherwise. --no-baselines
draws none.

Records as the trainer writes them (docs/training.md, "Output"): `train` records every
--log-every steps (epoch, step, loss, acc1, elapsed_s, ...) and `knn` records after each kNN
evaluation (epoch = completed epochs, knn_top1). A run continued with --resume restarts
elapsed_s from 0; the wall-clock axis adds the earlier invocations' time (up to their last
record). Records of a step logged twice (files written before continued runs removed them) count
once, the later one. Needs matplotlib (pip install matplotlib).
"""
import argparse
import json
import os
import sys

FASHION_MNIST_BASELINES = [("raw pixels", 81.78), ("random encoder", 71.68)]


def load(path):
    """The run's records in order, each step once (the last record of a step wins)."""
    records = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"error: {path}:{n}: not JSON ({e})")
            if r.get("type") not in ("train", "knn") or "step" not in r:
                continue
            last = max((q["step"] for q in records if q["type"] == r["type"]), default=-1)
            if r["step"] <= last:
                # Logged again by a continued run: what was logged from this step on is stale.
                records = [q for q in records if q["step"] < r["step"]]
            records.append(r)
    return records


def wall_minutes(records):
    """elapsed_s made continuous over invocations (each continued run restarts it), in minutes."""
    out, offset, previous = [], 0.0, 0.0
    for r in records:
        t = float(r.get("elapsed_s", 0.0))
        if t + offset < previous:
            offset = previous
        previous = t + offset
        out.append(previous / 60)
    return out


def steps_per_epoch(records):
    """From the records: the last step of every epoch is logged, and kNN records carry completed epochs."""
    for r in records:
        if r["type"] == "knn" and r["epoch"] > 0:
            return r["step"] / r["epoch"]
    ends = {}
    for r in records:
        if r["type"] == "train":
            ends[r["epoch"]] = max(ends.get(r["epoch"], 0), r["step"])
    complete = sorted(e for e in ends if e + 1 in ends)
    if complete:
        return ends[complete[0]] / (complete[0] + 1)
    return None


def epochs(records, spe):
    """Fractional epochs: train records at step / steps-per-epoch, kNN records at completed epochs."""
    xs = []
    for r in records:
        if r["type"] == "knn":
            xs.append(float(r["epoch"]))
        else:
            xs.append(r["step"] / spe if spe else r["epoch"] + 1.0)
    return xs


def dataset(run_path):
    folder = run_path if os.path.isdir(run_path) else os.path.dirname(run_path)
    try:
        with open(os.path.join(folder, "config.json")) as f:
            return json.load(f).get("data")
    except (OSError, ValueError):
        return None


def parse_baseline(text):
    name, sep, value = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--baseline {text!r}: expected NAME=VALUE (VALUE a number, in %)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--out", required=True, help="folder for the PNGs (created if needed)")
    p.add_argument("--label", action="append", default=[], help="legend name of each run, in order")
    p.add_argument("--baseline", action="append", default=[], type=parse_baseline, metavar="NAME=VALUE")
    p.add_argument("--no-baselines", action="store_true")
    a = p.parse_args()
    if a.label and len(a.label) != len(a.runs):
        sys.exit(f"error: {len(a.label)} --label for {len(a.runs)} runs")

    runs = []
    for i, path in enumerate(a.runs):
        metrics = os.path.join(path, "metrics.jsonl") if os.path.isdir(path) else path
        if not os.path.isfile(metrics):
            sys.exit(f"error: {metrics}: no such file (RUN is an output folder or its metrics.jsonl)")
        records = load(metrics)
        if not records:
            sys.exit(f"error: {metrics}: no train or knn records")
        label = a.label[i] if a.label else os.path.basename(os.path.normpath(path if os.path.isdir(path) else os.path.dirname(path) or "."))
        spe = steps_per_epoch(records)
        runs.append((label, records, epochs(records, spe), wall_minutes(records)))

    if a.no_baselines:
        baselines = []
    elif a.baseline:
        baselines = a.baseline
    elif all(dataset(path) == "fashion-mnist" for path in a.runs):
        baselines = FASHION_MNIST_BASELINES
    else:
        baselines = []

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("error: matplotlib is not installed for this python (pip install matplotlib)")

    os.makedirs(a.out, exist_ok=True)
    plots = [("loss", "train", "loss", "loss", "training loss"),
             ("contrastive_top1", "train", "acc1", "top-1 (%)", "contrastive top-1 (positive key ranked first)"),
             ("knn_top1", "knn", "knn_top1", "top-1 (%)", "kNN top-1 on the test set")]
    for name, kind, field, ylabel, title in plots:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100, sharey=True)
        drawn = 0
        for label, records, xe, xt in runs:
            sel = [(e, t, r[field]) for r, e, t in zip(records, xe, xt) if r["type"] == kind and field in r]
            if not sel:
                continue
            drawn += 1
            style = dict(marker="o", markersize=3) if kind == "knn" else dict(linewidth=1)
            for ax, xs in ((axes[0], [s[0] for s in sel]), (axes[1], [s[1] for s in sel])):
                ax.plot(xs, [s[2] for s in sel], label=label, **style)
        if kind == "knn":
            colours = ["tab:gray", "tab:brown", "tab:olive", "tab:pink"]
            for j, (bname, value) in enumerate(baselines):
                for ax in axes:
                    ax.axhline(value, linestyle="--", linewidth=1, color=colours[j % len(colours)],
                               label=f"{bname} ({value:g})")
        axes[0].set_xlabel("epoch")
        axes[1].set_xlabel("wall-clock (minutes)")
        axes[0].set_ylabel(ylabel)
        fig.suptitle(title if drawn else f"{title}: no records", fontsize=10)
        for ax in axes:
            ax.grid(alpha=0.3)
            if drawn or (kind == "knn" and baselines):
                ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(a.out, name + ".png")
        fig.savefig(path)
        plt.close(fig)
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
