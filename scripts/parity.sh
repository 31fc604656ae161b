#!/usr/bin/env bash
# Accuracy parity with PyTorch at the same epoch (issue 16): MoCo v2 ResNet-20 on Fashion-MNIST,
# the recipe of PyTorch's official-semantics run (T = 0.1, split-BN 8, blur sigma 0.1-2, cosine
# planned over 30 epochs), for each --init and seed, stopped after STOP epochs. Every run saves a
# checkpoint each epoch and is continued with --resume auto, so the grid can be run in rounds
# (STOP=3, then STOP=5) and across sessions. Then prints the kNN table (scripts/parity_table.py).
#
#   STOP=3 bash scripts/parity.sh                 # all inits x seeds to epoch 3
#   STOP=5 INITS=pytorch SEEDS="1 2 3" bash scripts/parity.sh
#   OUT=runs/parity-blurfull EXTRA="--blur-kernel full" STOP=3 bash scripts/parity.sh   # a variant
#
# Environment: MOCO (binary, default .build/release/moco), OUT (default runs/parity), STOP,
# INITS (default "torchvision pytorch"), SEEDS (default "1 2 3"), THREADS (default: all cores),
# EXTRA (more flags for every run, e.g. a variant of the recipe in its own OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
MOCO=${MOCO:-.build/release/moco}
OUT=${OUT:-runs/parity}
STOP=${STOP:-3}
INITS=${INITS:-torchvision pytorch}
SEEDS=${SEEDS:-1 2 3}
[ -x "$MOCO" ] || { echo "no $MOCO: swift build -c release --product moco" >&2; exit 1; }
for seed in $SEEDS; do
  for init in $INITS; do
    dir="$OUT/$init-s$seed"
    resume=()
    if ls "$dir"/checkpoint_*.safetensors >/dev/null 2>&1; then resume=(--resume auto); fi
    echo "== $init seed $seed -> epoch $STOP ($dir)"
    "$MOCO" train --preset moco-v2 --data fashion-mnist --moco-t 0.1 --epochs 30 --stop-after "$STOP" \
      --knn-every 1 --bn-splits 8 --blur-sigma-max 2 --init "$init" --seed "$seed" --save-every 1 \
      --log-every 50 ${THREADS:+--threads "$THREADS"} ${EXTRA:-} --out "$dir" "${resume[@]}"
  done
done
python3 scripts/parity_table.py "$OUT"
