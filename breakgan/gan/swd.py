"""Sliced Wasserstein distance (SWD) between two image sets, as in the PGGAN paper (Karras et al. 2018).

No pretrained network: each image set becomes a Laplacian pyramid (5x5 binomial kernel, reflected
borders, down to 16 px); per level, random 7x7 patches fully inside each image are the descriptors,
normalised per colour channel over the whole set; the distance per level is the mean over 4 repeats
of 128 random unit directions of |sorted projections of set A - sorted projections of set B|,
reported x1e3. Lower is better; a real-vs-real pass of the same size gives the noise floor.

Pure and deterministic: every random choice (patch positions, directions) comes from `seed`; both
sets use the same patch positions, so a set against itself is exactly 0.
Memory is bounded by one pyramid level of descriptors at a time (about 2 x N x 128 x 147 float32).
"""

from __future__ import annotations

import numpy as np
import torch

PATCH = 7  # descriptor neighbourhood size (pixels)
MIN_RESOLUTION = 16  # the coarsest pyramid level

# stream ids: patch positions and directions never share random numbers. Both sets use the same
# patch positions (position i of image i in each set): positions do not depend on content, so this
# is unbiased, lowers the variance, and makes a set against itself exactly 0.
_STREAM_PATCHES, _STREAM_DIRS = 0, 1


