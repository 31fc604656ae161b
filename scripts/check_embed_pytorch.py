#!/usr/bin/env python3
"""Cross-check `moco embed` against PyTorch on the same weights and inputs (not run in CI).

Loads swift-moco weights (a bare encoder from `moco init`, or a MoCo checkpoint's `encoder_q.*`)
with `safetensors.torch.load_file` into the torchvision-style ResNet of scripts/pytorch_moco_step.py
(strict `load_state_dict`: every name and shape must match), runs both in eval mode on the same
random images, and prints the largest differences of `features`, `projection` and the grid
features `grid2`, `grid3`, `grid4` (`--features gridG`: PyTorch's `adaptive_avg_pool2d(map, G)`
of the last map, flattened).

    python scripts/check_embed_pytorch.py WEIGHTS.safetensors [--moco .build/release/moco] [--arch resnet20]

Needs torch and safetensors (e.g. the venv that scripts/compare_pytorch.sh creates).
"""
import argparse, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from safetensors.torch import load_file, save_file
from pytorch_moco_step import build_modules

p = argparse.ArgumentParser()
p.add_argument("weights")
p.add_argument("--moco", default=".build/release/moco")
p.add_argument("--arch", default="resnet20")
p.add_argument("--n", type=int, default=32)
a = p.parse_args()

ns = build_modules()
model = ns["make_encoder"](a.arch) if isinstance(ns, dict) else ns.make_encoder(a.arch)
sd = load_file(a.weights)
if any(k.startswith("encoder_q.") for k in sd):
    sd = {k[len("encoder_q."):]: v for k, v in sd.items() if k.startswith("encoder_q.")}
model.load_state_dict(sd, strict=True)
model.eval()
c, hw = (1, 28) if a.arch.startswith("resnet20") else (3, 32)
torch.manual_seed(0)
x = torch.randn(a.n, c, hw, hw)
feats = {}
model.fc.register_forward_hook(lambda m, inp, out: feats.__setitem__("f", inp[0].detach()))
model.avgpool.register_forward_hook(lambda m, inp, out: feats.__setitem__("map", inp[0].detach()))
with torch.no_grad():
    proj = model(x)
with tempfile.TemporaryDirectory() as d:
    save_file({"images": x.contiguous()}, f"{d}/x.safetensors")
    subprocess.run([a.moco, "embed", "--weights", a.weights, "--arch", a.arch, "--input", f"{d}/x.safetensors",
                    "--output", f"{d}/y.safetensors", "--grid", "2", "--grid", "3", "--grid", "4"],
                   check=True, stdout=subprocess.DEVNULL)
    y = load_file(f"{d}/y.safetensors")
grids = [(f"grid{g}", torch.nn.functional.adaptive_avg_pool2d(feats["map"], g).flatten(1)) for g in (2, 3, 4)]
for name, ref in [("features", feats["f"]), ("projection", proj)] + grids:
    diff = (y[name] - ref).abs().max().item()
    scale = ref.abs().max().item()
    print(f"{name:10s} {list(ref.shape)}: max |swift - torch| = {diff:.3e} (largest |value| {scale:.3e}, relative {diff / scale:.2e})")
