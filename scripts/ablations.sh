#!/usr/bin/env bash
# The ablations of He et al. 2020 at a small, fixed scale, in one command (issue 12; the protocol,
# what each part measures and how to read it: docs/ablations.md).
#
#   bash scripts/ablations.sh                    # the whole suite (about 90 min, idle 2-core machine)
#   bash scripts/ablations.sh --only a,e         # parts: a b c d e consistency memory temperature
#   bash scripts/ablations.sh --epochs 5         # a longer schedule (its own --out by default)
#   bash scripts/ablations.sh --quick            # tiny pipeline check: 512 images, 1 seed (minutes)
#   bash scripts/ablations.sh --list             # print the runs and exit
#
# Parts: a. mechanism x K (end-to-end at K = B - 1, memory bank and MoCo at K in KS);
# b. key momentum m; c. shuffle-BN off; d. temperature T (MoCo and memory bank); e. NCE against
# InfoNCE (memory bank and MoCo); consistency (--log-consistency of MoCo m = 0.99, 0.999 and
# the bank, logged in every MoCo and bank run); memory (`moco memory`); temperature (`moco
# temperature` on the base MoCo and bank runs of seed 1). Points shared between parts (the base
# MoCo run is in a, b, c, d and e) run once.
#
# Resumable: every run has its own folder OUT/runs/NAME, saves every epoch and starts with
# --resume auto; a finished run (its last checkpoint exists) is skipped. Rerun the same command
# after an interruption. Two runs go side by side (--jobs 2), one engine thread each.
# Ends with python3 scripts/ablations_report.py OUT (CSV, markdown, PNG).
#
# Options: --out DIR (default runs/ablations-e<EPOCHS>, runs/ablations-quick with --quick),
# --seeds "1 2", --jobs N, --epochs E, --only LIST, --quick, --list. Environment: MOCO (default
# .build/release/moco), DATA_DIR (Fashion-MNIST files; default the trainer's), KS and E2E_BATCHES
# (part a's points, e.g. KS="4096 16384" E2E_BATCHES="" for the bank against MoCo only).
set -euo pipefail
cd "$(dirname "$0")/.."
MOCO=${MOCO:-.build/release/moco}

EPOCHS=1 SEEDS="1 2" JOBS=2 ONLY="" QUICK=0 LIST=0 OUT=""
while [ $# -gt 0 ]; do
  case $1 in
    --epochs) EPOCHS=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --list) LIST=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "ablations.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# The protocol (docs/ablations.md). Full: a 20k-image subset of Fashion-MNIST (K = 16384 must stay
# below N - B, so that no image meets its own previous key in the queue), batch 256, EPOCHS
# epochs with the cosine planned over them, the recipe of scripts/mechanisms.sh (MoCo v2,
# T = 0.1, blur sigma up to 2, BatchNorm split 8), kNN (k = 200) after every epoch against the
# first 2000 test images with the first 5000 training images as the bank.
SUBSET=20000 BATCH=256 KS=${KS-256 1024 4096 16384} E2E_BATCHES=${E2E_BATCHES-64 128 256} BASE_K=4096
KNN_BANK=5000 KNN_TEST=2000 LOG_EVERY=5 CONSISTENCY_EVERY=10
MS="0 0.9 0.99 0.999 0.9999" TS="0.05 0.07 0.1 0.2 0.5 1.0" BASE_M=0.99 BASE_T=0.1 BASE_LR=0.06
if [ "$QUICK" = 1 ]; then
  SUBSET=512 BATCH=32 KS="32 64 128 256" E2E_BATCHES="16 32" BASE_K=128
  KNN_BANK=256 KNN_TEST=256 LOG_EVERY=2 CONSISTENCY_EVERY=4 SEEDS=${SEEDS_QUICK:-1} EPOCHS=1
  OUT=${OUT:-runs/ablations-quick}
fi
OUT=${OUT:-runs/ablations-e$EPOCHS}
PARTS=${ONLY:-a,b,c,d,e,consistency,memory,temperature}
for p in ${PARTS//,/ }; do
  case $p in a|b|c|d|e|consistency|memory|temperature) ;; *) echo "ablations.sh: unknown part '$p'" >&2; exit 2 ;; esac
done
want() { [[ ",$PARTS," == *",$1,"* ]]; }
[ -x "$MOCO" ] || { echo "ablations.sh: no $MOCO; build it with: swift build -c release --product moco" >&2; exit 1; }
command -v python3 >/dev/null || { echo "ablations.sh: python3 is needed for the report" >&2; exit 1; }

common=(--preset moco-v2 --moco-t "$BASE_T" --blur-sigma-max 2 --bn-splits 8
        --data fashion-mnist --train-subset "$SUBSET" --epochs "$EPOCHS" --save-every 1 --knn-every 1
        --knn-bank "$KNN_BANK" --knn-test "$KNN_TEST" --log-every "$LOG_EVERY" --threads 1)
[ -n "${DATA_DIR:-}" ] && common+=(--data-dir "$DATA_DIR")

