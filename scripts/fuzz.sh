#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/, docs/fuzzing.md) and runs each on a copy of its seed
# corpus; exits non-zero on any crash, leak, timeout or out-of-memory, naming the input that
# caused it.
#
#   scripts/fuzz.sh                      every target, 1000000 executions each
#   scripts/fuzz.sh --runs 50000         fewer executions
#   scripts/fuzz.sh --seconds 20         20 s per target instead of a number of executions (CI)
#   scripts/fuzz.sh --only FuzzIDX       one target (repeat, or give a comma list, for several)
#   scripts/fuzz.sh --list               the target names
#
# Other options:
#   --debug            build without optimisation (default: release; see docs/fuzzing.md for rates)
#   --no-asan          libFuzzer alone, without AddressSanitizer (faster; no -malloc_limit_mb)
#   --no-build         use the binaries already in the build directory
#   --update-corpus    merge the inputs that found new coverage into Fuzz/corpus/<target>/
#                      (libFuzzer -merge=1: only inputs adding coverage; off by default, the
#                      committed corpus never grows unasked)
#   --work DIR         where the corpus copies, crash inputs and logs go (default: a new
#                      directory under the build directory's runs/)
#   -- ARGS            further libFuzzer flags for every target
#
# Environment: BUILD_JOBS (default 1) for `swift build -j`.
#
# Build: MOCO_FUZZ=1 adds the targets to Package.swift; `swift build --sanitize fuzzer -Xswiftc
# -sanitize=fuzzer,address` instruments every module, in its own build directory (.build-fuzz,
# or .build-fuzz-noasan), so the normal .build is untouched. One libFuzzer process per target,
# one after another.
#
# Limits (per target): -rss_limit_mb=2048 (the process; ASan's own shadow and quarantine are
# counted, so 2 GB leaves room over the ~100-500 MB the targets use), -malloc_limit_mb=512 (any
# single allocation over 512 MB is reported as a bug: every parser reads inputs of at most a
# few kB here, so an allocation that large can only come from trusting a size in a header),
# -timeout=10 (seconds for one input; the slowest valid input takes well under 10 ms).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(FuzzSafeTensorsHeader FuzzSafeTensorsFile FuzzIDX FuzzIDXGzip FuzzIDXPair FuzzCIFAR FuzzCheckpointConfig FuzzCheckpointInfo FuzzImage)
# Dictionary and maximum input length per target (libFuzzer's default max_len is 4096 or the
# largest seed; CIFAR-10 records are 3073 bytes, so allow three).
declare -A DICT=(
  [FuzzSafeTensorsHeader]=safetensors [FuzzSafeTensorsFile]=safetensors [FuzzIDX]=idx [FuzzIDXGzip]=idx [FuzzIDXPair]=idx
  [FuzzCIFAR]="" [FuzzCheckpointConfig]=config [FuzzCheckpointInfo]=checkpoint [FuzzImage]=image)
declare -A MAXLEN=(
  [FuzzSafeTensorsHeader]=4096 [FuzzSafeTensorsFile]=4096 [FuzzIDX]=4096 [FuzzIDXGzip]=4096 [FuzzIDXPair]=4096
  [FuzzCIFAR]=9220 [FuzzCheckpointConfig]=4096 [FuzzCheckpointInfo]=4096 [FuzzImage]=8192)

