#!/usr/bin/env python3
"""Instance Discrimination with a memory bank (Wu et al. 2018, "InstDisc") in PyTorch (CPU, one
process): the reference for swift-moco's `--mechanism memory-bank` (MemoryBankMethod).

  python scripts/pytorch_instdisc_check.py --head mlp --loss infonce --T 0.1 --K 1024 \\
         --train-subset 2048 --epochs 10 --lr 0.06 --schedule cosine --aug v2   # = --preset moco-v2 --mechanism memory-bank
  python scripts/pytorch_instdisc_check.py --head linear --loss nce --T 0.07 --K 1024 \\
         --train-subset 2048 --epochs 10 --lr 0.03 --schedule step --aug v1     # = --preset instdisc

Semantics (the official implementation, zhirongw/lemniscate.pytorch, NCEAverage / NCECriterion /
LinearAverage, written from its behaviour):
- bank v: [N, dim], every component U(-a, a), a = 1/sqrt(dim/3) (not normalised);
- f = normalize(encoder(x)) of ONE augmented view; positive logit f.v_i with v_i the image's row
  BEFORE this step's update; K negatives drawn uniformly with replacement (the image's own row may
  be drawn too, as in lemniscate's AliasMethod over a uniform distribution); logits / T;
- InfoNCE: cross-entropy over [pos, negs]/T with target 0; NCE: P(i|v) = exp(s)/Z with Z = N *
  mean(exp(s)) of the first batch, loss = -mean_b [log(P_pos/(P_pos + K/N)) + sum_negs log((K/N)/(P_neg + K/N))];
- the bank is a constant for the gradient; after the step v_i <- normalize(m_b v_i + (1-m_b) f_i)
  with the detached features of the forward;
- ResNet-20 / split BN / data / augmentation from scripts/pytorch_moco_step.py and
  scripts/pytorch_moco_train.py (contiguous BN splits, as swift-moco's BatchNorm2d);
  head mlp = Linear(64,64)-ReLU-Linear(64,dim) (moco-v2), linear = Linear(64,dim) (instdisc),
  mlp-bn = Linear(64,256)-BN-ReLU-Linear(256,dim)-BN(no affine) (swift's `--head mlp-bn`);
- SGD momentum 0.9, weight decay on all parameters; lr cosine per step (swift-moco) or constant
  (step schedule whose milestones are past the run).

Per epoch it prints the mean loss, pretext top-1 (positive logit strictly the argmax, ties to the
positive like swift's CrossEntropy), mean cos(f, v_pos), mean cos(f, v_neg), the mean cosine
between features of different images of the batch (-> 1 when the features collapse), and after the
epoch the same on the first 256 un-augmented training images ("clean cos").

Findings (2048 images, batch 256, K 1024, 10 epochs, bn-splits 8; loss per epoch):
- mlp head, InfoNCE T 0.1, lr 0.06 cosine (= moco-v2 --mechanism memory-bank): PyTorch seed 0
  10.80 13.70 8.53 7.13 6.87 6.75 6.69 6.65 6.62 6.60; seed 1 10.77 13.72 8.77 7.25 ... 6.927
  (batch cos 0.999: collapsed); swift 10.81 13.56 8.77 7.25 7.00 6.95 6.935 6.932 6.931 6.931.
  Top-1 <= 0.2% everywhere (chance 0.1%). Not a swift-moco defect: InstDisc itself collapses.
- linear head, NCE T 0.07, lr 0.03 (= instdisc): the NCE loss grows in both (PyTorch 194 587 724
  631 1048 1233 938 705 947 1132; swift 206 602 1046 771 993 634 814 1178 1608 1942).
- mlp-bn head (BN at the output removes the features' common direction, which is what the bank
  locks onto): PyTorch 7.73 8.19 8.45 8.40 7.96 7.39 6.74 6.38 6.20 5.89 (top-1 2.6%, cos(f, v_pos)
  0.71 vs cos(f, v_neg) 0.01); swift 7.84 8.13 8.22 8.12 7.45 6.86 6.35 5.93 5.77 5.59 (top-1 3.3%).
"""

