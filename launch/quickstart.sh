#!/usr/bin/env bash
# Sets up a fresh Debian machine (as root: the MPI, BLAS, zlib and Fashion-MNIST packages),
# builds swift-moco in release mode and runs a short MoCo v2 training on the built-in synthetic
# dataset (no download). Extra arguments go to `moco train`, e.g. `--data fashion-mnist --epochs 5`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev dataset-fashion-mnist pkg-config >/dev/null
fi
swift build -c release --product moco
out="runs/quickstart-$(date +%Y%m%d-%H%M%S)"
exec .build/release/moco train --preset moco-v2 --data synthetic --epochs 2 --log-every 5 --out "$out" "$@"
