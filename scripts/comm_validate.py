#!/usr/bin/env python3
"""The communication model (scripts/comm_model.py) against measurements on shaped links.

Reads the output folder of scripts/shaped_links.sh: for each link rate R, `moco bench comm` on
W = 2, 4, 8 namespace hosts (comm-R-wW.txt) and `moco bench step --json` on the same clusters
(step-R-wW.json). For each rate it

  1. calibrates alpha and BW of each collective on the 2-host run only (least squares over all
     message sizes, through the model's formulas: ring allreduce 2(W-1)alpha + 2(W-1)/W S/BW,
     ring allgather and pairwise all-to-all (W-1)alpha + (W-1)/W S/BW);
  2. predicts every collective of the 4- and 8-host runs from that calibration and reports the
     error of each (message sizes >= 64 KiB, where the rate matters, and all sizes);
  3. predicts each step's communication: the gradient allreduce of the buckets the run reports
     (`bucket_floats`, each started `bucket_lead_ms` before the end of the backward pass T_b; the
     link takes them one after another: finish_i = max(start_i, finish_{i-1}) + T_ar(bucket i),
     exposed wait = max(0, finish_last - T_b)); without those fields, buckets of <= 2^18 floats
     all available from the start of the backward (wait = max(T_ar - T_b, T_ar(last bucket)));
     and T_ar without overlap; the key all-gather and the two shuffle all-to-alls; and the step
     time = the slowest rank's compute (`compute_ms_max`: its step less its time in collectives;
     older runs: rank 0's step - measured communication) + the predicted communication;
  4. projects weak-scaling efficiency to 16..1024 ranks at that rate with the calibrated alpha
     and BW, the measured per-rank compute and the largest step-time error found in 3 attached.

Writes OUT/validation.md, OUT/validation.csv and OUT/projection.png (matplotlib, if present).
Standard library otherwise.

    python3 scripts/comm_validate.py runs/shaped-links
"""
import csv
import glob
import json
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from comm_model import buckets, fit_line, parse_comm_bench, BUCKET_FLOATS  # noqa: E402


def formula(op, w, s, alpha, bw):
    """Model time (s) of one collective of S bytes on W ranks."""
    if op == "allreduce":
        return 2 * (w - 1) * alpha + 2 * (w - 1) / w * s / bw
    return (w - 1) * alpha + (w - 1) / w * s / bw


def calibrate(rows):
    """{op: (alpha s, bw B/s)} from one W's rows, all sizes."""
    cal = {}
    for op, pts in rows.items():
        w = pts[0][1]
        a, b = fit_line([(s, t) for s, _, t in pts])
        if op == "allreduce":
            cal[op] = (a / (2 * (w - 1)), 2 * (w - 1) / w / b)
        else:
            cal[op] = (a / (w - 1), (w - 1) / w / b)
    return cal


def pipelined_wait(w, floats, starts, t_b, alpha, bw):
    """Exposed allreduce wait (s) when bucket i (floats[i]) may start at starts[i] (s from the
    start of the backward pass) and the link carries one bucket at a time."""
    finish = 0.0
    for f, s in zip(floats, starts):
        finish = max(finish, s) + formula("allreduce", w, 4 * f, alpha, bw)
    return max(0.0, finish - t_b)


