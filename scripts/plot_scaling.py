#!/usr/bin/env python3
"""Tables and plots for scripts/scaling.sh.

  plot_scaling.py table RAW.jsonl --csv OUT.csv [--markdown OUT.md] [--cores N]
      One row per (mode, placement, ranks): of the repeated runs of a point, the run with the
      median step time is kept (so its phases and bytes belong together). Efficiency against
      the 1-rank node point of the same mode:
        strong (fixed global batch B):   E = T_1 / (W * T_W)      (T = step time for B images)
        weak   (fixed per-rank batch n): E = ips_W / (W * ips_1)  (ips = images per second)
      Standard library only.

  plot_scaling.py plot SCALING.csv --out DIR
      scaling-strong.png and scaling-weak.png: images/s and efficiency against ranks, node and
      namespace-cluster points apart, oversubscribed points hollow. Needs matplotlib.
"""
import argparse
import csv
import json
import sys

FIELDS = ["mode", "placement", "ranks", "global_batch", "per_rank_batch", "images_per_s", "step_ms",
          "allreduce_wait_ms", "backward_ms", "key_shuffle_forward_ms", "enqueue_allgather_ms",
          "bytes_per_step", "grad_allreduce_bytes", "alltoallv_bytes", "allgather_bytes",
          "efficiency", "oversubscribed", "runs", "step_ms_all_runs"]


def load(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"error: {path}:{n}: not JSON ({e})")
    if not rows:
        sys.exit(f"error: {path} holds no runs")
    return rows


