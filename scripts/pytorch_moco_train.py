#!/usr/bin/env python3
"""MoCo v2 training on Fashion-MNIST in PyTorch (CPU, one process), with a kNN monitor: the PyTorch
side of swift-moco's accuracy parity comparison with

  moco train --preset moco-v2 --data fashion-mnist --moco-t 0.1 --epochs 30 --stop-after 5 \\
             --knn-every 1 --bn-splits 8 --blur-sigma-max 2 --seed S

Usage (from the repository root, with the PyTorch venv):
  python scripts/pytorch_moco_train.py --seed 1 --epochs 30 --stop-after 5 --out runs/pt-s1
  python scripts/pytorch_moco_train.py --out runs/pt-s1 --resume          # continue to epoch 30
  python scripts/pytorch_moco_train.py --train-subset 2048 --epochs 2 --knn-bank 10000 \\
         --knn-test 2000 --out /tmp/pt-tiny                                 # quick sanity run
  python scripts/pytorch_moco_train.py --bench-steps 50 --workers 1      # throughput, no output
Variants for the parity investigation: --lr-per-step (swift-moco's schedule), --blur torchvision
(swift-moco's 3x3 kernel), --init pytorch (nn.Conv2d's default initialisation).

Output in --out DIR: config.json (all settings, dataset statistics, versions), metrics.jsonl (one
JSON object per line, swift-moco's field names: {"type": "train", "epoch": e (0-based index of
the epoch), "step" (global steps done), "loss" and "acc1" (means over the epoch; acc1 in %), "lr"
(of the last step), "images_per_s" (training images / training time of the epoch), "elapsed_s"}
and {"type": "knn", "epoch": completed epochs, "step", "knn_top1" (%), "elapsed_s"}), and
checkpoint_eNNNN.pt after every epoch (written to a temporary file, then renamed; older ones are
removed unless --keep-checkpoints). elapsed_s is wall-clock time since the start of training,
continued across --resume. --resume loads the newest checkpoint of DIR (model, optimizer, queue and
its pointer, completed epochs, global step, RNG states) and truncates metrics.jsonl to the records
of the completed epochs; it continues bit-for-bit as the uninterrupted run would (same --threads).

References
- [MoCo] He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual Representation
  Learning", CVPR 2020 (arXiv:1911.05722).
- [v2] Chen, Fan, Girshick, He, "Improved Baselines with Momentum Contrastive Learning",
  arXiv:2003.04297.
- [SimCLR] Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual
  Representations", ICML 2020 (arXiv:2002.05709).
- [InstDisc] Wu, Xiong, Yu, Lin, "Unsupervised Feature Learning via Non-Parametric Instance
  Discrimination", CVPR 2018.
- [ResNet] He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
- [SGDR] Loshchilov, Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
- The behaviour of the official implementation facebookresearch/moco (main_moco.py, moco/builder.py,
  moco/loader.py) and of its CIFAR-10 Colab demo (single-process split-BN, kNN monitor). This file
  is written from the papers and that behaviour; no code was copied.

Semantics and where each choice comes from
- Model: scripts/pytorch_moco_step.py (build_modules: MoCo, SplitBatchNorm, make_encoder):
  ResNet-20 [ResNet Sec. 4.2] with 1 input channel, 64-d pooled features, MLP head 64-64-128
  [v2 Sec. 3 "MLP head"]; queue K=4096, momentum m=0.99 (the CIFAR demo's values; [MoCo Sec. 3.2]
  for the mechanism), temperature T=0.1 (demo; [v2] uses 0.2 on ImageNet), InfoNCE with the
  positive at index 0 [MoCo Sec. 3.1 Eq. 1, Alg. 1]. The momentum update touches parameters only;
  each encoder keeps its own BN running statistics (official builder). The key encoder starts as a
  copy of the query encoder.
- Shuffling BN [MoCo Sec. 3.3] in one process as the CIFAR demo does: SplitBatchNorm with
  --bn-splits 8 (sample n in split n % 8; running statistics averaged over splits) and the key batch
  permuted by torch.randperm before the key encoder and un-permuted after.
- Initialisation (--init): torchvision = conv weights kaiming_normal_(fan_out, relu) (torchvision's
  ResNet, which the official code uses; swift-moco's default); pytorch = nn.Conv2d's own default
  kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)). BN weight 1 / bias 0, Linear PyTorch default.
- Optimiser [MoCo Sec. 4 "Training"; demo]: SGD momentum 0.9, weight decay 5e-4 on all query
  parameters (BN included, as the official code), lr 0.06 for batch 256 (the demo's lr; the demo
  uses batch 512), global batch 256 with drop_last and a fresh random order each epoch.
- Learning rate: cosine [v2 Sec. 3, SGDR] set once per epoch like the official
  adjust_learning_rate: lr = base * 0.5 * (1 + cos(pi * epoch / epochs)), epoch = 0-based index (so
  the first epoch runs at the base lr and the last never reaches 0). --lr-per-step evaluates the same
  cosine at the fractional epoch epoch + step/steps_per_epoch before every step (swift-moco).
- Augmentation [v2 Sec. 3 "aug+", main_moco.py --aug-plus; blur from SimCLR App. A], torchvision
  on PIL 'L' 28x28 images, two independent draws per image (query, key; TwoCropsTransform):
  RandomResizedCrop(28, scale=(0.2, 1)) -> RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8) ->
  RandomGrayscale(p=0.2) -> RandomApply([blur], p=0.5) -> RandomHorizontalFlip() -> ToTensor() ->
  Normalize(mean, std of the Fashion-MNIST training pixels, computed at start). On 'L' images
  saturation, hue and grayscale are identities (they still draw their random numbers). Blur:
  --blur pil (default, moco/loader.py): sigma ~ U(0.1, 2.0) with Python's random, then
  PIL ImageFilter.GaussianBlur(radius=sigma) (Pillow: radius = standard deviation, approximated by
  repeated box blurs, support not truncated, edges extended); --blur torchvision:
  transforms.GaussianBlur(kernel_size=3, sigma=(0.1, 2.0)) = SimCLR's "10% of the side, made odd"
  (swift-moco's kernel; reflect padding).
- kNN monitor [InstDisc Sec. 3.4; demo's knn_predict], after every --knn-every epochs and after the
  last epoch of the invocation, exactly as swift-moco: the query encoder in eval mode (BN running
  statistics), 64-d pooled backbone features (before the head) of the un-augmented normalised images,
  L2-normalised; bank = the 60k training images, queries = the 10k test images; the k=200 most
  cosine-similar bank features vote for their label with weight exp(s / 0.1) (summed in float64);
  prediction = argmax of the class sums; top-1 in %. (The demo uses the head's output instead.)
- Reproducibility: --seed fixes the initial weights and queue (torch.manual_seed before building
  the model), the sample order (a generator seeded from (seed, epoch)), every augmentation (each
  sample's transforms run under torch and Python RNGs seeded from (seed, epoch, index), so results do
  not depend on --workers), and the shuffle-BN permutations (the main process's torch RNG, saved in
  checkpoints). numpy and Python's global RNGs are seeded too. Same --threads -> same floats.
"""

