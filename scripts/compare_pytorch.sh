#!/usr/bin/env bash
# Side-by-side throughput of one MoCo v2 training step: PyTorch (CPU) vs swift-moco.
#
# For each configuration the PyTorch step (scripts/pytorch_moco_step.py) and swift-moco's
# `moco bench step` run ALTERNATELY for several rounds (so drifts of the machine hit both sides
# alike); a table gives each side's median images/s over the rounds, peak RSS and the ratio
# swift/pytorch, and a CSV keeps every run.
#
# Configurations (global batch; queue K=4096; bn-splits 8 per process on both sides):
#   r20-1x2  ResNet-20 1x28x28, batch 256, 1 process  x 2 threads
#   r20-2x1  ResNet-20 1x28x28, batch 256, 2 processes x 1 thread
#            PyTorch: torchrun --nproc_per_node 2, gloo DDP, each rank pinned to one core
#            Swift:   mpirun -np 2 --allow-run-as-root --bind-to core, OPENBLAS_NUM_THREADS=1
#   r18-1x2  ResNet-18 3x32x32, batch 64, 1 process x 2 threads
#
# PyTorch lives only in a throwaway venv (default /tmp/moco-torch-venv, never system-wide).
# The install prefers a CPU-only torch wheel when pip can see one (a `+cpu` version in
# `pip index versions torch`, e.g. from a machine's pip find-links); otherwise it installs PyPI's
# `torch`, whose Linux x86_64 wheel pulls the CUDA libraries (several GB) -- unused here, but it works.
# Override with TORCH_SPEC (e.g. TORCH_SPEC='torch==2.13.0+cpu').
#
# This is a benchmark for a person to run on an idle machine: never run it in CI.
set -euo pipefail

usage() {
    cat <<EOF
usage: $(basename "$0") [--rounds N] [--warmup N] [--steps N] [--configs LIST] [--csv PATH]
                           [--venv DIR] [--no-swift] [--no-pytorch]
  --rounds N       alternating rounds per configuration (default 3)
  --warmup N       warm-up steps per run (default 2)
  --steps N        timed steps per run (default 10)
  --configs LIST   comma-separated subset of: r20-1x2,r20-2x1,r18-1x2 (default all)
  --csv PATH       CSV of every run and the medians (default /tmp/moco-compare-DATE.csv)
  --venv DIR       PyTorch venv (default \$MOCO_TORCH_VENV or /tmp/moco-torch-venv)
  --no-swift       run only the PyTorch side;  --no-pytorch: only the Swift side
environment: MOCO (swift-moco binary, default .build/release/moco), TORCH_SPEC (pip requirement
for torch), MOCO_TORCH_VENV.
EOF
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS=3 WARMUP=2 STEPS=10
CONFIGS="r20-1x2,r20-2x1,r18-1x2"
CSV=""
VENV="${MOCO_TORCH_VENV:-/tmp/moco-torch-venv}"
RUN_SWIFT=1 RUN_TORCH=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        --steps) STEPS="$2"; shift 2 ;;
        --configs) CONFIGS="$2"; shift 2 ;;
        --csv) CSV="$2"; shift 2 ;;
        --venv) VENV="$2"; shift 2 ;;
        --no-swift) RUN_SWIFT=0; shift ;;
        --no-pytorch) RUN_TORCH=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
for n in "$ROUNDS" "$WARMUP" "$STEPS"; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "not a number: $n" >&2; exit 2; }
done

if [[ -n "${CI:-}" ]]; then
    echo "compare_pytorch.sh: CI is set; this benchmark is not run in CI." >&2
    exit 0
fi

MOCO="${MOCO:-$ROOT/.build/release/moco}"
STEP_PY="$ROOT/scripts/pytorch_moco_step.py"
[[ -n "$CSV" ]] || CSV="/tmp/moco-compare-$(date +%Y%m%d-%H%M%S).csv"
mkdir -p "$(dirname "$CSV")"
WORK="$(mktemp -d /tmp/moco-compare.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
RESULTS="$WORK/results.jsonl"
: > "$RESULTS"

