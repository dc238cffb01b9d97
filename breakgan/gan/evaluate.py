"""SWD of a generator against a dataset's packed frames: what `breakgan metrics` computes and what
training records at its snapshots (on the checkpoint it just wrote), so the two figures agree.

Reals are a seeded random subset of `DATASET/packed/{R}.npy`, read memory-mapped in batches; fakes
are generated from seeded latents, conditioned (for a conditional generator) on the labels of the
chosen reals so both sets have the same class mix. The real-vs-real floor compares two disjoint real
subsets of the same size: SWD values are only meaningful against it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from breakgan.errors import BreakganError
from breakgan.gan.data import load_label_ids, load_packed_array
from breakgan.gan.sampling import generate_images
from breakgan.gan.swd import PATCH, swd


class RowSubset:
    """Rows `indices` (sorted) of a (memory-mapped) array, read only when sliced: no full copy in memory."""

    def __init__(self, array: np.ndarray, indices: np.ndarray):
        self.array, self.indices = array, np.sort(np.asarray(indices))
        self.shape = (len(self.indices), *array.shape[1:])
        self.dtype, self.ndim = array.dtype, array.ndim

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, item: slice) -> np.ndarray:
        return np.asarray(self.array[self.indices[item]])


def open_packed(dataset: str | Path, resolution: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Memory-mapped `packed/{resolution}.npy` (N, 3, R, R) uint8 and the label ids (or None), checked."""
    images = load_packed_array(dataset, resolution)
    return images, load_label_ids(dataset, len(images))


def swd_against_dataset(G: torch.nn.Module, info: dict, dataset: str | Path, *, num: int = 2048,
                        seed: int = 0, floor: bool = False, batch_size: int = 32,
                        device: str | torch.device = "cpu", progress=None) -> dict:
    """{"fake": swd dict, "floor": swd dict or None, "num": images per set, "num_floor": ...}.

    `progress(description, advance, total)` reports generation and SWD levels if given.
    """
    if num < 1:
        raise BreakganError(f"--num must be at least 1, got {num}")
    if int(info["resolution"]) < PATCH:
        raise BreakganError(f"{info.get('path', 'generator')}: at {info['resolution']} px the images are "
                            f"smaller than SWD's {PATCH}x{PATCH} patches; use a later checkpoint")
    reals, labels = open_packed(dataset, int(info["resolution"]))
    n_total = len(reals)
    n = min(num, n_total)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_total)
    chosen = np.sort(order[:n])
    real_set = RowSubset(reals, chosen)

    fake_labels = None
    if info.get("num_classes", 0) and labels is not None:
        fake_labels = torch.from_numpy(labels[chosen].astype(np.int64))
        if int(fake_labels.max()) >= info["num_classes"]:
            raise BreakganError(f"{dataset}: labels go up to {int(fake_labels.max())} but the generator "
                                f"knows {info['num_classes']} classes")
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n, int(info["latent_size"]), generator=gen)
    tick = (lambda k: progress("generate", k, n)) if progress else None
    fakes = generate_images(G, z, labels=fake_labels, batch_size=batch_size, device=device, nchw=True,
                            progress=tick)

    swd_device = device if torch.device(device).type == "cuda" else "cpu"
    level_tick = (lambda i, k: progress("swd fake", 1, k)) if progress else None
    result = {"num": n, "fake": swd(real_set, fakes, seed=seed, device=swd_device, progress=level_tick),
              "floor": None, "num_floor": 0}
    del fakes
    if floor:
        m = n if n_total >= 2 * n else n_total // 2
        if m < 1:
            raise BreakganError(f"{dataset}: need at least 2 frames for a real-vs-real floor")
        # two disjoint subsets; the first is the same real set as above when the dataset has room
        a, b = RowSubset(reals, order[:m]), RowSubset(reals, order[m:2 * m])
        level_tick = (lambda i, k: progress("swd floor", 1, k)) if progress else None
        result["floor"] = swd(a, b, seed=seed, device=swd_device, progress=level_tick)
        result["num_floor"] = m
    return result
