#!/usr/bin/env python3
"""PyTorch side of the trajectory parity harness: S MoCo v2 training steps of ResNet-20 on real
Fashion-MNIST crops, written as one safetensors file (format "swift-moco trajectory v1") holding
everything a second implementation needs to replay exactly the same steps and compare.

The steps are run by the modules and `train_step` of pytorch_moco_step.py (MoCo with split-BN over
contiguous chunks, `contiguous_splits=True`), on crops made by torchvision's own transforms (MoCo v2
pipeline), on the CPU in float32, 1 thread, `torch.use_deterministic_algorithms(True)`. The same
steps are replayed in lockstep in float64 from the same initial state, crops, permutations and
learning rates; the float32-vs-float64 divergence (the float32 noise of PyTorch itself) is stored
(`loss_f64`, `acc1_f64`, `final_f64.*`) and summarised in the metadata (`float64_check`).

Tensors (F32 unless noted; S steps, B batch, K queue, D dim):
  init.encoder_q.<torchvision state-dict name>   parameters and BN buffers at the start
                                               (num_batches_tracked: I64, shape [] as in the state dict)
  init.encoder_k.<...>                          the key encoder at the start (a copy of encoder_q)
  init.queue [D, K] (random unit columns), init.queue_ptr I64 [1] (= 0)
  im_q, im_k [S, B, 1, 28, 28]                  normalised crops of each step (two independent
                                               augmentations of the same images)
  perm I64 [S, B]                               key shuffle: keys = f_k(im_k[perm])[argsort(perm)]
  image_index I64 [S, B]                        training-set index of each sample (information)
  lr [S]                                        the learning rate used at each step (exact F32 values)
  loss [S], acc1 [S]                            float32 run; acc1 = top-1 % of the positive logit
  loss_f64 [S], acc1_f64 [S]                    float64 replay (rounded to F32)
  final.encoder_q.*, final.encoder_k.*          parameters and buffers after S float32 steps
  final.queue, final.queue_ptr (I64 [1])
  final_f64.encoder_q.<parameter>               parameters after the S float64 steps (as F32)
  loss_envelope [S], acc1_envelope [S]          the noise envelope (optional; `noise_envelope`): per step
                                               the largest |value - value_f64| over the float32 run and
                                               N float64 replays from initial weights perturbed by one
                                               float32 rounding (metadata `envelope`)

Deterministic: the file is bitwise reproducible for a given torch/torchvision/Pillow build and CPU
(the header is written in a canonical order with make_reference_step.save_canonical; the metadata
holds no time stamps or paths).

`verify --file F` replays the float32 steps from the file alone (as a second implementation would)
and checks that the stored loss, acc1 and final state come out bitwise identical.

Usage:
  python scripts/pytorch_trajectory.py verify --file Tests/MoCoTests/Resources/trajectory_short.safetensors
  python scripts/pytorch_trajectory.py export --steps 6 --batch-size 16 --queue-size 64 --dim 32 \\
      --bn-splits 2 --out Tests/MoCoTests/Resources/trajectory_short.safetensors
  python scripts/pytorch_trajectory.py export --out /tmp/traj/trajectory_200.safetensors   # defaults
  python scripts/pytorch_trajectory.py envelope --file IN --runs 8 --out OUT   # add the envelope
"""

import argparse
import gzip
import json
import math
import os
import random
import struct
import sys
import time

# one thread, set before torch creates its thread pools
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pytorch_moco_step as pms  # noqa: E402
from make_reference_step import save_canonical  # noqa: E402

FORMAT = "swift-moco trajectory v1"
DATA_DIR = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530          # Fashion-MNIST train (published; swift-moco's publishedMeanStd)
SGD_MOMENTUM = 0.9
REPORT_STEPS = (1, 10, 50, 100, 200)