import argparse
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--train-subset", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--K", type=int, default=1024)
    p.add_argument("--T", type=float, default=0.1)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--bank-m", type=float, default=0.5)
    p.add_argument("--loss", choices=("infonce", "nce"), default="infonce")
    p.add_argument("--head", choices=("mlp", "linear", "mlp-bn"), default="mlp")
    p.add_argument("--bn-splits", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.06)
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--schedule", choices=("cosine", "constant"), default="cosine")
    p.add_argument("--aug", choices=("v2", "v1"), default="v2", help="v2: with blur (p 0.5); v1: no blur")
    p.add_argument("--bank-init", choices=("uniform", "normalized"), default="uniform")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--knn-every", type=int, default=0)
    p.add_argument("--knn-bank", type=int, default=10000)
    p.add_argument("--knn-test", type=int, default=2000)
    p.add_argument("--json", default=None, help="write the per-epoch records here")
    return p.parse_args(argv)


class Augment:
    """MoCo v2's "aug+" on PIL 'L' 28x28 images, written with PIL and Python's random (this venv's
    torchvision does not import: its C operators do not match torch 2.13): RandomResizedCrop(28,
    scale (0.2, 1), ratio (3/4, 4/3)) -> RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p 0.8)
    (brightness and contrast in random order; saturation and hue are identities on 'L') ->
    RandomGrayscale(0.2) (identity on 'L') -> RandomApply([GaussianBlur(sigma U(0.1, 2))], p 0.5)
    if blur -> RandomHorizontalFlip -> ToTensor -> Normalize(mean, std)."""

    def __init__(self, mean, std, blur=True, side=28):
        self.mean, self.std, self.blur, self.side = mean, std, blur, side

    def __call__(self, img):
        import random
        import numpy as np
        import torch
        from PIL import Image, ImageEnhance, ImageFilter
        W, H = img.size
        area = W * H
        box = None
        for _ in range(10):
            target = area * random.uniform(0.2, 1.0)
            ratio = math.exp(random.uniform(math.log(3 / 4), math.log(4 / 3)))
            w = int(round(math.sqrt(target * ratio)))
            h = int(round(math.sqrt(target / ratio)))
            if 0 < w <= W and 0 < h <= H:
                i = random.randint(0, H - h)
                j = random.randint(0, W - w)
                box = (j, i, j + w, i + h)
                break
        if box is None:
            box = (0, 0, W, H)
        img = img.resize((self.side, self.side), Image.BILINEAR, box=box)
        if random.random() < 0.8:
            ops = [lambda im: ImageEnhance.Brightness(im).enhance(random.uniform(0.6, 1.4)),
                   lambda im: ImageEnhance.Contrast(im).enhance(random.uniform(0.6, 1.4))]
            random.shuffle(ops)
            for op in ops:
                img = op(img)
        random.random()                                    # RandomGrayscale's draw (identity on 'L')
        if self.blur and random.random() < 0.5:
            img = img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))
        if random.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).unsqueeze(0)
        return (x - self.mean) / self.std


class OneCropDataset:
    """(epoch, i) -> (one augmented view of image i under RNGs seeded from (seed, epoch, i), i)."""

    def __init__(self, images, transform, seed, mix_seed):
        self.images, self.transform, self.seed, self.mix_seed = images, transform, seed, mix_seed

    def __len__(self):
        return len(self.images)

    def __getitem__(self, key):
        import random
        import torch
        from PIL import Image
        epoch, i = key
        s = self.mix_seed(self.seed, 0xA06, epoch, i)
        t_state, py_state = torch.get_rng_state(), random.getstate()
        try:
            torch.default_generator.manual_seed(s)
            random.seed(s)
            q = self.transform(Image.fromarray(self.images[i]))
        finally:
            torch.set_rng_state(t_state)
            random.setstate(py_state)
        return q, i


