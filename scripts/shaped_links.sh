#!/usr/bin/env bash
# The communication model against measurements on shaped links (docs/performance.md, "The model
# on shaped links"): for each link rate and each number of namespace hosts (one rank each, on
# the bridge of launch/netns-cluster.sh, every host's sending link limited by tc), runs
# `moco bench comm` and `moco bench step` (per-rank batch 32), with Open MPI's collectives pinned
# to the algorithms the model describes (ring allreduce and allgather, pairwise all-to-all).
# Then scripts/comm_validate.py fits alpha and BW on the 2-host runs and predicts the others.
#
#   sudo bash scripts/shaped_links.sh                          # rates 200mbit 1gbit, W = 2 4 8
#   RATES="1gbit" HOSTS="2 4" OUT=runs/shaped bash scripts/shaped_links.sh
#
# Environment: MOCO (default .build/release/moco), OUT (default runs/shaped-links), RATES, HOSTS,
# ITER (bench comm iterations, default 3), STEPS (bench step steps, default 4), BATCH (per rank, 32),
# TUNE_EAGER (1: TCP eager limit 4 MiB, the default; 0: Open MPI's 64 KiB), PROGRESS (bench step's
# --progress-thread in microseconds, default 0 = off; give it its own OUT).
# Needs root, iproute2 (ip, tc); more hosts than cores are oversubscribed (compute slows, the
# model takes each run's own measured backward time).
set -euo pipefail
cd "$(dirname "$0")/.."
MOCO=${MOCO:-.build/release/moco}
OUT=${OUT:-runs/shaped-links}
RATES=${RATES:-200mbit 1gbit}
HOSTS=${HOSTS:-2 4 8}
ITER=${ITER:-3} STEPS=${STEPS:-4} BATCH=${BATCH:-32} PROGRESS=${PROGRESS:-0}
[ -x "$MOCO" ] || { echo "shaped_links.sh: no $MOCO (swift build -c release --product moco)" >&2; exit 1; }
mkdir -p "$OUT"
# Ring allreduce (4) and allgather (4), pairwise all-to-all(v) (2): the model's formulas. TCP's
# eager limit raised from 64 KiB to 4 MiB (TUNE_EAGER=0 keeps Open MPI's default): above the
# eager limit the TCP BTL's rendezvous protocol sent at about half the link rate here (2-rank
# allreduce of 1 MB at 200 Mb/s: 84-88 ms with the default, 43 ms = S/R with 2 MiB).
MPIRUN_ARGS="--mca coll_tuned_use_dynamic_rules 1 --mca coll_tuned_allreduce_algorithm 4 --mca coll_tuned_allgather_algorithm 4 --mca coll_tuned_alltoallv_algorithm 2 --mca mpi_yield_when_idle 1"
[ "${TUNE_EAGER:-1}" = 1 ] && MPIRUN_ARGS+=" --mca btl_tcp_eager_limit 4194304 --mca btl_tcp_max_send_size 4194304"
export MPIRUN_ARGS
for rate in $RATES; do
  for w in $HOSTS; do
    tag="$rate-w$w"
    if [ ! -s "$OUT/comm-$tag.txt" ]; then
      echo "== bench comm, $w hosts, $rate" >&2
      bash launch/netns-cluster.sh -b "$MOCO" -n "$w" --rate "$rate" -m 'bench comm' -- --iterations "$ITER" --max-bytes 4194304 \
        > "$OUT/comm-$tag.tmp" 2> "$OUT/comm-$tag.log"
      mv "$OUT/comm-$tag.tmp" "$OUT/comm-$tag.txt"
    fi
    if [ ! -s "$OUT/step-$tag.json" ]; then
      echo "== bench step, $w hosts, $rate" >&2
      bash launch/netns-cluster.sh -b "$MOCO" -n "$w" --rate "$rate" -m 'bench step' -- --batch-size $((BATCH * w)) \
        --warmup 1 --steps "$STEPS" --threads 1 --progress-thread "$PROGRESS" --json > "$OUT/step-$tag.tmp" 2> "$OUT/step-$tag.log"
      grep '^{' "$OUT/step-$tag.tmp" > "$OUT/step-$tag.json"; rm -f "$OUT/step-$tag.tmp"
    fi
  done
done
python3 scripts/comm_validate.py "$OUT"
