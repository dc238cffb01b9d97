"""SWD speed: breakgan.gan.swd vs a straight numpy/scipy version of the PGGAN reference algorithm.

The baseline follows the published recipe as NVIDIA's metrics/sliced_wasserstein.py runs it: scipy
`ndimage.convolve` pyramid (mirror borders), patches gathered with numpy fancy indexing, all levels'
descriptors kept, numpy matmul + sort per repeat. Both run here, same images, same sizes, one thread
each by default, and the script prints the time ratio (target > 1) and both results (they use
different random draws, so they agree only statistically).

    python benchmarks/swd.py                  # 2048 images at 64 px (synthetic textures)
    python benchmarks/swd.py --num 512 --res 128 --threads 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic(n: int, res: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, 3, res, res) sums of random sinusoids + noise: content at every pyramid level."""
    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[0:res, 0:res] / res).astype(np.float32)
    out = np.zeros((n, 3, res, res), np.float32)
    for _ in range(4):
        f = rng.uniform(-res / 4, res / 4, (n, 2, 1, 1)).astype(np.float32)
        phase = rng.uniform(0, 2 * np.pi, (n, 1, 1, 1)).astype(np.float32)
        amp = rng.uniform(0.2, 1.0, (n, 3, 1, 1)).astype(np.float32)
        out += amp * np.sin(2 * np.pi * (f[:, :1] * xx + f[:, 1:] * yy) + phase)
    out += rng.normal(0, 0.3, out.shape).astype(np.float32)
    return np.clip(127.5 + 45 * out, 0, 255).astype(np.uint8)


# --- baseline: the reference algorithm in plain numpy/scipy -------------------------------------

def _ref_pyramid(batch: np.ndarray, levels: int) -> list[np.ndarray]:
    import scipy.ndimage

    k = (np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0)[None, None]

    def up(x):
        z = np.zeros((*x.shape[:2], 2 * x.shape[2], 2 * x.shape[3]), x.dtype)
        z[:, :, ::2, ::2] = x
        return scipy.ndimage.convolve(z, k, mode="mirror") * 4

    pyr = [batch.astype(np.float32)]
    for _ in range(1, levels):
        pyr.append(scipy.ndimage.convolve(pyr[-1], k, mode="mirror")[:, :, ::2, ::2])
        pyr[-2] -= up(pyr[-1])
    return pyr


def _ref_patches(level: np.ndarray, per_image: int, rng) -> np.ndarray:
    n, c, h, w = level.shape
    m, half = per_image * n, 3
    nh, ch, dy, dx = np.ogrid[0:m, 0:c, -half:half + 1, -half:half + 1]
    img = nh // per_image
    y = dy + rng.integers(half, h - half, size=(m, 1, 1, 1))
    x = dx + rng.integers(half, w - half, size=(m, 1, 1, 1))
    return level.flat[((img * c + ch) * h + y) * w + x]


def _ref_finalize(desc: list[np.ndarray]) -> np.ndarray:
    d = np.concatenate(desc)
    d -= d.mean(axis=(0, 2, 3), keepdims=True)
    d /= d.std(axis=(0, 2, 3), keepdims=True)
    return d.reshape(len(d), -1)


def reference_swd(a: np.ndarray, b: np.ndarray, seed: int = 0, batch: int = 64) -> dict:
    rng = np.random.default_rng(seed)
    res = a.shape[2]
    resolutions = [res]
    while resolutions[-1] // 2 >= 16:
        resolutions.append(resolutions[-1] // 2)
    levels = len(resolutions)
    descs = []
    for images in (a, b):
        per_level = [[] for _ in range(levels)]
        for start in range(0, len(images), batch):
            for lod, level in enumerate(_ref_pyramid(images[start:start + batch], levels)):
                per_level[lod].append(_ref_patches(level, 128, rng))
        descs.append([_ref_finalize(d) for d in per_level])
    out = {}
    for lod, r in enumerate(resolutions):
        da, db = descs[0][lod], descs[1][lod]
        results = []
        for _ in range(4):
            dirs = rng.standard_normal((da.shape[1], 128)).astype(np.float32)
            dirs /= np.sqrt(np.sum(dirs ** 2, axis=0, keepdims=True))
            pa, pb = np.sort(da @ dirs, axis=0), np.sort(db @ dirs, axis=0)
            results.append(np.mean(np.abs(pa - pb)))
        out[r] = float(np.mean(results)) * 1e3
    out["mean"] = float(np.mean([out[r] for r in resolutions]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num", type=int, default=2048, help="images per set")
    ap.add_argument("--res", type=int, default=64, help="image size in pixels")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for both (torch, BLAS)")
    ap.add_argument("--device", default="cpu", help="device for breakgan's swd (cpu, cuda)")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    import torch

    from breakgan.gan.swd import swd

    torch.set_num_threads(args.threads)
    a, b = synthetic(args.num, args.res, seed=1), synthetic(args.num, args.res, seed=2)
    print(f"SWD of {args.num} vs {args.num} images at {args.res} px, {args.threads} thread(s)")

    t0 = time.perf_counter()
    ours = swd(a, b, device=args.device)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = reference_swd(a, b)
    t_ref = time.perf_counter() - t0

    fmt = lambda d: " ".join(f"{k}:{v:.2f}" for k, v in d.items())  # noqa: E731
    print(f"breakgan swd ({args.device}): {t_ours:7.2f} s   {fmt(ours)}")
    print(f"numpy/scipy reference     : {t_ref:7.2f} s   {fmt(ref)}")
    print(f"speed-up: {t_ref / t_ours:.2f}x (target > 1)")


if __name__ == "__main__":
    main()
