#!/usr/bin/env bash
# The mechanisms He et al. 2020 compare, and MoCo v3, after the same short schedule (issue 11):
# the parity recipe of scripts/parity.sh (MoCo v2, T = 0.1, split-BN 8, blur sigma 0.1-2, cosine
# planned over 30 epochs) with --mechanism memory-bank (NCE and InfoNCE) and end-to-end, and the
# instdisc and moco-v3 presets at their own hyperparameters, each stopped after STOP epochs with
# a kNN every epoch. MoCo v2 itself at this recipe is the parity grid (scripts/parity.sh).
# Checkpoints every epoch: rerun with a larger STOP to continue (--resume auto).
#
#   STOP=1 bash scripts/mechanisms.sh
#   STOP=3 RUNS="instdisc moco-v3" bash scripts/mechanisms.sh
#
# Environment: MOCO (default .build/release/moco), OUT (default runs/mech), STOP (default 1),
# RUNS (default: all five), SEED (default 1), THREADS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
MOCO=${MOCO:-.build/release/moco}
OUT=${OUT:-runs/mech}
STOP=${STOP:-1}
SEED=${SEED:-1}
THREADS=${THREADS:-1}
RUNS=${RUNS:-instdisc memory-bank-nce end-to-end memory-bank-infonce moco-v3}
[ -x "$MOCO" ] || { echo "no $MOCO: swift build -c release --product moco" >&2; exit 1; }
common=(--data fashion-mnist --epochs 30 --knn-every 1 --bn-splits 8 --seed "$SEED" --save-every 1 --log-every 50
        --threads "$THREADS" --stop-after "$STOP")
recipe=(--preset moco-v2 --moco-t 0.1 --blur-sigma-max 2)
for name in $RUNS; do
  case $name in
    instdisc)            args=(--preset instdisc) ;;
    moco-v3)             args=(--preset moco-v3) ;;
    memory-bank-nce)     args=("${recipe[@]}" --mechanism memory-bank --loss nce) ;;
    memory-bank-infonce) args=("${recipe[@]}" --mechanism memory-bank) ;;
    end-to-end)          args=("${recipe[@]}" --mechanism end-to-end) ;;
    *) echo "unknown run $name" >&2; exit 2 ;;
  esac
  dir="$OUT/$name"
  resume=()
  if ls "$dir"/checkpoint_*.safetensors >/dev/null 2>&1; then resume=(--resume auto); fi
  echo "== $name -> epoch $STOP ($dir)"
  "$MOCO" train "${args[@]}" "${common[@]}" --out "$dir" "${resume[@]}"
done
python3 scripts/parity_table.py "$OUT" || true