AUGMENTATION = (
    "MoCo v2 (main_moco.py --aug-plus) on 28x28 PIL 'L' images, torchvision transforms: "
    "RandomResizedCrop(28, scale=(0.2, 1.0)) [ratio (3/4, 4/3), bilinear]; "
    "RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8) [saturation and hue leave 'L' images unchanged]; "
    "RandomGrayscale(p=0.2) [no-op on 'L']; "
    "RandomApply([GaussianBlur(sigma ~ U[0.1, 2] by Python random.uniform, PIL ImageFilter.GaussianBlur(radius=sigma))], p=0.5); "
    "RandomHorizontalFlip(); ToTensor(); Normalize(0.2860, 0.3530). "
    "Two crops per image (TwoCropsTransform: im_q then im_k, image by image). "
    "Images: batch s = samples [s*B, (s+1)*B) of the concatenation of one seeded torch.randperm(60000) per "
    "epoch of 60000 // B batches (drop_last). RNG: torch.manual_seed(seed+1), random.seed(seed+1) before the "
    "first crop; shuffle generator seed+3; key-shuffle perms from a generator seeded seed+2; init from "
    "torch.manual_seed(seed).")

ORDER = (
    "Per step s (official MoCo order; pytorch_moco_step.MoCo.forward and train_step): "
    "1. q = normalize(f_q(im_q[s])) in training mode; "
    "2. momentum update of the key encoder PARAMETERS: p_k = m*p_k + (1-m)*p_q (BN buffers not averaged); "
    "3. k = normalize(f_k(im_k[s][perm[s]]))[argsort(perm[s])] (training mode, no gradient); "
    "4. logits = cat([sum(q*k, 1), q @ queue]) / T, loss = mean cross-entropy with target 0; "
    "acc1 = 100 * mean(top-1 index == 0); "
    "5. enqueue: queue[:, ptr:ptr+B] = k^T, ptr = (ptr+B) % K; "
    "6. zero_grad, backward, SGD step on encoder_q with lr[s] (PyTorch SGD: d = g + wd*w; "
    "v = d at the first step, else v = 0.9*v + d; w -= lr*v; momentum buffers start empty). "
    "BatchNorm: eps 1e-5, momentum 0.1, running_var with the unbiased batch variance; split-BN with "
    "bn_splits S: the batch is cut into S CONTIGUOUS chunks [0, B/S), [B/S, 2B/S), ... each normalised with "
    "its own statistics, running stats updated with the mean over chunks of each chunk's update, "
    "num_batches_tracked += 1 per forward (so S after S steps). Applied to every BN of both encoders.")


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def read_idx_images(path):
    import numpy as np
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, h, w = struct.unpack(">IIII", raw[:16])
    if magic != 2051:
        raise ValueError(f"{path}: not an IDX image file (magic {magic})")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, h, w)


class GaussianBlur:
    """MoCo v2's blur: sigma uniform in [0.1, 2] (Python `random`), PIL's Gaussian filter."""

    def __init__(self, sigma=(0.1, 2.0)):
        self.sigma = sigma

    def __call__(self, x):
        from PIL import ImageFilter
        sigma = random.uniform(self.sigma[0], self.sigma[1])
        return x.filter(ImageFilter.GaussianBlur(radius=sigma))


def moco_v2_transform():
    import torchvision.transforms as T
    return T.Compose([
        T.RandomResizedCrop(28, scale=(0.2, 1.0)),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([GaussianBlur([0.1, 2.0])], p=0.5),
        T.RandomHorizontalFlip(),
        T.ToTensor(),
        T.Normalize([MEAN], [STD]),
    ])