runs=1000000 seconds="" only=() config=release asan=1 build=1 update=0 work="" extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --only) IFS=, read -r -a names <<< "$2"; only+=("${names[@]}"); shift 2 ;;
    --list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
    --debug) config=debug; shift ;;
    --no-asan) asan=0; shift ;;
    --no-build) build=0; shift ;;
    --update-corpus) update=1; shift ;;
    --work) work="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "fuzz.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ ${#only[@]} -gt 0 ]; then
  for t in "${only[@]}"; do
    [[ " ${TARGETS[*]} " == *" $t "* ]] || { echo "fuzz.sh: no target '$t' (choose from ${TARGETS[*]})" >&2; exit 2; }
  done
  TARGETS=("${only[@]}")
fi

# Own build directories (the normal .build is untouched); without ASan another one, so that
# switching does not rebuild everything.
#
# `--sanitize fuzzer` (not `-Xswiftc -sanitize=fuzzer` alone) is what makes SwiftPM link without
# its `main` alias. ASan is added as ONE combined `-sanitize=fuzzer,address`: swiftc passes only
# its last `-sanitize=` option to the compiler (the link takes them all), and SwiftPM orders
# `--sanitize fuzzer --sanitize address` differently from run to run, so with two options a
# build silently lacked either the coverage or the ASan instrumentation. Both are checked below.
BUILD_PATH=.build-fuzz
sanitize=(--sanitize fuzzer)
if [ "$asan" = 1 ]; then sanitize+=(-Xswiftc -sanitize=fuzzer,address); else BUILD_PATH=.build-fuzz-noasan; fi
if [ "$build" = 1 ]; then
  start=$(date +%s)
  for t in "${TARGETS[@]}"; do
    echo "== building $t ($config, ${sanitize[*]})"
    # (gold warns once per link about an ASan symbol it cannot export: harmless, filtered out)
    set +e
    MOCO_FUZZ=1 swift build --build-path "$BUILD_PATH" -c "$config" -j "${BUILD_JOBS:-1}" "${sanitize[@]}" --product "$t" \
      2>&1 | grep -v "Cannot export local symbol '__asan_extra_spill_area'"
    rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" = 0 ] || { echo "fuzz.sh: build of $t failed" >&2; exit 1; }
    if [ "$asan" = 1 ]; then
      checks=$(objdump -d --no-show-raw-insn "$BUILD_PATH/$config/$t" | grep -cE 'call.*<__asan_report_(load|store)' || true)
      if [ "${checks:-0}" = 0 ]; then
        echo "fuzz.sh: $t has no AddressSanitizer checks in its code (see the comment on the flags)" >&2; exit 1
      fi
    fi
  done
  echo "== build took $(( $(date +%s) - start )) s"
fi
BIN="$BUILD_PATH/$config"

if [ -z "$work" ]; then
  mkdir -p "$BUILD_PATH/runs"
  work=$(mktemp -d "$BUILD_PATH/runs/$(date +%Y%m%d-%H%M%S)-XXXX")
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
echo "== work directory: $work"

# libFuzzer's own crash handler prints the stack; Swift's backtracer would read memory that ASan
# then reports as a second, confusing error.
export SWIFT_BACKTRACE=enable=no
limits=(-rss_limit_mb=2048 -timeout=10 -print_final_stats=1)
[ "$asan" = 1 ] && limits+=(-malloc_limit_mb=512)
if [ -n "$seconds" ]; then budget=(-max_total_time="$seconds"); else budget=(-runs="$runs"); fi

failed=() summary=()
for t in "${TARGETS[@]}"; do
  corpus="$work/$t/corpus" artifacts="$work/$t/artifacts" log="$work/$t/fuzz.log"
  mkdir -p "$corpus" "$artifacts"
  cp Fuzz/corpus/"$t"/* "$corpus"/
  args=("${limits[@]}" "${budget[@]}" -max_len="${MAXLEN[$t]}" -artifact_prefix="$artifacts/")
  [ -n "${DICT[$t]}" ] && args+=(-dict="Fuzz/dict/${DICT[$t]}.dict")
  echo "== $t: ${args[*]} ${extra[*]:-}"
  t0=$(date +%s%N)
  set +e
  "$BIN/$t" "${args[@]}" "${extra[@]}" "$corpus" > "$log" 2>&1
  rc=$?
  set -e
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  if ! grep -q "^INFO: Loaded [0-9]* modules" "$log"; then
    echo "!! $t: libFuzzer found no coverage instrumentation (stale or wrongly built binary?); log: $log" >&2
    [ "$rc" = 0 ] && rc=99
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  # libFuzzer's average_exec_per_sec divides by whole seconds; the wall-clock time is given too.
  line=$(printf '%-22s %10s execs %8s exec/s  %7.1f s  peak RSS %5s MB' "$t" "${execs:-?}" "${rate:-?}" \
         "$(awk -v m="$ms" 'BEGIN { print m / 1000 }')" "${rss:-?}")
  if [ "$rc" != 0 ]; then
    failed+=("$t")
    echo "!! $t FAILED (exit $rc); log: $log"
    grep -E "^==[0-9]+==ERROR|ERROR: libFuzzer|Fatal error|SUMMARY|^Test unit written to|^artifact_prefix|Base64" "$log" | head -20 || true
    for a in "$artifacts"/*; do [ -e "$a" ] && echo "!! crash input: $a"; done
    line+="  FAILED (exit $rc)"
  fi
  echo "$line"
  summary+=("$line")
  if [ "$update" = 1 ] && [ "$rc" = 0 ]; then
    "$BIN/$t" -merge=1 -max_len="${MAXLEN[$t]}" Fuzz/corpus/"$t" "$corpus" >> "$work/$t/merge.log" 2>&1
    echo "   merged new coverage into Fuzz/corpus/$t ($(ls Fuzz/corpus/"$t" | wc -l) files)"
  fi
done

echo
echo "== summary ($config, ${sanitize[*]}, ${budget[*]}; logs in $work)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "== FAILED: ${failed[*]}" >&2
  exit 1
fi
