#!/usr/bin/env bash
# Hyperparameter sweep (not a test): short MoCo v2 ResNet-20 runs on Fashion-MNIST that differ
# in one setting at a time, each reporting kNN top-1 after its last epoch. The evidence behind
# the Fashion-MNIST preset (docs/results.md).
#
#   bash scripts/sweep.sh [--epochs N] [--subset N] [--out DIR]
#
# Each variant is one line of `moco train` flags below (or MOCO_SWEEP_VARIANTS='name|flags;...').
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=5 subset=0 out="runs/sweep-$(date +%Y%m%d-%H%M%S)"
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs="$2"; shift 2 ;;
    --subset) subset="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
MOCO=${MOCO:-.build/release/moco}
[ -x "$MOCO" ] || swift build -c release --product moco
mkdir -p "$out"
variants=(
  "preset|"
  "T=0.1|--moco-t 0.1"
  "crop-min=0.4|--crop-min-scale 0.4"
  "no-blur|--blur-prob 0"
)
[ -n "${MOCO_SWEEP_VARIANTS:-}" ] && IFS=';' read -r -a variants <<< "$MOCO_SWEEP_VARIANTS"
printf '| variant | flags | kNN top-1 (%%) after %s epochs | minutes |\n|---|---|---:|---:|\n' "$epochs"
for v in "${variants[@]}"; do
  name=${v%%|*} flags=${v#*|}
  dir="$out/$name"
  # shellcheck disable=SC2086
  "$MOCO" train --preset moco-v2 --data fashion-mnist --epochs "$epochs" --train-subset "$subset" \
    --knn-every "$epochs" --save-every 0 --log-every 50 --out "$dir" $flags > "$dir.log" 2>&1 || { echo "| $name | $flags | failed (see $dir.log) | |"; continue; }
  python3 - "$dir" "$name" "$flags" <<'PY'
import json, sys
d, name, flags = sys.argv[1:4]
k = [json.loads(l) for l in open(f"{d}/metrics.jsonl") if '"knn"' in l][-1]
print(f"| {name} | `{flags or '(preset)'}` | {k['knn_top1']:.2f} | {k['elapsed_s']/60:.1f} |")
PY
done