def make_crops(torch, images, steps, batch, seed):
    """im_q, im_k [S, B, 1, 28, 28] and the image indices [S, B]."""
    from PIL import Image
    n = images.shape[0]
    per_epoch = n // batch
    g = torch.Generator().manual_seed(seed + 3)
    order = []
    for _ in range((steps + per_epoch - 1) // per_epoch):
        order.append(torch.randperm(n, generator=g)[:per_epoch * batch])
    index = torch.cat(order)[:steps * batch].view(steps, batch).clone()
    tf = moco_v2_transform()
    torch.manual_seed(seed + 1)
    random.seed(seed + 1)
    im_q = torch.empty(steps, batch, 1, 28, 28)
    im_k = torch.empty(steps, batch, 1, 28, 28)
    for s in range(steps):
        for j in range(batch):
            img = Image.fromarray(images[int(index[s, j])])
            assert img.mode == "L"
            im_q[s, j] = tf(img)
            im_k[s, j] = tf(img)
    return im_q, im_k, index


# ----------------------------------------------------------------------------------------------
# Runs
# ----------------------------------------------------------------------------------------------

def lr_schedule(args, steps_per_epoch):
    """Cosine over a nominal run of args.schedule_epochs epochs, per step at the fractional epoch
    t = s / steps_per_epoch: lr_base * 0.5 * (1 + cos(pi * t / E)) (swift-moco's LRSchedule.cosine)."""
    import numpy as np
    lr = [args.lr * 0.5 * (1 + math.cos(math.pi * min(s / steps_per_epoch, args.schedule_epochs)
                                        / args.schedule_epochs)) for s in range(args.steps)]
    return np.asarray(lr, dtype=np.float32)


def build_moco(ns, args, dtype):
    m = ns["MoCo"]("resnet20", dim=args.dim, K=args.queue_size, m=args.moco_m, T=args.moco_t,
                   bn_splits=args.bn_splits, contiguous_splits=True)
    return m.to(dtype).train()


def initial_state(ns, args):
    """{name: tensor} of init.* (encoder_q init, encoder_k = copy, queue, queue_ptr)."""
    torch, nn = ns["torch"], ns["nn"]
    torch.manual_seed(args.seed)
    moco = build_moco(ns, args, torch.float32)   # torchvision init of encoder_q, then encoder_k, queue
    if args.init == "pytorch":
        for mod in moco.encoder_q.modules():
            if isinstance(mod, nn.Conv2d):
                mod.reset_parameters()            # nn.Conv2d default: kaiming_uniform_(a=sqrt(5))
    st = {}
    sd = moco.encoder_q.state_dict()
    for side in ("encoder_q", "encoder_k"):       # the key encoder starts as a copy of the query encoder
        for n, t in sd.items():
            st[f"init.{side}.{n}"] = t.detach().clone().contiguous()
    st["init.queue"] = moco.queue.detach().clone().contiguous()
    st["init.queue_ptr"] = moco.queue_ptr.detach().clone().contiguous()
    return st


def load_state(moco, st, prefix):
    for side in ("encoder_q", "encoder_k"):
        pre = f"{prefix}.{side}."
        getattr(moco, side).load_state_dict(
            {k[len(pre):]: v for k, v in st.items() if k.startswith(pre)}, strict=True)
    moco.queue.copy_(st[f"{prefix}.queue"])
    moco.queue_ptr.copy_(st[f"{prefix}.queue_ptr"])


def acc1_of(logits):
    """Contrastive top-1 %: the positive (index 0) is the arg-max of the 1+K logits (official accuracy())."""
    top = logits.detach().topk(1, dim=1).indices.squeeze(1)
    return (top == 0).double().mean().item() * 100.0


def rel_l2(pairs):
    """sqrt(sum |a-b|^2 / sum |b|^2) over (a, b) pairs, in float64."""
    e = sum(((a.double() - b.double()) ** 2).sum().item() for a, b in pairs)
    r = sum((b.double() ** 2).sum().item() for _, b in pairs)
    return math.sqrt(e / r) if r > 0 else math.sqrt(e)


ENVELOPE_EPS = 2.0 ** -24        # float32's unit roundoff: the size of one rounding


def run_steps(ns, st, cfg, dtype, eps=0.0, seed=0):
    """The recorded steps from the file's init, crops, perms and lrs in `dtype`; with eps > 0 the
    initial query-encoder parameters are first multiplied by (1 + eps * N(0, 1)) elementwise
    (generator seeded `seed`) and copied to the key encoder. Returns (losses, acc1s, moco)."""
    torch = ns["torch"]
    a = argparse.Namespace(dim=cfg["dim"], queue_size=cfg["queue_size"], moco_m=cfg["moco_m"],
                           moco_t=cfg["moco_t"], bn_splits=cfg["bn_splits"])
    moco = build_moco(ns, a, dtype)
    load_state(moco, st, "init")
    if eps > 0:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for pq, pk in zip(moco.encoder_q.parameters(), moco.encoder_k.parameters()):
                pq.mul_(1 + eps * torch.randn(pq.shape, generator=g, dtype=torch.float64).to(dtype))
                pk.copy_(pq)
    opt = torch.optim.SGD(moco.parameters(), lr=float(st["lr"][0]), momentum=cfg["sgd_momentum"],
                          weight_decay=cfg["weight_decay"])
    crit = torch.nn.CrossEntropyLoss()
    loss, acc1 = [], []
    for s in range(cfg["steps"]):
        for grp in opt.param_groups:
            grp["lr"] = float(st["lr"][s])
        l, logits = pms.train_step(moco, moco, crit, opt, st["im_q"][s].to(dtype), st["im_k"][s].to(dtype),
                                   st["perm"][s].clone())
        loss.append(l.item())
        acc1.append(acc1_of(logits))
    return loss, acc1, moco


def noise_envelope(ns, st, cfg, runs, eps=ENVELOPE_EPS, log=print):
    """How far float32-sized perturbations alone move this trajectory: `runs` float64 replays of
    the recorded steps, each from the initial weights perturbed by one relative rounding
    (`run_steps` with eps, seeds 1..runs), against the unperturbed float64 replay (the file's
    loss_f64, acc1_f64, final_f64). Per step s: loss_envelope[s] = max over the runs and the
    recording's float32 run of |loss(s) - loss_f64(s)|, acc1_envelope[s] likewise; and the largest
    relative L2 of the final query-encoder parameters from final_f64.

    Why: the trajectories of contrastive training are chaotic over the first steps (the
    float32-vs-float64 distance of the parameters grows ~10x per step in the committed short
    trajectory), so one float32 run is a single draw from a wide distribution; a second correct
    float32 implementation is another draw, and must be judged against the spread."""
    torch = ns["torch"]
    S = cfg["steps"]
    l64 = [float(x) for x in st["loss_f64"]]
    a64 = [float(x) for x in st["acc1_f64"]]
    lenv = [abs(float(a) - b) for a, b in zip(st["loss"], l64)]
    aenv = [abs(float(a) - b) for a, b in zip(st["acc1"], a64)]
    names = [n for n in st if n.startswith("final_f64.encoder_q.")]
    fenv = rel_l2([(st["final." + n[len("final_f64."):]], st[n]) for n in names])
    per_run = []
    for r in range(1, runs + 1):
        t0 = time.perf_counter()
        loss, acc1, moco = run_steps(ns, st, cfg, torch.float64, eps, seed=r)
        d = [abs(a - b) for a, b in zip(loss, l64)]
        lenv = [max(e, x) for e, x in zip(lenv, d)]
        aenv = [max(e, abs(a - b)) for e, a, b in zip(aenv, acc1, a64)]
        q = dict(moco.encoder_q.named_parameters())
        f = rel_l2([(q[n[len("final_f64.encoder_q."):]], st[n]) for n in names])
        fenv = max(fenv, f)
        per_run.append({"seed": r, "loss_minus_f64_last": f"{loss[-1] - l64[-1]:+.3e}",
                        "loss_abs_diff_max": f"{max(d):.3e}", "final_encoder_q_params_rel_l2": f"{f:.3e}"})
        log(f"envelope run {r}/{runs}: |loss - loss_f64| at step {S} {d[-1]:.3e} (max {max(d):.3e}), "
            f"final parameters relative L2 {f:.3e}  [{time.perf_counter() - t0:.1f} s]", flush=True)
    info = {"runs": runs, "eps": eps, "torch": torch.__version__,
            "perturbation": "float64 replays from init.encoder_q parameters times (1 + eps * N(0,1)), "
                            "copied to encoder_k; generators seeded 1..runs",
            "final_encoder_q_params_rel_l2_envelope": f"{fenv:.3e}",
            "loss_envelope_max": f"{max(lenv):.3e}", "per_run": per_run}
    return (torch.tensor(lenv, dtype=torch.float64).float(), torch.tensor(aenv, dtype=torch.float64).float(), info)


def export(args):
    ns = pms.build_modules()
    torch = ns["torch"]
    import numpy as np
    import safetensors
    import torchvision
    import PIL
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    S, B, K = args.steps, args.batch_size, args.queue_size
    if B % args.bn_splits != 0:
        sys.exit(f"--batch-size {B} not divisible by --bn-splits {args.bn_splits}")
    if K % B != 0:
        sys.exit(f"--queue-size {K} must be a multiple of --batch-size {B}")

    t0 = time.perf_counter()
    images = read_idx_images(os.path.join(args.data_dir, "train-images-idx3-ubyte.gz"))
    steps_per_epoch = images.shape[0] // B
    init = initial_state(ns, args)
    im_q, im_k, index = make_crops(torch, images, S, B, args.seed)
    gp = torch.Generator().manual_seed(args.seed + 2)
    perm = torch.stack([torch.randperm(B, generator=gp) for _ in range(S)])
    lr = lr_schedule(args, steps_per_epoch)
    t_data = time.perf_counter() - t0
    print(f"data: {S}x{B} crop pairs in {t_data:.1f} s", flush=True)

    runs = {}
    for tag, dtype in (("f32", torch.float32), ("f64", torch.float64)):
        moco = build_moco(ns, args, dtype)
        load_state(moco, init, "init")
        opt = torch.optim.SGD(moco.parameters(), lr=float(lr[0]), momentum=SGD_MOMENTUM,
                              weight_decay=args.wd)
        runs[tag] = {"moco": moco, "opt": opt, "dtype": dtype, "loss": [], "acc1": []}
    crit = torch.nn.CrossEntropyLoss()

    param_rel = []
    t_steps = {"f32": 0.0, "f64": 0.0}
    for s in range(S):
        for tag, r in runs.items():
            ts = time.perf_counter()
            for grp in r["opt"].param_groups:
                grp["lr"] = float(lr[s])          # the exact F32 value stored in `lr`
            loss, logits = pms.train_step(r["moco"], r["moco"], crit, r["opt"], im_q[s].to(r["dtype"]),
                                          im_k[s].to(r["dtype"]), perm[s].clone())
            r["loss"].append(loss.item())
            r["acc1"].append(acc1_of(logits))
            t_steps[tag] += time.perf_counter() - ts
        param_rel.append(rel_l2([(a, b) for a, b in zip(runs["f32"]["moco"].encoder_q.parameters(),
                                                        runs["f64"]["moco"].encoder_q.parameters())]))
        if (s + 1) % max(1, S // 10) == 0 or s + 1 == S:
            print(f"step {s + 1}/{S}: lr {lr[s]:.6f} loss {runs['f32']['loss'][-1]:.6f} "
                  f"(f64 {runs['f64']['loss'][-1]:.6f}) acc1 {runs['f32']['acc1'][-1]:.2f} "
                  f"param rel L2 f32/f64 {param_rel[-1]:.2e}  [{time.perf_counter() - t0:.0f} s]", flush=True)

    m32, m64 = runs["f32"]["moco"], runs["f64"]["moco"]
    tensors = dict(init)
    tensors.update({
        "im_q": im_q.contiguous(), "im_k": im_k.contiguous(), "perm": perm.contiguous(),
        "image_index": index.contiguous(), "lr": torch.from_numpy(lr.copy()),
        "loss": torch.tensor(runs["f32"]["loss"], dtype=torch.float32),
        "acc1": torch.tensor(runs["f32"]["acc1"], dtype=torch.float32),
        "loss_f64": torch.tensor(runs["f64"]["loss"], dtype=torch.float64).float(),
        "acc1_f64": torch.tensor(runs["f64"]["acc1"], dtype=torch.float64).float(),
    })
    for side in ("encoder_q", "encoder_k"):
        for n, t in getattr(m32, side).state_dict().items():
            tensors[f"final.{side}.{n}"] = t.detach().clone().contiguous()
    tensors["final.queue"] = m32.queue.detach().clone().contiguous()
    tensors["final.queue_ptr"] = m32.queue_ptr.detach().clone().contiguous()
    for n, p in m64.encoder_q.named_parameters():
        tensors[f"final_f64.encoder_q.{n}"] = p.detach().float().contiguous()
    for k, t in tensors.items():
        assert t.dtype in (torch.float32, torch.int64), (k, t.dtype)
        assert not k.endswith("num_batches_tracked") or t.shape == (), (k, t.shape)
    assert all(int(t) == S for k, t in tensors.items() if k.startswith("final.") and k.endswith("tracked"))

    # float32 noise: float32 run against the float64 replay (unrounded f64 values)
    l32, l64 = runs["f32"]["loss"], runs["f64"]["loss"]
    dl = [abs(a - b) for a, b in zip(l32, l64)]
    at = sorted({s for s in REPORT_STEPS if s <= S} | {S})
    q32 = dict(m32.encoder_q.named_parameters())
    per_tensor = {n: rel_l2([(q32[n], p)]) for n, p in m64.encoder_q.named_parameters()}
    worst = max(per_tensor, key=per_tensor.get)
    bn_pairs = [(b, b64) for side in ("encoder_q", "encoder_k")
                for (n, b), (_, b64) in zip(getattr(m32, side).named_buffers(), getattr(m64, side).named_buffers())
                if "running" in n]
    check = {
        "loss_abs_diff_max": f"{max(dl):.3e}",
        "loss_abs_diff_max_step": dl.index(max(dl)) + 1,
        "loss_abs_diff_at_step": {str(s): f"{dl[s - 1]:.3e}" for s in at},
        "loss_rel_diff_max": f"{max(d / abs(b) for d, b in zip(dl, l64)):.3e}",
        "acc1_steps_differing": sum(int(a != b) for a, b in zip(runs["f32"]["acc1"], runs["f64"]["acc1"])),
        "acc1_abs_diff_max": f"{max(abs(a - b) for a, b in zip(runs['f32']['acc1'], runs['f64']['acc1'])):.3e}",
        "final_encoder_q_params_rel_l2": f"{param_rel[-1]:.3e}",
        "final_encoder_q_worst_tensor": worst,
        "final_encoder_q_worst_tensor_rel_l2": f"{per_tensor[worst]:.3e}",
        "final_encoder_k_params_rel_l2": f"{rel_l2(list(zip(m32.encoder_k.parameters(), m64.encoder_k.parameters()))):.3e}",
        "final_bn_running_stats_rel_l2": f"{rel_l2(bn_pairs):.3e}",
        "final_queue_rel_l2": f"{rel_l2([(m32.queue, m64.queue)]):.3e}",
        "encoder_q_params_rel_l2_at_step": {str(s): f"{param_rel[s - 1]:.3e}" for s in at},
        "per_step_loss_abs_diff": [f"{d:.3e}" for d in dl],
        "per_step_encoder_q_params_rel_l2": [f"{d:.3e}" for d in param_rel],
    }

    config = {
        "arch": "resnet20", "head": "mlp", "head_widths": [64, 64, args.dim], "dim": args.dim,
        "queue_size": K, "moco_m": args.moco_m, "moco_t": args.moco_t, "bn_splits": args.bn_splits,
        "bn_split_layout": "contiguous", "batch_size": B, "steps": S, "channels": 1, "height": 28, "width": 28,
        "sgd_momentum": SGD_MOMENTUM, "weight_decay": args.wd, "lr_base": args.lr,
        "schedule": (f"cosine over a nominal run of {args.schedule_epochs:g} epochs of {steps_per_epoch} steps, "
                     "per step at fractional epoch t = s / steps_per_epoch (s = 0-based step): "
                     "lr = lr_base * 0.5 * (1 + cos(pi * t / epochs)), no warm-up, rounded to F32 "
                     "(the run used the stored F32 values)"),
        "schedule_epochs": args.schedule_epochs, "steps_per_epoch": steps_per_epoch,
        "seed": args.seed, "init": args.init,
        "init_description": ("torchvision: conv kaiming_normal_(fan_out, relu)" if args.init == "torchvision"
                             else "pytorch: nn.Conv2d default kaiming_uniform_(a=sqrt(5))")
        + "; BN weight 1 bias 0, running stats 0/1; Linear PyTorch default",
        "dataset": "Fashion-MNIST train (60000), IDX from " + DATA_DIR, "normalize": [MEAN, STD],
        "augmentation": AUGMENTATION,
        "torch": torch.__version__, "torchvision": torchvision.__version__, "pillow": PIL.__version__,
        "numpy": np.__version__, "safetensors": safetensors.__version__,
    }
    command = ("python scripts/pytorch_trajectory.py export "
               f"--steps {S} --batch-size {B} --queue-size {K} --dim {args.dim} --bn-splits {args.bn_splits} "
               f"--moco-t {args.moco_t} --moco-m {args.moco_m} --lr {args.lr} --wd {args.wd} "
               f"--schedule-epochs {args.schedule_epochs:g} --seed {args.seed} --init {args.init} "
               f"--envelope-runs {args.envelope_runs} --out FILE")
    notes = (
        "Tensors (F32 unless noted): init.encoder_{q,k}.<torchvision state-dict name> (parameters, BN "
        "running_mean/running_var F32, num_batches_tracked I64 of shape [] as in the PyTorch state dict; "
        "init.encoder_k is a copy of init.encoder_q), init.queue [dim,K] random unit columns, init.queue_ptr "
        "I64 [1] = 0; im_q, im_k [S,B,1,28,28]; perm I64 [S,B]; image_index I64 [S,B] (training-set index, "
        "information only); lr [S]; loss, acc1 [S] (float32 run); loss_f64, acc1_f64 [S] (float64 replay, "
        "rounded to F32); final.encoder_{q,k}.* (parameters and buffers), final.queue, final.queue_ptr I64 [1] "
        "after the S float32 steps; final_f64.encoder_q.<parameter> after the S float64 steps (F32). "
        + ORDER + " Float64 replay: the same code with model.double() and inputs .double(), from the same "
        "init, crops, perms and lr, stepped in lockstep with the float32 run. float64_check: float32 vs float64 "
        "(unrounded): |loss - loss_f64| per step, relative L2 of the parameters ||p32 - p64|| / ||p64|| over all "
        f"encoder_q parameters after each step. Summary: max |loss - loss_f64| {check['loss_abs_diff_max']} "
        f"(step {check['loss_abs_diff_max_step']}), final encoder_q parameters relative L2 "
        f"{check['final_encoder_q_params_rel_l2']}. Generated on the CPU, 1 thread, "
        "torch.use_deterministic_algorithms(True); bitwise reproducible for the same torch/torchvision/Pillow "
        "build and CPU.")
    meta = {"format": FORMAT, "config": json.dumps(config, sort_keys=True), "command": command,
            "notes": notes, "float64_check": json.dumps(check, sort_keys=True)}
    if args.envelope_runs > 0:
        t_env = time.perf_counter()
        tensors["loss_envelope"], tensors["acc1_envelope"], info = noise_envelope(ns, tensors, config, args.envelope_runs)
        meta["envelope"] = json.dumps(info, sort_keys=True)
        print(f"noise envelope: {args.envelope_runs} perturbed float64 runs in {time.perf_counter() - t_env:.1f} s; "
              f"max {info['loss_envelope_max']}", flush=True)

    save_canonical(tensors, meta, args.out)   # also reads the file back and checks it
    total = time.perf_counter() - t0
    print(f"wrote {args.out}: {len(tensors)} tensors, {os.path.getsize(args.out)} bytes; "
          f"{total:.1f} s (data {t_data:.1f} s, float32 steps {t_steps['f32']:.1f} s, "
          f"float64 steps {t_steps['f64']:.1f} s), torch {torch.__version__}")
    print("float32 vs float64: " + ", ".join(f"{k} {v}" for k, v in check.items() if not k.startswith("per_step")))


def read_trajectory(path):
    """The PyTorch modules (1 thread, deterministic) and a trajectory file's metadata, tensors and
    config; exits with a message if the file is not a trajectory."""
    ns = pms.build_modules()
    torch = ns["torch"]
    from safetensors import safe_open
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    with safe_open(path, "pt") as f:
        meta = dict(f.metadata())
        if meta.get("format") != FORMAT:
            sys.exit(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
        st = {k: f.get_tensor(k) for k in f.keys()}
    return ns, torch, meta, st, json.loads(meta["config"])


def verify(args):
    """Replay the float32 run from the file alone (init, crops, perms, lr, config), as a second
    implementation would, and compare with the stored loss, acc1 and final state."""
    ns, torch, meta, st, cfg = read_trajectory(args.file)
    loss, acc1, moco = run_steps(ns, st, cfg, torch.float32)
    got = {"loss": torch.tensor(loss, dtype=torch.float32), "acc1": torch.tensor(acc1, dtype=torch.float32),
           "final.queue": moco.queue, "final.queue_ptr": moco.queue_ptr}
    for side in ("encoder_q", "encoder_k"):
        for n, t in getattr(moco, side).state_dict().items():
            got[f"final.{side}.{n}"] = t
    worst = max(((got[k].double() - st[k].double()).abs().max().item(), k) for k in got)
    same = all(torch.equal(got[k], st[k]) for k in got)
    print(f"{args.file}: replayed {cfg['steps']} steps; {len(got)} tensors compared; "
          f"{'bitwise identical' if same else 'DIFFERENT'} (max |diff| {worst[0]:.3e} in {worst[1]})")
    chk = json.loads(meta["float64_check"])
    print(f"  stored float32 noise: max |loss - loss_f64| {chk['loss_abs_diff_max']}, "
          f"final encoder_q parameters relative L2 {chk['final_encoder_q_params_rel_l2']}")
    if not same:
        sys.exit(1)


def envelope(args):
    """Add (or replace) the noise envelope of an existing trajectory file: `--runs` perturbed
    float64 replays from the file alone (no torchvision needed), written to --out with every
    other tensor and metadata entry unchanged."""
    if os.path.exists(args.out):
        sys.exit(f"{args.out} exists: give a new path (the input is never overwritten)")
    ns, torch, meta, st, cfg = read_trajectory(args.file)
    # the unperturbed float64 replay must reproduce the file's: otherwise this torch computes
    # another trajectory and its spread says nothing about the file's
    l64, _, _ = run_steps(ns, st, cfg, torch.float64)
    drift = max(abs(a - float(b)) / max(abs(float(b)), 1e-30) for a, b in zip(l64, st["loss_f64"]))
    if drift > 1e-6:
        sys.exit(f"this torch ({torch.__version__}) replays loss_f64 only to {drift:.1e} relative: "
                 "re-export the trajectory instead")
    st["loss_envelope"], st["acc1_envelope"], info = noise_envelope(ns, st, cfg, args.runs, args.eps)
    info["float64_replay_relative_drift"] = f"{drift:.1e}"
    meta["envelope"] = json.dumps(info, sort_keys=True)
    save_canonical(st, meta, args.out)
    print(f"wrote {args.out}: loss envelope per step {[f'{float(x):.2e}' for x in st['loss_envelope']][:10]}"
          f"{' ...' if cfg['steps'] > 10 else ''}; max {info['loss_envelope_max']}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="run the S steps (float32 and float64) and write the trajectory file")
    e.add_argument("--steps", type=int, default=200)
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--queue-size", type=int, default=4096)
    e.add_argument("--dim", type=int, default=128)
    e.add_argument("--bn-splits", type=int, default=8, help="split-BN chunks (contiguous)")
    e.add_argument("--moco-t", type=float, default=0.1)
    e.add_argument("--moco-m", type=float, default=0.99)
    e.add_argument("--lr", type=float, default=0.06, help="base learning rate")
    e.add_argument("--wd", type=float, default=5e-4)
    e.add_argument("--schedule-epochs", type=float, default=200,
                   help="length of the nominal cosine schedule the S steps start (epochs)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--init", choices=("torchvision", "pytorch"), default="torchvision",
                   help="conv init: kaiming_normal fan_out (torchvision) or nn.Conv2d's default (pytorch)")
    e.add_argument("--data-dir", default=DATA_DIR)
    e.add_argument("--envelope-runs", type=int, default=8,
                   help="perturbed float64 replays for the noise envelope (0: none; see noise_envelope)")
    e.add_argument("--out", required=True)
    v = sub.add_parser("verify", help="replay the float32 steps from a trajectory file alone and compare")
    v.add_argument("--file", required=True)
    n = sub.add_parser("envelope", help="add the noise envelope (perturbed float64 replays) to a trajectory file")
    n.add_argument("--file", required=True)
    n.add_argument("--runs", type=int, default=8)
    n.add_argument("--eps", type=float, default=ENVELOPE_EPS, help="relative perturbation of the initial weights")
    n.add_argument("--out", required=True, help="new file (must not exist)")
    args = ap.parse_args(argv)
    {"export": export, "verify": verify, "envelope": envelope}[args.cmd](args)


if __name__ == "__main__":
    main()
