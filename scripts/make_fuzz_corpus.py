#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets, Fuzz/corpus/<target>/ (docs/fuzzing.md).

    python3 scripts/make_fuzz_corpus.py --moco .build/debug/moco

Small valid inputs and a few near-valid ones (a wrong dtype, a truncated file, a bad label) so
that libFuzzer starts from every branch of the format. The configuration texts are the ones
`moco train --dry-run` prints (`TrainConfig.jsonString()`, the pretty form of `OUT/config.json`)
and their compact form (what a checkpoint's `config` metadata holds); `--moco` is the binary to
ask. Run from the repository root; the output is deterministic.
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- safetensors -----------------------------------------------------------------------------

def json_string(s):
    """A JSON string escaped like the project's writer (serde_json): quote, backslash, controls."""
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif c < 0x20:
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes); laid out as SafeTensorsWriter does."""
    parts = []
    if metadata:
        items = sorted(metadata.items(), key=lambda kv: kv[0].encode())
        parts.append('"__metadata__":{' + ",".join(json_string(k) + ":" + json_string(v) for k, v in items) + "}")
    offset = 0
    data = b""
    for name, dtype, shape, raw in sorted(tensors, key=lambda t: t[0].encode()):
        parts.append(json_string(name) + ':{"dtype":' + json_string(dtype) + ',"shape":['
                     + ",".join(map(str, shape)) + '],"data_offsets":[%d,%d]}' % (offset, offset + len(raw)))
        offset += len(raw)
        data += raw
    header = ("{" + ",".join(parts) + "}").encode()
    if pad:
        header += b" " * ((8 - len(header) % 8) % 8)
    return struct.pack("<Q", len(header)) + header + data


def f32(*xs):
    return struct.pack("<%df" % len(xs), *xs)


def i64(*xs):
    return struct.pack("<%dq" % len(xs), *xs)


def header_of(file_bytes):
    (n,) = struct.unpack("<Q", file_bytes[:8])
    return file_bytes[8:8 + n]


def safetensors_seeds():
    small = safetensors(
        [("a", "F32", [2, 2], f32(1, -2, 0.5, 3e38)), ("b", "I64", [3], i64(0, -1, 2**62)),
         ("scalar", "F32", [], f32(7)), ("empty", "F32", [0, 5], b"")],
        metadata={"format": "test", "note": "caf\u00e9 \u2713 \"quoted\"\n"})
    plain = safetensors([("w", "F32", [3], f32(1, 2, 3))])
    nested = safetensors([("encoder_q.conv1.weight", "F32", [1, 1, 1, 2], f32(0.25, -0.25)),
                          ("queue_ptr", "I64", [1], i64(5))], metadata={"format": "x", "epoch": "1"})
    # Near-valid: an unsupported dtype; a header with escapes, no padding and metadata null; a
    # file whose data section is cut short.
    f16 = safetensors([("h", "F16", [2], b"\x00\x3c\x00\x40")])
    escapes = (b'{"__metadata__":null,"t\\u00e9\\ud83d\\ude00":{"shape":[2],"dtype":"I64","data_offsets":[0,16]}}',
               i64(1, 2))
    escaped = struct.pack("<Q", len(escapes[0])) + escapes[0] + escapes[1]
    truncated = plain[:-4]
    files = {"small.safetensors": small, "plain.safetensors": plain, "nested.safetensors": nested,
             "f16.safetensors": f16, "escapes.safetensors": escaped, "truncated.safetensors": truncated}
    for name, b in files.items():
        write("FuzzSafeTensorsFile", name, b)
    # The header target appends 64 zero bytes of data: keep the headers whose data fit.
    for name in ["small", "plain", "nested", "f16", "escapes"]:
        write("FuzzSafeTensorsHeader", name + ".json", header_of(files[name + ".safetensors"]))
    write("FuzzSafeTensorsHeader", "empty.json", b"{}")
    write("FuzzSafeTensorsHeader", "overlap.json",
          b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}')


# --- IDX and CIFAR-10 ------------------------------------------------------------------------

def idx(dims, data):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


def data_seeds():
    images = idx([3, 2, 3], [(i * 13) % 256 for i in range(18)])
    labels = idx([3], [7, 0, 9])
    write("FuzzIDX", "images-3x2x3.idx", images)
    write("FuzzIDX", "labels-3.idx", labels)
    write("FuzzIDX", "matrix-2x4.idx", idx([2, 4], range(8)))
    write("FuzzIDX", "truncated.idx", images[:-5])
    gz = gzip.compress(images, mtime=0)
    write("FuzzIDXGzip", "images-3x2x3.idx.gz", gz)
    write("FuzzIDXGzip", "labels-3.idx.gz", gzip.compress(labels, mtime=0))
    write("FuzzIDXGzip", "two-members.idx.gz", gzip.compress(images[:20], mtime=0) + gzip.compress(images[20:], mtime=0))
    write("FuzzIDXGzip", "truncated.idx.gz", gz[:len(gz) // 2])
    write("FuzzIDXGzip", "bad-crc.idx.gz", gz[:-8] + bytes([gz[-8] ^ 1]) + gz[-7:])
    write("FuzzIDXGzip", "not-compressed.idx", images)

    def pair(img, lab):
        return struct.pack("<H", len(img)) + img + lab
    write("FuzzIDXPair", "3x2x3.pair", pair(images, labels))
    write("FuzzIDXPair", "2x4x4.pair", pair(idx([2, 4, 4], range(32)), idx([2], [1, 9])))
    write("FuzzIDXPair", "count-mismatch.pair", pair(images, idx([2], [1, 2])))
    write("FuzzIDXPair", "bad-label.pair", pair(images, idx([3], [1, 12, 3])))

    def record(label, r):
        return bytes([label]) + bytes((r + 3 * c + k) % 256 for c in range(3) for k in range(1024))
    write("FuzzCIFAR", "one-record.bin", record(3, 0))
    write("FuzzCIFAR", "two-records.bin", record(0, 0) + record(9, 1))
    write("FuzzCIFAR", "bad-label.bin", record(10, 0))


# --- configuration and checkpoint metadata ---------------------------------------------------

def compact(text):
    """JSONEncoder's compact form of its pretty output: whitespace outside strings removed."""
    out, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch not in " \n\t\r":
            out.append(ch)
    return "".join(out)


