#!/usr/bin/env python3
"""Generate the PyTorch reference file of one MoCo v2 training step of ResNet-20, the test resource
Tests/MoCoTests/Resources/moco_step_resnet20.safetensors (format "swift-moco reference v1", the
same tensor names, dtypes and shapes as ../shared/reference/moco_step_resnet20.safetensors).

The step is computed by the modules and the training step of pytorch_moco_step.py (the code the
PyTorch benchmark times and pytorch_check_reference.py checks), in float32 on CPU with 1 thread and
deterministic algorithms. The same step is also computed in float64 and the float32-vs-float64
differences are recorded in the file's metadata (`float64_check`), which is what justifies the
tolerances of the Swift test.

Contents (N=8, K=64, dim=128):
- `in.*`: inputs. `in.im_q`, `in.im_k` [8,1,28,28] standard normal; `in.encoder_q.<name>` the
  module's own initialisation (torchvision's: conv Kaiming-normal fan_out, BN weight 1 bias 0,
  Linear PyTorch default), BN running statistics at their defaults; `in.encoder_k.<name>` the same
  plus N(0, 0.01^2) noise on every parameter (buffers equal), so the momentum update is visible;
  `in.queue` [128,64] random unit columns; `in.queue_ptr` = 56, so the enqueue writes the last
  8 columns and the pointer wraps to 0; `in.perm` a random permutation that moves samples across
  the two halves of the batch (so split-BN S=2 sees shuffled chunks) and is not its own inverse.
- `s1.*` plain BatchNorm, `s2.*` split-BN over 2 contiguous chunks: `logits` [8,65], `loss` [1],
  `keys` [8,128], `queue` [128,64], `queue_ptr` I64 [1], `grad.encoder_q.<name>` for every
  parameter, `after.encoder_{q,k}.<BN buffers>` and `after.encoder_{q,k}.layer3.2.conv2.weight`.

The file is bitwise reproducible for a given torch build and CPU: the header is written in a
canonical order (safetensors serialises `__metadata__` from a hash map, in a random order).

Usage: python scripts/make_reference_step.py [--out PATH] [--seed 0]
"""

import argparse
import json
import os
import struct
import sys

# one thread, set before torch creates its thread pools
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import pytorch_moco_step as pms  # noqa: E402

DEFAULT_OUT = os.path.join(REPO, "Tests", "MoCoTests", "Resources", "moco_step_resnet20.safetensors")

N, K, DIM, M, T = 8, 64, 128, 0.99, 0.2
LR, MOMENTUM, WD = 0.03, 0.9, 1e-4
QUEUE_PTR = 56            # (56 + 8) % 64 = 0: enqueue at an offset, pointer wraps
KEY_NOISE_STD = 0.01      # key encoder = query encoder + N(0, 0.01^2) on every parameter
CASES = (("s1", 1), ("s2", 2))
SPOT = "layer3.2.conv2.weight"

SEMANTICS = """One MoCo v2 training step of ResNet-20 computed by PyTorch (CPU), official MoCo order of operations:
 1. q = normalize(encoder_q(im_q)) in training mode (BatchNorm on batch statistics).
 2. momentum update of the key encoder's PARAMETERS only: k = m*k + (1-m)*q (BN buffers are not averaged).
 3. shuffle-BN: x = im_k[perm]; keys = normalize(encoder_k(x)) in training mode; keys = keys[argsort(perm)].
 4. logits = cat([sum(q*k, 1), q @ queue]) / T; loss = mean cross-entropy, target 0.
 5. loss.backward() -> gradients of encoder_q.
 6. enqueue: queue[:, ptr:ptr+N] = keys.T; ptr = (ptr+N) % K.
 7. SGD (PyTorch semantics, first step, momentum buffer starts as d): d = g + wd*w; v = d; w -= lr*v.
BatchNorm: eps 1e-5, momentum 0.1, running_var updated with the unbiased batch variance.
Split-BN with S splits (case s2): the batch is cut into S CONTIGUOUS chunks of N/S samples (sample n
is in chunk n // (N/S)), each normalised with its own statistics; running stats are updated with the mean
over chunks of each chunk's update. Applied to every BatchNorm of both encoders (as if S workers each
held one chunk, which is what S ranks each holding a contiguous slice would compute)."""


