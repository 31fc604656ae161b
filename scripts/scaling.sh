#!/usr/bin/env bash
# Strong and weak scaling of the MoCo training step (`moco bench step --json`) over 1, 2 and 4
# ranks on this node and over 2 ranks on the simulated two-host cluster of network namespaces
# (launch/netns-cluster.sh: TCP over a veth pair), with a CSV, a table and PNG plots.
#
#   scripts/scaling.sh [options]
#
#   -o DIR            output folder (default runs/scaling-DATE)
#   -b BINARY         the moco executable (default .build/release/moco)
#   --arch A          resnet20 (default, 1x28x28) or resnet18 (3x32x32)
#   --steps N         measured steps per run (default 5)
#   --warmup N        warm-up steps per run (default 2)
#   --repeats N       runs per point; the run with the median step time is kept (default 3)
#   --strong-batch B  strong scaling: fixed global batch (default 256)
#   --weak-batch n    weak scaling: fixed per-rank batch, global = n * ranks (default 128)
#   --ranks "LIST"    ranks on one node (default "1 2 4"; more ranks than cores = oversubscribed)
#   --netns-ranks "L" ranks over the namespace cluster (default "2"; 1 rank per namespace,
#                     so only 2 is meaningful; "" to skip)
#   --no-netns        skip the namespace cluster (it needs root and iproute2)
#   --no-plot         skip the PNG plots
#   --dry-run         print the commands only
#
# Every rank runs 1 BLAS thread (`--threads 1`, OPENBLAS_NUM_THREADS=1), bound to a core with
# `--bind-to core` when ranks <= cores; with more ranks than cores, `--oversubscribe --bind-to
# none` (ranks time-share cores: such points measure the communication path, not speed-up).
# Namespace ranks run unbound (netns-cluster.sh: each "host" would otherwise bind its rank to core 0).
# Efficiency: strong = T1 / (W * T_W) (step time for the same global batch), weak =
# ips_W / (W * ips_1); the 1-rank points on the node are the baselines for both placements.
# Output: DIR/raw.jsonl (every run), DIR/scaling.csv, DIR/scaling.md, DIR/*.png, DIR/logs/.
# Plots need matplotlib: python3's, else PLOT_PYTHON (a python with matplotlib, e.g. a venv
# made with `python3 -m venv /tmp/plot-venv && /tmp/plot-venv/bin/pip install matplotlib`);
# without it the plots are skipped with a message and everything else is written.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

usage() { sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; }
need() { [ "$2" -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; }

out="runs/scaling-$(date +%Y%m%d-%H%M%S)"
bin="${MOCO_BIN:-$root/.build/release/moco}"
arch=resnet20 steps=5 warmup=2 repeats=3 strong_batch=256 weak_batch=128
ranks_list="1 2 4" netns_list="2" netns=1 plot=1 dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--out) need "$1" $#; out="$2"; shift 2 ;;
    -b|--binary) need "$1" $#; bin="$2"; shift 2 ;;
    --arch) need "$1" $#; arch="$2"; shift 2 ;;
    --steps) need "$1" $#; steps="$2"; shift 2 ;;
    --warmup) need "$1" $#; warmup="$2"; shift 2 ;;
    --repeats) need "$1" $#; repeats="$2"; shift 2 ;;
    --strong-batch) need "$1" $#; strong_batch="$2"; shift 2 ;;
    --weak-batch) need "$1" $#; weak_batch="$2"; shift 2 ;;
    --ranks) need "$1" $#; ranks_list="$2"; shift 2 ;;
    --netns-ranks) need "$1" $#; netns_list="$2"; shift 2 ;;
    --no-netns) netns=0; shift ;;
    --no-plot) plot=0; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument '$1' (see -h)" >&2; exit 2 ;;
  esac
done

posint() { case "$2" in ''|*[!0-9]*) echo "error: $1 must be a non-negative integer (got '$2')" >&2; exit 2 ;; esac; }
posint --steps "$steps"; posint --warmup "$warmup"; posint --repeats "$repeats"
posint --strong-batch "$strong_batch"; posint --weak-batch "$weak_batch"
[ "$steps" -ge 1 ] && [ "$repeats" -ge 1 ] && [ "$strong_batch" -ge 1 ] && [ "$weak_batch" -ge 1 ] \
  || { echo "error: --steps, --repeats and the batches must be at least 1" >&2; exit 2; }