import argparse
import gzip
import json
import math
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = "/usr/share/datasets/fashion-mnist"

RECIPE_KEYS = ("seed", "epochs", "batch_size", "lr", "momentum", "wd", "moco_t", "moco_m",
               "queue_size", "dim", "bn_splits", "lr_per_step", "blur", "blur_sigma_min",
               "blur_sigma_max", "init", "train_subset", "data_dir")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=DATA_DIR, help="directory of the four Fashion-MNIST IDX .gz files")
    p.add_argument("--out", default="runs/pytorch-moco", help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=30, help="length of the cosine schedule")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop after this many completed epochs (keeping the --epochs schedule)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.06)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--lr-per-step", action="store_true",
                   help="cosine at the fractional epoch every step (swift-moco) instead of once per epoch")
    p.add_argument("--moco-t", type=float, default=0.1)
    p.add_argument("--moco-m", type=float, default=0.99)
    p.add_argument("--queue-size", type=int, default=4096)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--bn-splits", type=int, default=8)
    p.add_argument("--init", choices=("torchvision", "pytorch"), default="torchvision")
    p.add_argument("--blur", choices=("pil", "torchvision"), default="pil")
    p.add_argument("--blur-sigma-min", type=float, default=0.1)
    p.add_argument("--blur-sigma-max", type=float, default=2.0)
    p.add_argument("--knn-every", type=int, default=1, help="kNN monitor every N epochs (0 = never)")
    p.add_argument("--knn-k", type=int, default=200)
    p.add_argument("--knn-t", type=float, default=0.1)
    p.add_argument("--knn-bank", type=int, default=0, help="testing: first N training images as the bank (0 = all)")
    p.add_argument("--knn-test", type=int, default=0, help="testing: first N test images as queries (0 = all)")
    p.add_argument("--train-subset", type=int, default=0, help="testing: train on the first N images (0 = all)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads of the main process")
    p.add_argument("--workers", type=int, default=1, help="DataLoader worker processes (1 thread each)")
    p.add_argument("--log-every", type=int, default=20, help="progress line every N steps")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep every epoch's checkpoint")
    p.add_argument("--bench-steps", type=int, default=0,
                   help="time N training steps on the data (first 3 untimed), print img/s and exit; writes nothing")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------------