def make_inputs(ns, seed):
    """All inputs, drawn from one seeded generator (and the module's own initialisation)."""
    torch, F = ns["torch"], ns["F"]
    torch.manual_seed(seed)                      # the encoder's initialisation uses the global RNG
    enc = ns["make_encoder"]("resnet20", DIM)
    g = torch.Generator().manual_seed(seed + 1)
    params = {n for n, _ in enc.named_parameters()}
    state_q = {n: t.detach().clone() for n, t in enc.state_dict().items()}
    state_k = {n: (t + KEY_NOISE_STD * torch.randn(t.shape, generator=g)) if n in params else t.clone()
               for n, t in state_q.items()}
    im_q = torch.randn(N, 1, 28, 28, generator=g)
    im_k = torch.randn(N, 1, 28, 28, generator=g)
    queue = F.normalize(torch.randn(DIM, K, generator=g), dim=0)
    half = N // 2
    while True:
        perm = torch.randperm(N, generator=g)
        crosses = bool((perm[:half] >= half).any())
        if crosses and not torch.equal(perm, torch.argsort(perm)):
            break
    inputs = {"in.im_q": im_q, "in.im_k": im_k, "in.perm": perm, "in.queue": queue,
              "in.queue_ptr": torch.tensor([QUEUE_PTR], dtype=torch.long)}
    for n, t in state_q.items():
        inputs[f"in.encoder_q.{n}"] = t
    for n, t in state_k.items():
        inputs[f"in.encoder_k.{n}"] = t
    return inputs


