#!/usr/bin/python3
"""PyTorch-eager side of bench/embed.bench.ts (run with Debian's /usr/bin/python3,
which has python3-torch 1.13; not meant to be run by hand).

    embed_eager.py prepare DIR       weights (torch.save state dicts, fixed seed) and
                                     inputs (raw float32) for the bench; prints JSON
    embed_eager.py serve THREADS DIR [ARCH,...]
                                     a timing server: one JSON command per stdin line
                                     ({"cmd": "load", "arch"}, {"arch", "batch", "out"?},
                                     {"cmd": "profile", "arch", "batch"}, {"cmd": "quit"}),
                                     one JSON answer per stdout line
    embed_eager.py mm                2048² torch.mm GFLOP/s with 1 and 2 threads and the
                                     core OpenBLAS chose; prints JSON

The model is the DINO ViT (facebookresearch/dino vision_transformer.py) with the
AnomalyNCD mask guidance written the straightforward way: logits q @ k^T * scale,
the [CLS] query row masked_fill'ed with -1e9 where the 8x8 / 16x16 average-pooled
mask is < 0.5 (same mask for every head), softmax, @ v; plain torch ops under
torch.no_grad(), nothing fused, no TorchScript.
"""
import ctypes
import json
import resource
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

ARCHS = {
    # name: (patch, dim, depth, heads)
    "dino_vits16": (16, 384, 12, 6),
    "dino_vitb8": (8, 768, 12, 12),
}
MASK_LAYERS = 9
IMG = 224
MAX_BATCH = 32
SEED = 20251128