# Seeds
# ----------------------------------------------------------------------------------------------

def mix_seed(*xs):
    """Deterministic 63-bit seed from integers (splitmix64 finaliser chained over the inputs)."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = (h ^ (int(x) & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
        h = (h + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def read_idx(path):
    import numpy as np
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def load_fashion_mnist(d):
    def f(name):
        for cand in (name + ".gz", name):
            if os.path.exists(os.path.join(d, cand)):
                return os.path.join(d, cand)
        sys.exit(f"{name}(.gz) not found in {d} (apt-get install dataset-fashion-mnist, or --data-dir)")
    return (read_idx(f("train-images-idx3-ubyte")), read_idx(f("train-labels-idx1-ubyte")),
            read_idx(f("t10k-images-idx3-ubyte")), read_idx(f("t10k-labels-idx1-ubyte")))


class PILGaussianBlur:
    """MoCo v2's loader.GaussianBlur behaviour: sigma ~ U(lo, hi) from Python's random, then
    PIL ImageFilter.GaussianBlur(radius=sigma)."""

    def __init__(self, sigma=(0.1, 2.0)):
        self.sigma = sigma

    def __call__(self, img):
        from PIL import ImageFilter
        s = random.uniform(self.sigma[0], self.sigma[1])
        return img.filter(ImageFilter.GaussianBlur(radius=s))

    def __repr__(self):
        return f"PILGaussianBlur(sigma={self.sigma})"


def blur_kernel_size(side):
    """10% of the image side rounded down, made odd, at least 3 (SimCLR App. A; swift-moco)."""
    k = max(3, side // 10)
    return k if k % 2 == 1 else k + 1


def make_augmentation(args, mean, std, side=28):
    import torchvision.transforms as T
    sigma = (args.blur_sigma_min, args.blur_sigma_max)
    blur = PILGaussianBlur(sigma) if args.blur == "pil" else \
        T.GaussianBlur(kernel_size=blur_kernel_size(side), sigma=sigma)
    return T.Compose([
        T.RandomResizedCrop(side, scale=(0.2, 1.0)),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([blur], p=0.5),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize([mean], [std]),
    ])


class TwoCropDataset:
    """Map-style dataset indexed by (epoch, i): two independent augmentations of image i, drawn
    under torch and Python RNGs seeded from (seed, epoch, i); the caller's RNG states are restored,
    so the result is the same in the main process or in any worker."""

    def __init__(self, images, transform, seed):
        self.images, self.transform, self.seed = images, transform, seed

    def __len__(self):
        return len(self.images)

    def __getitem__(self, key):
        import torch
        from PIL import Image
        epoch, i = key
        s = mix_seed(self.seed, 0xA06, epoch, i)
        t_state, py_state = torch.get_rng_state(), random.getstate()
        try:
            torch.default_generator.manual_seed(s)    # CPU generator only (torch.manual_seed also
            random.seed(s)                            # seeds accelerators: ~100x slower)
            img = Image.fromarray(self.images[i])          # 2-D uint8 -> mode 'L'
            q = self.transform(img)
            k = self.transform(img)
        finally:
            torch.set_rng_state(t_state)
            random.setstate(py_state)
        return q, k


class EpochBatchSampler:
    """Batches of (epoch, index) keys: a random order of the n samples from a generator seeded
    with (seed, epoch), cut into full batches (drop_last). `set_epoch` before iterating."""

    def __init__(self, n, batch, seed):
        self.n, self.batch, self.seed, self.epoch = n, batch, seed, 0

    def set_epoch(self, e):
        self.epoch = e

    def __len__(self):
        return self.n // self.batch

    def __iter__(self):
        import torch
        g = torch.Generator().manual_seed(mix_seed(self.seed, 0x5A3, self.epoch))
        order = torch.randperm(self.n, generator=g).tolist()
        for b in range(len(self)):
            yield [(self.epoch, i) for i in order[b * self.batch:(b + 1) * self.batch]]


def worker_init(worker_id):
    # every augmentation is reseeded per sample; seed the rest of the worker anyway
    import numpy as np
    import torch
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def make_loader(dataset, sampler, workers, seed):
    import torch
    from torch.utils.data import DataLoader
    kw = {}
    if workers > 0:
        kw = dict(worker_init_fn=worker_init, prefetch_factor=4)
    # own generator: the loader's base seed then never touches the global torch RNG
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                      generator=torch.Generator().manual_seed(mix_seed(seed, 0xD1)), **kw)


# ----------------------------------------------------------------------------------------------
# kNN monitor
# ----------------------------------------------------------------------------------------------

def backbone_features(torch, F, enc, images_u8, mean, std, batch=1000):
    """L2-normalised pooled backbone features (before the head) of un-augmented images, with the
    encoder in eval mode (BN running statistics); the encoder's mode is restored."""
    was_training = enc.training
    enc.eval()
    out = []
    with torch.no_grad():
        for a in range(0, len(images_u8), batch):
            x = torch.from_numpy(images_u8[a:a + batch]).float().div_(255.0).unsqueeze(1)
            x = (x - mean) / std
            x = enc.relu(enc.bn1(enc.conv1(x)))
            for s in enc.stages:
                x = getattr(enc, s)(x)
            out.append(F.normalize(torch.flatten(enc.avgpool(x), 1), dim=1))
    enc.train(was_training)
    return torch.cat(out)