def step_prediction(bench, cal):
    w = bench["world"]
    ph = bench["phases_ms"]
    ms = bench.get("comm_ms_per_step", {})
    by = bench["comm_bytes_per_step"]
    p = int(round(by.get("iallreduce", 0) / 4))
    a_ar, bw_ar = cal["allreduce"]
    t_b = ph["backward"] / 1e3
    if bench.get("bucket_floats"):
        sizes = bench["bucket_floats"]
        starts = [max(0.0, t_b - l / 1e3) for l in bench["bucket_lead_ms"]]
    else:
        sizes = buckets(p) if p else []
        starts = None
    t_ar = sum(formula("allreduce", w, 4 * f, a_ar, bw_ar) for f in sizes)
    t_last = formula("allreduce", w, 4 * sizes[-1], a_ar, bw_ar) if sizes else 0.0
    if starts is not None:
        wait_ovl = pipelined_wait(w, sizes, starts, t_b, a_ar, bw_ar)
    else:
        wait_ovl = max(t_ar - t_b, t_last)
    a_ag, bw_ag = cal["allgather"]
    # The key all-gather: this rank's bytes x W is the result size S of the bench's convention.
    t_ag = formula("allgather", w, by.get("allgather", 0) * w, a_ag, bw_ag)
    a_a2a, bw_a2a = cal["alltoallv"]
    # Two all-to-alls per step (crops out, keys back); sent bytes exclude the block to itself:
    # bytes = (W-1)/W * S per call summed, so S = bytes * W / (W-1) over the two.
    sent = by.get("alltoallv", 0)
    t_a2a = 2 * (w - 1) * a_a2a + sent / bw_a2a
    meas_wait = ph["allreduce_wait"] / 1e3
    meas_blocking = (ms.get("allgather", 0) + ms.get("alltoallv", 0)) / 1e3
    step = bench["step_ms_median"] / 1e3
    compute = bench["compute_ms_max"] / 1e3 if bench.get("compute_ms_max") else step - meas_wait - meas_blocking
    pred_step = compute + wait_ovl + t_ag + t_a2a
    pred_step_no = compute + t_ar + t_ag + t_a2a
    return {"W": w, "params": p, "buckets": len(sizes), "t_b": t_b, "t_ar": t_ar, "t_last": t_last,
            "wait_ovl": wait_ovl, "meas_wait": meas_wait, "t_ag_a2a": t_ag + t_a2a, "meas_ag_a2a": meas_blocking,
            "step": step, "pred_step": pred_step, "pred_step_no": pred_step_no, "compute": compute,
            "n": bench["batch"] // w, "sizes": sizes,
            "start_fracs": [x / t_b for x in starts] if starts is not None and t_b > 0 else None,
            "progress_us": bench.get("progress_thread_us", 0)}


