#!/usr/bin/env bash
# Does training keep the step's speed? `moco train` on Fashion-MNIST (MoCo v2, data loading,
# augmentation, logging and metrics included) against `moco bench step` with the same step
# (batch 256, K 4096, bn-splits 8, the same threads), alternated ROUNDS times; the training
# figure is the images/s of its progress windows after the first (warm-up), the bench figure
# its median step. Prints each round and the ratio (issue 17's target: >= 0.95).
#
#   bash scripts/train_vs_bench.sh                 # 2 rounds, 2 threads, 40 training steps each
#   ROUNDS=3 THREADS=1 bash scripts/train_vs_bench.sh
#
# Environment: MOCO (default .build/release/moco), ROUNDS (2), THREADS (2), STEPS (40).
set -euo pipefail
cd "$(dirname "$0")/.."
MOCO=${MOCO:-.build/release/moco}
ROUNDS=${ROUNDS:-2} THREADS=${THREADS:-2} STEPS=${STEPS:-40}
[ -x "$MOCO" ] || { echo "train_vs_bench.sh: no $MOCO (swift build -c release --product moco)" >&2; exit 1; }
work=$(mktemp -d /tmp/moco-tvb.XXXXXX); trap 'rm -rf "$work"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  "$MOCO" train --preset moco-v2 --data fashion-mnist --train-subset $((STEPS * 256)) --epochs 1 --knn-every 0 \
    --log-every 5 --threads "$THREADS" --out "$work/train-$r" > "$work/train-$r.log" 2>&1
  train=$(python3 - "$work/train-$r/metrics.jsonl" <<'PY'
import json, sys
w = [json.loads(l) for l in open(sys.argv[1]) if '"type":"train"' in l.replace(" ", "")]
w = w[1:]   # the first window holds the warm-up (planning, first touches of the buffers)
print(sum(x["images_per_s"] for x in w) / len(w))
PY
)
  bench=$("$MOCO" bench step --batch-size 256 --queue-size 4096 --bn-splits 8 --threads "$THREADS" --warmup 2 --steps 10 --json \
    | python3 -c "import json,sys; print(json.loads([l for l in sys.stdin if l.startswith('{')][-1])['images_per_s'])")
  python3 -c "print(f'round $r: train {float($train):.1f} img/s, bench step {float($bench):.1f} img/s, train/bench {float($train) / float($bench):.3f}')"
done
