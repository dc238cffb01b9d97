"""Tiny packed datasets for GAN tests, written directly in the ingest layout (no video needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TINY = dict(latent_size=16, fmap_base=64, fmap_max=32, fmap_min=8)


def make_dataset(folder: Path, count: int = 48, size: int = 16, labels=("a", "b"), seed: int = 0) -> Path:
    """Blobs on a gradient at `size` px, packed at every resolution 4..size, plus record and manifest."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    (folder / "packed").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((count, 3, size, size), dtype=np.uint8)
    for i in range(count):
        cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(float)
        colour = rng.uniform(0.3, 1.0, 3)
        for c in range(3):
            images[i, c] = np.clip(255 * (0.2 * xx + blob * colour[c]), 0, 255)
    res = size
    while res >= 4:
        f = size // res
        small = images.reshape(count, 3, res, f, res, f).mean(axis=(3, 5)).round().astype(np.uint8)
        np.save(folder / "packed" / f"{res}.npy", small)
        res //= 2
    ids = np.arange(count) % len(labels)
    np.save(folder / "packed" / "labels.npy", ids.astype(np.int64))
    rows = ["clip,time_s,sharpness,motion,hash,kept,reason,file,label"]
    for i in range(count):
        lab = labels[ids[i]]
        rows.append(f"{lab},{i / 10:.2f},1.0,1.0,0,1,,frames/{lab}_{i:06d}.png,{lab}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    record = {"stage": "ingest", "version": "test", "options": {"size": size}, "inputs": {},
              "size": size, "count": count, "labels": list(labels), "clips": {}}
    (folder / "breakgan.json").write_text(json.dumps(record))
    return folder