def main(argv=None):
    args = parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import numpy as np
    sys.path.insert(0, HERE)
    import pytorch_moco_step as pms
    import pytorch_moco_train as pmt
    ns = pms.build_modules()
    torch, nn, F = ns["torch"], ns["nn"], ns["F"]
    torch.set_num_threads(args.threads)

    tr_x, tr_y, te_x, te_y = pmt.load_fashion_mnist(args.data_dir)
    px = tr_x.astype(np.float64) / 255.0
    mean, std = float(px.mean()), float(px.std())
    del px
    images = tr_x[:args.train_subset] if args.train_subset > 0 else tr_x
    N = len(images)
    transform = Augment(mean, std, blur=args.aug == "v2")
    dataset = OneCropDataset(images, transform, args.seed, pmt.mix_seed)
    sampler = pmt.EpochBatchSampler(N, args.batch_size, args.seed)
    loader = pmt.make_loader(dataset, sampler, args.workers, args.seed)
    steps = len(sampler)

    torch.manual_seed(args.seed)
    enc = ns["make_encoder"]("resnet20", args.dim, args.bn_splits, True, "torchvision")
    if args.head == "linear":
        enc.fc = nn.Linear(enc.feature_dim, args.dim)
    elif args.head == "mlp-bn":
        # swift-moco's mlp-bn projector (MoCo v3's): Linear(64, 256, no bias) - BN1d - ReLU -
        # Linear(256, 128, no bias) - BN1d(no affine), BN statistics over the contiguous splits
        class SplitBN1d(nn.Module):
            def __init__(self, c, affine=True, splits=1):
                super().__init__()
                self.splits, self.affine = splits, affine
                if affine:
                    self.weight = nn.Parameter(torch.ones(c))
                    self.bias = nn.Parameter(torch.zeros(c))

            def forward(self, x):
                S = self.splits if self.training else 1
                xs = x.view(S, x.shape[0] // S, x.shape[1])
                y = (xs - xs.mean(1, keepdim=True)) / torch.sqrt(xs.var(1, unbiased=False, keepdim=True) + 1e-5)
                y = y.reshape(x.shape)
                return y * self.weight + self.bias if self.affine else y

        d = enc.feature_dim
        enc.fc = nn.Sequential(nn.Linear(d, 4 * d, bias=False), SplitBN1d(4 * d, splits=args.bn_splits), nn.ReLU(),
                               nn.Linear(4 * d, args.dim, bias=False), SplitBN1d(args.dim, affine=False, splits=args.bn_splits))
    enc.train()
    a = 1.0 / math.sqrt(args.dim / 3.0)
    bank = torch.rand(N, args.dim) * 2 * a - a
    if args.bank_init == "normalized":
        bank = F.normalize(bank, dim=1)
    opt = torch.optim.SGD(enc.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.wd)
    gen = torch.Generator().manual_seed(args.seed + 12345)
    Z = None
    K, T = args.K, args.T
    print(f"InstDisc reference: N={N} K={K} T={T} loss={args.loss} head={args.head} bn-splits={args.bn_splits} "
          f"lr={args.lr} {args.schedule} wd={args.wd} m_b={args.bank_m} aug={args.aug}; ln(K+1)={math.log(K + 1):.4f}",
          flush=True)
    clean = (torch.from_numpy(tr_x[:256]).float().div(255.0).unsqueeze(1) - mean) / std

    def clean_cos():
        """Mean cosine between the features of different images among the first 256 un-augmented
        training images (train-mode BN; the running statistics are restored)."""
        saved = {k: v.clone() for k, v in enc.state_dict().items()}
        with torch.no_grad():
            fc = F.normalize(enc(clean), dim=1)
        enc.load_state_dict(saved)
        G = fc @ fc.T
        return float((G.sum() - G.diagonal().sum()) / (256 * 255))

    print(f"epoch 0: clean batch cos {clean_cos():.4f}", flush=True)
    records = []
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        sums = dict(loss=0.0, acc1=0.0, pos=0.0, neg=0.0, batch_cos=0.0)
        n = 0
        for step, (x, idx) in enumerate(loader):
            t = epoch + step / steps
            lr = args.lr * 0.5 * (1 + math.cos(math.pi * t / args.epochs)) if args.schedule == "cosine" else args.lr
            for g in opt.param_groups:
                g["lr"] = lr
            f = F.normalize(enc(x), dim=1)
            neg_idx = torch.randint(N, (x.shape[0], K), generator=gen)
            v_pos = bank[idx]                                  # before this step's update
            l_pos = (f * v_pos).sum(1, keepdim=True)
            l_neg = torch.bmm(bank[neg_idx], f.unsqueeze(2)).squeeze(2)
            s = torch.cat([l_pos, l_neg], 1) / T
            if args.loss == "infonce":
                loss = F.cross_entropy(s, torch.zeros(x.shape[0], dtype=torch.long))
            else:
                e = torch.exp(s)
                if Z is None:
                    Z = float(e.detach().mean()) * N
                    print(f"  Z = {Z:.2f}", flush=True)
                P = e / Z
                kpn = K / N
                loss = -(torch.log(P[:, 0] / (P[:, 0] + kpn)).sum()
                         + torch.log(kpn / (P[:, 1:] + kpn)).sum()) / x.shape[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                fd = f.detach()
                nb = F.normalize(args.bank_m * bank[idx] + (1 - args.bank_m) * fd, dim=1)
                bank[idx] = nb
                sd = s.detach()
                top = (sd[:, 1:].max(1).values <= sd[:, 0]).float().mean().item() * 100
                vn = F.normalize(v_pos, dim=1)
                sums["loss"] += loss.item(); sums["acc1"] += top
                sums["pos"] += (fd * vn).sum(1).mean().item()
                sums["neg"] += (l_neg / bank[neg_idx].norm(dim=2)).mean().item()
                G = fd @ fd.T
                B = fd.shape[0]
                sums["batch_cos"] += ((G.sum() - G.diagonal().sum()) / (B * (B - 1))).item()
                n += 1
        rec = {k: v / n for k, v in sums.items()}
        rec.update(epoch=epoch + 1, lr=lr, elapsed_s=time.perf_counter() - t0, clean_cos=clean_cos())
        line = (f"epoch {epoch + 1}: loss {rec['loss']:.4f}  acc1 {rec['acc1']:.2f}%  cos(f,v_pos) {rec['pos']:.3f}  "
                f"cos(f,v_neg) {rec['neg']:.3f}  batch cos {rec['batch_cos']:.3f}  clean cos {rec['clean_cos']:.4f}  lr {lr:.4f}  ({rec['elapsed_s']:.0f} s)")
        if args.knn_every > 0 and ((epoch + 1) % args.knn_every == 0 or epoch + 1 == args.epochs):
            mt, st = torch.tensor(mean), torch.tensor(std)
            fb = pmt.backbone_features(torch, F, enc, tr_x[:args.knn_bank], mt, st)
            ft = pmt.backbone_features(torch, F, enc, te_x[:args.knn_test], mt, st)
            rec["knn_top1"] = pmt.knn_top1(torch, fb, torch.from_numpy(tr_y[:args.knn_bank].astype(np.int64)),
                                           ft, torch.from_numpy(te_y[:args.knn_test].astype(np.int64)))
            line += f"  kNN {rec['knn_top1']:.2f}% (bank {args.knn_bank}, test {args.knn_test})"
        print(line, flush=True)
        records.append(rec)
    if args.json:
        with open(args.json, "w") as fjs:
            json.dump({"args": vars(args), "epochs": records}, fjs, indent=1)


if __name__ == "__main__":
    main()