def median_run(runs):
    """The run whose step time is the (lower) median of the point's runs."""
    ordered = sorted(runs, key=lambda r: r["bench"]["step_ms_median"])
    return ordered[(len(ordered) - 1) // 2]


def summarise(raw, cores):
    points = {}
    for r in raw:
        points.setdefault((r["mode"], r["placement"], int(r["ranks"])), []).append(r)
    base = {}
    for mode in ("strong", "weak"):
        if (mode, "node", 1) in points:
            base[mode] = median_run(points[(mode, "node", 1)])["bench"]
    order = {"strong": 0, "weak": 1, "node": 0, "netns": 1}
    out = []
    for key in sorted(points, key=lambda k: (order[k[0]], order[k[1]], k[2])):
        mode, placement, w = key
        runs = points[key]
        b = median_run(runs)["bench"]
        ph, by = b.get("phases_ms", {}), b.get("comm_bytes_per_step", {})
        eff = ""
        if mode in base:
            b1 = base[mode]
            if mode == "strong":
                eff = b1["step_ms_median"] / (w * b["step_ms_median"])
            else:
                eff = b["images_per_s"] / (w * b1["images_per_s"])
        out.append({
            "mode": mode, "placement": placement, "ranks": w, "global_batch": b["batch"],
            "per_rank_batch": b["batch"] // w, "images_per_s": round(b["images_per_s"], 2),
            "step_ms": round(b["step_ms_median"], 1),
            "allreduce_wait_ms": round(ph.get("allreduce_wait", 0.0), 2),
            "backward_ms": round(ph.get("backward", 0.0), 1),
            "key_shuffle_forward_ms": round(ph.get("key_shuffle_forward_unshuffle", 0.0), 1),
            "enqueue_allgather_ms": round(ph.get("enqueue", 0.0), 2),
            "bytes_per_step": int(round(sum(v for k, v in by.items()))),
            "grad_allreduce_bytes": int(round(by.get("iallreduce", 0.0))),
            "alltoallv_bytes": int(round(by.get("alltoallv", 0.0))),
            "allgather_bytes": int(round(by.get("allgather", 0.0))),
            "efficiency": "" if eff == "" else round(eff, 3),
            "oversubscribed": "yes" if w > cores and placement == "node" else "no",
            "runs": len(runs),
            "step_ms_all_runs": " ".join(f"{r['bench']['step_ms_median']:.0f}" for r in runs),
        })
    return out


def markdown(rows, cores):
    lines = ["| mode | placement | ranks | global batch | img/s | step ms (runs) | allreduce wait ms "
             "| bytes sent/step/rank | efficiency |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        where = r["placement"] + (f" (oversubscribed, {cores} cores)" if r["oversubscribed"] == "yes" else "")
        eff = "" if r["efficiency"] == "" else f"{100 * r['efficiency']:.0f}%"
        sent = "– (1 rank)" if r["ranks"] == 1 else f"{r['bytes_per_step']:,}"
        lines.append(f"| {r['mode']} | {where} | {r['ranks']} | {r['global_batch']} | {r['images_per_s']:.1f} "
                     f"| {r['step_ms']:.0f} ({r['step_ms_all_runs']}) | {r['allreduce_wait_ms']:.1f} "
                     f"| {sent} | {eff} |")
    return "\n".join(lines) + "\n"


def cmd_table(a):
    rows = summarise(load(a.raw), a.cores)
    with open(a.csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    md = markdown(rows, a.cores)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(md)
    else:
        sys.stdout.write(md)


def cmd_plot(a):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("note: matplotlib is not installed for this python; plots skipped "
                 "(python3 -m venv /tmp/plot-venv && /tmp/plot-venv/bin/pip install matplotlib)")
    with open(a.csv) as f:
        rows = list(csv.DictReader(f))
    written = []
    for mode, title in (("strong", "strong scaling (fixed global batch)"),
                        ("weak", "weak scaling (fixed per-rank batch)")):
        sel = [r for r in rows if r["mode"] == mode]
        if not sel:
            continue
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=90)
        for placement, marker, colour in (("node", "o", "tab:blue"), ("netns", "s", "tab:red")):
            pts = sorted((r for r in sel if r["placement"] == placement), key=lambda r: int(r["ranks"]))
            if not pts:
                continue
            label = "one node" if placement == "node" else "namespace cluster (TCP)"
            xs = [int(r["ranks"]) for r in pts]
            ax1.plot(xs, [float(r["images_per_s"]) for r in pts], marker=marker, color=colour, label=label)
            effs = [(int(r["ranks"]), float(r["efficiency"])) for r in pts if r["efficiency"] != ""]
            if effs:
                ax2.plot([x for x, _ in effs], [100 * e for _, e in effs], marker=marker, color=colour, label=label)
            for r in pts:
                if r["oversubscribed"] == "yes":
                    ax1.plot([int(r["ranks"])], [float(r["images_per_s"])], marker="o", markersize=12,
                             markerfacecolor="none", color="grey")
        gb = sorted({int(r["global_batch"]) for r in sel})
        ax1.set_title(f"{title}\nglobal batch {', '.join(map(str, gb))}", fontsize=9)
        ax1.set_xlabel("ranks (1 core, 1 BLAS thread each)")
        ax1.set_ylabel("images/s")
        ax1.set_ylim(bottom=0)
        ax2.set_title("efficiency (grey ring: oversubscribed)" if any(r["oversubscribed"] == "yes" for r in sel)
                      else "efficiency", fontsize=9)
        ax2.set_xlabel("ranks")
        ax2.set_ylabel("%")
        ax2.set_ylim(0, 110)
        ax2.axhline(100, color="grey", linewidth=0.5)
        for ax in (ax1, ax2):
            ax.set_xscale("log", base=2)
            ranks = sorted({int(r["ranks"]) for r in sel})
            ax.set_xticks(ranks)
            ax.set_xticklabels([str(x) for x in ranks])
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = f"{a.out}/scaling-{mode}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    for p in written:
        print(f"wrote {p}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table", help="raw.jsonl -> scaling.csv (+ markdown table)")
    t.add_argument("raw")
    t.add_argument("--csv", required=True)
    t.add_argument("--markdown")
    t.add_argument("--cores", type=int, default=2, help="cores of the node (marks oversubscribed points)")
    t.set_defaults(func=cmd_table)
    g = sub.add_parser("plot", help="scaling.csv -> PNGs (matplotlib)")
    g.add_argument("csv")
    g.add_argument("--out", required=True)
    g.set_defaults(func=cmd_plot)
    a = p.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