for w in $ranks_list $netns_list; do posint "a rank count" "$w"; [ "$w" -ge 1 ] || { echo "error: rank counts must be >= 1" >&2; exit 2; }; done
case " $ranks_list " in *" 1 "*) ;; *) echo "error: --ranks must include 1 (the efficiency baseline)" >&2; exit 2 ;; esac
case "$arch" in resnet20|resnet18) ;; *) echo "error: --arch must be resnet20 or resnet18 (got '$arch')" >&2; exit 2 ;; esac
if [ "$dry" = 0 ]; then
  [ -x "$bin" ] || { echo "error: $bin is not an executable; build it with 'swift build -c release --product moco' or pass -b" >&2; exit 2; }
  command -v mpirun >/dev/null || { echo "error: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 2; }
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
if [ "$netns" = 1 ] && [ -n "$netns_list" ]; then
  if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
    echo "note: skipping the namespace cluster (needs root and iproute2's ip)" >&2; netns=0
  fi
else
  netns=0
fi

cores="$(nproc)"
mkdir -p "$out/logs"
raw="$out/raw.jsonl"; : > "$raw"
cmds="$out/commands.txt"; : > "$cmds"
netns_prefix="moco-scale$$-"
netns_started=0
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  # netns-cluster.sh deletes its namespaces itself; this only catches a run killed hard.
  if [ "$netns_started" = 1 ]; then
    for ns in "${netns_prefix}0" "${netns_prefix}1"; do
      if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; then
        ip netns del "$ns" 2>/dev/null || echo "warning: could not delete namespace $ns" >&2
      fi
    done
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "host: $(uname -srm), $cores cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "binary: $bin"
  echo "arch $arch, steps $steps, warmup $warmup, repeats $repeats, strong global batch $strong_batch, weak per-rank batch $weak_batch"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/meta.txt"
cat "$out/meta.txt" >&2

bench=(bench step --arch "$arch" --warmup "$warmup" --steps "$steps" --threads 1 --json)

# One run: $1 mode, $2 placement, $3 ranks, $4 global batch, $5 repeat.
run_point() {
  local mode=$1 placement=$2 w=$3 gb=$4 rep=$5 over=false
  local log="$out/logs/$mode-$placement-$w-r$rep.log"
  local -a cmd
  if [ "$placement" = node ]; then
    local -a mpi=(--allow-run-as-root -np "$w" -x OPENBLAS_NUM_THREADS=1 -x OMPI_MCA_pml=ob1)
    if [ "$w" -gt "$cores" ]; then
      over=true; mpi+=(--oversubscribe --bind-to none)
    else
      mpi+=(--bind-to core --map-by core)
    fi
    cmd=(mpirun "${mpi[@]}" "$bin" "${bench[@]}" --batch-size "$gb")
  else
    cmd=(env MOCO_NETNS_PREFIX="$netns_prefix"
         bash "$root/launch/netns-cluster.sh" -b "$bin" -m "bench step" --
         --arch "$arch" --warmup "$warmup" --steps "$steps" --threads 1 --json --batch-size "$gb")
  fi
  local shown
  shown="$(printf '%q ' "${cmd[@]}")"
  echo "$shown" >> "$cmds"
  local note=""
  [ "$over" = true ] && note=" [OVERSUBSCRIBED: $w ranks on $cores cores]"
  echo "+ [$mode $placement W=$w global=$gb run $rep/$repeats]$note $shown" >&2
  [ "$dry" = 1 ] && return 0
  [ "$placement" = netns ] && netns_started=1
  if ! "${cmd[@]}" > "$log" 2>&1; then
    echo "error: the run failed; its output:" >&2; tail -n 20 "$log" >&2; exit 1
  fi
  local json
  json="$(grep '^{' "$log" | tail -n 1 || true)"
  [ -n "$json" ] || { echo "error: no JSON line in $log" >&2; tail -n 20 "$log" >&2; exit 1; }
  printf '{"mode":"%s","placement":"%s","ranks":%d,"global_batch":%d,"repeat":%d,"oversubscribed":%s,"bench":%s}\n' \
    "$mode" "$placement" "$w" "$gb" "$rep" "$over" "$json" >> "$raw"
  printf '  -> %s\n' "$(printf '%s' "$json" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.1f img/s, step %.0f ms, allreduce wait %.1f ms" % (r["images_per_s"], r["step_ms_median"], r["phases_ms"].get("allreduce_wait", 0)))')" >&2
}

for mode in strong weak; do
  for w in $ranks_list; do
    if [ "$mode" = strong ]; then gb=$strong_batch; else gb=$(( weak_batch * w )); fi
    if [ $(( gb % w )) != 0 ]; then echo "note: skipping strong W=$w: $gb is not divisible by $w" >&2; continue; fi
    for rep in $(seq 1 "$repeats"); do run_point "$mode" node "$w" "$gb" "$rep"; done
  done
  if [ "$netns" = 1 ]; then
    for w in $netns_list; do
      if [ "$w" != 2 ]; then echo "note: the namespace cluster has 2 one-slot hosts; skipping W=$w" >&2; continue; fi
      if [ "$mode" = strong ]; then gb=$strong_batch; else gb=$(( weak_batch * w )); fi
      for rep in $(seq 1 "$repeats"); do run_point "$mode" netns "$w" "$gb" "$rep"; done
    done
  fi
done
[ "$dry" = 1 ] && exit 0
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/meta.txt"

python3 "$here/plot_scaling.py" table "$raw" --csv "$out/scaling.csv" --markdown "$out/scaling.md" --cores "$cores"
cat "$out/scaling.md"
if [ "$plot" = 1 ]; then
  py=""
  if python3 -c 'import matplotlib' 2>/dev/null; then py=python3
  elif [ -n "${PLOT_PYTHON:-}" ] && "$PLOT_PYTHON" -c 'import matplotlib' 2>/dev/null; then py="$PLOT_PYTHON"
  fi
  if [ -n "$py" ]; then
    "$py" "$here/plot_scaling.py" plot "$out/scaling.csv" --out "$out"
  else
    echo "note: matplotlib not found (python3, PLOT_PYTHON): plots skipped; the CSV and table are in $out." >&2
    echo "      For plots: python3 -m venv /tmp/plot-venv && /tmp/plot-venv/bin/pip install matplotlib &&" >&2
    echo "      /tmp/plot-venv/bin/python scripts/plot_scaling.py plot $out/scaling.csv --out $out" >&2
  fi
fi
echo "wrote $out/scaling.csv" >&2
