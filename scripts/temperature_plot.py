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
    fig, axes = plt.subplots(1, len(ts), figsize=(4 * len(ts), 3.4), squeeze=False)
    for ax, t in zip(axes[0], ts):
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
        ax.set_xlabel("softmax score p")
        ax.set_title(f"T = {t}: mean p+ {float(s.get('mean_p_pos', 'nan')):.3f}, eff. neg. {float(s.get('effective_negatives', 'nan')):.0f}",
                     fontsize=9)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("share of scores")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