def projection(cal, compute_s, t_b_frac, p, n, d, s_floats, ranks, sizes=None, start_fracs=None):
    """Weak-scaling efficiency at each W with the calibrated link (overlapped allreduce; with
    the measured buckets and their start times as fractions of the backward pass, pipelined)."""
    a_ar, bw_ar = cal["allreduce"]
    a_ag, bw_ag = cal["allgather"]
    a_a2a, bw_a2a = cal["alltoallv"]
    out = []
    for w in ranks:
        t_b = t_b_frac * compute_s
        if start_fracs is not None:
            wait = pipelined_wait(w, sizes, [f * t_b for f in start_fracs], t_b, a_ar, bw_ar)
        else:
            bs = buckets(p)
            t_ar = sum(formula("allreduce", w, 4 * f, a_ar, bw_ar) for f in bs)
            wait = max(t_ar - t_b, formula("allreduce", w, 4 * bs[-1], a_ar, bw_ar))
        t_ag = formula("allgather", w, 4 * n * d * w, a_ag, bw_ag)
        peers = (w - 1) * (1 - (1 - 1 / w) ** n)
        t_a2a = 2 * peers * a_a2a + n * (w - 1) / w * 4 * (s_floats + d) / bw_a2a
        comm = wait + t_ag + t_a2a
        out.append((w, compute_s / (compute_s + comm), comm))
    return out


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    out = sys.argv[1]
    comm_files = sorted(glob.glob(os.path.join(out, "comm-*-w*.txt")))
    if not comm_files:
        sys.exit(f"comm_validate.py: no comm-RATE-wW.txt in {out} (run scripts/shaped_links.sh)")
    runs = {}
    for f in comm_files:
        m = re.fullmatch(r"comm-(.+)-w(\d+)\.txt", os.path.basename(f))
        runs.setdefault(m.group(1), {})[int(m.group(2))] = f

    def rate_bits(r):
        v, u = re.fullmatch(r"([0-9.]+)(kbit|mbit|gbit)", r).groups()
        return float(v) * {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}[u]

    md = ["# The communication model on shaped links\n",
          f"Generated by `python3 scripts/comm_validate.py {out}` from `scripts/shaped_links.sh`'s runs: "
          "alpha and BW fitted on the 2-host runs only; the 4- and 8-host runs predicted.\n"]
    rows_csv = []
    proj_all = {}
    worst_step, worst_comm = {}, {}
    for rate in sorted(runs, key=rate_bits):
        files = runs[rate]
        if 2 not in files:
            md.append(f"{rate}: no 2-host run to calibrate on\n")
            continue
        cal = calibrate(parse_comm_bench(files[2]))
        md.append(f"## {rate} per host (tc htb), Open MPI ring allreduce/allgather, pairwise all-to-all\n")
        md.append("| collective | alpha (us) | BW (MB/s) | link rate (MB/s) |")
        md.append("|---|---|---|---|")
        for op in ("allreduce", "allgather", "alltoallv"):
            if op in cal:
                md.append(f"| {op} | {cal[op][0] * 1e6:.1f} | {cal[op][1] / 1e6:.1f} | {rate_bits(rate) / 8e6:.1f} |")
        md.append("")
        md.append("Collectives, measured (`bench comm`, through the Communicator) against the model, by size:\n")
        md.append("| W | collective | bytes | measured ms | model ms | error |")
        md.append("|---|---|---|---|---|---|")
        errs = {}
        for w in sorted(files):
            for op, pts in parse_comm_bench(files[w]).items():
                if op not in cal:
                    continue
                for s, _, t in pts:
                    pred = formula(op, w, s, *cal[op])
                    e = pred / t - 1
                    rows_csv.append({"rate": rate, "W": w, "kind": op, "bytes": s, "measured_ms": t * 1e3,
                                     "model_ms": pred * 1e3, "error": e})
                    if w != 2:
                        errs.setdefault((w, s >= 65536), []).append(abs(e))
                    if s >= 65536 or w == 2:
                        md.append(f"| {w} | {op} | {s} | {t * 1e3:.2f} | {pred * 1e3:.2f} | {100 * e:+.0f}% |")
        md.append("")
        for (w, big), es in sorted(errs.items()):
            md.append(f"- W = {w}, {'messages >= 64 KiB' if big else 'messages < 64 KiB'}: mean |error| "
                      f"{100 * sum(es) / len(es):.0f}%, largest {100 * max(es):.0f}% ({len(es)} points)")
        md.append("")
        steps = []
        for w in sorted(files):
            sp = os.path.join(out, f"step-{rate}-w{w}.json")
            if os.path.exists(sp) and os.path.getsize(sp) > 0:
                b = json.loads(open(sp).readline())
                if "comm_ms_per_step" not in b:
                    md.append(f"{sp}: from a build without comm_ms_per_step; rerun it\n")
                    continue
                steps.append(step_prediction(b, cal))
        if steps:
            pt = steps[0]["progress_us"]
            md.append("Training steps (`bench step`, per-rank batch n, ResNet-20 + MLP head, "
                      + (f"progress thread every {pt} us" if pt else "no progress thread") + "), measured against predicted:\n")
            md.append("| W | n | backward ms | allreduce wait ms, measured | predicted (overlap / none) | all-gather + all-to-all ms, measured / predicted | step ms, measured | predicted (overlap) | error | predicted (no overlap) | error |")
            md.append("|---|---|---|---|---|---|---|---|---|---|---|")
            for r in steps:
                e_ov = r["pred_step"] / r["step"] - 1
                e_no = r["pred_step_no"] / r["step"] - 1
                worst_step[rate] = max(worst_step.get(rate, 0), abs(e_ov))
                meas_comm = r["step"] - r["compute"]
                e_comm = (r["pred_step"] - r["compute"]) / meas_comm - 1 if meas_comm > 0 else 0.0
                worst_comm[rate] = max(worst_comm.get(rate, 0), abs(e_comm))
                md.append(f"| {r['W']} | {r['n']} | {r['t_b'] * 1e3:.0f} | {r['meas_wait'] * 1e3:.1f} | "
                          f"{r['wait_ovl'] * 1e3:.1f} / {r['t_ar'] * 1e3:.1f} | {r['meas_ag_a2a'] * 1e3:.1f} / {r['t_ag_a2a'] * 1e3:.1f} | "
                          f"{r['step'] * 1e3:.0f} | {r['pred_step'] * 1e3:.0f} | {100 * e_ov:+.1f}% | "
                          f"{r['pred_step_no'] * 1e3:.0f} | {100 * e_no:+.1f}% |")
                rows_csv.append({"rate": rate, "W": r["W"], "kind": "step", "bytes": r["params"] * 4,
                                 "measured_ms": r["step"] * 1e3, "model_ms": r["pred_step"] * 1e3, "error": e_ov})
                rows_csv.append({"rate": rate, "W": r["W"], "kind": "allreduce_wait", "bytes": r["params"] * 4,
                                 "measured_ms": r["meas_wait"] * 1e3, "model_ms": r["wait_ovl"] * 1e3,
                                 "error": r["wait_ovl"] / r["meas_wait"] - 1 if r["meas_wait"] > 0 else float("nan")})
            md.append("")
            # Projection: the 2-host run's compute per step (least oversubscribed) and backward share.
            base = min(steps, key=lambda r: r["W"])
            ranks = [16, 32, 64, 128, 256, 512, 1024]
            proj = projection(cal, base["compute"], base["t_b"] / base["compute"], base["params"], base["n"], 128, 784, ranks,
                              base["sizes"], base["start_fracs"])
            proj_all[rate] = proj
            err = worst_step.get(rate, 0)
            md.append(f"Projection at {rate} per rank (weak scaling, n = {base['n']}, compute {base['compute'] * 1e3:.0f} ms per "
                      f"step as measured on 2 hosts, overlap; the largest error of the predicted step times above, "
                      f"±{100 * err:.1f}%, carried as a band on the projected step time; the predicted communication alone "
                      f"was off by up to {100 * worst_comm.get(rate, 0):.0f}%, rank skew included):\n")
            md.append("| W | " + " | ".join(str(w) for w, _, _ in proj) + " |")
            md.append("|---|" + "---|" * len(proj))
            md.append("| efficiency | " + " | ".join(f"{100 * e:.0f}%" for _, e, _ in proj) + " |")
            md.append("| band | " + " | ".join(f"{100 * e / (1 + err):.0f}-{min(100.0, 100 * e / (1 - err)):.0f}%"
                                              for _, e, _ in proj) + " |")
            md.append("| communication ms | " + " | ".join(f"{c * 1e3:.0f}" for _, _, c in proj) + " |")
            md.append("")
    with open(os.path.join(out, "validation.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(out, "validation.csv"), "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=["rate", "W", "kind", "bytes", "measured_ms", "model_ms", "error"])
        wr.writeheader()
        wr.writerows(rows_csv)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6.4, 4))
        for rate, proj in proj_all.items():
            ws = [w for w, _, _ in proj]
            err = worst_step.get(rate, 0)
            eff = [e for _, e, _ in proj]
            # eff = t / T: a predicted step time T off by ±err moves it between these.
            lo = [e / (1 + err) for e in eff]
            hi = [min(1.0, e / (1 - err)) for e in eff]
            ax.plot(ws, [100 * e for e in eff], marker="o", label=f"{rate}")
            ax.fill_between(ws, [100 * x for x in lo], [100 * x for x in hi], alpha=0.2)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("ranks W")
        ax.set_ylabel("weak-scaling efficiency %")
        ax.set_title("ResNet-20 MoCo v2, model calibrated on shaped links")
        ax.legend(title="link per rank")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "projection.png"), dpi=120)
    except ImportError:
        print("comm_validate.py: no matplotlib; projection.png not written", file=sys.stderr)
    print("\n".join(md))


if __name__ == "__main__":
    main()