def dry_run_config(moco, preset):
    p = subprocess.run([moco, "train", "--dry-run", "--preset", preset], capture_output=True, text=True, check=True)
    text = p.stdout + p.stderr
    start = text.index("configuration:\n") + len("configuration:\n")
    # The JSON object ends at the first line that is exactly "}".
    end = text.index("\n}", start) + 2
    pretty = text[start:end]
    json.loads(pretty)
    return pretty


FLAT = """{
  "arch" : "resnet20",
  "augment" : {
    "blurProb" : 0.5,
    "blurSigmaMax" : 1,
    "blurSigmaMin" : 0.1,
    "brightness" : 0.4,
    "contrast" : 0.4,
    "cropScaleMax" : 1,
    "cropScaleMin" : 0.2,
    "flipProb" : 0.5,
    "grayscaleProb" : 0.2,
    "hue" : 0.1,
    "jitterProb" : 0.8,
    "ratioMax" : 1.3333334,
    "ratioMin" : 0.75,
    "saturation" : 0.4
  },
  "batchSize" : 256,
  "bnSplits" : 8,
  "checkConsistency" : 0,
  "conv" : "im2col",
  "data" : "synthetic",
  "dim" : 128,
  "epochs" : 30,
  "head" : "mlp",
  "knnEvery" : 1,
  "knnK" : 200,
  "knnT" : 0.1,
  "logEvery" : 10,
  "lr" : 0.06,
  "mocoM" : 0.999,
  "mocoT" : 0.07,
  "out" : "runs\\/old",
  "preset" : "moco-v2",
  "queueSize" : 1024,
  "saveEvery" : 1,
  "schedule" : {
    "cosine" : {

    }
  },
  "seed" : 0,
  "sgdMomentum" : 0.9,
  "shuffleBN" : true,
  "symmetric" : false,
  "syncBN" : false,
  "threads" : 2,
  "trainSubset" : 0,
  "warmupEpochs" : 0,
  "wd" : 0.0001
}"""


