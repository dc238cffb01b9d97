"""Images from a trained generator: one latent per seed, grids, slerp interpolation strips.

A seed's latent is `breakgan.seeds.latent_for_seed`, the one rule render and live use too, so a seed
picked here is the same keyframe everywhere. Images are generated one per forward pass by default, so
a seed's image does not depend on which other seeds are drawn with it (batched convolutions may round
differently).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from breakgan import seeds as seed_rules
from breakgan.errors import BreakganError
from breakgan.seeds import parse_seed
from breakgan.stage import atomic_file

MAX_SEEDS = 4096  # a typo like 0-100000 should fail fast, not fill the disk
MAX_SEED = seed_rules.SEED_LIMIT - 1


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """'0-15' or '3,7,9-11' -> [3, 7, 9, 10, 11]: comma-separated seeds and inclusive ranges, in order.

    Each seed follows the one seed rule (`breakgan.seeds.parse_seed`: 0 <= s < 2**63).
    """
    if text is None or not str(text).strip():
        raise BreakganError(f"{option}: give seeds like 0-15 or 3,7,9-11")
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"([^-]*?)\s*(?:-\s*([^-]*))?", part)
        try:
            lo = parse_seed(m.group(1), option)
            hi = parse_seed(m.group(2), option) if m.group(2) is not None else lo
        except (AttributeError, BreakganError):  # AttributeError: no match
            raise BreakganError(f"{option} {text!r:.60}: {part!r:.40} is not a seed (a whole number "
                                f"0 <= s < 2**63) or a range A-B") from None
        if hi < lo:
            raise BreakganError(f"{option} {text!r:.60}: range {part!r} ends before it starts")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise BreakganError(f"{option} {text!r:.60}: more than {MAX_SEEDS} seeds")
        seeds.extend(range(lo, hi + 1))
    return seeds


def latent_for_seed(seed: int, latent_size: int, truncation: float | None = None) -> torch.Tensor:
    """`breakgan.seeds.latent_for_seed` as a torch tensor (latent_size,) float32."""
    return torch.from_numpy(seed_rules.latent_for_seed(seed, latent_size, truncation))


def latents_for_seeds(seeds: Iterable[int], latent_size: int, truncation: float | None = None) -> torch.Tensor:
    """(len(seeds), latent_size) float32, one `latent_for_seed` row per seed."""
    return torch.from_numpy(seed_rules.latents_for_seeds(seeds, latent_size, truncation))


def slerp_latents(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` latents (steps, D) from a to b inclusive along the great circle (slerp)."""
    from breakgan.trajectory import slerp

    if steps < 2:
        raise BreakganError(f"--steps must be at least 2, got {steps}")
    t = np.linspace(0.0, 1.0, steps)
    path = slerp(a.numpy()[None, :], b.numpy()[None, :], t)
    return torch.from_numpy(path.astype(np.float32))


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 of the same shape and device: the one pixel rule of
    sample, render and live, so a latent gives the same bytes in each."""
    return ((images.detach().float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Generator output (B, 3, H, W) in [-1, 1] -> uint8 (B, H, W, 3)."""
    return quantize(images).cpu().permute(0, 2, 3, 1).contiguous().numpy()


def generate_images(G: torch.nn.Module, z: torch.Tensor, *, labels: torch.Tensor | None = None,
                    batch_size: int = 1, device: str | torch.device = "cpu",
                    nchw: bool = False, progress=None) -> np.ndarray:
    """Run G over latents z (N, D) in batches -> uint8 images (N, H, W, 3), or (N, 3, H, W) with nchw.

    `progress(count)` is called after each batch with the number of images it made.
    """
    out = []
    device = torch.device(device)
    with torch.no_grad():
        for start in range(0, len(z), batch_size):
            zb = z[start:start + batch_size].to(device)
            lb = None if labels is None else labels[start:start + batch_size].to(device)
            img = to_uint8(G(zb, labels=lb))
            out.append(img.transpose(0, 3, 1, 2) if nchw else img)
            if progress is not None:
                progress(len(zb))
    return np.concatenate(out)


def image_grid(images: np.ndarray, cols: int | None = None, pad: int = 0) -> np.ndarray:
    """uint8 (N, H, W, 3) -> one (rows*H, cols*W, 3) image, row-major; `cols` defaults to ~sqrt(N).

    Empty cells (when N does not fill the last row) and `pad` pixel gaps are black.
    """
    n, h, w, c = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c), np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        grid[r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = img
    return grid


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 image as PNG through a temp file + rename: never a half-written file."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image), "RGB").save(tmp, format="PNG")
    return path


def seed_file(seed: int) -> str:
    return f"seed{seed:04d}.png"


def write_samples(G: torch.nn.Module, latent_size: int, seeds: Sequence[int], out: str | os.PathLike, *,
                  grid: bool = False, interp: Sequence[int] = (), steps: int = 8,
                  truncation: float | None = None, label: int | None = None, batch_size: int = 1,
                  device: str | torch.device = "cpu", progress=None) -> list[Path]:
    """Write `seed{seed:04d}.png` per seed, `grid.png` (with grid), and `interp-A-B.png` strips of
    `steps` images between consecutive seeds of `interp` into folder `out`. Returns the paths written.

    `label` (class index) conditions a conditional generator; None = its "any class" average.
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BreakganError(f"{out}: cannot create output folder ({e.strerror})") from None
    if len(interp) == 1:
        raise BreakganError("--interp needs at least two seeds, e.g. --interp 0,5")

    def labels_for(n: int):
        return None if label is None else torch.full((n,), int(label), dtype=torch.long)

    written: list[Path] = []
    if seeds:
        z = latents_for_seeds(seeds, latent_size, truncation)
        images = generate_images(G, z, labels=labels_for(len(z)), batch_size=batch_size, device=device,
                                 progress=progress)
        for seed, img in zip(seeds, images):
            written.append(write_png(out / seed_file(seed), img))
        if grid:
            written.append(write_png(out / "grid.png", image_grid(images)))
    for a, b in zip(interp[:-1], interp[1:]):
        z = slerp_latents(latent_for_seed(a, latent_size, truncation),
                          latent_for_seed(b, latent_size, truncation), steps)
        strip = generate_images(G, z, labels=labels_for(len(z)), batch_size=batch_size, device=device,
                                progress=progress)
        written.append(write_png(out / f"interp-{a:04d}-{b:04d}.png", image_grid(strip, cols=len(strip))))
    return written