# ---------------------------------------------------------------- PyTorch venv
setup_venv() {
    local py="$VENV/bin/python"
    if [[ -x "$py" ]] && "$py" -c 'import torch' 2>/dev/null; then
        echo "PyTorch venv: reusing $VENV (torch $("$py" -c 'import torch; print(torch.__version__)'))"
        return
    fi
    echo "PyTorch venv: creating $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    local spec="${TORCH_SPEC:-}"
    if [[ -z "$spec" ]]; then
        # newest CPU-only build pip can see, if any (pip lists versions newest first)
        local cpu
        cpu="$("$VENV/bin/pip" index versions torch 2>/dev/null \
               | sed -n 's/^Available versions: //p' | tr ',' '\n' | tr -d ' ' | grep '+cpu$' | head -n1 || true)"
        if [[ -n "$cpu" ]]; then
            spec="torch==$cpu"
            echo "PyTorch venv: found CPU-only wheel $spec"
        else
            spec="torch"
            echo "PyTorch venv: no CPU-only wheel visible; installing PyPI's torch (pulls CUDA libraries, several GB)"
        fi
    fi
    "$VENV/bin/pip" install -q "$spec"
    "$py" -c 'import torch; print("PyTorch venv: torch", torch.__version__)'
}

# ---------------------------------------------------------------- runners
# record CONFIG ROUND IMPL LOGFILE: append the run's JSON line (or an error) to $RESULTS
record() {
    local cfg="$1" round="$2" impl="$3" log="$4"
    python3 - "$cfg" "$round" "$impl" "$log" >> "$RESULTS" <<'EOF'
import json, sys
cfg, rnd, impl, log = sys.argv[1:]
rec = None
for line in open(log, errors="replace"):
    line = line.strip()
    if line.startswith("{"):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if "images_per_s" in d:
            rec = d
if rec is None:
    rec = {"error": "no JSON line with images_per_s (see log)"}
rec.update({"config": cfg, "round": int(rnd), "side": impl,
            "loadavg_1m": float(open("/proc/loadavg").read().split()[0])})
print(json.dumps(rec))
EOF
}

run_torch() {   # CONFIG ROUND
    local cfg="$1" round="$2" log="$WORK/torch-$1-$2.log"
    local py="$VENV/bin/python" common=(--queue-size 4096 --warmup "$WARMUP" --steps "$STEPS" --json)
    case "$cfg" in
        r20-1x2) cmd=("$py" "$STEP_PY" --arch resnet20 --batch-size 256 --threads 2 "${common[@]}") ;;
        r20-2x1) cmd=(env OMP_NUM_THREADS=1 "$VENV/bin/torchrun" --standalone --nproc_per_node 2
                      "$STEP_PY" --ddp --bind-core --arch resnet20 --batch-size 256 --threads 1 "${common[@]}") ;;
        r18-1x2) cmd=("$py" "$STEP_PY" --arch resnet18 --batch-size 64 --threads 2 "${common[@]}") ;;
    esac
    echo "  [round $round] pytorch: ${cmd[*]}"
    if ! "${cmd[@]}" > "$log" 2>&1; then
        echo "    pytorch run failed; last lines of its log:"; tail -n 5 "$log" | sed 's/^/    /'
    fi
    record "$cfg" "$round" pytorch "$log"
}

run_swift() {   # CONFIG ROUND
    local cfg="$1" round="$2" log="$WORK/swift-$1-$2.log"
    local common=(--queue-size 4096 --warmup "$WARMUP" --steps "$STEPS" --json)
    case "$cfg" in
        r20-1x2) cmd=("$MOCO" bench step --arch resnet20 --batch-size 256 --threads 2 "${common[@]}") ;;
        r20-2x1) cmd=(env OPENBLAS_NUM_THREADS=1 mpirun -np 2 --allow-run-as-root --bind-to core
                      -x OPENBLAS_NUM_THREADS "$MOCO" bench step --arch resnet20 --batch-size 256 --threads 1 "${common[@]}") ;;
        r18-1x2) cmd=("$MOCO" bench step --arch resnet18 --batch-size 64 --threads 2 "${common[@]}") ;;
    esac
    echo "  [round $round] swift:   ${cmd[*]}"
    if ! "${cmd[@]}" > "$log" 2>&1; then
        echo "    swift run failed; last lines of its log:"; tail -n 5 "$log" | sed 's/^/    /'
    fi
    record "$cfg" "$round" swift "$log"
}

# ---------------------------------------------------------------- main
if [[ $RUN_SWIFT -eq 1 ]]; then
    if [[ ! -x "$MOCO" ]]; then
        echo "NOTE: swift-moco binary not found at $MOCO (build it with 'swift build -c release'," \
             "or set MOCO); running the PyTorch side only." >&2
        RUN_SWIFT=0
    elif ! "$MOCO" bench step --help > /dev/null 2>&1; then
        echo "NOTE: '$MOCO bench step' is not available in this build (subcommand missing);" \
             "running the PyTorch side only." >&2
        RUN_SWIFT=0
    fi
fi
if [[ $RUN_TORCH -eq 1 ]]; then setup_venv; fi
if [[ $RUN_TORCH -eq 0 && $RUN_SWIFT -eq 0 ]]; then echo "nothing to run" >&2; exit 1; fi

