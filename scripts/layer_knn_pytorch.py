#!/usr/bin/env python3
"""kNN top-1 of a checkpoint's block outputs, grid-pooled, computed by PyTorch (not run in CI).

The independent side of `moco knn --features stageS-gridG [--held-out N]`: loads the query
encoder of a swift-moco checkpoint into the torchvision-style ResNet of
scripts/pytorch_moco_step.py (strict `load_state_dict`), runs Fashion-MNIST through it in eval
mode, pools each named block's output with `adaptive_avg_pool2d(map, G).flatten(1)`,
L2-normalises, and scores the weighted kNN of scripts/pytorch_moco_train.py (k = 200, t = 0.1):
held out (bank = the first 60000 - N training images, queries = the last N) and on the test set
(bank = all 60,000). Any block can be read, also those inside a stage (e.g. layer3.0).

    python scripts/layer_knn_pytorch.py CKPT --layers layer2:4,layer2:7,layer3:4 [--arch resnet20] [--held-out 10000]
    python scripts/layer_knn_pytorch.py CKPT --layers layer2:7+layer3:1@0.5      # --features stage2-grid7+stage3@0.5
    python scripts/layer_knn_pytorch.py CKPT --layers layer2:7 --encoder key     # the momentum (key) encoder instead

`layerS` is the output of stage S (`--features stageS-gridG`; layer3 of ResNet-20 is `gridG`).
Blocks joined by `+` are read together as `moco knn` reads `--features A+B@W`: each part
L2-normalised and multiplied by its weight (default 1), concatenated, normalised again.
Needs torch, safetensors and numpy (the venv of scripts/compare_pytorch.sh);
Debian's dataset-fashion-mnist package for the images.
"""
import argparse, gzip, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np
import torch
from safetensors.torch import load_file
from pytorch_moco_step import build_modules
from pytorch_moco_train import knn_top1

p = argparse.ArgumentParser()
p.add_argument("weights", help="a swift-moco checkpoint (encoder_q.*) or 'random' for a torchvision-initialised encoder")
p.add_argument("--layers", required=True, help="comma-separated block:grid, e.g. layer2:4,layer3.0:4")
p.add_argument("--arch", default="resnet20")
p.add_argument("--encoder", choices=["query", "key"], default="query",
               help="which encoder of the checkpoint: encoder_q.* (default, what moco knn reads) or the momentum encoder_k.*")
p.add_argument("--held-out", type=int, default=10000)
p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--threads", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
# Each entry: parts (block, grid, weight).
entries = [[(b, int(g.split("@")[0]), float(g.split("@")[1]) if "@" in g else 1.0)
            for b, g in (part.split(":") for part in entry.split("+"))] for entry in a.layers.split(",")]
specs = sorted({(b, g) for parts in entries for b, g, _ in parts})

ns = build_modules()
model = ns["make_encoder"](a.arch) if isinstance(ns, dict) else ns.make_encoder(a.arch)
if a.weights != "random":
    sd = load_file(a.weights)
    prefix = "encoder_q." if a.encoder == "query" else "encoder_k."
    sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    if not sd:
        sys.exit(f"{a.weights} has no {prefix}* tensors")
    model.load_state_dict(sd, strict=True)
model.eval()


def idx(name):
    with gzip.open(os.path.join(a.data_dir, name)) as f:
        return np.frombuffer(f.read(), dtype=np.uint8)


xtr = idx("train-images-idx3-ubyte.gz")[16:].reshape(-1, 1, 28, 28)
ytr = torch.from_numpy(idx("train-labels-idx1-ubyte.gz")[8:].astype(np.int64))
xte = idx("t10k-images-idx3-ubyte.gz")[16:].reshape(-1, 1, 28, 28)
yte = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz")[8:].astype(np.int64))

outs = {}
modules = dict(model.named_modules())
for b in sorted({b for b, _ in specs}):
    if b not in modules:
        sys.exit(f"no block {b} in {a.arch}")
    modules[b].register_forward_hook(lambda m, i, o, n=b: outs.__setitem__(n, o.detach()))


def features(x):
    res = {}
    with torch.no_grad():
        for s in range(0, len(x), 1000):
            # Normalize(0.2860, 0.3530) of the 0-1 pixels, as swift-moco's evaluation.
            model((torch.from_numpy(x[s:s + 1000].astype(np.float32)) / 255.0 - 0.2860) / 0.3530)
            for b, g in specs:
                res.setdefault((b, g), []).append(torch.nn.functional.adaptive_avg_pool2d(outs[b], g).flatten(1))
    return {k: torch.nn.functional.normalize(torch.cat(v), dim=1) for k, v in res.items()}


ftr, fte = features(xtr), features(xte)
n = len(ytr) - a.held_out
def combine(feats, parts):
    if len(parts) == 1:
        return feats[parts[0][:2]]
    return torch.nn.functional.normalize(torch.cat([w * feats[(b, g)] for b, g, w in parts], dim=1), dim=1)


for parts in entries:
    f, t = combine(ftr, parts), combine(fte, parts)
    held = knn_top1(torch, f[:n], ytr[:n], f[n:], ytr[n:])
    test = knn_top1(torch, f, ytr, t, yte)
    name = "+".join(f"{b}:{g}" + (f"@{w:g}" if w != 1 else "") for b, g, w in parts)
    print(f"{name:24s} {f.shape[1]:5d}-d  held-out {held:.2f}  test {test:.2f}", flush=True)
