#!/usr/bin/env python3
"""A latency-bandwidth (alpha-beta) model of data-parallel MoCo's communication, calibrated on
this machine's measurements, projecting weak-scaling efficiency to many ranks.

Per step, each of W ranks (per-rank batch n, key dimension d, crop of s floats, P parameters):

  gradient allreduce (ring, bucketed, nb buckets of >= 2^18 floats, started during backward):
      T_ar  = nb * 2(W-1) * alpha + 2(W-1)/W * 4P / BW
  key all-gather for the queue (ring; every rank contributes n*d floats):
      T_ag  = (W-1) * alpha + (W-1) * 4nd / BW
  shuffle-BN all-to-all, crops out and keys back (each sends n(W-1)/W items on average,
  to m = (W-1)(1 - (1 - 1/W)^n) distinct peers on average):
      T_a2a = 2m * alpha + n(W-1)/W * 4(s + d) / BW
  loss mean (allreduce of 2 doubles, recursive doubling):
      T_red = ceil(log2 W) * alpha
  compute (weak scaling: independent of W):
      T_c   = n * t_img,  of which the backward pass T_b = f_b * T_c

  no overlap:   T = T_c + T_ar + T_ag + T_a2a + T_red
  overlap:      T = T_c + max(T_ar - T_b, T_ar(last bucket)) + T_ag + T_a2a + T_red
                (buckets but the last can hide behind the backward pass; the last starts
                at its end; the all-to-all and the all-gather are on the critical path)
  efficiency    E = T_c / T     (= ips_W / (W * ips_1) for weak scaling)

Calibration (all from this machine, see docs/performance.md):
  - alpha and BW of the node: least-squares fit t = a + b*S of `moco bench comm` rows
    (message size S <= --fit-max-bytes) with each collective's formula above at the bench's W;
  - t_img and f_b: 1-rank `moco bench step --json` runs (compute = step - allreduce wait), from
    scripts/scaling.sh's raw.jsonl (--scaling) and/or extra JSON lines (--step-json);
  - P: comm_bytes_per_step["iallreduce"] / 4 of any multi-rank run, else the architecture's count.
The network projection uses the assumed per-message latency --alpha-us (default 10 us; 5-20 us
is typical of TCP or RoCE through one switch hop) and link speeds --networks (Gb/s).
Standard library only.
"""
import argparse
import json
import math
import sys

# Parameters of the query encoder + MLP head (the gradient that is allreduced).
MLP_HEAD_RESNET18 = 512 * 512 + 512 + 128 * 512 + 128
PARAMS = {"resnet20": 284_016, "resnet18": 11_168_832 + MLP_HEAD_RESNET18}
CROP_FLOATS = {"resnet20": 1 * 28 * 28, "resnet18": 3 * 32 * 32}
BUCKET_FLOATS = 1 << 18
KEY_DIM = 128


# ----------------------------------------------------------------------------- calibration

def parse_comm_bench(path):
    """Rows of `moco bench comm` (fixed-width table) -> {op: [(bytes, ranks, proto_seconds)]}."""
    rows = {}
    with open(path) as f:
        for line in f:
            cells = line.split()
            if len(cells) < 5 or cells[0] not in ("allreduce", "allgather", "alltoallv"):
                continue
            try:
                rows.setdefault(cells[0], []).append((int(cells[1]), int(cells[2]), float(cells[4]) * 1e-6))
            except ValueError:
                continue
    if not rows:
        sys.exit(f"error: {path}: no `moco bench comm` rows found")
    return rows


