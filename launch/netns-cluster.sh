#!/usr/bin/env bash
# A simulated two-host cluster on this machine, built from Linux network namespaces, and a short
# MoCo training run across it over TCP -- the multi-host code path (remote daemon launch, TCP
# out-of-band and byte-transfer layers, no shared memory between the ranks) without a second host.
#
#   sudo launch/netns-cluster.sh [-b BINARY] [-k] [-m 'SUBCOMMAND'] [--] [moco arguments...]
#
#   -b BINARY  the moco executable (default .build/release/moco)
#   -k         keep the working folder (hostfile, agent, logs) and print its path
#   -m WORDS   the moco subcommand (default 'train'); any other, e.g. -m 'bench comm', runs
#              without `--threads 1` and the training defaults below (used by scripts/scaling.sh)
# Environment: MPIRUN_ARGS, extra mpirun arguments (word-split), e.g. '--report-bindings'.
#
# What it builds (needs root and iproute2's `ip`):
#   namespace ${prefix}0  -- veth --  namespace ${prefix}1      (prefix: $MOCO_NETNS_PREFIX, default moco-h)
#   10.99.0.1/24                       10.99.0.2/24            (addresses exist inside the namespaces only)
# and a hostfile with the two addresses (1 slot each). mpirun runs inside ${prefix}0; to start
# the daemon on "host" 10.99.0.2 Open MPI calls an rsh agent script that enters ${prefix}1 with
# `ip netns exec` instead of ssh. All MPI traffic is TCP on 10.99.0.0/24. The namespaces (and the
# veth pair with them) are removed on exit, also on failure or Ctrl-C.
#
# Default training (overridable: later flags win): synthetic data, 1 epoch of 256 images,
# global batch 32, queue 128, kNN at the end, into runs/netns-cluster-DATE.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }

bin="${MOCO_BIN:-$root/.build/release/moco}"
keep=0
subcommand=train
while [ $# -gt 0 ]; do
  case "$1" in
    -b|--binary) [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; bin="$2"; shift 2 ;;
    -k|--keep) keep=1; shift ;;
    -m|--moco-command) [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; subcommand="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "error: network namespaces need root (run with sudo)" >&2; exit 2; }
command -v ip >/dev/null || { echo "error: 'ip' not found (apt-get install iproute2)" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "error: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 2; }
[ -x "$bin" ] || { echo "error: $bin is not an executable; build it with 'swift build -c release --product moco' or pass -b" >&2; exit 2; }
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

prefix="${MOCO_NETNS_PREFIX:-moco-h}"
ns0="${prefix}0" ns1="${prefix}1"
addr0=10.99.0.1 addr1=10.99.0.2 subnet=10.99.0.0/24
for ns in "$ns0" "$ns1"; do
  if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
    echo "error: network namespace $ns already exists (another run, or a leftover: 'ip netns del $ns')" >&2; exit 2
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/moco-netns.XXXXXX")"
created=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for ns in "${created[@]}"; do
    # Processes this script started inside the namespace (a daemon left by a failed job).
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
  done
  for ns in "${created[@]}"; do ip netns del "$ns" 2>/dev/null || echo "warning: could not delete namespace $ns" >&2; done
  if [ "$keep" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "creating namespaces $ns0 ($addr0) and $ns1 ($addr1), veth pair on $subnet" >&2
ip netns add "$ns0"; created+=("$ns0")
ip netns add "$ns1"; created+=("$ns1")
# Both ends are created directly inside the namespaces: nothing appears in the host's namespace.
ip link add veth-moco0 netns "$ns0" type veth peer name veth-moco1 netns "$ns1"
ip -n "$ns0" addr add "$addr0/24" dev veth-moco0
ip -n "$ns1" addr add "$addr1/24" dev veth-moco1
for ns in "$ns0" "$ns1"; do ip -n "$ns" link set lo up; done
ip -n "$ns0" link set veth-moco0 up
ip -n "$ns1" link set veth-moco1 up
if command -v ping >/dev/null; then
  ip netns exec "$ns0" ping -c 1 -W 2 "$addr1" >/dev/null 2>&1 \
    || { echo "error: $ns0 cannot reach $addr1 over the veth pair" >&2; exit 1; }
fi

printf '%s slots=1\n%s slots=1\n' "$addr0" "$addr1" > "$work/hostfile"
# The rsh agent: Open MPI calls `agent [options] HOST COMMAND...` as it would call ssh. The command
# is a shell command line (ssh joins its arguments with spaces and gives them to the remote shell),
# so it is run with sh -c inside the namespace that owns HOST.
cat > "$work/agent.sh" <<AGENT
#!/usr/bin/env bash
set -euo pipefail
while [ \$# -gt 0 ] && [ "\${1#-}" != "\$1" ]; do shift; done   # ssh-style options before the host
[ \$# -ge 2 ] || { echo "netns agent: usage: agent.sh HOST COMMAND..." >&2; exit 255; }
host="\$1"; shift
case "\$host" in
  $addr0) ns=$ns0 ;;
  $addr1) ns=$ns1 ;;
  *) echo "netns agent: unknown host '\$host' (expected $addr0 or $addr1)" >&2; exit 255 ;;
esac
echo "netns agent: \$host -> namespace \$ns" >&2
exec ip netns exec "\$ns" /bin/sh -c "\$*"
AGENT
chmod +x "$work/agent.sh"

out="runs/netns-cluster-$(date +%Y%m%d-%H%M%S)"
defaults=(--data synthetic --epochs 1 --train-subset 256 --batch-size 32 --queue-size 128 --log-every 2 --out "$out")
mpi=(--allow-run-as-root --hostfile "$work/hostfile" -np 2 --map-by node
     --mca plm_rsh_agent "$work/agent.sh"
     --mca pml ob1 --mca btl tcp,self
     --mca btl_tcp_if_include "$subnet" --mca oob_tcp_if_include "$subnet"
     -x OMPI_MCA_pml=ob1 -x OPENBLAS_NUM_THREADS=1
     --bind-to none)
# Both "hosts" share this machine's cores: with Open MPI's default binding each daemon binds its
# only rank to core 0, so both ranks time-share one core (measured: 4 ms per 1 KiB allreduce
# instead of 20 us). Unbound, the kernel spreads them over the cores.
# shellcheck disable=SC2206
extra=(${MPIRUN_ARGS:-})
# shellcheck disable=SC2206
sub=($subcommand)
threads=(--threads 1)
[ "$subcommand" = train ] || { defaults=(); threads=(); }
cmd=(ip netns exec "$ns0" mpirun "${mpi[@]}" "${extra[@]}" "$bin" "${sub[@]}" "${threads[@]}" "${defaults[@]}" "$@")
echo "+ ${cmd[*]}" >&2
set +e
"${cmd[@]}"
status=$?
set -e
if [ "$status" = 0 ]; then echo "netns cluster run finished" >&2; else echo "error: moco $subcommand across the namespaces failed (status $status)" >&2; fi
exit "$status"
