#!/usr/bin/env python3
"""One MoCo v2 training step in PyTorch (CPU), timed: the PyTorch side of the side-by-side
performance comparison with swift-moco's `moco bench step`.

References
- K. He, H. Fan, Y. Wu, S. Xie, R. Girshick. "Momentum Contrast for Unsupervised Visual
  Representation Learning". CVPR 2020 (arXiv:1911.05722). Algorithm 1 (the training step),
  Sec. 3.2 (queue, momentum update), Sec. 3.3 (shuffling BN).
- X. Chen, H. Fan, R. Girshick, K. He. "Improved Baselines with Momentum Contrastive Learning"
  (MoCo v2), arXiv:2003.04297: 2-layer MLP head, temperature 0.2.
- K. He, X. Zhang, S. Ren, J. Sun. "Deep Residual Learning for Image Recognition". CVPR 2016:
  ResNet-20 for CIFAR (Sec. 4.2: 3x3 stem with 16 filters, 3 stages of n=3 basic blocks with 16/32/64
  filters, global average pooling) and ResNet-18.

The semantics follow the behaviour of the official implementation (facebookresearch/moco,
moco/builder.py, and the split-BN of its CIFAR demo notebook); this file is written from the papers'
description and that behaviour, not copied from it. Order of operations of one step:

  1. q = normalize(encoder_q(im_q))                        (BN in training mode, batch statistics)
  2. momentum update of the key encoder's *parameters*:    theta_k = m*theta_k + (1-m)*theta_q
  3. shuffling BN: keys = normalize(encoder_k(im_k[perm]))[argsort(perm)]   (no gradient)
  4. logits = [q.k, q @ queue] / T,  loss = cross-entropy with target 0 (the positive)
  5. enqueue: queue[:, ptr:ptr+N] = keys^T,  ptr = (ptr+N) % K
     (the official code enqueues inside forward(), before backward; the logits used a detached
      copy of the queue, so the result is the same as enqueuing after the optimizer step)
  6. loss.backward() (DDP: gradient all-reduce), SGD step on encoder_q.

Single process: shuffling BN is emulated as in the official CIFAR demo, by SplitBatchNorm over S
chunks of the batch (--bn-splits) plus a random permutation of the key batch and its inverse.
With --ddp (under torchrun, gloo backend): each process holds global_batch/W samples; the model is
wrapped in DistributedDataParallel; the key batch is shuffled across processes exactly as the official
code does (all-gather the key crops, rank 0's random permutation broadcast to all, each rank takes its
slice; unshuffle by all-gathering the keys), and all-gathered keys are enqueued. --bn-splits is per
process (as swift-moco's --bn-splits), 1 = plain BN over the process's batch.

Inputs are synthetic random tensors (no data loading): ResNet-20 at 1x28x28 (Fashion-MNIST shape),
ResNet-18 at 3x32x32.

Usage:
  python scripts/pytorch_moco_step.py --arch resnet20 --batch-size 256 --threads 2 --json
  torchrun --standalone --nproc_per_node 2 scripts/pytorch_moco_step.py --ddp --threads 1 --json
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

# --bind-core must act before torch starts its thread pools, so parse it early (see main()).


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------

def build_modules():
    """Define the modules lazily so that `import torch` happens after CPU pinning."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class SplitBatchNorm(nn.BatchNorm2d):
        """BatchNorm2d whose training-mode statistics are computed separately over S groups of the
        batch (the official MoCo CIFAR demo's emulation of per-GPU BN in one process).

        Training: the [N, C, H, W] input is viewed as [N/S, C*S, H, W] and normalised by one
        batch_norm call with the affine parameters and running statistics repeated S times; the S
        running-statistic copies are then averaged back into C channels (so the update equals the
        mean of the groups' updates). With that view, sample n lands in group n % S.
        `contiguous=True` instead groups contiguous chunks (sample n in group n // (N/S)), which is
        what S ranks each holding a contiguous slice compute; used by the reference check.
        Evaluation, or S == 1: plain BatchNorm2d.
        """

        def __init__(self, num_features, num_splits=1, contiguous=False, **kw):
            super().__init__(num_features, **kw)
            self.num_splits = num_splits
            self.contiguous = contiguous

        def forward(self, x):
            S = self.num_splits
            if not self.training or S == 1:
                return super().forward(x)
            N, C, H, W = x.shape
            if N % S != 0:
                raise ValueError(f"batch {N} not divisible by {S} BN splits")
            if self.contiguous:
                xs = x.view(S, N // S, C, H, W).transpose(0, 1).reshape(N // S, S * C, H, W)
            else:
                xs = x.view(N // S, S * C, H, W)
            rm = self.running_mean.repeat(S)
            rv = self.running_var.repeat(S)
            y = F.batch_norm(xs, rm, rv, self.weight.repeat(S), self.bias.repeat(S),
                             True, self.momentum, self.eps)
            with torch.no_grad():
                self.running_mean.copy_(rm.view(S, C).mean(dim=0))
                self.running_var.copy_(rv.view(S, C).mean(dim=0))
                # counted like plain BN (the demo leaves it; it only matters when momentum=None)
                self.num_batches_tracked.add_(1)
            if self.contiguous:
                return y.view(N // S, S, C, H, W).transpose(0, 1).reshape(N, C, H, W)
            return y.view(N, C, H, W)

    def conv3x3(cin, cout, stride=1):
        return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)

    class BasicBlock(nn.Module):
        """ResNet basic block (He et al. 2016, Fig. 2 left), torchvision parameter names."""

        def __init__(self, cin, cout, stride, norm):
            super().__init__()
            self.conv1 = conv3x3(cin, cout, stride)
            self.bn1 = norm(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = conv3x3(cout, cout)
            self.bn2 = norm(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                # projection shortcut (option B): 1x1 conv + BN
                self.downsample = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride=stride, bias=False), norm(cout))

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + idt)

    class ResNet(nn.Module):
        """CIFAR-style ResNet: 3x3 stride-1 stem, no max-pool, stages of BasicBlocks, global
        average pooling, MoCo v2 MLP head `fc` = Linear(d,d) - ReLU - Linear(d,dim).

        init="torchvision" (default): convolutions kaiming_normal_(fan_out, relu) as torchvision's
        ResNet; init="pytorch": nn.Conv2d's own default (kaiming_uniform_(a=sqrt(5)), i.e.
        U(+-1/sqrt(fan_in)) for these bias-free convolutions). BN 1/0 and nn.Linear's default
        initialisation either way."""

        def __init__(self, in_ch, widths, blocks, dim, norm, init="torchvision"):
            super().__init__()
            self.conv1 = conv3x3(in_ch, widths[0])
            self.bn1 = norm(widths[0])
            self.relu = nn.ReLU(inplace=True)
            cin = widths[0]
            self.stages = []
            for i, (w, nb) in enumerate(zip(widths, blocks)):
                stride = 1 if i == 0 else 2
                layers = []
                for b in range(nb):
                    layers.append(BasicBlock(cin, w, stride if b == 0 else 1, norm))
                    cin = w
                setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
                self.stages.append(f"layer{i + 1}")
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Sequential(nn.Linear(cin, cin), nn.ReLU(inplace=True), nn.Linear(cin, dim))
            self.feature_dim = cin
            if init not in ("torchvision", "pytorch"):
                raise ValueError(f"unknown init {init}")
            # torchvision's initialisation
            for mod in self.modules():
                if isinstance(mod, nn.Conv2d) and init == "torchvision":
                    nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(mod, nn.BatchNorm2d):
                    nn.init.ones_(mod.weight)
                    nn.init.zeros_(mod.bias)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            for s in self.stages:
                x = getattr(self, s)(x)
            x = torch.flatten(self.avgpool(x), 1)
            return self.fc(x)

    def make_encoder(arch, dim=128, bn_splits=1, contiguous=False, init="torchvision"):
        def norm(c):
            return SplitBatchNorm(c, num_splits=bn_splits, contiguous=contiguous)
        if arch == "resnet20":
            return ResNet(1, (16, 32, 64), (3, 3, 3), dim, norm, init)
        if arch in ("resnet20-x2", "resnet20-x4"):  # ResNet-20 with widths x2 / x4 (swift-moco --arch)
            k = int(arch[-1])
            return ResNet(1, (16 * k, 32 * k, 64 * k), (3, 3, 3), dim, norm, init)
        if arch == "resnet18":
            return ResNet(3, (64, 128, 256, 512), (2, 2, 2, 2), dim, norm, init)
        raise ValueError(f"unknown arch {arch}")

    @torch.no_grad()
    def concat_all_gather(t):
        """All-gather `t` from every rank and concatenate along dim 0 (no gradient)."""
        import torch.distributed as dist
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts, dim=0)

    class PhaseTimer:
        """Accumulates wall-clock milliseconds per named phase (CPU ops are synchronous)."""

        def __init__(self):
            self.ms = {}
            self.t = None

        def start(self):
            self.t = time.perf_counter()

        def lap(self, name):
            now = time.perf_counter()
            self.ms[name] = self.ms.get(name, 0.0) + (now - self.t) * 1e3
            self.t = now

    class MoCo(nn.Module):
        """Query encoder, momentum key encoder and the queue of keys (He et al. 2020, Alg. 1)."""

        def __init__(self, arch, dim=128, K=4096, m=0.99, T=0.2, bn_splits=1,
                     contiguous_splits=False, distributed=False, init="torchvision"):
            super().__init__()
            self.K, self.m, self.T, self.distributed = K, m, T, distributed
            self.encoder_q = make_encoder(arch, dim, bn_splits, contiguous_splits, init)
            self.encoder_k = make_encoder(arch, dim, bn_splits, contiguous_splits, init)
            for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
                pk.data.copy_(pq.data)     # key encoder starts as a copy of the query encoder
                pk.requires_grad = False   # and is never updated by gradient
            self.register_buffer("queue", F.normalize(torch.randn(dim, K), dim=0))
            self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
            self.timer = PhaseTimer()
            self.last_keys = None

        @torch.no_grad()
        def _momentum_update_key_encoder(self):
            for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
                pk.data.mul_(self.m).add_(pq.data, alpha=1.0 - self.m)

        @torch.no_grad()
        def _dequeue_and_enqueue(self, keys):
            if self.distributed:
                keys = concat_all_gather(keys)
            n = keys.shape[0]
            ptr = int(self.queue_ptr)
            assert self.K % n == 0, "queue size must be a multiple of the (global) batch"
            self.queue[:, ptr:ptr + n] = keys.T
            self.queue_ptr[0] = (ptr + n) % self.K

        @torch.no_grad()
        def _batch_shuffle_ddp(self, x, perm=None):
            """Shuffle the key batch across all ranks (shuffling BN, Sec. 3.3). `perm` replaces
            the random permutation (reference check only)."""
            import torch.distributed as dist
            n_this = x.shape[0]
            x_all = concat_all_gather(x)
            n_all = x_all.shape[0]
            world = n_all // n_this
            idx_shuffle = torch.randperm(n_all) if perm is None else perm.clone()
            dist.broadcast(idx_shuffle, src=0)      # every rank uses rank 0's permutation
            idx_unshuffle = torch.argsort(idx_shuffle)
            idx_this = idx_shuffle.view(world, -1)[dist.get_rank()]
            return x_all[idx_this], idx_unshuffle

        @torch.no_grad()
        def _batch_unshuffle_ddp(self, x, idx_unshuffle):
            import torch.distributed as dist
            n_this = x.shape[0]
            x_all = concat_all_gather(x)
            world = x_all.shape[0] // n_this
            idx_this = idx_unshuffle.view(world, -1)[dist.get_rank()]
            return x_all[idx_this]

        def forward(self, im_q, im_k, perm=None):
            """Returns (logits [N, 1+K], labels [N] of zeros); updates the key encoder and queue.
            `perm` fixes the (global) key-batch permutation, for the reference check."""
            tm = self.timer
            tm.start()
            q = F.normalize(self.encoder_q(im_q), dim=1)
            tm.lap("query_fwd")
            with torch.no_grad():
                self._momentum_update_key_encoder()
                if self.distributed:
                    x, idx_unshuffle = self._batch_shuffle_ddp(im_k, perm)
                    k = F.normalize(self.encoder_k(x), dim=1)
                    k = self._batch_unshuffle_ddp(k, idx_unshuffle)
                else:
                    if perm is None:
                        perm = torch.randperm(im_k.shape[0])
                    k = F.normalize(self.encoder_k(im_k[perm]), dim=1)
                    k = k[torch.argsort(perm)]
            tm.lap("key_shuffle_fwd")
            l_pos = (q * k).sum(dim=1, keepdim=True)              # [N, 1]
            l_neg = q @ self.queue.clone().detach()               # [N, K]
            logits = torch.cat([l_pos, l_neg], dim=1) / self.T
            labels = torch.zeros(logits.shape[0], dtype=torch.long)
            tm.lap("logits")
            self._dequeue_and_enqueue(k)
            self.last_keys = k
            tm.lap("enqueue")
            return logits, labels

    return {"torch": torch, "nn": nn, "F": F, "MoCo": MoCo, "SplitBatchNorm": SplitBatchNorm,
            "make_encoder": make_encoder}