def pyramid_resolutions(resolution: int) -> list[int]:
    """Pyramid levels for square images of `resolution` px: halving down to 16 px (one level if smaller)."""
    levels = [resolution]
    while levels[-1] % 2 == 0 and levels[-1] // 2 >= MIN_RESOLUTION:
        levels.append(levels[-1] // 2)
    return levels


def _down_1d(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Binomial [1 4 6 4 1]/16 along `dim` with mirrored borders, kept at even positions only."""
    n = x.shape[dim]
    # mirror (edge not repeated, like cv2/scipy 'mirror'): x[-2], x[-1] = x[2], x[1]
    p = torch.cat([x.narrow(dim, 2, 1), x.narrow(dim, 1, 1), x,
                   x.narrow(dim, n - 2, 1), x.narrow(dim, n - 3, 1)], dim)
    m = (n + 1) // 2

    def tap(k):  # p[k], p[k+2], ... : m values
        return p.narrow(dim, k, 2 * m - 1)[(slice(None),) * (dim % x.ndim) + (slice(None, None, 2),)]

    return (tap(0) + tap(4) + 4 * (tap(1) + tap(3)) + 6 * tap(2)) / 16


def _up_1d(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Zero-insertion 2x upsampling then [1 4 6 4 1]/8 along `dim` (mirrored), computed polyphase.

    On the zero-inserted signal z (z[2i] = x[i]), mirrored borders make x[-1] = x[1] on the left
    and x[n] = x[n-1] on the right, so even outputs are (x[i-1] + 6 x[i] + x[i+1]) / 8 and odd
    outputs (x[i] + x[i+1]) / 2.
    """
    n = x.shape[dim]
    p = torch.cat([x.narrow(dim, 1, 1), x, x.narrow(dim, n - 1, 1)], dim)  # p[i+1] = x[i]
    left, mid, right = p.narrow(dim, 0, n), p.narrow(dim, 1, n), p.narrow(dim, 2, n)
    even = (left + 6 * mid + right) / 8
    odd = (mid + right) / 2
    shape = list(x.shape)
    shape[dim] = 2 * n
    return torch.stack([even, odd], dim + 1 if dim >= 0 else dim).reshape(shape)


def _pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur with the 5x5 binomial kernel (separable), keep every other row and column (= cv2.pyrDown)."""
    return _down_1d(_down_1d(x, 3), 2)


def _pyr_up(x: torch.Tensor) -> torch.Tensor:
    """Insert zeros between samples, blur with 4x the binomial kernel (= cv2.pyrUp)."""
    return _up_1d(_up_1d(x, 3), 2)


def laplacian_level(images: torch.Tensor, level: int, num_levels: int) -> torch.Tensor:
    """Level `level` (0 = full resolution) of the Laplacian pyramid with `num_levels` levels.

    Band-pass levels are the difference between a Gaussian level and the upsampled next one; the
    last level is the Gaussian (low-pass) residual itself.
    """
    g = images.float()
    for _ in range(level):
        g = _pyr_down(g)
    if level == num_levels - 1:
        return g
    return g - _pyr_up(_pyr_down(g))


def _generator(seed: int, stream: int, level: int) -> torch.Generator:
    # SeedSequence mixes the three ints so neighbouring seeds give unrelated streams
    state = np.random.SeedSequence([int(seed), stream, level]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _checked_images(images, name: str):
    # torch tensors, numpy arrays (memory-mapped ok) or any array-like with shape/dtype read by slices
    arr = images if hasattr(images, "shape") and hasattr(images, "dtype") else np.asarray(images)
    if len(arr.shape) != 4 or arr.shape[1] != 3:
        raise ValueError(f"{name}: expected uint8 images shaped (N, 3, H, W), got shape {tuple(arr.shape)}")
    if arr.dtype not in (np.uint8, torch.uint8):
        raise ValueError(f"{name}: expected uint8 images, got {arr.dtype}")
    if arr.shape[2] != arr.shape[3]:
        raise ValueError(f"{name}: expected square images, got {arr.shape[2]}x{arr.shape[3]}")
    if arr.shape[2] < PATCH:
        raise ValueError(f"{name}: images of {arr.shape[2]} px are smaller than a {PATCH}x{PATCH} patch")
    return arr


def level_descriptors(images, level: int, num_levels: int, *, patches_per_image: int = 128,
                      generator: torch.Generator, batch_size: int = 64,
                      device: str | torch.device = "cpu", normalise: bool = True) -> torch.Tensor:
    """Normalised 7x7 patch descriptors of one pyramid level: float32 (N * patches_per_image, 3 * 49).

    `images` is uint8 (N, 3, R, R), numpy (memory-mapped is fine: read in batches) or torch.
    Patch centres are drawn once for the whole set from `generator`, so the result does not depend
    on `batch_size`.
    """
    n, res = images.shape[0], images.shape[2] >> level
    half = PATCH // 2
    # centres in [half, res - half): the patch lies fully inside the image
    ys = torch.randint(half, res - half, (n, patches_per_image), generator=generator)
    xs = torch.randint(half, res - half, (n, patches_per_image), generator=generator)
    offsets = torch.arange(-half, half + 1)
    out = torch.empty(n * patches_per_image, 3, PATCH, PATCH, dtype=torch.float32, device=device)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        chunk = images[start:stop]
        if not isinstance(chunk, torch.Tensor):
            chunk = torch.from_numpy(np.array(chunk))  # a copy: memory-mapped arrays are read-only
        lap = laplacian_level(chunk.to(device), level, num_levels)  # (b, 3, res, res)
        b = stop - start
        iy = (ys[start:stop, :, None, None] + offsets[None, None, :, None]).to(device)  # (b, P, 7, 1)
        ix = (xs[start:stop, :, None, None] + offsets[None, None, None, :]).to(device)  # (b, P, 1, 7)
        bi = torch.arange(b, device=device)[:, None, None, None]
        patches = lap.permute(0, 2, 3, 1)[bi, iy, ix]  # (b, P, 7, 7, 3)
        out[start * patches_per_image:stop * patches_per_image] = (
            patches.permute(0, 1, 4, 2, 3).reshape(b * patches_per_image, 3, PATCH, PATCH))
    if not normalise:
        return out.reshape(out.shape[0], -1)
    # per-channel normalisation over the whole level (population std, as numpy's default)
    mean = out.mean(dim=(0, 2, 3), keepdim=True)
    std = out.std(dim=(0, 2, 3), keepdim=True, correction=0).clamp_min(1e-8)
    out.sub_(mean).div_(std)
    return out.reshape(out.shape[0], -1)


def _sorted_rows(x: torch.Tensor):
    # numpy's vectorised (SIMD) sort is several times faster than torch.sort on CPU
    if x.device.type == "cpu":
        return np.sort(x.numpy(), axis=1)
    return torch.sort(x, dim=1).values


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, *, generator: torch.Generator,
                       dir_repeats: int = 4, dirs_per_repeat: int = 128) -> float:
    """Mean over `dir_repeats` sets of random unit directions of mean |sorted(a.d) - sorted(b.d)|.

    `a` and `b` are (M, D) descriptor sets of the same size M.
    """
    if a.shape != b.shape:
        raise ValueError(f"descriptor sets differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    results = []
    for _ in range(dir_repeats):
        dirs = torch.randn(a.shape[1], dirs_per_repeat, generator=generator).to(a.device)
        dirs /= dirs.norm(dim=0, keepdim=True)
        # (dirs, M) rows: sorting along the contiguous last dimension is the fast path
        pa, pb = _sorted_rows(dirs.T @ a.T), _sorted_rows(dirs.T @ b.T)
        results.append(float(np.abs(pa - pb).mean(dtype=np.float64)) if isinstance(pa, np.ndarray)
                       else (pa - pb).abs().double().mean().item())
    return float(np.mean(results))


def swd(real, fake, *, seed: int = 0, patches_per_image: int = 128, dir_repeats: int = 4,
        dirs_per_repeat: int = 128, batch_size: int = 64, device: str | torch.device = "cpu",
        progress=None) -> dict:
    """SWD between two uint8 image sets (N, 3, R, R) of the same size, numpy (memmap ok) or torch.

    Returns {resolution: SWD x1e3 for that pyramid level, ..., "mean": average over levels}, levels
    from the full resolution down to 16 px (a single level for images under 32 px). The same seed
    gives the same result. `progress(level_index, num_levels)` is called after each level if given.
    """
    real = _checked_images(real, "real")
    fake = _checked_images(fake, "fake")
    if real.shape != fake.shape:
        raise ValueError(f"real and fake image sets differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}")
    if real.shape[0] == 0:
        raise ValueError("empty image sets")
    resolutions = pyramid_resolutions(real.shape[2])
    result: dict = {}
    with torch.no_grad():
        for level, res in enumerate(resolutions):
            common = dict(patches_per_image=patches_per_image, batch_size=batch_size, device=device)
            da = level_descriptors(real, level, len(resolutions),
                                   generator=_generator(seed, _STREAM_PATCHES, level), **common)
            db = level_descriptors(fake, level, len(resolutions),
                                   generator=_generator(seed, _STREAM_PATCHES, level), **common)
            dist = sliced_wasserstein(da, db, generator=_generator(seed, _STREAM_DIRS, level),
                                      dir_repeats=dir_repeats, dirs_per_repeat=dirs_per_repeat)
            result[res] = dist * 1e3
            del da, db
            if progress is not None:
                progress(level + 1, len(resolutions))
    result["mean"] = float(np.mean([result[r] for r in resolutions]))
    return result
