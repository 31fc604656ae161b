#!/usr/bin/env bash
# A simulated cluster of N hosts on this machine, built from Linux network namespaces joined by a
# bridge (a one-switch star), optionally with shaped links, and a short MoCo run (or any moco
# subcommand) across it over TCP -- the multi-host code path (remote daemon launch, TCP
# out-of-band and byte-transfer layers, no shared memory between the ranks) without more hosts.
#
#   sudo launch/netns-cluster.sh [-n N] [--delay D] [--rate R] [-b BINARY] [-k] [-m 'SUBCOMMAND'] [--] [moco arguments...]
#
#   -n N       hosts, one rank each (default 2; 2-32). More ranks than cores are oversubscribed.
#   --rate R   rate limit of every host's sending link (tc htb), e.g. 1gbit, 500mbit
#   --delay D  delay added to every packet a host sends, one way (tc netem), e.g. 100us, 1ms;
#              needs the kernel's sch_netem, which some VMs lack (then: an error, nothing built)
#   -b BINARY  the moco executable (default .build/release/moco)
#   -k         keep the working folder (hostfile, agent, logs) and print its path
#   -m WORDS   the moco subcommand (default 'train'); any other, e.g. -m 'bench comm', runs
#              without `--threads 1` and the training defaults below (used by scripts/scaling.sh)
# Environment: MPIRUN_ARGS, extra mpirun arguments (word-split), e.g. '--report-bindings' or
# '--mca coll_tuned_use_dynamic_rules 1 --mca coll_tuned_allreduce_algorithm 4' (ring allreduce).
#
# What it builds (needs root and iproute2's `ip`; `tc` for shaping):
#   namespace ${prefix}0 .. ${prefix}{N-1}: 10.99.0.1 .. 10.99.0.N/24 on a veth each, whose other
#   end is a port of bridge br0 in namespace ${prefix}sw (prefix: $MOCO_NETNS_PREFIX, default
#   moco-h). The addresses exist inside the namespaces only. --rate puts an htb shaper of rate R
#   (bucket of 1 ms at the rate, at least 32 KiB) on each host's veth, with two queues: packets
#   under 128 bytes (TCP's ACKs) first, the data behind them; --delay a netem delay (with both:
#   netem delay, then the shaper as its child): every message a rank sends waits D and leaves at
#   R, a full-duplex link of rate R per host into a non-blocking switch. One FIFO (tbf) would
#   queue the ACKs of the data a host receives behind the data it sends, and a rank that sends
#   and receives at once (every step of a ring) then gets half the rate each way (measured: a
#   2-rank allreduce of 1 MB at 200 Mb/s took 84 ms with tbf, twice the 42 ms that S/R gives,
#   with ring, recursive doubling and reduce+broadcast alike).
# mpirun runs inside ${prefix}0; to start a daemon on "host" 10.99.0.I+1 Open MPI calls an rsh agent
# script that enters ${prefix}I with `ip netns exec` instead of ssh. All MPI traffic is TCP on
# 10.99.0.0/24. The namespaces (and the veth pairs and the bridge with them) are removed on exit,
# also on failure or Ctrl-C.
#
# Default training (overridable: later flags win): synthetic data, 1 epoch of 256 images,
# global batch 32, queue 128, kNN at the end, into runs/netns-cluster-DATE.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

usage() { sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; }

