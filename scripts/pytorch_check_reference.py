#!/usr/bin/env python3
"""Check scripts/pytorch_moco_step.py's MoCo step against the project's reference step.

The reference file (default Tests/MoCoTests/Resources/moco_step_resnet20.safetensors, made by
scripts/make_reference_step.py and described in the README beside it; --file
../shared/reference/moco_step_resnet20.safetensors checks the independent one) holds the inputs `in.*` of one MoCo v2 step of ResNet-20 (N=8, K=64,
given key permutation `in.perm`) and the expected results: `s1.*` with plain BatchNorm and `s2.*` with
split-BN over 2 contiguous chunks. This script loads the inputs into the modules of
pytorch_moco_step.py, runs its training step (train_step, the same code the benchmark times) with the
given permutation, and prints the maximum differences, each relative to the expected tensor's largest
magnitude. It proves that the PyTorch benchmark computes the same step as swift-moco.

With --ddp, run under `torchrun --standalone --nproc_per_node 2`: each rank holds a contiguous half
of the batch with plain BN, and the DDP path (gradient all-reduce, all-gather shuffle with the given
permutation, unshuffle, enqueue of gathered keys) must reproduce `s2` (2 ranks = split-BN over 2
contiguous chunks). Running BN statistics are not compared there: under DDP each rank keeps its own
and DDP broadcasts rank 0's at the next forward, as in the official code.

Usage: python scripts/pytorch_check_reference.py [--file PATH] [--case s1|s2|all]
       torchrun --standalone --nproc_per_node 2 scripts/pytorch_check_reference.py --ddp
Exit status 0 when every tensor is within tolerance.
"""

import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_moco_step as pms  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FILE = os.path.normpath(os.path.join(HERE, "..", "Tests", "MoCoTests", "Resources",
                                             "moco_step_resnet20.safetensors"))