def fit_line(points):
    """Least squares t = a + b*S; a is kept >= 0 (noise can push it below)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx > 0 else 0.0
    a = my - b * mx
    if a < 0:
        a = min(y for _, y in points) * 0.5
    return a, b


def calibrate_comm(rows, fit_max):
    """alpha (s) and BW (bytes/s) per collective, from the fit and the model formulas at W."""
    out = {}
    for op, pts in rows.items():
        sel = [(s, t) for s, w, t in pts if s <= fit_max]
        if len(sel) < 2:
            continue
        w = pts[0][1]
        a, b = fit_line(sel)
        if op == "allreduce":       # a = 2(W-1) alpha, b = 2(W-1)/W / BW
            alpha, bw = a / (2 * (w - 1)), 2 * (w - 1) / w / b
        else:                       # allgather (S = result), alltoallv (S = send buffer):
            alpha, bw = a / (w - 1), (w - 1) / w / b   # a = (W-1) alpha, b = (W-1)/W / BW
        out[op] = {"ranks": w, "alpha": alpha, "bw": bw, "points": len(sel)}
    return out


def load_json_lines(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                runs.append(json.loads(line))
    return runs


def calibrate_compute(scaling_path, step_paths, arch):
    """1-rank runs -> {per-rank batch: (t_img s, backward fraction, source)}; P; validation runs."""
    ones, multi = {}, []
    def take(bench, source):
        if bench.get("arch") != arch:
            return
        if bench["world"] == 1:
            ph = bench["phases_ms"]
            step = bench["step_ms_median"]
            comp = step - ph.get("allreduce_wait", 0.0)
            total = sum(ph.values()) or step
            ones.setdefault(bench["batch"], (comp / 1e3 / bench["batch"], ph.get("backward", 0.0) / total, source))
        else:
            multi.append((source, bench))
    if scaling_path:
        for r in load_json_lines(scaling_path):
            take(r["bench"], f"{r['mode']} {r['placement']} W={r['ranks']} run {r['repeat']}")
    for p in step_paths or []:
        for b in load_json_lines(p):
            take(b, p)
    params = None
    for _, b in multi:
        if b.get("comm_bytes_per_step", {}).get("iallreduce"):
            params = int(round(b["comm_bytes_per_step"]["iallreduce"] / 4))
            break
    return ones, params, multi


# ----------------------------------------------------------------------------- the model

def buckets(p):
    sizes = [BUCKET_FLOATS] * (p // BUCKET_FLOATS)
    if p % BUCKET_FLOATS:
        sizes.append(p % BUCKET_FLOATS)
    return sizes or [p]


def allreduce_time(w, floats, alpha, bw, algo):
    if w == 1:
        return 0.0
    lat = 2 * (w - 1) * alpha if algo == "ring" else 2 * math.ceil(math.log2(w)) * alpha
    return lat + 2 * (w - 1) / w * 4 * floats / bw


def step_model(w, n, t_img, f_bwd, p, s, alpha, bw, algo="ring", d=KEY_DIM):
    """Times (s) of one weak-scaling step on W ranks; returns a dict."""
    t_c = n * t_img
    t_b = f_bwd * t_c
    bs = buckets(p)
    t_ar = sum(allreduce_time(w, b, alpha, bw, algo) for b in bs)
    t_last = allreduce_time(w, bs[-1], alpha, bw, algo)
    if w == 1:
        t_ag = t_a2a = t_red = 0.0
    else:
        t_ag = (w - 1) * alpha + (w - 1) * 4 * n * d / bw
        peers = (w - 1) * (1 - (1 - 1 / w) ** n)
        t_a2a = 2 * peers * alpha + n * (w - 1) / w * 4 * (s + d) / bw
        t_red = math.ceil(math.log2(w)) * alpha
    rest = t_ag + t_a2a + t_red
    no = t_c + t_ar + rest
    ov = t_c + max(t_ar - t_b, t_last) + rest
    return {"t_c": t_c, "t_b": t_b, "t_ar": t_ar, "t_last": t_last, "t_ag": t_ag, "t_a2a": t_a2a,
            "t_red": t_red, "eff_no_overlap": t_c / no, "eff_overlap": t_c / ov}


def t_img_for(ones, n):
    """Per-image compute time for per-rank batch n: a measurement at n, else the nearest batch."""
    if n in ones:
        return ones[n][0], ones[n][1], f"measured at batch {n}"
    near = min(ones, key=lambda b: abs(math.log(b / n)))
    return ones[near][0], ones[near][1], f"batch {near} scaled linearly"


# ----------------------------------------------------------------------------- output

def pct(x):
    return f"{100 * x:.0f}%"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--comm", help="`moco bench comm` output on this node (alpha, BW of shared memory)")
    ap.add_argument("--comm-netns", help="`moco bench comm` output over the namespace cluster (TCP over veth)")
    ap.add_argument("--scaling", help="raw.jsonl of scripts/scaling.sh (1-rank runs calibrate compute; "
                                      "2-rank runs are compared with the model)")
    ap.add_argument("--step-json", action="append", help="file with `moco bench step --json` lines (repeatable)")
    ap.add_argument("--arch", default="resnet20", choices=sorted(PARAMS))
    ap.add_argument("--params", type=int, help="parameters allreduced (default: from the runs, else the arch's)")
    ap.add_argument("--ms-per-image", type=float, help="override: compute ms per image of one rank")
    ap.add_argument("--backward-fraction", type=float, help="override: backward time / step time")
    ap.add_argument("--rank-speedup", type=float, default=1.0,
                    help="compute of one projected rank relative to the measured one (e.g. 16 for a "
                         "rank that is a whole multi-core node)")
    ap.add_argument("--fit-max-bytes", type=int, default=1 << 20)
    ap.add_argument("--alpha-us", type=float, default=10.0, help="network latency per message (us)")
    ap.add_argument("--alphas-us", default="5,20", help="latencies for the sensitivity lines")
    ap.add_argument("--networks", default="10,25,100", help="link speeds, Gb/s")
    ap.add_argument("--batches", default="128,32", help="per-rank batches")
    ap.add_argument("--ranks", default="8,16,32,64,128,256,512,1024")
    ap.add_argument("--allreduce", default="ring", choices=["ring", "rabenseifner"],
                    help="allreduce latency term: ring 2(W-1)alpha, or recursive halving/doubling 2 log2(W) alpha")
    a = ap.parse_args()

    nets = [float(x) for x in a.networks.split(",")]
    batches = [int(x) for x in a.batches.split(",")]
    ranks = [int(x) for x in a.ranks.split(",")]
    s = CROP_FLOATS[a.arch]

    print(f"# Communication model: MoCo v2 {a.arch}, weak scaling\n")
    # --- communication calibration
    local = {}
    for label, path in (("node (shared memory)", a.comm), ("namespace cluster (TCP over veth)", a.comm_netns)):
        if not path:
            continue
        cal = calibrate_comm(parse_comm_bench(path), a.fit_max_bytes)
        local[label] = cal
        print(f"Calibration, {label}: `{path}`, fit over messages <= {a.fit_max_bytes} B\n")
        print("| collective | ranks | alpha (us) | BW (GB/s) | sizes fitted |")
        print("|---|---|---|---|---|")
        for op in ("allreduce", "allgather", "alltoallv"):
            if op in cal:
                c = cal[op]
                print(f"| {op} | {c['ranks']} | {c['alpha'] * 1e6:.1f} | {c['bw'] / 1e9:.2f} | {c['points']} |")
        print()

    # --- compute calibration
    ones, p_meas, multi = calibrate_compute(a.scaling, a.step_json, a.arch)
    if a.ms_per_image is not None:
        ones = {b: (a.ms_per_image / 1e3, a.backward_fraction if a.backward_fraction is not None else 0.5, "--ms-per-image")
                for b in batches}
    if not ones:
        sys.exit("error: no 1-rank `bench step` run for this arch: pass --scaling, --step-json or --ms-per-image")
    if a.backward_fraction is not None:
        ones = {b: (t, a.backward_fraction, src) for b, (t, _, src) in ones.items()}
    p = a.params or p_meas or PARAMS[a.arch]
    psrc = "--params" if a.params else ("measured iallreduce bytes / 4" if p_meas else "architecture count")
    print(f"Compute (1 rank, 1 BLAS thread; compute = step - allreduce wait), P = {p:,} floats ({psrc}), "
          f"{len(buckets(p))} allreduce bucket(s) of <= {BUCKET_FLOATS} floats, crop {s} floats, key {KEY_DIM} floats:\n")
    print("| per-rank batch | ms per image | step ms | backward fraction | source |")
    print("|---|---|---|---|---|")
    for b in sorted(ones):
        t, f, src = ones[b]
        print(f"| {b} | {t * 1e3:.2f} | {t * b * 1e3:.0f} | {f:.2f} | {src} |")
    if a.rank_speedup != 1:
        print(f"\nProjected ranks compute {a.rank_speedup:g}x faster than the measured one (--rank-speedup).")
    print()

    # --- validation against the measured multi-rank runs
    if multi and local:
        print("Model against the measured 2-rank runs (the same placement's calibration):\n")
        print("| run | W | n | measured allreduce wait ms | model allreduce ms (exposed / total) "
              "| model all-to-all + all-gather ms |")
        print("|---|---|---|---|---|---|")
        for src, b in multi:
            place = "namespace cluster (TCP over veth)" if " netns " in f" {src} " else "node (shared memory)"
            cal = local.get(place)
            if not cal or "allreduce" not in cal:
                continue
            w, n = b["world"], b["batch"] // b["world"]
            t, f, _ = t_img_for(ones, n)
            al, bw = cal["allreduce"]["alpha"], cal["allreduce"]["bw"]
            m = step_model(w, n, t / a.rank_speedup, f, p, s, al, bw)
            exposed = max(m["t_ar"] - m["t_b"], m["t_last"])
            print(f"| {src} | {w} | {n} | {b['phases_ms'].get('allreduce_wait', 0):.1f} | "
                  f"{exposed * 1e3:.1f} / {m['t_ar'] * 1e3:.1f} | {(m['t_a2a'] + m['t_ag']) * 1e3:.2f} |")
        print()

    # --- projection
    alpha = a.alpha_us * 1e-6
    print(f"Projected weak-scaling efficiency, alpha = {a.alpha_us:g} us per message, {a.allreduce} allreduce, "
          f"P = {p:,}; 'ovl' = allreduce overlapped with the backward pass:\n")
    print("| per-rank batch | network | overlap | " + " | ".join(f"W={w}" for w in ranks) + " |")
    print("|---|---|---|" + "---|" * len(ranks))
    summary = {}
    for n in batches:
        t, f, _ = t_img_for(ones, n)
        t /= a.rank_speedup
        for g in nets:
            bw = g * 1e9 / 8
            for ovl in (False, True):
                effs = [step_model(w, n, t, f, p, s, alpha, bw, a.allreduce)["eff_overlap" if ovl else "eff_no_overlap"]
                        for w in ranks]
                summary[(n, g, ovl)] = effs
                print(f"| {n} | {g:g} Gb/s | {'ovl' if ovl else 'no'} | " + " | ".join(pct(e) for e in effs) + " |")
    print()

    # --- breakdown at the largest W
    wmax = ranks[-1]
    print(f"Breakdown at W = {wmax}, alpha = {a.alpha_us:g} us (ms per step):\n")
    print("| per-rank batch | network | compute | backward | allreduce (latency part) | all-gather | all-to-all | loss allreduce |")
    print("|---|---|---|---|---|---|---|---|")
    for n in batches:
        t, f, _ = t_img_for(ones, n)
        t /= a.rank_speedup
        for g in nets:
            m = step_model(wmax, n, t, f, p, s, alpha, g * 1e9 / 8, a.allreduce)
            lat = len(buckets(p)) * (2 * (wmax - 1) if a.allreduce == "ring" else 2 * math.ceil(math.log2(wmax))) * alpha
            print(f"| {n} | {g:g} Gb/s | {m['t_c'] * 1e3:.0f} | {m['t_b'] * 1e3:.0f} | {m['t_ar'] * 1e3:.1f} ({lat * 1e3:.1f}) "
                  f"| {m['t_ag'] * 1e3:.1f} | {m['t_a2a'] * 1e3:.1f} | {m['t_red'] * 1e3:.2f} |")
    print()

    # --- sensitivity
    print(f"Sensitivity at W = {wmax}, 25 Gb/s (efficiency no overlap / overlap):\n")
    print("| per-rank batch | " + " | ".join(f"alpha {x} us ring" for x in a.alphas_us.split(",")) +
          " | alpha 10 us, recursive halving/doubling |")
    print("|---|" + "---|" * (len(a.alphas_us.split(",")) + 1))
    for n in batches:
        t, f, _ = t_img_for(ones, n)
        t /= a.rank_speedup
        cells = []
        for x in a.alphas_us.split(","):
            m = step_model(wmax, n, t, f, p, s, float(x) * 1e-6, 25e9 / 8, "ring")
            cells.append(f"{pct(m['eff_no_overlap'])} / {pct(m['eff_overlap'])}")
        m = step_model(wmax, n, t, f, p, s, 10e-6, 25e9 / 8, "rabenseifner")
        cells.append(f"{pct(m['eff_no_overlap'])} / {pct(m['eff_overlap'])}")
        print(f"| {n} | " + " | ".join(cells) + " |")
    print()

    # --- compute per gradient byte (the Horovod comparison)
    if ones:
        b0 = max((b for b in batches if b in ones), default=max(ones))
        grad_mb = 4 * p / 1e6
        tc = ones[b0][0] * b0 / a.rank_speedup
        print(f"Gradient: {grad_mb:.2f} MB per step; compute of one rank at batch {b0}: {tc * 1e3:.0f} ms per step "
              f"= {tc / (2 * 4 * p / (25e9 / 8)):.0f}x the ring allreduce's bandwidth term at 25 Gb/s "
              f"(2 x {grad_mb:.2f} MB / 3.125 GB/s = {2 * 4 * p / (25e9 / 8) * 1e3:.2f} ms).")


if __name__ == "__main__":
    main()
