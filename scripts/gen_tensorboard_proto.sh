#!/usr/bin/env bash
# Regenerates Sources/TensorBoard/tensorboard_event.pb.swift from tensorboard_event.proto beside it.
# The generated file is committed, so a build never runs the generator (swift-protobuf's build
# plugin would add minutes to every fresh build).
#
# Needs protoc (Debian: apt-get install protobuf-compiler) and protoc-gen-swift of the same
# swift-protobuf version as Package.swift's (1.39.0), built from swift-protobuf's sources:
#   git clone <swift-protobuf> && cd swift-protobuf && git checkout 1.39.0 \
#     && swift build -c release --product protoc-gen-swift
#
#   PROTOC_GEN_SWIFT=/path/to/.build/release/protoc-gen-swift bash scripts/gen_tensorboard_proto.sh
set -euo pipefail
cd "$(dirname "$0")/.."
plugin="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}"
[ -x "$plugin" ] || { echo "error: set PROTOC_GEN_SWIFT to protoc-gen-swift (see the comment in $0)" >&2; exit 1; }
command -v protoc >/dev/null || { echo "error: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
protoc --plugin=protoc-gen-swift="$plugin" --proto_path=Sources/TensorBoard \
  --swift_out=Sources/TensorBoard --swift_opt=Visibility=Internal tensorboard_event.proto
echo "wrote Sources/TensorBoard/tensorboard_event.pb.swift ($("$plugin" --version))"
