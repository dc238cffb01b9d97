"""The dataset folder ingest writes and train reads.

    DATASET/frames/{clipstem}_{index:06d}.png    kept frames (and `_mirrored` copies), size x size RGB
    DATASET/manifest.csv                         one row per candidate frame (MANIFEST_COLUMNS)
    DATASET/packed/{res}.npy                     uint8 (N, 3, res, res) for res = 4, 8, ..., size
    DATASET/packed/labels.npy                    int64 (N,) indexes breakgan.json["labels"]
    DATASET/contact_kept.png, contact_dropped.png
    DATASET/breakgan.json                        stage "ingest": size, count, labels, clips
"""

from __future__ import annotations

import csv
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from breakgan.errors import BreakganError
from breakgan.stage import read_record

MANIFEST_COLUMNS = ("clip", "time_s", "sharpness", "motion", "hash", "kept", "reason", "file", "label")
# Written since motion and hash are measured on the dancer: `region` ("x0 y0 x1 y1" in frame pixels, empty
# for the whole frame) and `dup_bits` (hash distance to the nearest earlier kept frame). Older manifests
# lack them; they read as empty.
REGION_COLUMNS = ("region", "dup_bits")
THUMB = 64  # contact-sheet tile side in pixels
SHEET_TILES = 100  # at most this many tiles per contact sheet (evenly spread)


@dataclass
class Existing:
    """What an earlier ingest left in the folder (empty when there is none)."""

    record: dict = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)

    @property
    def clips(self) -> dict:
        return self.record.get("clips", {})


def load_existing(out: Path) -> Existing:
    """Read an earlier dataset in `out`; BreakganError when `out` holds something else."""
    if not out.exists():
        return Existing()
    if not out.is_dir():
        raise BreakganError(f"{out}: exists and is not a folder")
    record = read_record(out)
    if record is None:
        if any(out.iterdir()):
            raise BreakganError(f"{out}: folder is not empty and is not a breakgan dataset")
        return Existing()
    if record.get("stage") != "ingest":
        raise BreakganError(f"{out}: holds a '{record.get('stage')}' stage folder, not a dataset")
    return Existing(record, read_manifest(out / "manifest.csv"))


def read_manifest(manifest: Path) -> list[dict]:
    """The manifest's rows, checked: UTF-8 CSV with every column, a known `kept`, a file inside the dataset."""
    try:
        with open(manifest, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise BreakganError(f"{manifest}: not a breakgan manifest (missing column(s) {', '.join(missing)})")
            rows = list(reader)
    except OSError as e:
        raise BreakganError(f"{manifest}: cannot read the dataset manifest ({e.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise BreakganError(f"{manifest}: unreadable dataset manifest ({e.__class__.__name__}); "
                            f"re-ingest into a new --out") from None
    for n, row in enumerate(rows, start=2):
        if row["kept"] not in ("0", "1") or any(v is None for v in row.values()):
            raise BreakganError(f"{manifest}: line {n} is malformed; re-ingest into a new --out")
        file = row["file"]
        if file and (Path(file).is_absolute() or ".." in Path(file).parts):
            raise BreakganError(f"{manifest}: line {n}: file {file!r} points outside the dataset")
    return rows


def write_manifest(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        columns = MANIFEST_COLUMNS + REGION_COLUMNS
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in columns})


def link_or_copy(src: Path, dst: Path) -> None:
    """Carry an unchanged file into the new dataset state: a hard link when possible (free)."""
    if not src.is_file():
        raise BreakganError(f"{src}: missing from the dataset; ingest into a new --out to rebuild it")
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_png(path: Path, frame: np.ndarray) -> None:
    # Level 1: PNG stays lossless, and writing does not slow the ingest down.
    if not cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise BreakganError(f"{path}: cannot write frame")


def read_png(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise BreakganError(f"{path}: missing or unreadable frame")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def halve(batch: np.ndarray) -> np.ndarray:
    """(N, 3, r, r) uint8 -> (N, 3, r/2, r/2): 2x2 box average, as progressive GAN training expects."""
    # Strided adds, not a reduce over reshaped axes: the same numbers, over 10x faster on a transposed batch.
    x = batch[:, :, 0::2].astype(np.uint16)
    x += batch[:, :, 1::2]
    y = x[..., 0::2] + x[..., 1::2]
    y += 2
    y //= 4
    return y.astype(np.uint8)


def write_packed(folder: Path, frames, count: int, size: int, labels: np.ndarray, chunk: int = 256) -> None:
    """packed/{res}.npy for every power of two from 4 to size, plus labels.npy.

    `frames` yields (size, size, 3) RGB frames in manifest order; they are written in chunks so a
    large dataset never needs to fit in memory.
    """
    folder.mkdir(exist_ok=True)
    resolutions = [1 << k for k in range(2, size.bit_length()) if (1 << k) <= size]
    outs = {r: np.lib.format.open_memmap(folder / f"{r}.npy", "w+", np.uint8, (count, 3, r, r))
            for r in resolutions}
    done = 0
    batch = []

    def flush():
        nonlocal done, batch
        if not batch:
            return
        x = np.stack(batch).transpose(0, 3, 1, 2)
        for r in reversed(resolutions):
            outs[r][done:done + len(x)] = x
            if r > 4:
                x = halve(x)
        done += len(batch)
        batch = []

    for frame in frames:
        batch.append(frame)
        if len(batch) == chunk:
            flush()
    flush()
    if done != count:
        raise RuntimeError(f"packed {done} frames, expected {count}")
    for r in resolutions:
        outs[r].flush()
        del outs[r]
    np.save(folder / "labels.npy", labels.astype(np.int64))


def contact_sheet(tiles: np.ndarray, captions: list[str], path: Path, title: str) -> None:
    """A grid of THUMB-pixel tiles (N, THUMB, THUMB, 3 RGB), each captioned below, written as PNG."""
    cols, head, strip = 10, 20, 12
    cell = THUMB + strip
    n = len(tiles)
    rows = max(1, (n + cols - 1) // cols)
    sheet = np.full((head + rows * cell, cols * (THUMB + 2), 3), 24, np.uint8)
    cv2.putText(sheet, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230), 1, cv2.LINE_AA)
    for i in range(n):
        y, x = head + (i // cols) * cell, (i % cols) * (THUMB + 2)
        sheet[y:y + THUMB, x:x + THUMB] = tiles[i]
        cv2.putText(sheet, captions[i][:12], (x + 1, y + THUMB + strip - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.28,
                    (255, 220, 80), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def thumb(frame: np.ndarray) -> np.ndarray:
    if frame.shape[0] == THUMB:
        return frame
    interp = cv2.INTER_AREA if frame.shape[0] > THUMB else cv2.INTER_NEAREST
    return cv2.resize(frame, (THUMB, THUMB), interpolation=interp)


def spread(count: int, most: int) -> np.ndarray:
    """Indices of up to `most` items spread evenly over `count`."""
    if count <= most:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, most).round().astype(int))
