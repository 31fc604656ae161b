#!/usr/bin/env python3
"""swift-moco's augmentation against torchvision's transforms (issue 16, item 2).

Reads the JSON written by `moco augstats` and compares it with torchvision running the MoCo v2
pipeline of scripts/pytorch_moco_train.py (make_augmentation, PIL 'L' images, the official
semantics) on the same images:

1. Distributions of the random choices, each side drawing its own: crop scale (area fraction),
   log aspect ratio, crop centre; ColorJitter rate, operation order and factors; blur rate and
   sigma; flip rate. Two-sample Kolmogorov-Smirnov (continuous values), two-proportion z (rates),
   chi-square (the 24 jitter orders).
2. Distributions of the output: a 32-bin histogram of the un-normalised pixels (total variation
   distance), and each view's pixel mean and standard deviation (KS).
3. The same parameters on the same image: the first views swift-moco dumped pixel by pixel are
   made again by torchvision's functions with swift-moco's parameters, (a) on float tensors
   (torchvision's tensor kernels: no 8-bit rounding; blur with swift-moco's kernel size), (b) on PIL
   images as the official pipeline does (8-bit after every operation; the PIL blur the official
   code uses, and torchvision's 3-tap GaussianBlur), reporting max and mean |difference| in units of
   1/255 for views without blur, and for views with blur.

Usage (repository root, PyTorch venv; versions used: torch 2.15.0, torchvision 0.29.2, Pillow 13.0):
  moco augstats --blur-sigma-max 2 --views 20000 --out /tmp/aug.json
  python scripts/augment_stats.py /tmp/aug.json [--blur pil|torchvision] [--json OUT] [--markdown]

Exit status 1 when a check that should hold fails: a KS or proportion test of a random choice
with p < 1e-3, or the tensor-path replay (a) of a view without blur off by more than 1e-4 (float32
rounding; 1e-4 is ~0.03/255). The PIL differences (b) and the blur's are reported, not checked:
they are differences of recipe (8-bit intermediates; PIL's blur), documented in docs/training.md.
"""

import argparse
import importlib.util
import json
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load_train_module():
    spec = importlib.util.spec_from_file_location("pytorch_moco_train", os.path.join(HERE, "pytorch_moco_train.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


# ----------------------------------------------------------------------------------------------
# Statistics (numpy only)
# ----------------------------------------------------------------------------------------------

def ks_2samp(a, b):
    """Two-sample Kolmogorov-Smirnov: D = sup |F_a - F_b| and the asymptotic p-value
    Q(sqrt(n_e) D), Q(l) = 2 sum_k (-1)^(k-1) exp(-2 k^2 l^2), n_e = n_a n_b / (n_a + n_b)
    (Smirnov 1948; conservative for discrete data)."""
    import numpy as np
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    if len(a) == 0 or len(b) == 0:
        return float("nan"), float("nan")
    grid = np.concatenate([a, b])
    d = float(np.max(np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b))))
    ne = len(a) * len(b) / (len(a) + len(b))
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    if lam < 1e-3:
        return d, 1.0
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, min(1.0, max(0.0, p))


def prop_test(x1, n1, x2, n2):
    """Two-proportion z test: rates and the two-sided p-value."""
    p1, p2 = x1 / n1, x2 / n2
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(max(p * (1 - p) * (1 / n1 + 1 / n2), 1e-300))
    z = (p1 - p2) / se
    return p1, p2, math.erfc(abs(z) / math.sqrt(2))


def chi2_counts(c1, c2):
    """Chi-square test of homogeneity of two count vectors; p from the regularised gamma."""
    import torch
    import numpy as np
    c1, c2 = np.asarray(c1, float), np.asarray(c2, float)
    keep = (c1 + c2) > 0
    c1, c2 = c1[keep], c2[keep]
    n1, n2 = c1.sum(), c2.sum()
    tot = c1 + c2
    e1, e2 = tot * n1 / (n1 + n2), tot * n2 / (n1 + n2)
    x = float(((c1 - e1) ** 2 / e1).sum() + ((c2 - e2) ** 2 / e2).sum())
    df = len(tot) - 1
    p = float(1 - torch.special.gammainc(torch.tensor(df / 2, dtype=torch.float64), torch.tensor(x / 2, dtype=torch.float64)))
    return x, df, p


