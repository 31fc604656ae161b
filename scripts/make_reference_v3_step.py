#!/usr/bin/env python3
"""Generate the PyTorch reference of one MoCo v3 training step of ResNet-20 (Chen, Xie, He 2021),
the test resource Tests/MoCoTests/Resources/mocov3_step_resnet20.safetensors (format
"swift-moco reference v1"), checked by MoCoV3Tests.

The model is scripts/pytorch_moco_step.py's ResNet-20 (torchvision parameter names, its split
BatchNorm2d with contiguous chunks) with MoCo v3's heads written here after the official
`_build_mlp`: projector `fc` = Linear(64, H, bias=False) - BatchNorm1d(H) - ReLU - Linear(H, D,
bias=False) - BatchNorm1d(D, affine=False); predictor = Linear(D, H, bias=False) - BatchNorm1d(H)
- ReLU - Linear(H, D, bias=False). One step in the official order:
 1. q1 = predictor(base(x1)), q2 = predictor(base(x2)) (training mode);
 2. m = 1 - (1 - m0) * (1 + cos(pi * progress)) / 2; momentum encoder <- m * it + (1 - m) * base
    (parameters only; the predictor has no counterpart);
 3. k1 = momentum(x1), k2 = momentum(x2) without gradient (training mode);
 4. loss = ctr(q1, k2) + ctr(q2, k1), ctr(q, k) = CE(normalize(q) @ normalize(k).T / T,
    arange(N)) * 2T (one process: the gathered keys are the batch, labels offset 0);
 5. loss.backward(); LARS step (the official optimizer: for tensors with ndim > 1,
    d = g + wd * w scaled by trust * |w| / |d|; others d = g; mu = momentum * mu + d;
    w -= lr * mu).
Cases: `s1` plain BatchNorm, `s2` every BatchNorm (2d and 1d, both encoders and the predictor)
over 2 contiguous chunks of the batch, running statistics averaged over chunks.

Contents (N=8, H=32, D=16): `in.*` inputs (x1, x2 standard normal [8,1,28,28]; `in.base.<name>`
the module's initialisation, `in.momentum.<name>` the same + N(0, 0.01^2) on every parameter,
`in.predictor.<name>`); `<case>.loss` [1], `<case>.k1` [8,16] (normalised keys of x1),
`<case>.grad.base.<name>`, `<case>.grad.predictor.<name>`, and for s1 `s1.after.base.<name>` (every
parameter and buffer after the step), `s1.after.momentum.<name>`, `s1.after.predictor.<name>`.
The float64 run of the same step is recorded in the metadata (`float64_check`).

Usage: python scripts/make_reference_v3_step.py [--out PATH] [--seed 0]
"""

import argparse
import json
import math
import os
import sys

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import pytorch_moco_step as pms  # noqa: E402
from make_reference_step import save_canonical, rel_max  # noqa: E402

DEFAULT_OUT = os.path.join(REPO, "Tests", "MoCoTests", "Resources", "mocov3_step_resnet20.safetensors")
N, H, D = 8, 32, 16
M0, PROGRESS, T = 0.99, 0.25, 0.5
LR, MOMENTUM, WD, TRUST = 0.6, 0.9, 1e-4, 0.001
KEY_NOISE_STD = 0.01
CASES = (("s1", 1), ("s2", 2))


def build(ns, splits):
    torch, nn, F = ns["torch"], ns["nn"], ns["F"]

    class SplitBN1d(nn.BatchNorm1d):
        """BatchNorm1d over S contiguous chunks of the batch; running stats = mean of the chunks' updates."""

        def __init__(self, d, splits, affine=True):
            super().__init__(d, affine=affine)
            self.splits = splits

        def forward(self, x):
            S = self.splits
            if not self.training or S == 1:
                return super().forward(x)
            chunks, rms, rvs = [], [], []
            for c in x.chunk(S, dim=0):
                rm, rv = self.running_mean.clone(), self.running_var.clone()
                chunks.append(F.batch_norm(c, rm, rv, self.weight, self.bias, True, self.momentum, self.eps))
                rms.append(rm); rvs.append(rv)
            with torch.no_grad():
                self.running_mean.copy_(torch.stack(rms).mean(0))
                self.running_var.copy_(torch.stack(rvs).mean(0))
                self.num_batches_tracked.add_(1)
            return torch.cat(chunks, 0)

    def mlp(din, hidden, dout, last_bn):
        layers = [nn.Linear(din, hidden, bias=False), SplitBN1d(hidden, splits), nn.ReLU(inplace=True),
                  nn.Linear(hidden, dout, bias=False)]
        if last_bn:
            layers.append(SplitBN1d(dout, splits, affine=False))
        return nn.Sequential(*layers)

    base = ns["make_encoder"]("resnet20", D, bn_splits=splits, contiguous=True)
    base.fc = mlp(base.feature_dim, H, D, True)
    momentum = ns["make_encoder"]("resnet20", D, bn_splits=splits, contiguous=True)
    momentum.fc = mlp(base.feature_dim, H, D, True)
    predictor = mlp(D, H, D, False)
    return base, momentum, predictor


class LARS:
    """MoCo v3's LARS (trust coefficient 0.001; biases and BatchNorm parameters, ndim <= 1, take
    neither weight decay nor adaptation)."""

    def __init__(self, params, lr, wd, momentum, trust):
        self.params, self.lr, self.wd, self.momentum, self.trust = list(params), lr, wd, momentum, trust
        self.mu = {}

    def step(self, torch):
        with torch.no_grad():
            for p in self.params:
                if p.grad is None:
                    continue
                d = p.grad
                if p.ndim > 1:
                    d = d.add(p, alpha=self.wd)
                    pn, dn = torch.norm(p), torch.norm(d)
                    one = torch.ones_like(pn)
                    q = torch.where(pn > 0., torch.where(dn > 0, self.trust * pn / dn, one), one)
                    d = d.mul(q)
                mu = self.mu.setdefault(id(p), torch.zeros_like(p))
                mu.mul_(self.momentum).add_(d)
                p.add_(mu, alpha=-self.lr)