IFS=',' read -r -a CFG_LIST <<< "$CONFIGS"
for cfg in "${CFG_LIST[@]}"; do
    case "$cfg" in r20-1x2|r20-2x1|r18-1x2) ;; *) echo "unknown config: $cfg" >&2; exit 2 ;; esac
done
echo "rounds $ROUNDS, warm-up $WARMUP, timed steps $STEPS; logs in $WORK (removed at exit)"
# a benchmark on a busy machine measures the other load: warn (the CSV keeps the load per run)
read -r LOAD1 _ < /proc/loadavg
if awk -v l="$LOAD1" 'BEGIN { exit !(l > 0.5) }'; then
    echo "WARNING: 1-minute load average is $LOAD1 before starting; results will be noisy." >&2
fi
for cfg in "${CFG_LIST[@]}"; do
    echo "== $cfg"
    for ((r = 1; r <= ROUNDS; r++)); do
        if [[ $RUN_TORCH -eq 1 ]]; then run_torch "$cfg" "$r"; fi
        if [[ $RUN_SWIFT -eq 1 ]]; then run_swift "$cfg" "$r"; fi
    done
done

# ---------------------------------------------------------------- table and CSV
python3 - "$RESULTS" "$CSV" <<'EOF'
import csv, json, statistics, sys
res_path, csv_path = sys.argv[1:]
runs = [json.loads(l) for l in open(res_path) if l.strip()]
cols = ["config", "round", "side", "images_per_s", "step_ms_median", "peak_rss_mb", "gflops",
        "world", "threads", "loadavg_1m", "error"]
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
summary = {}
for cfg in dict.fromkeys(r["config"] for r in runs):
    s = {}
    for side in ("pytorch", "swift"):
        ok = [r for r in runs if r["config"] == cfg and r["side"] == side and "error" not in r]
        s[side] = {"images_per_s": med([r.get("images_per_s") for r in ok]),
                   "step_ms_median": med([r.get("step_ms_median") for r in ok]),
                   "peak_rss_mb": max([r["peak_rss_mb"] for r in ok if r.get("peak_rss_mb") is not None], default=None),
                   "gflops": med([r.get("gflops") for r in ok]), "n": len(ok)}
    summary[cfg] = s
with open(csv_path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(cols + ["ratio_swift_over_pytorch"])
    for r in runs:
        w.writerow([r.get(c, "") for c in cols] + [""])
    for cfg, s in summary.items():
        p, q = s["pytorch"]["images_per_s"], s["swift"]["images_per_s"]
        for side in ("pytorch", "swift"):
            d = s[side]
            w.writerow([cfg, "median", side, d["images_per_s"], d["step_ms_median"], d["peak_rss_mb"],
                        d["gflops"], "", "", "", ""] + [round(q / p, 3) if p and q else ""])
def fmt(x, spec):
    return format(x, spec) if x is not None else "-"
print()
print(f"{'config':9s} {'pytorch img/s':>13s} {'RSS MB':>8s} {'GFLOP/s':>8s} | {'swift img/s':>11s} {'RSS MB':>8s} | {'swift/pytorch':>13s}")
for cfg, s in summary.items():
    p, q = s["pytorch"], s["swift"]
    ratio = q["images_per_s"] / p["images_per_s"] if p["images_per_s"] and q["images_per_s"] else None
    print(f"{cfg:9s} {fmt(p['images_per_s'], '13.1f')} {fmt(p['peak_rss_mb'], '8.0f')} {fmt(p['gflops'], '8.2f')} | "
          f"{fmt(q['images_per_s'], '11.1f')} {fmt(q['peak_rss_mb'], '8.0f')} | {fmt(ratio, '13.2f')}")
print("(images/s: median over rounds of each run's median over timed steps; RSS: largest over rounds,"
      " per process (max over ranks))")
phase_rows = [(cfg, side) for cfg in summary for side in ("pytorch", "swift")
              if any(r.get("phases_ms") for r in runs if r["config"] == cfg and r["side"] == side)]
if phase_rows:
    print("\nper-phase ms (median over rounds of each run's per-step median):")
    for cfg, side in phase_rows:
        ph = [r["phases_ms"] for r in runs if r["config"] == cfg and r["side"] == side and r.get("phases_ms")]
        names = list(dict.fromkeys(k for p in ph for k in p))
        print(f"  {cfg:9s} {side:8s} " + ", ".join(f"{n} {med([p.get(n) for p in ph]):.1f}" for n in names))
errs = [r for r in runs if "error" in r]
if errs:
    print(f"{len(errs)} run(s) failed: " + ", ".join(f"{r['side']} {r['config']} round {r['round']}" for r in errs))
print(f"CSV: {csv_path}")
EOF
