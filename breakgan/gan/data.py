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
from breakgan.paths import need_folder
from breakgan.stage import RECORD_NAME


def packed_resolutions(folder: Path) -> list[int]:
    return sorted(int(p.stem) for p in (Path(folder) / "packed").glob("*.npy") if p.stem.isdigit())


def load_packed_array(folder: Path, resolution: int, count: int | None = None) -> np.ndarray:
    """`FOLDER/packed/{resolution}.npy` as a read-only memory map, checked: uint8 (N, 3, r, r), N > 0
    (and N == count when given). The one reader of packed frames (training, metrics)."""
    folder = Path(folder)
    need_folder(folder, "dataset folder")
    path = folder / "packed" / f"{resolution}.npy"
    if not path.is_file():
        have = packed_resolutions(folder)
        hint = (f"it has {', '.join(map(str, have))} px; re-run `breakgan ingest`" if have
                else "run `breakgan ingest` first")
        raise BreakganError(f"{path}: packed array missing: the dataset has no {resolution} px frames ({hint})")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise BreakganError(f"{path}: unreadable packed array ({e})") from None
    expect = "N" if count is None else str(count)
    if (arr.ndim != 4 or arr.dtype != np.uint8 or arr.shape[1:] != (3, resolution, resolution)
            or (count is not None and len(arr) != count)):
        raise BreakganError(f"{path}: expected uint8 ({expect}, 3, {resolution}, {resolution}), "
                            f"found {arr.dtype} {arr.shape}")
    if len(arr) == 0:
        raise BreakganError(f"{path}: the dataset holds no frames")
    return arr


def load_label_ids(folder: Path, count: int, num_labels: int | None = None) -> np.ndarray | None:
    """`FOLDER/packed/labels.npy` as int64 (count,), checked against `num_labels` when given; None if absent."""
    path = Path(folder) / "packed" / "labels.npy"
    if not path.is_file():
        return None
    try:
        ids = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise BreakganError(f"{path}: unreadable labels ({e})") from None
    if ids.shape != (count,) or not np.issubdtype(ids.dtype, np.integer):
        raise BreakganError(f"{path}: expected {count} integer label ids, found {ids.dtype} {ids.shape}")
    if len(ids) and (ids.min() < 0 or (num_labels is not None and ids.max() >= num_labels)):
        top = f"0..{num_labels - 1}" if num_labels else "0 and up"
        raise BreakganError(f"{path}: expected {count} label ids in {top}")
    return ids.astype(np.int64)


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
            self._arrays[resolution] = load_packed_array(self.folder, resolution, self.count)
        return self._arrays[resolution]

    def label_ids(self) -> np.ndarray:
        ids = load_label_ids(self.folder, self.count, len(self.labels))
        if ids is None:
            raise BreakganError(f"{self.folder / 'packed' / 'labels.npy'}: labels missing; conditional training "
                                f"needs packed/labels.npy")
        return ids


def open_dataset(folder: Path, resolution: int | None = None) -> PackedDataset:
    """Validate a dataset folder from `breakgan ingest`: its record and its packed array at `resolution`
    (default: the largest, the frame size)."""
    folder = Path(folder)
    need_folder(folder, "dataset folder")
    rec_path = folder / RECORD_NAME
    try:
        record = json.loads(rec_path.read_text())
    except FileNotFoundError:
        raise BreakganError(f"{rec_path}: missing; not a dataset from `breakgan ingest`") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BreakganError(f"{rec_path}: unreadable ({e})") from None
    if not isinstance(record, dict) or record.get("stage") != "ingest":
        stage = record.get("stage") if isinstance(record, dict) else None
        raise BreakganError(f"{rec_path}: stage is {stage!r}, expected a dataset from `breakgan ingest`")
    try:
        size, count = int(record["size"]), int(record["count"])
    except (KeyError, TypeError, ValueError):
        raise BreakganError(f"{rec_path}: no valid 'size' and 'count'") from None
    if count <= 0:
        raise BreakganError(f"{folder}: dataset is empty (no kept frames); loosen the ingest filters or add clips")
    data = PackedDataset(folder, size, count, [str(x) for x in record.get("labels", [])], record)
    data.array(resolution or size)  # fail now, not hours in, if the frames are missing
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