def make_inputs(ns, seed):
    torch = ns["torch"]
    torch.manual_seed(seed)
    base, _, predictor = build(ns, 1)
    g = torch.Generator().manual_seed(seed + 1)
    names = {n for n, _ in base.named_parameters()}
    inputs = {"in.x1": torch.randn(N, 1, 28, 28, generator=g), "in.x2": torch.randn(N, 1, 28, 28, generator=g)}
    for n, t in base.state_dict().items():
        inputs[f"in.base.{n}"] = t.detach().clone()
        inputs[f"in.momentum.{n}"] = (t + KEY_NOISE_STD * torch.randn(t.shape, generator=g)) if n in names else t.clone()
    for n, t in predictor.state_dict().items():
        inputs[f"in.predictor.{n}"] = t.detach().clone()
    return inputs


def run_case(ns, inputs, case, splits, dtype):
    torch, F = ns["torch"], ns["F"]
    base, mom, pred = build(ns, splits)
    for mod, pre in ((base, "in.base."), (mom, "in.momentum."), (pred, "in.predictor.")):
        mod.load_state_dict({k[len(pre):]: v for k, v in inputs.items() if k.startswith(pre)}, strict=True)
        mod.to(dtype).train()
    for p in mom.parameters():
        p.requires_grad = False
    x1, x2 = inputs["in.x1"].to(dtype), inputs["in.x2"].to(dtype)
    q1, q2 = pred(base(x1)), pred(base(x2))
    m = 1 - (1 - M0) * 0.5 * (1 + math.cos(math.pi * PROGRESS))
    with torch.no_grad():
        for pb, pm in zip(base.parameters(), mom.parameters()):
            pm.mul_(m).add_(pb, alpha=1 - m)
        k1, k2 = mom(x1), mom(x2)

    def ctr(q, k):
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        logits = q @ k.T / T
        return F.cross_entropy(logits, torch.arange(q.shape[0])) * (2 * T)

    loss = ctr(q1, k2) + ctr(q2, k1)
    loss.backward()
    LARS(list(base.parameters()) + list(pred.parameters()), LR, WD, MOMENTUM, TRUST).step(torch)

    def out(t):
        return t.detach().clone().contiguous()

    p = f"{case}."
    res = {p + "loss": out(loss).reshape(1), p + "k1": out(F.normalize(k1, dim=1))}
    for side, mod in (("base", base), ("predictor", pred)):
        for n, prm in mod.named_parameters():
            res[f"{p}grad.{side}.{n}"] = out(prm.grad)
    for side, mod in (("base", base), ("momentum", mom), ("predictor", pred)):
        for n, t in mod.state_dict().items():
            res[f"{p}after.{side}.{n}"] = out(t)
    return res, m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ns = pms.build_modules()
    torch = ns["torch"]
    import safetensors
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    inputs = make_inputs(ns, args.seed)
    tensors = dict(inputs)
    checks = {}
    for case, splits in CASES:
        r32, m = run_case(ns, inputs, case, splits, torch.float32)
        r64, _ = run_case(ns, inputs, case, splits, torch.float64)
        tensors.update({k: v for k, v in r32.items() if case == "s1" or not k.startswith(case + ".after.")})
        grads = {k: rel_max(r32[k], r64[k]) for k in r32 if k.startswith(case + ".grad.")}
        after = {k: (r32[k].double() - r64[k]).abs().max().item() for k in r32
                 if k.startswith(case + ".after.") and r32[k].dtype == torch.float32}
        wg, wa = max(grads, key=grads.get), max(after, key=after.get)
        checks[case] = {"loss_rel": f"{abs(r32[case + '.loss'].double().item() - r64[case + '.loss'].item()) / abs(r64[case + '.loss'].item()):.3e}",
                        "k1_rel_max": f"{rel_max(r32[case + '.k1'], r64[case + '.k1']):.3e}",
                        "grad_worst_rel_max": f"{grads[wg]:.3e}", "grad_worst_tensor": wg,
                        "after_worst_abs": f"{after[wa]:.3e}", "after_worst_tensor": wa}
    for k, t in tensors.items():
        if t.dtype not in (torch.float32, torch.int64):
            raise SystemExit(f"{k}: {t.dtype}")
    meta = {
        "format": "swift-moco reference v1",
        "generator": f"PyTorch {torch.__version__.split('+')[0]} CPU float32",
        "torch": torch.__version__, "safetensors": safetensors.__version__,
        "script": "scripts/make_reference_v3_step.py (ResNet-20 of scripts/pytorch_moco_step.py, MoCo v3 heads)",
        "command": f"python scripts/make_reference_v3_step.py --seed {args.seed}",
        "seed": str(args.seed), "N": str(N), "hidden": str(H), "dim": str(D),
        "moco_m0": str(M0), "progress": str(PROGRESS), "moco_m": repr(m), "moco_t": str(T),
        "lars": f"lr={LR} momentum={MOMENTUM} weight_decay={WD} trust={TRUST}",
        "float64_check": json.dumps(checks, sort_keys=True),
    }
    save_canonical(tensors, meta, args.out)
    print(f"wrote {args.out}: {len(tensors)} tensors, {os.path.getsize(args.out)} bytes; m = {m}")
    for case, c in checks.items():
        print(f"  {case} loss {tensors[case + '.loss'].item():.6f}; float32 vs float64: {c}")


if __name__ == "__main__":
    main()