def load_safetensors(path, torch):
    """Minimal safetensors reader: 8-byte little-endian header length, JSON header, raw data."""
    dtypes = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        lo, hi = info["data_offsets"]
        buf = bytearray(data[lo:hi])
        t = torch.frombuffer(buf, dtype=dtypes[info["dtype"]]) if hi > lo else \
            torch.empty(0, dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out, meta


def rel_diff(got, want):
    """max |got - want| / max |want| (0 if both are zero)."""
    got, want = got.double(), want.double().reshape(got.shape)
    scale = want.abs().max().item()
    err = (got - want).abs().max().item()
    return err / scale if scale > 0 else err


def run_case(ns, ref, meta, case, splits, ddp=False):
    torch = ns["torch"]
    world, rank = 1, 0
    if ddp:
        import torch.distributed as dist
        world, rank = dist.get_world_size(), dist.get_rank()
    sgd = dict(kv.split("=") for kv in meta["sgd"].split())
    N, K = int(meta["N"]), int(meta["K"])
    moco = ns["MoCo"]("resnet20", dim=int(meta["dim"]), K=K, m=float(meta["moco_m"]),
                      T=float(meta["moco_t"]), bn_splits=splits, contiguous_splits=True,
                      distributed=ddp)
    moco.train()
    for enc in ("encoder_q", "encoder_k"):
        pre = f"in.{enc}."
        state = {k[len(pre):]: v for k, v in ref.items() if k.startswith(pre)}
        getattr(moco, enc).load_state_dict(state, strict=True)
    moco.queue.copy_(ref["in.queue"])
    moco.queue_ptr.copy_(ref["in.queue_ptr"])
    opt = torch.optim.SGD(moco.parameters(), lr=float(sgd["lr"]), momentum=float(sgd["momentum"]),
                          weight_decay=float(sgd["weight_decay"]))
    crit = torch.nn.CrossEntropyLoss()
    im_q, im_k, perm = ref["in.im_q"], ref["in.im_k"], ref["in.perm"]
    assert im_q.shape[0] == N
    model = moco
    rows_this = slice(rank * N // world, (rank + 1) * N // world)   # this rank's contiguous slice
    if ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP
        model = DDP(moco)
    loss, logits = pms.train_step(model, moco, crit, opt, im_q[rows_this], im_k[rows_this], perm)
    loss = loss.detach().reshape(1)
    if ddp:
        dist.all_reduce(loss)          # mean over ranks of per-rank means = global mean
        loss /= world

    p = f"{case}."
    rows = [("loss", rel_diff(loss, ref[p + "loss"]), 1e-4),
            (f"logits (rows {rows_this.start}..{rows_this.stop - 1})",
             rel_diff(logits.detach(), ref[p + "logits"][rows_this]), 1e-4),
            ("keys", rel_diff(moco.last_keys, ref[p + "keys"][rows_this]), 1e-4),
            ("queue", rel_diff(moco.queue, ref[p + "queue"]), 1e-4),
            ("queue_ptr", rel_diff(moco.queue_ptr, ref[p + "queue_ptr"]), 0.0)]
    grads = dict(moco.encoder_q.named_parameters())
    gnames = sorted(k[len(p + "grad.encoder_q."):] for k in ref if k.startswith(p + "grad.encoder_q."))
    assert set(gnames) == set(grads), "parameter names differ from the reference"
    gdiff = {n: rel_diff(grads[n].grad, ref[f"{p}grad.encoder_q.{n}"]) for n in gnames}
    for n in ("conv1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
              "layer3.2.bn2.weight", "fc.0.weight", "fc.2.bias"):
        rows.append((f"grad {n}", gdiff[n], 1e-2))
    worst = max(gdiff, key=gdiff.get)
    rows.append((f"grad worst of {len(gdiff)} ({worst})", gdiff[worst], 1e-2))
    # state after the step: BN running statistics of both encoders, and weights (SGD, momentum update)
    after = {}
    for enc in ("encoder_q", "encoder_k"):
        st = getattr(moco, enc).state_dict()
        for k in ref:
            pre = f"{p}after.{enc}."
            if k.startswith(pre):
                name = k[len(pre):]
                after[f"{enc}.{name}"] = rel_diff(st[name], ref[k])
    bn_keys = [k for k in after if "running" in k or "num_batches" in k]
    worst_bn = max(bn_keys, key=after.get)
    if not ddp:
        rows.append((f"BN buffers worst of {len(bn_keys)} ({worst_bn})", after[worst_bn], 1e-3))
    for k in sorted(after):
        if k.endswith("conv2.weight"):
            rows.append((f"after {k}", after[k], 1e-5))
    return rows


def main():
    ap = argparse.ArgumentParser(description="Check the PyTorch MoCo step against the reference file.")
    ap.add_argument("--file", default=os.environ.get("MOCO_REFERENCE", DEFAULT_FILE))
    ap.add_argument("--case", choices=["s1", "s2", "all"], default="all",
                    help="s1: plain BN (bn-splits 1); s2: split-BN over 2 contiguous chunks")
    ap.add_argument("--ddp", action="store_true",
                    help="under torchrun with 2 processes: check the DDP path against s2")
    args = ap.parse_args()
    if not os.path.exists(args.file):
        sys.exit(f"reference file not found: {args.file} (set --file or MOCO_REFERENCE)")
    ns = pms.build_modules()
    torch = ns["torch"]
    torch.set_num_threads(1)
    ref, meta = load_safetensors(args.file, torch)
    if args.ddp:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        if dist.get_world_size() != 2:
            sys.exit("--ddp expects exactly 2 processes (the reference's s2 case)")
        cases = [("s2", 1)]   # per rank: plain BN over its 4 samples
    else:
        cases = [(c, s) for c, s in (("s1", 1), ("s2", 2)) if args.case in (c, "all")]
    rank = dist.get_rank() if args.ddp else 0
    out = [f"reference: {args.file}",
           f"  generator: {meta.get('generator')}; checking with torch {torch.__version__}"]
    ok = True
    for case, splits in cases:
        how = f"DDP, 2 ranks x plain BN, rank {rank}" if args.ddp else f"bn-splits {splits}"
        out.append(f"\ncase {case} ({how}):  max|got-want| / max|want|")
        for name, d, tol in run_case(ns, ref, meta, case, splits, ddp=args.ddp):
            good = d <= tol
            ok &= good
            out.append(f"  {name:58s} {d:10.3e}  (tol {tol:.0e}) {'ok' if good else 'FAIL'}")
    if args.ddp:
        flag = torch.tensor([0 if ok else 1])
        dist.all_reduce(flag)
        ok = int(flag) == 0
        if rank != 0:
            out = out[2:]
        # print rank by rank
        for r in range(dist.get_world_size()):
            if r == rank:
                print("\n".join(out), flush=True)
            dist.barrier()
    else:
        print("\n".join(out))
    if rank == 0:
        print("\nRESULT: " + ("all within tolerance" if ok else "MISMATCH"), flush=True)
    if args.ddp:
        dist.destroy_process_group()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
