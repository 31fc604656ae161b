#!/usr/bin/env bash
# Sets up a fresh Debian machine (as root: the MPI, BLAS, zlib, PNG, JPEG and Fashion-MNIST
# packages), builds swift-moco in release mode and trains MoCo v2 (ResNet-20) on real
# Fashion-MNIST for a few minutes: the first 30000 training images, 2 epochs, with the kNN
# monitor on the 10000 test images before the first step (the randomly initialised encoder,
# the baseline) and after the last. It ends by printing the kNN top-1 beside the baseline and
# where the checkpoint, metrics, TensorBoard logs and plots are.
#
# Extra arguments go to `moco train` and override these, e.g. `--epochs 5` or
# `--data folder --data-dir D`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    libopenmpi-dev openmpi-bin libopenblas-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev \
    dataset-fashion-mnist pkg-config >/dev/null
fi
swift build -c release --product moco
mkdir -p runs
out="runs/quickstart-$(date +%Y%m%d-%H%M%S)"
start=$(date +%s)
.build/release/moco train --preset moco-v2 --data fashion-mnist --moco-t 0.1 --train-subset 30000 --epochs 2 \
  --knn-at-start --knn-every 2 --save-every 0 --log-every 20 --out "$out" "$@" | tee "$out.log"
# The baseline and the result, from the run's metrics (kNN records: epoch 0 first, the last one last).
knn=$(grep '"type":"knn"' "$out/metrics.jsonl" | sed -E 's/.*"epoch":([0-9]+).*"knn_top1":([0-9.]+).*/\1 \2/')
first=$(echo "$knn" | head -1); last=$(echo "$knn" | tail -1)
echo
echo "quickstart finished in $(( $(date +%s) - start )) s (training and evaluation, after the build)"
echo "kNN top-1 on the Fashion-MNIST test set after epoch ${last%% *}: ${last#* }%"
echo "  random-initialised encoder (epoch 0, the same kNN on the same images): ${first#* }%"
echo "checkpoint:  $(ls "$out"/checkpoint_*.safetensors | tail -1)"
echo "metrics:     $out/metrics.jsonl   (config: $out/config.json, log: $out.log)"
echo "TensorBoard: $out/tb/   (tensorboard --logdir $out/tb)"
echo "plots:       python scripts/plot_runs.py $out"