# The run list: NAME and its flags, each name once (a point shared by several parts runs once).
declare -A FLAGS=()
ORDER=()
point() {   # point NAME FLAGS... (adds one run per seed)
  local name=$1; shift
  for s in $SEEDS; do
    local n="$name-s$s"
    [ -n "${FLAGS[$n]:-}" ] && continue
    FLAGS[$n]="$* --seed $s"
    ORDER+=("$n")
  done
}
# MoCo at K, m, T, loss; shuffle-BN on unless a fifth argument says off.
moco() {
  local k=$1 m=$2 t=$3 loss=$4 sbn=${5:-on}
  local extra=""; [ "$sbn" = off ] && extra="--no-shuffle-bn"
  point "moco-k$k-m$m-t$t-$loss-sbn$sbn" --mechanism moco --queue-size "$k" --moco-m "$m" --moco-t "$t" --loss "$loss" \
        --batch-size "$BATCH" --log-consistency "$CONSISTENCY_EVERY" $extra
}
bank() {
  local k=$1 t=$2 loss=$3
  point "bank-k$k-t$t-$loss" --mechanism memory-bank --queue-size "$k" --moco-t "$t" --loss "$loss" --batch-size "$BATCH" \
        --log-consistency "$CONSISTENCY_EVERY"
}
e2e() {   # end-to-end at batch B (K = B - 1), lr scaled linearly with the batch (He et al. 2020, Fig. 3)
  local b=$1
  point "e2e-b$b" --mechanism end-to-end --batch-size "$b" --lr "$(python3 -c "print($BASE_LR * $b / 256)")"
}
if want a; then
  for b in $E2E_BATCHES; do e2e "$b"; done
  for k in $KS; do bank "$k" "$BASE_T" infonce; moco "$k" "$BASE_M" "$BASE_T" infonce; done
fi
if want b; then for m in $MS; do moco "$BASE_K" "$m" "$BASE_T" infonce; done; fi
if want c; then moco "$BASE_K" "$BASE_M" "$BASE_T" infonce on; moco "$BASE_K" "$BASE_M" "$BASE_T" infonce off; fi
if want d; then for t in $TS; do moco "$BASE_K" "$BASE_M" "$t" infonce; bank "$BASE_K" "$t" infonce; done; fi
if want e; then
  for loss in infonce nce; do moco "$BASE_K" "$BASE_M" "$BASE_T" "$loss"; bank "$BASE_K" "$BASE_T" "$loss"; done
fi
if want consistency; then
  for m in 0.99 0.999; do moco "$BASE_K" "$m" "$BASE_T" infonce; done
  bank "$BASE_K" "$BASE_T" infonce
fi
if want temperature; then moco "$BASE_K" "$BASE_M" "$BASE_T" infonce; bank "$BASE_K" "$BASE_T" infonce; fi

if [ "$LIST" = 1 ]; then
  for n in "${ORDER[@]}"; do echo "$n: ${FLAGS[$n]}"; done
  echo "${#ORDER[@]} runs"
  exit 0
fi

mkdir -p "$OUT/runs"
python3 - "$OUT/protocol.json" <<EOF
import json, sys
json.dump({"epochs": $EPOCHS, "subset": $SUBSET, "batch": $BATCH, "seeds": "$SEEDS".split(),
           "ks": [int(k) for k in "$KS".split()], "e2e_batches": [int(b) for b in "$E2E_BATCHES".split()],
           "ms": "$MS".split(), "ts": "$TS".split(), "base_k": $BASE_K, "base_m": "$BASE_M", "base_t": "$BASE_T",
           "knn_bank": $KNN_BANK, "knn_test": $KNN_TEST, "quick": bool($QUICK), "parts": "$PARTS".split(","),
           "jobs": $JOBS}, open(sys.argv[1], "w"), indent=1)
EOF
last=$(printf 'checkpoint_%04d.safetensors' "$EPOCHS")
run_one() {   # run_one NAME: trains (or continues) one run; its wall time is appended to wall_s
  local name=$1 dir="$OUT/runs/$1"
  mkdir -p "$dir"
  local t0; t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  if "$MOCO" train "${common[@]}" ${FLAGS[$name]} --out "$dir" --resume auto >> "$dir/train.log" 2>&1; then
    python3 -c "import sys; print(round($(date +%s.%N) - $t0, 1))" >> "$dir/wall_s"
    echo "done $name ($(tail -1 "$dir/wall_s") s)"
  else
    echo "FAILED $name (see $dir/train.log)"; echo "$name" >> "$OUT/failed.txt"; return 1
  fi
}
rm -f "$OUT/failed.txt"
suite0=$(date +%s)
todo=0
for n in "${ORDER[@]}"; do [ -f "$OUT/runs/$n/$last" ] || todo=$((todo + 1)); done
echo "== ${#ORDER[@]} runs, $todo to do, $JOBS at a time -> $OUT"
for n in "${ORDER[@]}"; do
  [ -f "$OUT/runs/$n/$last" ] && continue
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  run_one "$n" &
done
wait || true

if want memory; then
  "$MOCO" memory --images 60000 --project 1281167 --queue-size 4096 --csv "$OUT/memory_k4096.csv"
  "$MOCO" memory --images 60000 --project 1281167 --queue-size 65536 --csv "$OUT/memory_k65536.csv"
fi
if want temperature; then
  mkdir -p "$OUT/temperature"
  s1=${SEEDS%% *}
  for n in "moco-k$BASE_K-m$BASE_M-t$BASE_T-infonce-sbnon-s$s1" "bank-k$BASE_K-t$BASE_T-infonce-s$s1"; do
    ck="$OUT/runs/$n/$last"
    if [ -f "$ck" ]; then
      "$MOCO" temperature --weights "$ck" --t 0.05,0.07,0.1,0.2,0.5,1.0 --out "$OUT/temperature/${n%-s*}" \
        ${DATA_DIR:+--data-dir "$DATA_DIR"}
    else echo "temperature: no $ck (its run failed?)"; fi
  done
fi
echo "$(( $(date +%s) - suite0 ))" > "$OUT/suite_wall_s"
echo "== suite wall-clock this invocation: $(cat "$OUT/suite_wall_s") s"
python3 scripts/ablations_report.py "$OUT"
if [ -s "$OUT/failed.txt" ]; then echo "failed runs:"; cat "$OUT/failed.txt"; exit 1; fi
