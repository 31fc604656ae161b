#!/usr/bin/env bash
# Recipe sweep (not a test): MoCo v2 ResNet-20 runs on Fashion-MNIST that differ from a base in
# one or more settings, each with several seeds, ranked by kNN top-1 after the last epoch with the
# paired difference from the base and its standard error (scripts/sweep_report.py). The evidence
# behind the Fashion-MNIST settings (docs/results.md) and the search of issue 15.
#
#   bash scripts/sweep.sh [--epochs N] [--subset N] [--seeds "1 2"] [--jobs 2] [--out DIR] [--list]
#   VARIANTS='base|;T=0.2|--moco-t 0.2;x2|--arch resnet20-x2' BASE="--moco-t 0.1" bash scripts/sweep.sh --epochs 10
#
# Every variant is `name|flags` (VARIANTS: ';'-separated; default: the list below); BASE flags go
# to every run, and the variant named `base` (or the first) is what the others are compared with.
# Each run is OUT/NAME-sSEED, saves every epoch and starts with --resume auto, so an interrupted
# sweep continues where it stopped when the same command is run again (a finished run is
# skipped). JOBS runs go side by side with one engine thread each (default 2, one per core).
# The kNN bank is the training images used (all, or the first --subset), the queries the 10,000
# test images. Writes OUT/sweep.md and OUT/sweep.csv. MOCO: the binary (default .build/release/moco).
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=5 subset=0 seeds="0" jobs=2 out="" list=0
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs="$2"; shift 2 ;;
    --subset) subset="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --list) list=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "sweep.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
out=${out:-runs/sweep-e$epochs-n$subset}
MOCO=${MOCO:-.build/release/moco}
variants=(
  "base|"
  "T=0.1|--moco-t 0.1"
  "crop-min=0.4|--crop-min-scale 0.4"
  "no-blur|--blur-prob 0"
)
[ -n "${VARIANTS:-}" ] && IFS=';' read -r -a variants <<< "$VARIANTS"
for v in "${variants[@]}"; do
  case $v in *'|'*) ;; *) echo "sweep.sh: variant '$v' is not name|flags" >&2; exit 2 ;; esac
done

# One line per run: name, seed, flags.
runs=()
for seed in $seeds; do
  for v in "${variants[@]}"; do runs+=("${v%%|*}|$seed|${v#*|}"); done
done
if [ "$list" = 1 ]; then
  for r in "${runs[@]}"; do IFS='|' read -r name seed flags <<< "$r"; echo "$out/$name-s$seed: ${BASE:-} $flags --seed $seed"; done
  exit 0
fi
[ -x "$MOCO" ] || { echo "no $MOCO: swift build -c release --product moco" >&2; exit 1; }
mkdir -p "$out"

run_one() {  # name seed flags
  local name=$1 seed=$2 flags=$3 dir="$out/$1-s$2"
  local last; last=$(printf '%s/checkpoint_%04d.safetensors' "$dir" "$epochs")
  if [ -e "$last" ]; then echo "done already: $dir"; return 0; fi
  local resume=()
  if ls "$dir"/checkpoint_*.safetensors >/dev/null 2>&1; then resume=(--resume auto); fi
  echo "start: $dir ($flags)"
  # shellcheck disable=SC2086
  if "$MOCO" train --preset moco-v2 --data fashion-mnist --epochs "$epochs" --train-subset "$subset" \
      --knn-every "$epochs" --save-every 1 --log-every 50 --threads 1 --seed "$seed" ${BASE:-} $flags \
      --out "$dir" "${resume[@]}" >> "$dir.log" 2>&1; then
    echo "finished: $dir"
  else
    echo "FAILED: $dir (see $dir.log)"
  fi
}

# A simple pool of JOBS background runs.
pids=()
for r in "${runs[@]}"; do
  IFS='|' read -r name seed flags <<< "$r"
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_one "$name" "$seed" "$flags" &
  pids+=($!)
done
wait
printf '%s\n' "${variants[@]}" > "$out/variants.txt"
python3 scripts/sweep_report.py "$out" --variants "$out/variants.txt" --seeds "$seeds" | tee "$out/sweep.md"