def knn_top1(torch, bank, bank_labels, test, test_labels, k=200, t=0.1, classes=10, chunk=500):
    """Weighted kNN [InstDisc Sec. 3.4]: the k most similar bank rows vote exp(s/t) for their
    labels; -> top-1 accuracy in %."""
    k = min(k, bank.shape[0])
    correct = 0
    for a in range(0, test.shape[0], chunk):
        sims = test[a:a + chunk] @ bank.T
        s, idx = sims.topk(k, dim=1)
        w = torch.exp(s.double() / t)
        votes = torch.zeros(s.shape[0], classes, dtype=torch.float64)
        votes.scatter_add_(1, bank_labels[idx], w)
        correct += int((votes.argmax(dim=1) == test_labels[a:a + chunk]).sum())
    return 100.0 * correct / test.shape[0]


# ----------------------------------------------------------------------------------------------
# Checkpoints and logs
# ----------------------------------------------------------------------------------------------

def checkpoint_name(epoch):
    return f"checkpoint_e{epoch:04d}.pt"


def latest_checkpoint(out):
    names = sorted(n for n in os.listdir(out) if n.startswith("checkpoint_e") and n.endswith(".pt"))
    return os.path.join(out, names[-1]) if names else None


def atomic_write(path, write):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def rng_states(torch, np):
    return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}


def set_rng_states(torch, np, st):
    torch.set_rng_state(st["torch"])
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])