# ----------------------------------------------------------------------------------------------
# torchvision's side, recording its random choices
# ----------------------------------------------------------------------------------------------

class Recorder:
    """Wraps the get_params of the transforms in the pipeline (and hflip, and the blur) so that
    each view's random choices are recorded while the unmodified transforms run."""

    def __init__(self, tm, blur):
        import torchvision.transforms as T
        import torchvision.transforms.functional as F
        self.cur = None
        rec = self
        rrc, cj, gb, hflip = T.RandomResizedCrop.get_params, T.ColorJitter.get_params, T.GaussianBlur.get_params, F.hflip

        def rrc_params(img, scale, ratio):
            i, j, h, w = rrc(img, scale, ratio)
            rec.cur.update(top=i, left=j, height=h, width=w)
            return i, j, h, w

        def cj_params(brightness, contrast, saturation, hue):
            out = cj(brightness, contrast, saturation, hue)
            fn, b, c, s, h = out
            rec.cur.update(jitter=1, jitter_order="".join(str(int(k)) for k in fn), brightness=float(b),
                           contrast=float(c), saturation=float(s), hue=float(h))
            return out

        def gb_params(sigma_min, sigma_max):
            s = gb(sigma_min, sigma_max)
            rec.cur["blur_sigma"] = float(s)
            return s

        def flip(img):
            rec.cur["flip"] = 1
            return hflip(img)

        self._restore = (T, F, tm, rrc, cj, gb, hflip, tm.PILGaussianBlur.__call__)
        T.RandomResizedCrop.get_params = staticmethod(rrc_params)
        T.ColorJitter.get_params = staticmethod(cj_params)
        T.GaussianBlur.get_params = staticmethod(gb_params)
        F.hflip = flip

        def pil_blur(this, img):
            from PIL import ImageFilter
            s = random.uniform(this.sigma[0], this.sigma[1])
            rec.cur["blur_sigma"] = s
            return img.filter(ImageFilter.GaussianBlur(radius=s))
        tm.PILGaussianBlur.__call__ = pil_blur

    def uninstall(self):
        T, F, tm, rrc, cj, gb, hflip, blur = self._restore
        T.RandomResizedCrop.get_params = staticmethod(rrc)
        T.ColorJitter.get_params = staticmethod(cj)
        T.GaussianBlur.get_params = staticmethod(gb)
        F.hflip = hflip
        tm.PILGaussianBlur.__call__ = blur

    def begin(self):
        self.cur = dict(jitter=0, jitter_order="", brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0,
                        blur_sigma=0.0, flip=0)

    def end(self):
        r, self.cur = self.cur, None
        return r


