#!/usr/bin/env bash
# Data-parallel MoCo on one machine: N ranks of `moco train`, each bound to its own core(s),
# with OpenBLAS threads = cores / N so the ranks do not fight over cores.
#
#   launch/single-node.sh [-n RANKS] [-b BINARY] [--dry-run] [--] [moco train arguments...]
#
# Examples:
#   launch/single-node.sh -n 2 --preset moco-v2 --epochs 30
#   launch/single-node.sh -n 4 --data synthetic --epochs 1     # 4 ranks on 2 cores: oversubscribed
#
# Environment: MOCO_BIN (binary, default .build/release/moco), MPIRUN (default mpirun),
# MPIRUN_ARGS (extra mpirun arguments, word-split).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
}

ranks=2
bin="${MOCO_BIN:-$root/.build/release/moco}"
dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--ranks) [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; ranks="$2"; shift 2 ;;
    -b|--binary) [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; bin="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
done

case "$ranks" in ''|*[!0-9]*|0) echo "error: the number of ranks must be a positive integer (got '$ranks')" >&2; exit 2 ;; esac
if [ ! -x "$bin" ]; then
  echo "error: $bin is not an executable; build it with 'swift build -c release --product moco' or pass -b" >&2
  exit 2
fi
mpirun="${MPIRUN:-mpirun}"
command -v "$mpirun" >/dev/null || { echo "error: $mpirun not found (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 2; }

cores="$(nproc)"
threads=$(( cores / ranks )); [ "$threads" -ge 1 ] || threads=1
args=(-np "$ranks" -x "OPENBLAS_NUM_THREADS=$threads" -x OMPI_MCA_pml=ob1)
if [ "$ranks" -gt "$cores" ]; then
  # More ranks than cores: no binding (ranks would share one core each anyway), time-sharing allowed.
  args+=(--oversubscribe --bind-to none)
else
  args+=(--bind-to core --map-by core)
fi
if [ "$(id -u)" = 0 ]; then args+=(--allow-run-as-root); fi
# shellcheck disable=SC2206
extra=(${MPIRUN_ARGS:-})
export OMPI_MCA_pml=ob1
cmd=("$mpirun" "${args[@]}" "${extra[@]}" "$bin" train --threads "$threads" "$@")
echo "+ ${cmd[*]}" >&2
[ "$dry" = 1 ] && exit 0
exec "${cmd[@]}"