def truncate_metrics(path, completed):
    """Keep the records of the first `completed` epochs (train epoch < completed, knn epoch <=
    completed), dropping anything a killed run wrote after its last checkpoint."""
    if not os.path.exists(path):
        return
    keep = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            if (r["type"] == "train" and r["epoch"] < completed) or (r["type"] == "knn" and r["epoch"] <= completed):
                keep.append(line if line.endswith("\n") else line + "\n")
    atomic_write(path, lambda f: f.write("".join(keep).encode()))


def fmt_duration(s):
    s = int(max(0, s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------

def lr_at(args, epoch, step, steps_per_epoch):
    t = epoch + (step / steps_per_epoch if args.lr_per_step else 0.0)
    return args.lr * 0.5 * (1.0 + math.cos(math.pi * min(t, args.epochs) / args.epochs))


def main(argv=None):
    args = parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)      # before torch creates its pool
    os.environ["MKL_NUM_THREADS"] = str(args.threads)
    import numpy as np
    sys.path.insert(0, HERE)
    import pytorch_moco_step as pms
    ns = pms.build_modules()
    torch, F = ns["torch"], ns["F"]
    import torchvision
    torch.set_num_threads(args.threads)

    stop = min(args.epochs, args.stop_after if args.stop_after is not None else args.epochs)
    if args.queue_size % args.batch_size != 0:
        sys.exit(f"--queue-size {args.queue_size} must be a multiple of --batch-size {args.batch_size}")
    if args.batch_size % args.bn_splits != 0:
        sys.exit(f"--batch-size {args.batch_size} not divisible by --bn-splits {args.bn_splits}")

    # ---- data
    tr_x, tr_y, te_x, te_y = load_fashion_mnist(args.data_dir)
    px = tr_x.astype(np.float64) / 255.0                    # statistics of all 60k training images
    mean, std = float(px.mean()), float(px.std())            # population std, like swift-moco's
    del px
    train_images = tr_x[:args.train_subset] if args.train_subset > 0 else tr_x
    n_bank = args.knn_bank if args.knn_bank > 0 else len(tr_x)
    n_test = args.knn_test if args.knn_test > 0 else len(te_x)
    dataset = TwoCropDataset(train_images, make_augmentation(args, mean, std), args.seed)
    sampler = EpochBatchSampler(len(train_images), args.batch_size, args.seed)
    steps_per_epoch = len(sampler)
    if steps_per_epoch == 0:
        sys.exit("fewer training images than one batch")
    loader = make_loader(dataset, sampler, args.workers, args.seed)

    # ---- model
    torch.manual_seed(args.seed)
    np.random.seed(args.seed % 2**32)
    random.seed(args.seed)
    moco = ns["MoCo"]("resnet20", dim=args.dim, K=args.queue_size, m=args.moco_m, T=args.moco_t,
                      bn_splits=args.bn_splits, init=args.init)
    moco.train()
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(moco.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.wd)

    if args.bench_steps > 0:
        return bench(args, torch, moco, criterion, optimizer, loader, sampler, pms, steps_per_epoch)

    # ---- output, resume
    os.makedirs(args.out, exist_ok=True)
    metrics_path = os.path.join(args.out, "metrics.jsonl")
    config_path = os.path.join(args.out, "config.json")
    start_epoch, global_step, elapsed0 = 0, 0, 0.0
    config = {k: v for k, v in vars(args).items()}
    config.update({"arch": "resnet20", "mlp_head": [64, 64, args.dim], "normalize_mean": mean,
                   "normalize_std": std, "train_images": len(train_images), "knn_bank_images": n_bank,
                   "knn_test_images": n_test, "steps_per_epoch": steps_per_epoch,
                   "torch": torch.__version__, "torchvision": torchvision.__version__,
                   "numpy": np.__version__, "python": sys.version.split()[0],
                   "argv": sys.argv[1:], "resumes": []})
    if args.resume:
        ck_path = latest_checkpoint(args.out)
        if ck_path is None:
            sys.exit(f"--resume: no checkpoint_e*.pt in {args.out}")
        ck = torch.load(ck_path, map_location="cpu", weights_only=False)
        bad = [f"{k}: checkpoint {ck['args'].get(k)!r}, now {getattr(args, k)!r}"
               for k in RECIPE_KEYS if ck["args"].get(k) != getattr(args, k)]
        if bad:
            sys.exit("checkpoint does not match this configuration: " + "; ".join(bad))
        if ck["args"].get("threads") != args.threads:
            print(f"note: checkpoint trained with --threads {ck['args'].get('threads')}, now {args.threads}: "
                  "floats may differ from an uninterrupted run at rounding level", flush=True)
        moco.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        set_rng_states(torch, np, ck["rng"])
        start_epoch, global_step, elapsed0 = ck["epoch"], ck["step"], ck["elapsed_s"]
        truncate_metrics(metrics_path, start_epoch)
        if os.path.exists(config_path):
            with open(config_path) as f:
                old = json.load(f)
            config = old
        config.setdefault("resumes", []).append({"from_epoch": start_epoch, "argv": sys.argv[1:],
                                                 "stop_after": args.stop_after, "workers": args.workers,
                                                 "threads": args.threads, "time": time.time()})
        print(f"resumed from {ck_path}: {start_epoch} epochs, {global_step} steps done", flush=True)
    elif os.path.exists(metrics_path) or latest_checkpoint(args.out):
        sys.exit(f"{args.out} already holds a run (use --resume or another --out)")
    atomic_write(config_path, lambda f: f.write((json.dumps(config, indent=2, sort_keys=True) + "\n").encode()))

    print(f"PyTorch {torch.__version__} / torchvision {torchvision.__version__}: MoCo v2 ResNet-20 on "
          f"Fashion-MNIST ({len(train_images)} images, {steps_per_epoch} steps/epoch), batch {args.batch_size}, "
          f"K={args.queue_size}, m={args.moco_m}, T={args.moco_t}, bn-splits {args.bn_splits}, "
          f"lr {args.lr} cosine {'per step' if args.lr_per_step else 'per epoch'} over {args.epochs}, "
          f"blur {args.blur}, init {args.init}, seed {args.seed}; mean {mean:.4f} std {std:.4f}; "
          f"{args.threads} threads, {args.workers} workers; epochs {start_epoch}->{stop}", flush=True)

    bank_labels = torch.from_numpy(tr_y[:n_bank].astype(np.int64))
    test_labels = torch.from_numpy(te_y[:n_test].astype(np.int64))
    t_start = time.perf_counter() - elapsed0
    run_t0, run_steps = time.perf_counter(), 0
    metrics = open(metrics_path, "a")

    def write_metrics(rec):
        metrics.write(json.dumps(rec, sort_keys=True) + "\n")
        metrics.flush()

    for epoch in range(start_epoch, stop):
        sampler.set_epoch(epoch)
        moco.train()
        loss_sum, acc_sum, n = 0.0, 0.0, 0
        win_loss, win_acc, win_n, win_t = 0.0, 0.0, 0, time.perf_counter()
        ep_t0 = time.perf_counter()
        lr = lr_at(args, epoch, 0, steps_per_epoch)
        for step, (im_q, im_k) in enumerate(loader):
            lr = lr_at(args, epoch, step, steps_per_epoch)
            for g in optimizer.param_groups:
                g["lr"] = lr
            loss, logits = pms.train_step(moco, moco, criterion, optimizer, im_q, im_k)
            l = loss.item()
            a = 100.0 * (logits.detach().argmax(dim=1) == 0).float().mean().item()
            if not math.isfinite(l):
                sys.exit(f"loss became {l} at epoch {epoch + 1} step {step + 1}; stopped without saving")
            loss_sum += l; acc_sum += a; n += 1
            win_loss += l; win_acc += a; win_n += 1
            global_step += 1
            run_steps += 1
            if (step + 1) % args.log_every == 0 or step + 1 == steps_per_epoch:
                now = time.perf_counter()
                ips = win_n * args.batch_size / max(now - win_t, 1e-9)
                per_step = (now - run_t0) / run_steps
                remaining = ((stop - epoch) * steps_per_epoch - step - 1) * per_step
                print(f"epoch {epoch + 1}/{args.epochs} step {step + 1}/{steps_per_epoch}  loss {win_loss / win_n:.4f}  "
                      f"acc1 {win_acc / win_n:.1f}%  lr {lr:.5f}  {ips:.0f} img/s  ETA {fmt_duration(remaining)}"
                      f" (training, to epoch {stop})", flush=True)
                win_loss, win_acc, win_n, win_t = 0.0, 0.0, 0, now
        ep_time = time.perf_counter() - ep_t0
        write_metrics({"type": "train", "epoch": epoch, "step": global_step, "loss": loss_sum / n,
                       "acc1": acc_sum / n, "lr": lr, "images_per_s": n * args.batch_size / ep_time,
                       "elapsed_s": time.perf_counter() - t_start})
        print(f"epoch {epoch + 1}: loss {loss_sum / n:.4f}  acc1 {acc_sum / n:.2f}%  lr {lr:.5f}  "
              f"{n * args.batch_size / ep_time:.0f} img/s  ({ep_time:.1f} s)", flush=True)
        done = epoch + 1
        if args.knn_every > 0 and (done % args.knn_every == 0 or done == stop):
            k_t0 = time.perf_counter()
            enc = moco.encoder_q
            mt = torch.tensor(mean)
            st = torch.tensor(std)
            bank = backbone_features(torch, F, enc, tr_x[:n_bank], mt, st)
            test = backbone_features(torch, F, enc, te_x[:n_test], mt, st)
            top1 = knn_top1(torch, bank, bank_labels, test, test_labels, args.knn_k, args.knn_t)
            write_metrics({"type": "knn", "epoch": done, "step": global_step, "knn_top1": top1,
                           "elapsed_s": time.perf_counter() - t_start})
            print(f"epoch {done}: kNN top-1 {top1:.2f}% (k={args.knn_k}, t={args.knn_t}; bank {n_bank}, "
                  f"test {n_test}; {time.perf_counter() - k_t0:.1f} s)", flush=True)
        # checkpoint (the kNN monitor does not touch the model's state or any RNG)
        path = os.path.join(args.out, checkpoint_name(done))
        ck = {"epoch": done, "step": global_step, "elapsed_s": time.perf_counter() - t_start,
              "model": moco.state_dict(), "optimizer": optimizer.state_dict(),
              "rng": rng_states(torch, np), "args": vars(args)}
        atomic_write(path, lambda f: torch.save(ck, f))
        if not args.keep_checkpoints:
            for nme in os.listdir(args.out):
                if nme.startswith("checkpoint_e") and nme.endswith(".pt") and nme != checkpoint_name(done):
                    os.remove(os.path.join(args.out, nme))
        print(f"saved {path}", flush=True)
    metrics.close()
    print(f"done: {stop} epochs, {global_step} steps, {fmt_duration(time.perf_counter() - t_start)} elapsed", flush=True)


def bench(args, torch, moco, criterion, optimizer, loader, sampler, pms, steps_per_epoch):
    """--bench-steps N: N training steps of epoch 0 (first 3 untimed), then img/s and an epoch
    time estimate. Nothing is written."""
    warm = 3
    sampler.set_epoch(0)
    times, t = [], None
    for step, (im_q, im_k) in enumerate(loader):
        if step == warm:
            t = time.perf_counter()
        pms.train_step(moco, moco, criterion, optimizer, im_q, im_k)
        if step + 1 >= min(warm + args.bench_steps, steps_per_epoch):
            break
    steps = step + 1 - warm
    dt = time.perf_counter() - t
    ips = steps * args.batch_size / dt
    print(json.dumps({"workers": args.workers, "threads": args.threads, "blur": args.blur,
                      "timed_steps": steps, "images_per_s": round(ips, 1),
                      "step_ms": round(1e3 * dt / steps, 1),
                      "epoch_s_estimate": round(steps_per_epoch * args.batch_size / ips, 1)}), flush=True)


if __name__ == "__main__":
    main()