def torchvision_side(tm, sw, images, blur):
    """The official pipeline on the same images: image i seeded as TwoCropDataset seeds it, views
    0 and 1 drawn one after the other. Returns per-view records, the pixel histogram and each
    view's mean and std, in swift-moco's layout."""
    import numpy as np
    import torch
    from PIL import Image
    mean, std = sw["image_mean"][0], sw["image_std"][0]
    a = sw["augment"]
    args = argparse.Namespace(blur=blur, blur_sigma_min=a["blurSigmaMin"], blur_sigma_max=a["blurSigmaMax"])
    rec = Recorder(tm, blur)
    transform = tm.make_augmentation(args, mean, std, side=sw["image_width"])
    views = sw["views"]
    cols = {k: [] for k in ("top", "left", "height", "width", "flip", "jitter", "jitter_order", "brightness",
                            "contrast", "saturation", "hue", "blur_sigma")}
    hist = np.zeros(256, np.int64)
    vmean, vstd = [], []
    for i in range((views + 1) // 2):
        s = tm.mix_seed(sw["seed"], 0xA06, sw["epoch"], i)
        torch.default_generator.manual_seed(s)
        random.seed(s)
        img = Image.fromarray(images[i])
        for v in range(2):
            if 2 * i + v >= views:
                break
            rec.begin()
            x = transform(img).numpy().astype(np.float64) * std + mean
            r = rec.end()
            for k in cols:
                cols[k].append(r[k])
            hist += np.bincount(np.clip(np.rint(x * 255), 0, 255).astype(np.int64).ravel(), minlength=256)
            vmean.append(float(x.mean()))
            vstd.append(float(x.std()))
        if (i + 1) % 2000 == 0:
            print(f"  torchvision: {2 * (i + 1)} / {views} views", file=sys.stderr)
    rec.uninstall()
    cols.update(histogram=hist.tolist(), view_mean=vmean, view_std=vstd, views=views)
    return cols


# ----------------------------------------------------------------------------------------------
# Same parameters, same image
# ----------------------------------------------------------------------------------------------

def replay(sw, images, k, mode, blur):
    """View k of swift-moco made by torchvision's functions with swift-moco's parameters.
    mode "tensor": float tensors (torchvision's tensor kernels); "pil": PIL images as in the
    official pipeline. blur: "pil" (ImageFilter.GaussianBlur(radius=sigma)) or "torchvision"
    (GaussianBlur with swift-moco's 3-tap kernel). Returns [H, W] float64 in 0...1."""
    import numpy as np
    import torch
    import torchvision.transforms.functional as F
    from torchvision.transforms import InterpolationMode
    from PIL import Image, ImageFilter
    H, W = sw["image_height"], sw["image_width"]
    img = images[k // 2]
    x = torch.from_numpy(img.astype(np.float32) / 255).unsqueeze(0) if mode == "tensor" else Image.fromarray(img)
    x = F.resized_crop(x, sw["top"][k], sw["left"][k], sw["height"][k], sw["width"][k], [H, W],
                       InterpolationMode.BILINEAR, antialias=True)
    for op in sw["jitter_order"][k]:
        if op == "0":
            x = F.adjust_brightness(x, sw["brightness"][k])
        elif op == "1":
            x = F.adjust_contrast(x, sw["contrast"][k])
        elif op == "2":
            x = F.adjust_saturation(x, sw["saturation"][k])
        else:
            x = F.adjust_hue(x, sw["hue"][k])
    s = sw["blur_sigma"][k]
    if s > 0 and blur == "pil" and mode == "pil":
        x = x.filter(ImageFilter.GaussianBlur(radius=s))
    if mode == "pil":
        x = F.to_tensor(x)
    if s > 0 and not (blur == "pil" and mode == "pil"):
        x = swift_kernel_blur(x, s, sw["augment"].get("blurKernel", "auto"), min(H, W))
    if sw["flip"][k]:
        x = F.hflip(x)
    return x.squeeze(0).numpy().astype(np.float64)


def swift_kernel_blur(x, sigma, kernel, side):
    """swift-moco's --blur-kernel on a float tensor [1, H, W]: auto (10% of the side, odd, at least
    3) or an odd size -> torchvision's F.gaussian_blur (reflect padding); full -> taps out to
    ceil(3 sigma) (at most side - 1), replicate padding, the same normalised Gaussian weights."""
    import torch
    import torch.nn.functional as Fn
    import torchvision.transforms.functional as F
    if kernel == "full":
        r = max(1, min(math.ceil(3 * sigma), side - 1))
        t = torch.arange(-r, r + 1, dtype=torch.float32)
        w = torch.exp(-0.5 * (t / sigma) ** 2)
        w = w / w.sum()
        y = Fn.pad(x.unsqueeze(0), (r, r, r, r), mode="replicate")
        y = Fn.conv2d(y, w.view(1, 1, 1, -1))
        return Fn.conv2d(y, w.view(1, 1, -1, 1)).squeeze(0)
    ksize = max(3, side // 10) if kernel == "auto" else int(kernel)
    ksize += 1 - ksize % 2
    ksize = min(ksize, 2 * (side - 1) + 1)
    return F.gaussian_blur(x, [ksize, ksize], [sigma, sigma])


def replay_table(sw, images):
    import numpy as np
    dumped = sw["dump"]["pixels"]
    groups = {}
    for k, px in enumerate(dumped):
        a = np.asarray(px, np.float64).reshape(sw["image_height"], sw["image_width"])
        blurred = sw["blur_sigma"][k] > 0
        for name, mode, blur in (("tensor", "tensor", "swift"), ("PIL, swift-moco's blur", "pil", "swift"),
                                 ("PIL, PIL blur", "pil", "pil")):
            d = np.abs(replay(sw, images, k, mode, blur) - a)
            g = groups.setdefault((name, blurred), [])
            g.append((float(d.max()), float(d.mean())))
    out = []
    for (name, blurred), ds in sorted(groups.items()):
        mx = max(m for m, _ in ds)
        mean = sum(m for _, m in ds) / len(ds)
        out.append(dict(path=name, blurred=blurred, views=len(ds), max_abs=mx, mean_abs=mean))
    return out


# ----------------------------------------------------------------------------------------------

def compare(sw, tv):
    import numpy as np
    rows, failures = [], []
    n = sw["views"]

    def arr(d, k):
        return np.asarray(d[k], np.float64)

    def add_ks(name, a, b, checked=True):
        d, p = ks_2samp(a, b)
        rows.append(dict(quantity=name, swift=f"{np.mean(a):.4f} ± {np.std(a):.4f}", torchvision=f"{np.mean(b):.4f} ± {np.std(b):.4f}",
                         test="KS", statistic=d, p=p, n=(len(a), len(b))))
        if checked and p < 1e-3:
            failures.append(f"{name}: KS D {d:.4f}, p {p:.2g}")

    def add_rate(name, a, b):
        p1, p2, p = prop_test(float(np.sum(a)), len(a), float(np.sum(b)), len(b))
        rows.append(dict(quantity=name, swift=f"{p1:.4f}", torchvision=f"{p2:.4f}", test="z", statistic=p1 - p2, p=p,
                         n=(len(a), len(b))))
        if p < 1e-3:
            failures.append(f"{name}: {p1:.4f} vs {p2:.4f}, p {p:.2g}")

    side = float(sw["image_height"] * sw["image_width"])
    for d in (sw, tv):
        d["_scale"] = arr(d, "height") * arr(d, "width") / side
        d["_logratio"] = np.log(arr(d, "width") / arr(d, "height"))
        d["_cx"] = arr(d, "left") + arr(d, "width") / 2
        d["_cy"] = arr(d, "top") + arr(d, "height") / 2
    add_ks("crop scale (area fraction)", sw["_scale"], tv["_scale"])
    add_ks("crop log aspect ratio (w/h)", sw["_logratio"], tv["_logratio"])
    add_ks("crop centre x", sw["_cx"], tv["_cx"])
    add_ks("crop centre y", sw["_cy"], tv["_cy"])
    add_rate("jitter applied", arr(sw, "jitter"), arr(tv, "jitter"))
    js, jt = arr(sw, "jitter") > 0, arr(tv, "jitter") > 0
    for k in ("brightness", "contrast"):
        add_ks(f"{k} factor (when jittered)", arr(sw, k)[js], arr(tv, k)[jt])
    orders = sorted(set(o for o in sw["jitter_order"] + tv["jitter_order"] if o))
    cs = [sum(1 for o in sw["jitter_order"] if o == x) for x in orders]
    ct = [sum(1 for o in tv["jitter_order"] if o == x) for x in orders]
    x2, df, p = chi2_counts(cs, ct)
    rows.append(dict(quantity=f"jitter order ({len(orders)} permutations)", swift="", torchvision="", test="chi2",
                     statistic=x2, p=p, n=(sum(cs), sum(ct))))
    if p < 1e-3:
        failures.append(f"jitter order: chi2 {x2:.1f} (df {df}), p {p:.2g}")
    bs, bt = arr(sw, "blur_sigma") > 0, arr(tv, "blur_sigma") > 0
    add_rate("blur applied", bs, bt)
    add_ks("blur sigma (when blurred)", arr(sw, "blur_sigma")[bs], arr(tv, "blur_sigma")[bt])
    add_rate("flip applied", arr(sw, "flip"), arr(tv, "flip"))
    # Output: these differ by recipe (8-bit PIL intermediates, the blur), reported only.
    hs = np.asarray(sw["histogram"], np.float64).reshape(32, 8).sum(1)
    ht = np.asarray(tv["histogram"], np.float64).reshape(32, 8).sum(1)
    tvd = 0.5 * float(np.abs(hs / hs.sum() - ht / ht.sum()).sum())
    rows.append(dict(quantity="pixel histogram (32 bins)", swift=f"mean {np.dot(np.arange(256), sw['histogram']) / np.sum(sw['histogram']) / 255:.4f}",
                     torchvision=f"mean {np.dot(np.arange(256), tv['histogram']) / np.sum(tv['histogram']) / 255:.4f}",
                     test="TV distance", statistic=tvd, p=float("nan"), n=(n, n)))
    add_ks("view pixel mean", arr(sw, "view_mean"), arr(tv, "view_mean"), checked=False)
    add_ks("view pixel std", arr(sw, "view_std"), arr(tv, "view_std"), checked=False)
    sb, tb = bs, bt
    add_ks("view pixel std, blurred views", arr(sw, "view_std")[sb], arr(tv, "view_std")[tb], checked=False)
    add_ks("view pixel std, unblurred views", arr(sw, "view_std")[~sb], arr(tv, "view_std")[~tb], checked=False)
    return rows, failures


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("swift_json", help="output of moco augstats")
    ap.add_argument("--blur", choices=("pil", "torchvision"), default="pil",
                    help="torchvision side's blur: the official PIL one (default) or the 3-tap GaussianBlur")
    ap.add_argument("--data-dir", default=None, help="Fashion-MNIST folder (default: the script's)")
    ap.add_argument("--json", help="write the comparison as JSON")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    args = ap.parse_args(argv)
    import numpy as np
    import torch
    import torchvision
    import PIL
    torch.set_num_threads(1)
    with open(args.swift_json) as f:
        sw = json.load(f)
    if sw.get("data") != "fashion-mnist" or sw.get("channels") != 1:
        sys.exit(f"{args.swift_json}: only fashion-mnist (1 channel) is supported, got {sw.get('data')}")
    tm = load_train_module()
    images = tm.load_fashion_mnist(args.data_dir or tm.DATA_DIR)[0]
    print(f"torchvision {torchvision.__version__}, torch {torch.__version__}, Pillow {PIL.__version__}; "
          f"{sw['views']} views, seed {sw['seed']}, epoch {sw['epoch']}, blur {args.blur}", file=sys.stderr)
    tv = torchvision_side(tm, sw, images, args.blur)
    rows, failures = compare(sw, tv)
    rep = replay_table(sw, images)
    bad = [r for r in rep if r["path"] == "tensor" and not r["blurred"] and r["max_abs"] > 1e-4]
    for r in bad:
        failures.append(f"tensor-path replay without blur: max |diff| {r['max_abs']:.2e} > 1e-4")
    if args.markdown:
        print("| quantity | swift-moco | torchvision | test | statistic | p |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            p = "" if math.isnan(r["p"]) else f"{r['p']:.3g}"
            print(f"| {r['quantity']} | {r['swift']} | {r['torchvision']} | {r['test']} | {r['statistic']:.4f} | {p} |")
        print()
        print("| same parameters, same image: torchvision path | blur | views | max abs diff (x255) | mean abs diff (x255) |")
        print("|---|---|---|---|---|")
        for r in rep:
            print(f"| {r['path']} | {'yes' if r['blurred'] else 'no'} | {r['views']} | {255 * r['max_abs']:.4f} | {255 * r['mean_abs']:.4f} |")
    else:
        for r in rows:
            print(f"{r['quantity']:<34} swift {r['swift']:<18} torchvision {r['torchvision']:<18} {r['test']} {r['statistic']:.4f} p {r['p']:.3g}")
        for r in rep:
            print(f"replay {r['path']:<16} blur {'yes' if r['blurred'] else 'no ':<3} {r['views']:4d} views: max |diff| {255 * r['max_abs']:.4f}/255, mean {255 * r['mean_abs']:.4f}/255")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(rows=rows, replay=rep, failures=failures, versions=dict(
                torch=torch.__version__, torchvision=torchvision.__version__, pillow=PIL.__version__)), f, indent=1)
    if failures:
        print("FAIL: " + "; ".join(failures), file=sys.stderr)
        return 1
    print("OK: the random choices match torchvision's distributions; the tensor-path replay matches", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