def run_case(ns, inputs, case, splits, dtype):
    """One step with pytorch_moco_step's modules and train_step; returns the `case.*` tensors."""
    torch = ns["torch"]
    moco = ns["MoCo"]("resnet20", dim=DIM, K=K, m=M, T=T, bn_splits=splits, contiguous_splits=True)
    moco.to(dtype).train()
    for enc in ("encoder_q", "encoder_k"):
        pre = f"in.{enc}."
        getattr(moco, enc).load_state_dict(
            {k[len(pre):]: v for k, v in inputs.items() if k.startswith(pre)}, strict=True)
    moco.queue.copy_(inputs["in.queue"])
    moco.queue_ptr.copy_(inputs["in.queue_ptr"])
    opt = torch.optim.SGD(moco.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
    crit = torch.nn.CrossEntropyLoss()
    loss, logits = pms.train_step(moco, moco, crit, opt, inputs["in.im_q"].to(dtype),
                                  inputs["in.im_k"].to(dtype), inputs["in.perm"].clone())

    def out(t):
        return t.detach().clone().contiguous()

    p = f"{case}."
    res = {p + "logits": out(logits), p + "loss": out(loss).reshape(1), p + "keys": out(moco.last_keys),
           p + "queue": out(moco.queue), p + "queue_ptr": out(moco.queue_ptr)}
    for n, prm in moco.encoder_q.named_parameters():
        res[f"{p}grad.encoder_q.{n}"] = out(prm.grad)
    for side in ("encoder_q", "encoder_k"):
        enc = getattr(moco, side)
        for n, b in enc.named_buffers():
            res[f"{p}after.{side}.{n}"] = out(b)
        res[f"{p}after.{side}.{SPOT}"] = out(enc.get_parameter(SPOT))
    return res


def rel_max(got, want):
    """max |got - want| / max |want|."""
    got, want = got.double(), want.double()
    scale = want.abs().max().item()
    err = (got - want).abs().max().item()
    return err / scale if scale > 0 else err


def compare(r32, r64, case):
    """float32 vs float64 differences of one case (a dict of numbers and worst-tensor names)."""
    p = f"{case}."
    c = {"loss_rel": abs(r32[p + "loss"].double().item() - r64[p + "loss"].item()) / abs(r64[p + "loss"].item())}
    for k in ("logits", "keys", "queue"):
        c[f"{k}_rel_max"] = rel_max(r32[p + k], r64[p + k])
    grads = {k[len(p + "grad.encoder_q."):]: rel_max(r32[k], r64[k]) for k in r32 if k.startswith(p + "grad.")}
    worst = max(grads, key=grads.get)
    c["grad_worst_rel_max"], c["grad_worst_tensor"] = grads[worst], worst
    err2 = sum(((r32[k].double() - r64[k]) ** 2).sum().item() for k in r32 if k.startswith(p + "grad."))
    ref2 = sum((r64[k] ** 2).sum().item() for k in r32 if k.startswith(p + "grad."))
    c["grad_rel_l2_all"] = (err2 / ref2) ** 0.5
    bn = {k: rel_max(r32[k], r64[k]) for k in r32 if k.startswith(p + "after.") and "running" in k}
    wbn = max(bn, key=bn.get)
    c["bn_buffers_worst_rel_max"], c["bn_buffers_worst_tensor"] = bn[wbn], wbn[len(p + "after."):]
    c["after_spot_max_abs"] = max((r32[k].double() - r64[k]).abs().max().item()
                                  for k in r32 if k.endswith(SPOT))
    c["queue_ptr_equal"] = bool(torch_equal(r32[p + "queue_ptr"], r64[p + "queue_ptr"]))
    return {k: (f"{v:.3e}" if isinstance(v, float) else v) for k, v in c.items()}


def torch_equal(a, b):
    return bool((a == b).all())


def save_canonical(tensors, metadata, path):
    """safetensors.torch.save, then the header rewritten with sorted metadata keys and tensor
    entries in data order (safetensors writes `__metadata__` in hash-map order, which changes from
    run to run), so that identical contents give identical bytes."""
    from safetensors.torch import save
    blob = save(tensors, metadata=metadata)
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    canon = {"__metadata__": dict(sorted(header.pop("__metadata__").items()))}
    canon.update(sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]))
    text = json.dumps(canon, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    text += b" " * (-len(text) % 8)              # data starts 8-byte aligned, as safetensors pads
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob[8 + n:])
    os.replace(tmp, path)
    # read back: same tensors, same metadata
    import torch
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        assert f.metadata() == metadata
        assert set(f.keys()) == set(tensors)
        for k in f.keys():
            assert torch.equal(f.get_tensor(k), tensors[k]), k


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
        r32 = run_case(ns, inputs, case, splits, torch.float32)
        r64 = run_case(ns, inputs, case, splits, torch.float64)
        tensors.update(r32)
        checks[case] = compare(r32, r64, case)
    for k, t in tensors.items():
        assert t.dtype in (torch.float32, torch.int64), (k, t.dtype)

    meta = {
        "format": "swift-moco reference v1",
        "generator": f"PyTorch {torch.__version__.split('+')[0]} CPU float32",
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "script": "scripts/make_reference_step.py (modules and train_step of scripts/pytorch_moco_step.py)",
        "command": f"python scripts/make_reference_step.py --seed {args.seed}",
        "seed": str(args.seed),
        "determinism": "float32 CPU, torch.set_num_threads(1), torch.use_deterministic_algorithms(True)",
        "arch": "resnet20 (in_channels 1, MLP head 64-64-128)",
        "N": str(N), "K": str(K), "dim": str(DIM), "moco_m": str(M), "moco_t": str(T),
        "sgd": f"lr={LR} momentum={MOMENTUM} weight_decay={WD}",
        "inputs": ("im_q, im_k standard normal; encoder_q torchvision init (conv kaiming_normal fan_out relu, "
                   "BN weight 1 bias 0, Linear PyTorch default), BN running stats at defaults; "
                   f"encoder_k = encoder_q + N(0, {KEY_NOISE_STD}^2) on every parameter, buffers equal; "
                   f"queue random unit columns; queue_ptr {QUEUE_PTR}; perm {inputs['in.perm'].tolist()}"),
        "semantics": SEMANTICS,
        "float64_check": json.dumps(checks, sort_keys=True),
        "float64_check_note": ("the same step in float64 from the same inputs: *_rel_max = max|f32-f64| / "
                               "max|f64| of the tensor; grad_worst = worst over all gradient tensors; "
                               "loss_rel = |f32-f64| / |f64|; after_spot_max_abs = absolute, layer3.2.conv2.weight"),
    }
    save_canonical(tensors, meta, args.out)
    print(f"wrote {args.out}: {len(tensors)} tensors, {os.path.getsize(args.out)} bytes, torch {torch.__version__}")
    for case in checks:
        print(f"  {case} loss {tensors[case + '.loss'].item():.6f}; float32 vs float64: " +
              ", ".join(f"{k} {v}" for k, v in checks[case].items()))


if __name__ == "__main__":
    main()