# --------------------------------------------------------------------------
# The eager model
# --------------------------------------------------------------------------
class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        if mask is not None:
            # mask: [B, N] pooled values ([CLS] = 1); only the [CLS] query row, every head
            m = mask.unsqueeze(1).expand(B, self.num_heads, N)
            attn[:, :, 0, :] = attn[:, :, 0, :].masked_fill(m < 0.5, -1e9)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Block(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * 4)

    def forward(self, x, mask=None):
        x = x + self.attn(self.norm1(x), mask)
        x = x + self.mlp(self.norm2(x))
        return x


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.patch_size = patch
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class MaskGuidedViT(nn.Module):
    def __init__(self, patch, dim, depth, heads):
        super().__init__()
        self.patch_embed = PatchEmbed(patch, dim)
        n = (IMG // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def interpolate_pos_encoding(self, x, w, h):
        npatch = x.shape[1] - 1
        N = self.pos_embed.shape[1] - 1
        if npatch == N and w == h:
            return self.pos_embed
        raise NotImplementedError("the bench only uses the checkpoint's own grid")

    def prepare_tokens(self, x):
        B, nc, w, h = x.shape
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        return x + self.interpolate_pos_encoding(x, w, h)

    def forward(self, x, mask):
        p = self.patch_embed.patch_size
        pooled = nn.functional.avg_pool2d(mask, kernel_size=p, stride=p).flatten(1)
        pooled = torch.cat([torch.ones(pooled.shape[0], 1, dtype=pooled.dtype), pooled], dim=1)
        x = self.prepare_tokens(x)
        first = len(self.blocks) - MASK_LAYERS
        for i, blk in enumerate(self.blocks):
            x = blk(x, pooled if i >= first else None)
        return self.norm(x)[:, 0]


def build(arch):
    """The model with uninitialised parameters (they are always overwritten: by
    randomise() or load_state_dict()); skipping PyTorch's default init saves seconds."""
    patch, dim, depth, heads = ARCHS[arch]
    saved = [(c, c.__dict__.get("reset_parameters")) for c in (nn.Linear, nn.LayerNorm, nn.Conv2d)]
    try:
        for c, _ in saved:
            c.reset_parameters = lambda self: None
        return MaskGuidedViT(patch, dim, depth, heads).eval()
    finally:
        for c, f in saved:
            if f is None:
                del c.reset_parameters
            else:
                c.reset_parameters = f


# --------------------------------------------------------------------------
# prepare: weights and inputs
# --------------------------------------------------------------------------
def randomise(model, g):
    """DINO-like random weights, a little livelier than the init (std 0.02) so that
    attention is not uniform and the check of equal outputs means something."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            elif "qkv.weight" in name:
                p.copy_(0.08 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.03 * torch.randn(p.shape, generator=g))


def dino_init(model, g):
    """The weights a randomly initialised DINO ViT starts from (timm/DINO init: linear and
    patch-embedding weights and the [CLS]/position embeddings ~ N(0, 0.02) truncated at 2
    sigma, biases 0, layer norms 1/0): what `randomInit` backbones in the library hold."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith(".bias"):
                p.zero_()
            else:
                p.copy_((0.02 * torch.randn(p.shape, generator=g)).clamp_(-0.04, 0.04))


def blob_masks(n, g):
    """Soft blob masks with ~30 % anomalous area: a sum of three random Gaussian bumps
    (one of them elongated), thresholded at the 70th percentile, with a soft 3-px edge."""
    yy, xx = torch.meshgrid(torch.arange(IMG, dtype=torch.float64), torch.arange(IMG, dtype=torch.float64), indexing="ij")
    out = torch.empty(n, 1, IMG, IMG, dtype=torch.float32)
    for i in range(n):
        r = torch.rand(12, generator=g, dtype=torch.float64)
        field = torch.zeros(IMG, IMG, dtype=torch.float64)
        for j in range(3):
            cy = IMG * (0.3 + 0.4 * r[4 * j])
            cx = IMG * (0.3 + 0.4 * r[4 * j + 1])
            sy = IMG * (0.10 + 0.12 * r[4 * j + 2])
            sx = sy * (0.5 + 1.5 * r[4 * j + 3])
            field += torch.exp(-((yy - cy) ** 2) / (2 * sy**2) - ((xx - cx) ** 2) / (2 * sx**2))
        thr = torch.quantile(field.flatten(), 0.70)
        # soft edge: the field's gradient near the threshold is ~ (max - thr) / (IMG/4)
        width = float(field.max() - thr) / (IMG / 4) * 1.5
        out[i, 0] = torch.sigmoid((field - thr) / width).float()
    return out


def prepare(d):
    g = torch.Generator().manual_seed(SEED)
    info = {"weights": {}}
    for arch in ARCHS:
        m = build(arch)
        randomise(m, g)
        path = os.path.join(d, f"{arch}.pth")
        torch.save(m.state_dict(), path)
        info["weights"][arch] = {"path": path, "params": sum(p.numel() for p in m.parameters())}
        dino_init(m, g)
        torch.save(m.state_dict(), os.path.join(d, f"{arch}-init.pth"))
    images = torch.randn(MAX_BATCH, 3, IMG, IMG, generator=g, dtype=torch.float32)
    masks = blob_masks(MAX_BATCH, g)
    images.numpy().tofile(os.path.join(d, "images.f32"))
    masks.numpy().tofile(os.path.join(d, "masks.f32"))
    info["maskArea"] = float(masks.mean())
    info["maskHard"] = float((masks >= 0.5).float().mean())
    stats = {}
    for arch, (patch, *_rest) in ARCHS.items():
        pooled = nn.functional.avg_pool2d(masks, kernel_size=patch, stride=patch).flatten(1)
        frac = (pooled >= 0.5).float().mean(1)
        stats[arch] = {"patches": pooled.shape[1], "openMin": float(frac.min()), "openMean": float(frac.mean()), "openMax": float(frac.max())}
    info["pooled"] = stats
    # the guidance really changes the output: guided vs an all-open mask, ViT-S/16, 2 images
    m = build("dino_vits16")
    m.load_state_dict(torch.load(info["weights"]["dino_vits16"]["path"]))
    with torch.no_grad():
        a = m(images[:2], masks[:2])
        b = m(images[:2], torch.ones_like(masks[:2]))
    info["maskEffect"] = {"maxAbs": float((a - b).abs().max()), "meanAbs": float((a - b).abs().mean()), "outAbsMean": float(a.abs().mean())}
    info["images"] = os.path.join(d, "images.f32")
    info["masks"] = os.path.join(d, "masks.f32")
    info["maxBatch"] = MAX_BATCH
    info["torch"] = torch.__version__
    info["python"] = sys.version.split()[0]
    info["corename"] = blas_corename()
    print(json.dumps(info))


# --------------------------------------------------------------------------
# serve: timed forwards
# --------------------------------------------------------------------------
def serve(threads, d, archs):
    torch.set_num_threads(threads)
    images = torch.from_numpy(np.fromfile(os.path.join(d, "images.f32"), dtype="float32")).reshape(MAX_BATCH, 3, IMG, IMG)
    masks = torch.from_numpy(np.fromfile(os.path.join(d, "masks.f32"), dtype="float32")).reshape(MAX_BATCH, 1, IMG, IMG)
    models = {}

    def load(arch, weights=""):
        m = build(arch)
        m.load_state_dict(torch.load(os.path.join(d, f"{arch}{'-' + weights if weights else ''}.pth")))
        models[arch] = m

    for arch in archs:
        load(arch)
    print(json.dumps({"ready": True, "threads": torch.get_num_threads(), "blasThreads": blas_threads(), "corename": blas_corename()}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("cmd") == "quit":
            break
        try:
            if cmd.get("cmd") == "load":
                w0 = time.perf_counter()
                load(cmd["arch"], cmd.get("weights", ""))
                print(json.dumps({"loadMs": (time.perf_counter() - w0) * 1e3}), flush=True)
                continue
            arch, batch = cmd["arch"], cmd["batch"]
            x = images[:batch].contiguous()
            mk = masks[:batch].contiguous()
            if cmd.get("cmd") == "profile":
                print(json.dumps(profile(models[arch], x, mk, arch, batch, threads)), flush=True)
                continue
            # "bf16": PyTorch's own CPU autocast (bfloat16), for comparison with ours
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(cmd.get("bf16"))):
                f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                w0, c0 = time.perf_counter(), time.process_time()
                out = models[arch](x, mk).float()
                w1, c1 = time.perf_counter(), time.process_time()
                f1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            if cmd.get("out"):
                out.contiguous().numpy().tofile(cmd["out"])
            print(json.dumps({"wallMs": (w1 - w0) * 1e3, "cpuMs": (c1 - c0) * 1e3, "minorFaults": f1 - f0}), flush=True)
        except Exception as e:  # answer, so the orchestrator does not hang
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)


def profile(model, x, mk, arch, batch, threads):
    """Self CPU time per ATen op of one forward (the profiler's CPU time is the op's
    wall time on the calling thread, intra-op workers included)."""
    with torch.no_grad(), torch.autograd.profiler.profile() as prof:
        w0 = time.perf_counter()
        model(x, mk)
        total = (time.perf_counter() - w0) * 1e3
    ops = [{"name": e.key, "ms": e.self_cpu_time_total / 1e3, "calls": e.count} for e in prof.key_averages()]
    ops.sort(key=lambda o: -o["ms"])
    return {"arch": arch, "batch": batch, "threads": threads, "totalMs": total, "ops": ops[:12]}


# --------------------------------------------------------------------------
# mm: raw BLAS throughput
# --------------------------------------------------------------------------
def _openblas():
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib
    except OSError:
        return None


def blas_corename():
    lib = _openblas()
    return lib.openblas_get_corename().decode() if lib else None


def blas_threads():
    lib = _openblas()
    return lib.openblas_get_num_threads() if lib else None


def mm():
    n = 2048
    g = torch.Generator().manual_seed(1)
    a = torch.randn(n, n, generator=g)
    b = torch.randn(n, n, generator=g)
    res = {"corename": blas_corename(), "blasThreads": blas_threads(), "gflops": {}}
    for t in (2, 1):
        torch.set_num_threads(t)
        lib = _openblas()
        if lib:
            lib.openblas_set_num_threads(t)
        torch.mm(a, b)
        times = []
        for _ in range(5):
            w = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - w)
        times.sort()
        res["gflops"][str(t)] = {"median": 2 * n**3 / times[len(times) // 2] / 1e9, "best": 2 * n**3 / times[0] / 1e9}
    print(json.dumps(res))


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "prepare":
        prepare(sys.argv[2])
    elif mode == "serve":
        serve(int(sys.argv[2]), sys.argv[3], [a for a in sys.argv[4].split(",") if a] if len(sys.argv) > 4 else [])
    elif mode == "mm":
        mm()
    else:
        sys.exit(__doc__)