bin="${MOCO_BIN:-$root/.build/release/moco}"
keep=0
subcommand=train
hosts=2 delay="" rate=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--hosts) [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; hosts="$2"; shift 2 ;;
    --delay) [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; delay="$2"; shift 2 ;;
    --rate) [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; rate="$2"; shift 2 ;;
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

[[ "$hosts" =~ ^[0-9]+$ ]] && [ "$hosts" -ge 2 ] && [ "$hosts" -le 32 ] \
  || { echo "error: -n must be a number of hosts from 2 to 32, got '$hosts'" >&2; exit 2; }
if [ -n "$delay$rate" ]; then
  command -v tc >/dev/null || { echo "error: 'tc' not found for --delay/--rate (apt-get install iproute2)" >&2; exit 2; }
  [ -z "$delay" ] || [[ "$delay" =~ ^[0-9.]+(us|ms|s)$ ]] || { echo "error: --delay takes a time such as 100us or 1ms, got '$delay'" >&2; exit 2; }
  [ -z "$rate" ] || [[ "$rate" =~ ^[0-9.]+(kbit|mbit|gbit)$ ]] || { echo "error: --rate takes a rate such as 1gbit or 100mbit, got '$rate'" >&2; exit 2; }
fi

if [ -n "$rate" ]; then
  # tbf's bucket: 1 ms of the rate (bytes), at least 32 KiB. Smaller buckets cost TCP throughput
  # here (1 Gb/s, 32 MB over TCP: 16 KiB 91 MB/s, 64 KiB 98, 128 KiB 115 of the 119 MB/s of
  # payload the rate allows); messages below the bucket leave at the veth's speed.
  burst=$(python3 -c "
import re, sys
v, u = re.fullmatch(r'([0-9.]+)(kbit|mbit|gbit)', sys.argv[1]).groups()
bits = float(v) * {'kbit': 1e3, 'mbit': 1e6, 'gbit': 1e9}[u]
print(max(32768, int(bits / 8 * 1e-3)))" "$rate")
  # The ACK queue is guaranteed 5% of the rate, the data 95%; either may borrow up to all of it.
  ack_rate=$(python3 -c "
import re, sys
v, u = re.fullmatch(r'([0-9.]+)(kbit|mbit|gbit)', sys.argv[1]).groups()
bits = float(v) * {'kbit': 1e3, 'mbit': 1e6, 'gbit': 1e9}[u]
print(f'{int(bits * 0.05)}bit {int(bits * 0.95)}bit')" "$rate")
  data_rate=${ack_rate#* }; ack_rate=${ack_rate% *}
fi

prefix="${MOCO_NETNS_PREFIX:-moco-h}"
subnet=10.99.0.0/24
names=() addrs=()
for ((i = 0; i < hosts; i++)); do names+=("$prefix$i"); addrs+=("10.99.0.$((i + 1))"); done
sw="${prefix}sw"
for ns in "${names[@]}" "$sw"; do
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

echo "creating $hosts namespaces ${names[0]}..${names[$((hosts - 1))]} (${addrs[0]}..${addrs[$((hosts - 1))]}) on bridge br0 in $sw${delay:+, delay $delay}${rate:+, rate $rate}" >&2
ip netns add "$sw"; created+=("$sw")
ip -n "$sw" link add br0 type bridge
ip -n "$sw" link set br0 up
ip -n "$sw" link set lo up
for ((i = 0; i < hosts; i++)); do
  ns=${names[$i]}
  ip netns add "$ns"; created+=("$ns")
  # Both ends are created directly inside the namespaces: nothing appears in the host's namespace.
  ip link add "veth-moco$i" netns "$ns" type veth peer name "port$i" netns "$sw"
  ip -n "$sw" link set "port$i" master br0
  ip -n "$sw" link set "port$i" up
  ip -n "$ns" addr add "${addrs[$i]}/24" dev "veth-moco$i"
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "veth-moco$i" up
  dev="veth-moco$i"
  parent=(root)
  if [ -n "$delay" ]; then
    # limit: packets the qdisc may hold (the default 1000 drops at 10 Gb/s x 1 ms).
    if ! ip netns exec "$ns" tc qdisc add dev "$dev" root handle 1: netem delay "$delay" limit 100000 2>"$work/tc.err"; then
      echo "error: --delay: tc netem failed: $(cat "$work/tc.err") (this kernel has no sch_netem; --rate works without it)" >&2; exit 2
    fi
    parent=(parent 1:1)
  fi
  if [ -n "$rate" ]; then
    t=(ip netns exec "$ns" tc)
    "${t[@]}" qdisc add dev "$dev" "${parent[@]}" handle 2: htb default 20 r2q 1000
    "${t[@]}" class add dev "$dev" parent 2: classid 2:1 htb rate "$rate" ceil "$rate" burst "$burst" cburst "$burst"
    "${t[@]}" class add dev "$dev" parent 2:1 classid 2:10 htb rate "$ack_rate" ceil "$rate" burst "$burst" cburst "$burst" prio 0
    "${t[@]}" class add dev "$dev" parent 2:1 classid 2:20 htb rate "$data_rate" ceil "$rate" burst "$burst" cburst "$burst" prio 1
    # IPv4 packets of total length < 128 bytes (the length field's high 9 bits zero): ACKs, pings.
    "${t[@]}" filter add dev "$dev" parent 2: protocol ip prio 1 u32 match u16 0x0000 0xff80 at 2 flowid 2:10
  fi
done
if command -v ping >/dev/null; then
  for ((i = 1; i < hosts; i++)); do
    ip netns exec "${names[0]}" ping -c 1 -W 5 "${addrs[$i]}" >/dev/null 2>&1 \
      || { echo "error: ${names[0]} cannot reach ${addrs[$i]} over the bridge" >&2; exit 1; }
  done
fi

: > "$work/hostfile"
for a in "${addrs[@]}"; do printf '%s slots=1\n' "$a" >> "$work/hostfile"; done
cases=""
for ((i = 0; i < hosts; i++)); do cases+="  ${addrs[$i]}) ns=${names[$i]} ;;"$'\n'; done
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
$cases  *) echo "netns agent: unknown host '\$host' (expected one of ${addrs[*]})" >&2; exit 255 ;;
esac
echo "netns agent: \$host -> namespace \$ns" >&2
# Each "host" keeps its Open MPI session directory apart, as separate machines would: the daemons
# of several namespaces creating theirs in the one shared /tmp at once failed now and then
# ("mkdir ... /tmp/ompi.HOST.0/jf.N: File exists", orte_init failed).
mkdir -p "$work/session-\$ns"
exec ip netns exec "\$ns" env OMPI_MCA_orte_tmpdir_base="$work/session-\$ns" /bin/sh -c "\$*"
AGENT
chmod +x "$work/agent.sh"

out="runs/netns-cluster-$(date +%Y%m%d-%H%M%S)"
defaults=(--data synthetic --epochs 1 --train-subset 256 --batch-size 32 --queue-size 128 --log-every 2 --out "$out")
mpi=(--allow-run-as-root --hostfile "$work/hostfile" -np "$hosts" --map-by node
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
cmd=(ip netns exec "${names[0]}" mpirun "${mpi[@]}" "${extra[@]}" "$bin" "${sub[@]}" "${threads[@]}" "${defaults[@]}" "$@")
echo "+ ${cmd[*]}" >&2
set +e
"${cmd[@]}"
status=$?
set -e
if [ "$status" = 0 ]; then echo "netns cluster run finished" >&2; else echo "error: moco $subcommand across the namespaces failed (status $status)" >&2; fi
exit "$status"
