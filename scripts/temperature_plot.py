#!/usr/bin/env python3
"""Histogram of the softmax scores of the positive and of the negatives at each temperature, from
`moco temperature --out PREFIX` (PREFIX_hist.csv, PREFIX_summary.csv). Usage:

    python3 scripts/temperature_plot.py PREFIX [OUT.png]      # default PREFIX.png

One panel per T: counts per log10 bin of p, positives and negatives on their own scales (there
are K times more negatives), with 1/(K+1), the score of a uniform softmax, marked.
"""
import csv
import sys
from collections import defaultdict


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    prefix = sys.argv[1]
    png = sys.argv[2] if len(sys.argv) == 3 else prefix + ".png"
    try:
        rows = list(csv.DictReader(open(prefix + "_hist.csv")))
        summary = {r["t"]: r for r in csv.DictReader(open(prefix + "_summary.csv"))}
    except OSError as e:
        sys.exit(f"temperature_plot.py: {e}")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    hist = defaultdict(lambda: defaultdict(list))
    for r in rows:
        hist[r["t"]][r["kind"]].append((float(r["bin_lo"]), float(r["bin_hi"]), int(r["count"])))
    ts = sorted(hist, key=float)
    used = [lo for t in ts for kind in hist[t] for lo, _, c in hist[t][kind] if c > 0]
    used_hi = [hi for t in ts for kind in hist[t] for _, hi, c in hist[t][kind] if c > 0]
    cols = min(3, len(ts))
    rows_n = (len(ts) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.5 * cols, 3.4 * rows_n), squeeze=False)
    for ax in axes.flat[len(ts):]:
        ax.set_visible(False)
    for ax, t in zip(axes.flat, ts):
        s = summary.get(t, {})
        k = int(s.get("k", "0") or 0)
        for kind, color in [("negative", "C1"), ("positive", "C2")]:
            b = hist[t][kind]
            total = max(1, sum(c for _, _, c in b))
            ax.stairs([c / total for _, _, c in b], [b[0][0]] + [hi for _, hi, _ in b], color=color, fill=True, alpha=0.5,
                      label=f"{kind} ({total})")
        if k:
            ax.axvline(1 / (k + 1), color="k", ls="--", lw=0.8, label="1/(K+1)")
        ax.set_xscale("log")
        if used:
            ax.set_xlim(min(used) / 3, min(1, max(used_hi) * 3))
        ax.set_xlabel("softmax score p")
        ax.set_title(f"T = {t}: mean p+ {float(s.get('mean_p_pos', 'nan')):.3f}, eff. neg. {float(s.get('effective_negatives', 'nan')):.0f}",
                     fontsize=9)
        ax.legend(fontsize=7)
    for row in axes:
        row[0].set_ylabel("share of scores")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