def train_step(model, moco, criterion, optimizer, im_q, im_k, perm=None):
    """One training step as in the official main loop: forward, loss, zero_grad, backward, step.
    `model` may be the DDP wrapper of `moco`. Returns (loss, logits)."""
    tm = moco.timer
    logits, labels = model(im_q, im_k) if perm is None else model(im_q, im_k, perm)
    tm.start()
    loss = criterion(logits, labels)
    tm.lap("loss")
    optimizer.zero_grad()
    loss.backward()
    tm.lap("backward")
    optimizer.step()
    tm.lap("optimizer")
    return loss, logits


# ----------------------------------------------------------------------------------------------
# Analytic FLOPs
# ----------------------------------------------------------------------------------------------

def forward_flops_per_image(ns, arch, in_shape):
    """2 * multiply-accumulates of every Conv2d and Linear for one image, computed from the layer
    shapes (output spatial size recorded with forward hooks on one probe image). BN, ReLU, pooling,
    additions and biases are not counted (they are < 1% here)."""
    torch, nn = ns["torch"], ns["nn"]
    enc = ns["make_encoder"](arch).eval()
    total = [0]

    def conv_hook(mod, inp, out):
        kh, kw = mod.kernel_size
        total[0] += 2 * (mod.in_channels // mod.groups) * kh * kw * out.shape[1] * out.shape[2] * out.shape[3]

    def linear_hook(mod, inp, out):
        total[0] += 2 * mod.in_features * mod.out_features

    for mod in enc.modules():
        if isinstance(mod, nn.Conv2d):
            mod.register_forward_hook(conv_hook)
        elif isinstance(mod, nn.Linear):
            mod.register_forward_hook(linear_hook)
    with torch.no_grad():
        enc(torch.zeros(1, *in_shape))
    return total[0]


# ----------------------------------------------------------------------------------------------
# Benchmark driver
# ----------------------------------------------------------------------------------------------

INPUT_SHAPE = {"resnet20": (1, 28, 28), "resnet18": (3, 32, 32)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=sorted(INPUT_SHAPE), default="resnet20")
    p.add_argument("--batch-size", type=int, default=256, help="global batch over all processes")
    p.add_argument("--queue-size", type=int, default=4096, help="K, keys in the queue")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--moco-m", type=float, default=0.99)
    p.add_argument("--moco-t", type=float, default=0.2)
    p.add_argument("--lr", type=float, default=0.06)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--threads", type=int, default=0, help="intra-op threads per process (0 = torch default)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--bn-splits", type=int, default=8,
                   help="BatchNorm splits per process (1 = plain BN over the process's batch)")
    p.add_argument("--ddp", action="store_true", help="run under torchrun with gloo DDP")
    p.add_argument("--bind-core", action="store_true",
                   help="pin each process to CPU core LOCAL_RANK (like mpirun --bind-to core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON line (rank 0 only)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if args.bind_core and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[local_rank % len(cpus)]})
    if args.threads > 0:
        # before torch creates its OpenMP pool
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        os.environ["MKL_NUM_THREADS"] = str(args.threads)

    ns = build_modules()
    torch = ns["torch"]
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    world, rank = 1, 0
    if args.ddp:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        world, rank = dist.get_world_size(), dist.get_rank()
    if args.batch_size % world != 0:
        sys.exit(f"global batch {args.batch_size} not divisible by world size {world}")
    local_batch = args.batch_size // world
    if local_batch % args.bn_splits != 0:
        sys.exit(f"per-process batch {local_batch} not divisible by --bn-splits {args.bn_splits}")
    if args.queue_size % args.batch_size != 0:
        sys.exit(f"--queue-size {args.queue_size} must be a multiple of the global batch {args.batch_size}")

    torch.manual_seed(args.seed)    # same initial weights and queue on every rank
    moco = ns["MoCo"](args.arch, dim=args.dim, K=args.queue_size, m=args.moco_m, T=args.moco_t,
                      bn_splits=args.bn_splits, distributed=args.ddp)
    moco.train()
    model = moco
    if args.ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP
        model = DDP(moco)   # defaults as the official code: broadcast_buffers=True
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                                weight_decay=args.wd)

    # synthetic inputs: two "views" of the per-process batch, different on every rank
    g = torch.Generator().manual_seed(args.seed + 1000 + rank)
    shape = (local_batch,) + INPUT_SHAPE[args.arch]
    im_q = torch.randn(shape, generator=g)
    im_k = torch.randn(shape, generator=g)

    step_ms, phases, losses = [], [], []
    for i in range(args.warmup + args.steps):
        moco.timer.ms = {}
        t0 = time.perf_counter()
        loss, _ = train_step(model, moco, criterion, optimizer, im_q, im_k)
        dt = (time.perf_counter() - t0) * 1e3
        if i >= args.warmup:
            step_ms.append(dt)
            phases.append(dict(moco.timer.ms))
            losses.append(loss.detach().item())

    # per-process peak resident set (Linux: KiB)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if args.ddp:
        # a step takes as long as its slowest rank: max over ranks per step; RSS max and sum
        import torch.distributed as dist
        t = torch.tensor(step_ms, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        step_ms = t.tolist()
        r = torch.tensor([rss_mb], dtype=torch.float64)
        rmax, rsum = r.clone(), r.clone()
        dist.all_reduce(rmax, op=dist.ReduceOp.MAX)
        dist.all_reduce(rsum, op=dist.ReduceOp.SUM)
        rss_max, rss_sum = float(rmax), float(rsum)
    else:
        rss_max = rss_sum = rss_mb

    med = statistics.median(step_ms)
    ips_per_step = [args.batch_size / (ms / 1e3) for ms in step_ms]
    ips = statistics.median(ips_per_step)
    flops_img = forward_flops_per_image(ns, args.arch, INPUT_SHAPE[args.arch])
    # per image and step: query forward + backward (= 3x forward) + key forward (1x) = 4x forward
    gflops = flops_img * 4 * ips / 1e9
    phase_names = ["query_fwd", "key_shuffle_fwd", "logits", "enqueue", "loss", "backward", "optimizer"]
    phases_ms = {n: round(statistics.median(p.get(n, 0.0) for p in phases), 3) for n in phase_names}

    result = {
        "impl": "pytorch", "arch": args.arch, "batch": args.batch_size, "world": world,
        "threads": torch.get_num_threads(), "images_per_s": round(ips, 2),
        "step_ms_median": round(med, 3), "gflops": round(gflops, 3),
        "peak_rss_mb": round(rss_max, 1), "peak_rss_mb_sum": round(rss_sum, 1),
        "phases_ms": phases_ms,
        "phases_note": "rank 0, median over timed steps; logits+loss = InfoNCE loss",
        "queue_size": args.queue_size, "bn_splits": args.bn_splits, "warmup": args.warmup,
        "steps": args.steps, "mflop_fwd_per_image": round(flops_img / 1e6, 3),
        "step_ms_min": round(min(step_ms), 3), "last_loss": round(losses[-1], 5) if losses else None,
        "torch": torch.__version__,
    }
    if rank == 0:
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(f"PyTorch {torch.__version__} MoCo v2 step: {args.arch}, global batch {args.batch_size}, "
                  f"{world} process(es) x {result['threads']} thread(s), K={args.queue_size}, "
                  f"bn-splits {args.bn_splits}")
            print(f"  {ips:.1f} images/s, step {med:.1f} ms (median of {len(step_ms)}), "
                  f"{gflops:.2f} GFLOP/s ({flops_img / 1e6:.1f} MFLOP fwd/image), peak RSS {rss_max:.0f} MB")
            print("  phases (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in phases_ms.items()))
    if args.ddp:
        import torch.distributed as dist
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
