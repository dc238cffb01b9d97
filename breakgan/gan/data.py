"""Training data: the dataset's memory-mapped packed arrays, read in a seeded, resumable order.

The sample order is a pure function of (seed, position): epoch e is a permutation drawn from
`default_rng([seed, e])`, and a step at position `images_shown` takes the next global batch from that
stream, each rank its own contiguous slice. Resuming therefore only needs the image count. A background
thread reads the next batch from the memory map (no image decoding, pinned memory on CUDA) while the
current one trains.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from breakgan.errors import BreakganError
from breakgan.stage import RECORD_NAME


@dataclass
class PackedDataset:
    folder: Path
    size: int                       # frame size in pixels (largest packed array)
    count: int                      # frames
    labels: list[str]               # label names, index = packed/labels.npy value
    record: dict
    _arrays: dict = field(default_factory=dict, repr=False)

    def array(self, resolution: int) -> np.ndarray:
        """packed/{resolution}.npy as a read-only memory map (N, 3, r, r) uint8."""
        if resolution not in self._arrays:
            path = self.folder / "packed" / f"{resolution}.npy"
            if not path.is_file():
                raise BreakganError(f"{path}: packed array missing (re-run `breakgan ingest`)")
            try:
                arr = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as e:
                raise BreakganError(f"{path}: unreadable packed array ({e})") from None
            if arr.dtype != np.uint8 or arr.shape[1:] != (3, resolution, resolution) or len(arr) != self.count:
                raise BreakganError(f"{path}: expected uint8 ({self.count}, 3, {resolution}, {resolution}), "
                                    f"found {arr.dtype} {arr.shape}")
            self._arrays[resolution] = arr
        return self._arrays[resolution]

    def label_ids(self) -> np.ndarray:
        path = self.folder / "packed" / "labels.npy"
        if not path.is_file():
            raise BreakganError(f"{path}: labels missing; conditional training needs packed/labels.npy")
        ids = np.load(path)
        if ids.shape != (self.count,) or (len(ids) and (ids.min() < 0 or ids.max() >= len(self.labels))):
            raise BreakganError(f"{path}: expected {self.count} label ids in 0..{len(self.labels) - 1}")
        return ids.astype(np.int64)


def open_dataset(folder: Path, resolution: int | None = None) -> PackedDataset:
    """Validate a dataset folder from `breakgan ingest` for training at `resolution` (None = its size)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BreakganError(f"{folder}: dataset folder not found")
    rec_path = folder / RECORD_NAME
    try:
        record = json.loads(rec_path.read_text())
    except FileNotFoundError:
        raise BreakganError(f"{rec_path}: missing; not a dataset from `breakgan ingest`") from None
    except (OSError, json.JSONDecodeError) as e:
        raise BreakganError(f"{rec_path}: unreadable ({e})") from None
    if record.get("stage") != "ingest":
        raise BreakganError(f"{rec_path}: stage is {record.get('stage')!r}, expected a dataset from `breakgan ingest`")
    try:
        size, count = int(record["size"]), int(record["count"])
    except (KeyError, TypeError, ValueError):
        raise BreakganError(f"{rec_path}: no valid 'size' and 'count'") from None
    if count <= 0:
        raise BreakganError(f"{folder}: dataset is empty (no kept frames); loosen the ingest filters or add clips")
    if resolution is not None and resolution > size:
        raise BreakganError(f"{folder}: frames are {size}px, smaller than the target resolution {resolution}px "
                            f"(re-ingest with --size {resolution} or train with --resolution {size})")
    data = PackedDataset(folder, size, count, [str(x) for x in record.get("labels", [])], record)
    data.array(resolution or size)  # fail now, not hours in, if the final array is missing
    return data


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


class BatchLoader:
    """Batches for one rank at a stream position; prefetches the next one in a thread."""

    def __init__(self, data: PackedDataset, *, seed: int, rank: int = 0, world: int = 1,
                 device: torch.device = torch.device("cpu"), conditional: bool = False):
        self.data, self.seed, self.rank, self.world, self.device = data, seed, rank, world, device
        self.pin = device.type == "cuda"
        self.ids = data.label_ids() if conditional else None
        self._perms: dict[int, np.ndarray] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="breakgan-data")
        self._pending = None

    def indices(self, start: int, global_batch: int) -> np.ndarray:
        """This rank's dataset indices for the global batch at stream position `start`."""
        n, b = self.data.count, global_batch // self.world
        pos = np.arange(start + self.rank * b, start + (self.rank + 1) * b)
        out = np.empty(b, dtype=np.int64)
        for e in np.unique(pos // n):
            if e not in self._perms:
                if len(self._perms) > 2:
                    self._perms.pop(min(self._perms))
                self._perms[int(e)] = epoch_permutation(self.seed, int(e), n)
            sel = pos // n == e
            out[sel] = self._perms[int(e)][pos[sel] % n]
        return out

    def _read(self, key):
        res, start, global_batch = key
        idx = self.indices(start, global_batch)
        arr = self.data.array(res)
        order = np.argsort(idx, kind="stable")  # sorted reads are sequential on disk
        images = np.empty((len(idx), 3, res, res), dtype=np.uint8)
        images[order] = arr[idx[order]]
        images = torch.from_numpy(images)
        labels = torch.from_numpy(self.ids[idx]) if self.ids is not None else None
        if self.pin:
            images = images.pin_memory()
            labels = labels.pin_memory() if labels is not None else None
        return images, labels

    def get(self, resolution: int, start: int, global_batch: int):
        """uint8 images (b, 3, r, r) and int64 labels (or None) on the device; queues the next batch."""
        key = (resolution, start, global_batch)
        if self._pending is not None and self._pending[0] == key:
            images, labels = self._pending[1].result()
        else:
            images, labels = self._read(key)
        nxt = (resolution, start + global_batch, global_batch)
        self._pending = (nxt, self._pool.submit(self._read, nxt))
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True) if labels is not None else None
        return images, labels

    def close(self):
        self._pool.shutdown(wait=True, cancel_futures=True)