def config_seeds(moco):
    configs = {p: dry_run_config(moco, p) for p in ["moco-v2", "moco-v1", "instdisc", "moco-v3"]}
    for p, pretty in configs.items():
        write("FuzzCheckpointConfig", p + ".pretty.json", pretty.encode())
        write("FuzzCheckpointConfig", p + ".json", compact(pretty).encode())
    # The flat layout runs wrote before `moco` and `engine` were nested (TrainConfigTests).
    write("FuzzCheckpointConfig", "flat-legacy.json", FLAT.encode())
    write("FuzzCheckpointConfig", "flat-legacy.compact.json", compact(FLAT).encode())

    def checkpoint(config, epoch="3", step="42", fmt="swift-moco checkpoint v1"):
        meta = {"format": fmt, "epoch": epoch, "step": step, "config": config, "world_size": "2",
                "sgd_has_velocity": "1"}
        return safetensors([("encoder_q.fc.weight", "F32", [2, 2], f32(1, 2, 3, 4)),
                            ("optimizer.momentum_buffer.fc.weight", "F32", [2, 2], f32(0, 0, 0, 0)),
                            ("queue", "F32", [2, 1], f32(0.6, 0.8)), ("queue_ptr", "I64", [1], i64(0))], metadata=meta)
    write("FuzzCheckpointInfo", "moco-v2.safetensors", checkpoint(compact(configs["moco-v2"])))
    write("FuzzCheckpointInfo", "instdisc.safetensors", checkpoint(compact(configs["instdisc"]), epoch="0", step="0"))
    write("FuzzCheckpointInfo", "flat-legacy.safetensors", checkpoint(compact(FLAT)))
    write("FuzzCheckpointInfo", "not-a-checkpoint.safetensors", checkpoint("{}", fmt="other"))


# --- images (FuzzImage) -------------------------------------------------------------------------

def png(width, height, colour, depth, rows, palette=None):
    """A PNG (PNG spec, 2nd ed.): signature, IHDR, optional PLTE, one zlib IDAT of the filtered
    rows (filter type 0 on every row), IEND; each chunk with its CRC-32."""
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + r for r in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", palette)
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def image_seeds(moco):
    w, h = 9, 5
    grey = [bytes((x * 28 + y * 9) & 255 for x in range(w)) for y in range(h)]
    rgb = [bytes(v for x in range(w) for v in ((x * 28) & 255, (y * 50) & 255, 128)) for y in range(h)]
    write("FuzzImage", "grey8.png", png(w, h, 0, 8, grey))
    write("FuzzImage", "grey1.png", png(w, h, 0, 1, [bytes([0b10110100, 0b10000000]) for _ in range(h)]))
    write("FuzzImage", "grey16.png", png(w, h, 0, 16, [bytes(b for x in range(w) for b in (x * 20, y)) for y in range(h)]))
    write("FuzzImage", "greyalpha.png", png(w, h, 4, 8, [bytes(b for x in range(w) for b in (x * 20, 200)) for y in range(h)]))
    write("FuzzImage", "rgb8.png", png(w, h, 2, 8, rgb))
    write("FuzzImage", "rgba8.png", png(w, h, 6, 8, [bytes(b for x in range(w) for b in (x * 20, y * 40, 9, 255)) for y in range(h)]))
    write("FuzzImage", "palette4.png", png(w, h, 3, 4, [bytes([0x01, 0x23, 0x01, 0x23, 0x00]) for _ in range(h)],
                                           palette=bytes(range(12))))
    full = png(w, h, 0, 8, grey)
    write("FuzzImage", "truncated.png", full[: len(full) - 20])
    # JPEGs (baseline, grey and colour) from the trainer's own exporter (libjpeg-turbo).
    import shutil
    import tempfile
    tmp = tempfile.mkdtemp()
    try:
        for data, name in (("synthetic", "grey"), ):
            out = os.path.join(tmp, name)
            subprocess.run([moco, "export-folder", "--data", data, "--limit", "1", "--format", "jpeg", "--quality", "50",
                            "--threads", "1", "--out", out], check=True, stdout=subprocess.DEVNULL)
            for root, _, files in os.walk(os.path.join(out, "train")):
                for f in sorted(files)[:1]:
                    with open(os.path.join(root, f), "rb") as fh:
                        b = fh.read()
                    write("FuzzImage", f"{name}.jpg", b)
                    write("FuzzImage", f"{name}-truncated.jpg", b[: len(b) // 2])
    finally:
        shutil.rmtree(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moco", default=".build/debug/moco", help="the moco binary whose --dry-run gives the configurations")
    args = ap.parse_args()
    if not os.path.exists(args.moco):
        sys.exit(f"{args.moco} not found: build it first (swift build --product moco)")
    safetensors_seeds()
    data_seeds()
    config_seeds(args.moco)
    image_seeds(args.moco)


if __name__ == "__main__":
    main()
