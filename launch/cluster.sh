#!/usr/bin/env bash
# Data-parallel MoCo across the hosts of a hostfile, over TCP.
#
#   launch/cluster.sh -f HOSTFILE [-n RANKS] [-i NETWORK] [-b BINARY] [--dry-run] [--] [moco train arguments...]
#
#   -f HOSTFILE  Open MPI hostfile ("host slots=N" per line; see hostfiles/two-nodes.example)
#   -n RANKS     number of ranks (default: the sum of the slots in the hostfile)
#   -i NETWORK   restrict MPI traffic to this interface or CIDR (e.g. eth1 or 10.0.0.0/24);
#                recommended when hosts have several interfaces (docker0, virbr0, ...)
#   -b BINARY    the moco executable, at the same path on every host (default .build/release/moco)
#
# Every host needs the same build of moco at the same path (a shared file system or a copy), the
# dataset at the same --data-dir, and passwordless ssh from this host (Open MPI's default agent;
# set MPIRUN_ARGS="--mca plm_rsh_agent ..." for another). Each rank uses cores/ranks-on-its-host
# BLAS threads unless --threads is given. Checkpoints and metrics are written by rank 0 only,
# on the first host of the hostfile.
#
# Example:
#   launch/cluster.sh -f hostfiles/two-nodes.example -i 10.0.0.0/24 -- --preset moco-v2 --out /shared/runs/v2
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

hostfile="" ranks="" net="" dry=0
bin="${MOCO_BIN:-$root/.build/release/moco}"
while [ $# -gt 0 ]; do
  case "$1" in
    -f|--hostfile) [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; hostfile="$2"; shift 2 ;;
    -n|--ranks) [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; ranks="$2"; shift 2 ;;
    -i|--network) [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; net="$2"; shift 2 ;;
    -b|--binary) [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; bin="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
done

if [ -z "$hostfile" ]; then echo "error: no hostfile; pass -f HOSTFILE (see hostfiles/)" >&2; usage >&2; exit 2; fi
if [ ! -f "$hostfile" ] || [ ! -r "$hostfile" ]; then echo "error: hostfile '$hostfile' does not exist or is not readable" >&2; exit 2; fi
# Hosts are the lines that are not blank and not comments.
hosts="$(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$hostfile" | grep -v '^$' || true)"
if [ -z "$hosts" ]; then echo "error: hostfile '$hostfile' lists no hosts (only blank or comment lines)" >&2; exit 2; fi
if [ -z "$ranks" ]; then
  ranks=0
  while read -r line; do
    slots="$(printf '%s\n' "$line" | sed -n 's/.*slots=\([0-9][0-9]*\).*/\1/p')"
    ranks=$(( ranks + ${slots:-1} ))
  done <<< "$hosts"
fi
case "$ranks" in ''|*[!0-9]*|0) echo "error: the number of ranks must be a positive integer (got '$ranks')" >&2; exit 2 ;; esac
if [ "$dry" = 0 ] && [ ! -x "$bin" ]; then
  echo "error: $bin is not an executable; build it with 'swift build -c release --product moco' or pass -b" >&2; exit 2
fi
mpirun="${MPIRUN:-mpirun}"
command -v "$mpirun" >/dev/null || { echo "error: $mpirun not found (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 2; }

# TCP between hosts, shared memory (vader) within a host; ob1 is the point-to-point layer that
# drives the BTLs (UCX/OFI, if installed, would otherwise be picked and may probe InfiniBand).
args=(--hostfile "$hostfile" -np "$ranks" --mca pml ob1 --mca btl tcp,vader,self -x OMPI_MCA_pml=ob1
      --map-by slot --bind-to core)
if [ -n "$net" ]; then args+=(--mca btl_tcp_if_include "$net" --mca oob_tcp_if_include "$net"); fi
if [ "$(id -u)" = 0 ]; then args+=(--allow-run-as-root); fi
# shellcheck disable=SC2206
extra=(${MPIRUN_ARGS:-})
cmd=("$mpirun" "${args[@]}" "${extra[@]}" "$bin" train "$@")
echo "+ ${cmd[*]}" >&2
[ "$dry" = 1 ] && exit 0
exec "${cmd[@]}"
