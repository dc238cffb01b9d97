"""`ingest_clips`: clips in, dataset folder out, one clip at a time, the folder swapped in atomically."""

from __future__ import annotations

import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from rich.markup import escape

from breakgan.console import console, progress
from breakgan.errors import BreakganError
from breakgan.ingest import dataset as ds
from breakgan.ingest.crop import (crop_square, dancer_regions, follow_squares, foreground_boxes, mask_frame,
                                  region_in_crop, static_square)
from breakgan.ingest.decode import detect_bars, plan, sample_rate, stream
from breakgan.ingest.options import IngestOptions
from breakgan.ingest.quality import flow_frame, motion, nearest_kept, phash, select, sharpness
from breakgan.ingest.sources import Source, resolve_sources
from breakgan.stage import file_hash, output_dir, make_record, write_record

REASONS = ("blur", "still", "duplicate", "limit")
_THREADS = 2  # frames scored in parallel once decoding is done
_CHUNK = 64  # frames per parallel batch (bounds memory)


@dataclass
class ClipResult:
    path: Path
    label: str = ""
    status: str = "ingested"  # ingested | skipped | failed
    error: str = ""
    counts: dict = field(default_factory=dict)  # candidates, kept, blur, still, duplicate, limit, mirrored
    seconds: float = 0.0  # wall time spent on the clip


@dataclass
class IngestSummary:
    out: Path
    clips: list[ClipResult]
    count: int = 0  # frames in the dataset (packed rows, mirrored copies included)
    labels: list[str] = field(default_factory=list)
    written: bool = False  # False when nothing changed (all skipped or all failed)

    @property
    def failed(self) -> list[ClipResult]:
        return [c for c in self.clips if c.status == "failed"]


@dataclass
class _NewClip:
    """One clip ingested in this run, waiting to be merged into the dataset."""

    result: ClipResult
    hash: str
    rows: list[dict]
    candidates: np.ndarray  # (N, size, size, 3) every candidate (a memory map of the clip's spool)
    kept: list[tuple[int, bool]]  # per kept row, in row order: candidate index, mirrored
    info: dict

    def frame(self, j: int) -> np.ndarray:
        i, flip = self.kept[j]
        return self.candidates[i][:, ::-1] if flip else self.candidates[i]


class _Unchanged(Exception):
    """Nothing new to write: leave the dataset exactly as it was."""


class _Spool:
    """Frames of one shape appended to a raw file on disk, read back as a memory map (bounded RAM)."""

    def __init__(self, path: Path, shape: tuple[int, ...]):
        self.path, self.shape, self.count = path, shape, 0
        self._file = open(path, "wb")

    def append(self, frame: np.ndarray) -> None:
        self._file.write(np.ascontiguousarray(frame).data)
        self.count += 1

    def array(self) -> np.ndarray:
        self._file.close()
        if not self.count:
            return np.zeros((0, *self.shape), np.uint8)
        return np.memmap(self.path, np.uint8, "r", shape=(self.count, *self.shape))


def _label_base(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._") or "clip"


def _error(message: str) -> None:
    # soft_wrap: one line per problem even on a narrow or non-terminal stderr.
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)


def _raise(message: str) -> None:
    raise BreakganError(message)


class _Analysis:
    """Per-candidate scores, computed frame by frame on the final crops.

    Sharpness is the whole frame's; motion and the perceptual hash are the dancer's region's (where
    the motion mask found one), so a small dancer in front of a large static backdrop is not taken
    for a still frame or a duplicate.
    """

    def __init__(self, rate: float):
        self.dt = 1.0 / rate
        self.sharp: list[float] = []
        self.motion: list[float] = []
        self.hashes: list[int] = []
        self.regions: list[tuple[int, int, int, int] | None] = []
        self._prev: np.ndarray | None = None

    @staticmethod
    def _frame_scores(frame: np.ndarray, region: tuple[int, int, int, int] | None):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        small = flow_frame(gray)
        small_region = None
        if region is not None:
            f = small.shape[1] / frame.shape[1]
            x0, y0, x1, y1 = region
            small_region = (int(x0 * f), int(y0 * f), max(int(x0 * f) + 1, round(x1 * f)),
                            max(int(y0 * f) + 1, round(y1 * f)))
        return sharpness(gray), small, small_region, phash(_region(frame, region))

    def add(self, frames, regions: list, pool: ThreadPoolExecutor) -> None:
        """Score frames (in clip order, after those already added) with their dancer regions.

        Frames and pairs of neighbours are scored in `pool`'s threads (OpenCV and PIL release the GIL):
        this runs after decoding, when FFmpeg no longer needs the cores.
        """
        scored = list(pool.map(self._frame_scores, frames, regions))
        smalls = [self._prev] + [s[1] for s in scored]

        def pair_motion(k: int) -> float:
            prev, cur, region = smalls[k], smalls[k + 1], scored[k][2]
            return float("nan") if prev is None else motion(prev, cur, self.dt, region)

        self.motion.extend(pool.map(pair_motion, range(len(scored))))
        self.sharp.extend(s[0] for s in scored)
        self.hashes.extend(s[3] for s in scored)
        self.regions.extend(regions)
        if scored:
            self._prev = smalls[-1]

    def motion_array(self) -> np.ndarray:
        m = np.asarray(self.motion, float)
        if len(m) > 1:
            m[0] = m[1]  # the first sample has no predecessor: it moves like its successor
        elif len(m) == 1:
            m[0] = 0.0
        return m


def _region(frame: np.ndarray, region: tuple[int, int, int, int] | None) -> np.ndarray:
    if region is None:
        return frame
    x0, y0, x1, y1 = region
    return frame[y0:y1, x0:x1]


def _ingest_one(src: Source, label: str, opts: IngestOptions, tmp: Path, work: Path, bar) -> _NewClip:
    t0 = time.perf_counter()
    path, info = src.path, src.info
    if info.duration and opts.start >= info.duration:
        raise BreakganError(f"{path}: --start {opts.start:g} s is past its end ({info.duration:.1f} s)")
    size = opts.size
    rate = sample_rate(info, opts)
    bars = detect_bars(path, info, opts) if opts.crop != "none" else None
    p = plan(info, opts, bars)
    span = (opts.duration or max(0.0, info.duration - opts.start)) if info.duration else opts.duration
    task = bar.add_task(f"decode {path.name}", total=max(1, int(span * rate)) if span else None)
    final = _Spool(work / f"{label}.final", (size, size, 3))
    scores = _Analysis(rate)
    square = None
    masks = []
    window = opts.follow_s if opts.crop == "dancer" else None  # a following crop: the dancer per window
    if p.final:
        for frame in stream(path, p, rate, opts):
            final.append(frame)
            masks.append(mask_frame(frame))
            bar.advance(task)
        frames = final.array()
        n = len(frames)
        bar.update(task, description=f"analyse {path.name}", total=n, completed=0)
        if n:
            regions = dancer_regions(foreground_boxes(np.stack(masks)), np.arange(n) / rate, window)
            with ThreadPoolExecutor(_THREADS) as pool:
                for start in range(0, n, _CHUNK):
                    stop = min(n, start + _CHUNK)
                    scores.add([frames[i] for i in range(start, stop)],
                               [region_in_crop(regions[i], None, size, size, size) for i in range(start, stop)], pool)
                    bar.advance(task, stop - start)
        del frames
    else:
        raw = _Spool(work / f"{label}.raw", (p.height, p.width, 3))
        for frame in stream(path, p, rate, opts):
            raw.append(frame)
            masks.append(mask_frame(frame))
            bar.advance(task)
        frames = raw.array()
        n = len(frames)
        bar.update(task, description=f"analyse {path.name}", total=n, completed=0)
        if n:
            boxes = foreground_boxes(np.stack(masks))
            cw, ch = p.content.w, p.content.h
            if opts.crop == "auto":
                square = static_square(boxes, cw, ch)
                squares = np.tile(square, (n, 1))
            else:
                squares = follow_squares(boxes, np.arange(n) / rate, opts.follow_s, cw, ch)
            regions = dancer_regions(boxes, np.arange(n) / rate, window)

            def crop(i: int) -> np.ndarray:
                x, y, side = squares[i] * p.scale
                return crop_square(frames[i], x, y, side, size)

            with ThreadPoolExecutor(_THREADS) as pool:
                for start in range(0, n, _CHUNK):
                    idx = range(start, min(n, start + _CHUNK))
                    crops = list(pool.map(crop, idx))
                    for c in crops:
                        final.append(c)
                    scores.add(crops, [region_in_crop(regions[i], tuple(squares[i]), cw, ch, size) for i in idx],
                               pool)
                    bar.advance(task, len(idx))
        del frames
        raw.path.unlink()
    candidates = final.array()
    n = len(candidates)
    bar.update(task, completed=n, total=max(n, 1))
    if n == 0:
        raise BreakganError(f"{path}: no frames could be decoded")
    expected = span * rate if span else 0
    if expected >= 4 and n < 0.6 * expected:
        console.print(f"[yellow]warning:[/yellow] {escape(str(path))}: decoded only {n} of about "
                      f"{int(expected)} frames (truncated or corrupt?); ingesting what decoded", soft_wrap=True)
    reasons = select(np.asarray(scores.sharp), scores.motion_array(), scores.hashes,
                     min_sharpness=opts.min_sharpness, still_motion=opts.still_motion,
                     still_share=opts.still_share, still_min_frames=opts.still_min_frames,
                     dup_distance=opts.dup_distance, max_frames=opts.max_frames)
    counts = {"candidates": n, "kept": sum(not r for r in reasons)}
    counts.update({r: reasons.count(r) for r in REASONS})
    if counts["kept"] == 0:
        why = ", ".join(f"{counts[r]} {r}" for r in REASONS if counts[r])
        raise BreakganError(f"{path}: no frame survived the filters ({n} candidates: {why})")

    rows, kept_index, dropped = [], [], []
    jobs = []
    motion_values = scores.motion_array()
    nearest = nearest_kept(scores.hashes, reasons)
    with ThreadPoolExecutor(max_workers=2) as pool:  # PNG encoding releases the GIL
        for i in range(n):
            row = {"clip": path.name, "time_s": f"{opts.start + i / rate:.3f}", "sharpness": f"{scores.sharp[i]:.2f}",
                   "motion": f"{motion_values[i]:.3f}", "hash": f"{scores.hashes[i]:016x}",
                   "kept": 0 if reasons[i] else 1, "reason": reasons[i], "file": "", "label": label,
                   "region": " ".join(map(str, scores.regions[i])) if scores.regions[i] else "",
                   "dup_bits": "" if nearest[i] is None else nearest[i]}
            rows.append(row)
            if reasons[i]:
                dropped.append(ds.thumb(np.asarray(candidates[i])))
                continue
            row["file"] = f"frames/{label}_{i:06d}.png"
            kept_index.append((i, False))
            jobs.append(pool.submit(ds.write_png, tmp / row["file"], np.asarray(candidates[i])))
            if opts.mirror:
                flipped = np.ascontiguousarray(candidates[i][:, ::-1])
                r = scores.regions[i]
                mirrored_region = (size - r[2], r[1], size - r[0], r[3]) if r else None
                mirror_row = dict(row, reason="mirror", hash=f"{phash(_region(flipped, mirrored_region)):016x}",
                                  region=" ".join(map(str, mirrored_region)) if r else "",
                                  file=f"frames/{label}_{i:06d}_mirrored.png")
                rows.append(mirror_row)
                kept_index.append((i, True))
                jobs.append(pool.submit(ds.write_png, tmp / mirror_row["file"], flipped))
        for job in jobs:
            job.result()
    counts["mirrored"] = counts["kept"] if opts.mirror else 0
    thumbs = np.stack(dropped) if dropped else np.zeros((0, ds.THUMB, ds.THUMB, 3), np.uint8)
    np.save(tmp / "thumbs" / f"{label}_dropped.npy", thumbs)
    info_out = {"fps": round(rate, 6), "crop": opts.crop,
                "content": [p.content.x, p.content.y, p.content.w, p.content.h], "bars": bars is not None}
    if square is not None:
        info_out["square"] = [round(v, 1) for v in square]
    bar.update(task, description=f"done {path.name}")
    result = ClipResult(path, label, "ingested", counts=counts, seconds=time.perf_counter() - t0)
    return _NewClip(result, "", rows, candidates, kept_index, info_out)


def ingest_clips(clips: list[Path], out: Path, *, report: bool = True, **options) -> IngestSummary:
    """Ingest clips (files or folders) into the dataset folder `out`; see dataset.py for the layout.

    Clips already in the dataset with the same content and options are skipped; others are added
    (or replace their earlier version). A clip that fails is reported in one line and left out; the
    others still go in. The folder is rebuilt beside `out` and swapped in only when complete, so a
    failed or interrupted run leaves the previous state. Options: see IngestOptions.
    """
    opts = IngestOptions.from_kwargs(**options)
    out = Path(out)
    existing = ds.load_existing(out)
    old_size = existing.record.get("size")
    if old_size is not None and old_size != opts.size:
        raise BreakganError(f"{out}: dataset frames are {old_size} px; use --size {old_size} or a new --out")
    if opts.mirror:
        console.print("[yellow]warning:[/yellow] --mirror: every kept frame also goes in mirrored; asymmetric "
                      "moves (a one-sided freeze, a turn direction) will be learned both ways", soft_wrap=True)

    results: list[ClipResult] = []
    todo: list[tuple[Source, str, ClipResult]] = []
    by_hash = {meta["hash"]: label for label, meta in existing.clips.items()}
    seen: dict[str, Path] = {}
    sources = resolve_sources(list(clips))
    # one clip: its problem is the command's one error line (no table of one failure)
    report_error = _raise if len(sources) == 1 else _error
    for src in sources:
        if src.error:
            report_error(src.error)
            results.append(ClipResult(src.path, status="failed", error=src.error))
            continue
        try:
            h = file_hash(src.path)
        except OSError as e:
            msg = f"{src.path}: cannot read ({e.strerror})"
            report_error(msg)
            results.append(ClipResult(src.path, status="failed", error=msg))
            continue
        if h in seen:
            results.append(ClipResult(src.path, status="skipped", error=f"same content as {seen[h]}"))
            continue
        seen[h] = src.path
        old_label = by_hash.get(h)
        if old_label and existing.clips[old_label].get("options_hash") == opts.clip_hash():
            counts = existing.clips[old_label].get("counts", {})
            results.append(ClipResult(src.path, old_label, "skipped", "already ingested", counts))
            continue
        result = ClipResult(src.path)
        results.append(result)
        todo.append((src, h, result))

    summary = IngestSummary(out, results, existing.record.get("count", 0), existing.record.get("labels", []))
    if todo:
        try:
            _build(out, existing, todo, opts, summary, report_error)
        except _Unchanged:
            pass
    if report:
        from breakgan.ingest.summary import print_summary

        print_summary(summary)
    return summary


def _build(out: Path, existing: ds.Existing, todo, opts: IngestOptions, summary: IngestSummary,
           report_error=_error) -> None:
    with output_dir(out, "ingest", inputs=[src.path for src, _, _ in todo]) as tmp:
        for sub in ("frames", "thumbs", "packed"):
            (tmp / sub).mkdir()
        work = tmp / ".work"
        work.mkdir()
        used = set(existing.clips)
        by_hash = {meta["hash"]: label for label, meta in existing.clips.items()}
        new: dict[str, _NewClip] = {}
        with progress() as bar:
            for src, h, result in todo:
                label = by_hash.get(h)
                if label is None:
                    base = label = _label_base(src.path)
                    k = 2
                    while label in used:
                        label, k = f"{base}-{k}", k + 1
                used.add(label)
                try:
                    clip = _ingest_one(src, label, opts, tmp, work, bar)
                except (BreakganError, OSError) as e:
                    message = str(e) if isinstance(e, BreakganError) else \
                        f"{src.path}: cannot ingest ({e.strerror or e}{f': {e.filename}' if e.filename else ''})"
                    report_error(message)
                    result.status, result.error, result.label = "failed", message, ""
                    own = re.compile(re.escape(label) + r"_\d{6}(_mirrored)?\.png")
                    for f in (tmp / "frames").glob(f"{label}_*.png"):
                        if own.fullmatch(f.name):
                            f.unlink()
                    if h not in by_hash:
                        used.discard(label)
                    continue
                clip.hash = h
                result.label, result.counts, result.seconds = clip.result.label, clip.result.counts, clip.result.seconds
                new[label] = clip
        if not new:
            raise _Unchanged()
        try:
            _merge(out, tmp, existing, new, opts, summary)
        except OSError as e:  # disk full, permissions: the previous dataset stays as it was
            raise BreakganError(f"{out}: cannot write the dataset ({e.strerror or e})") from None
        shutil.rmtree(work)
    summary.written = True


def _merge(out: Path, tmp: Path, existing: ds.Existing, new: dict[str, _NewClip], opts: IngestOptions,
           summary: IngestSummary) -> None:
    """Old clips (not re-ingested) carried over by hard link, new ones added; manifest, packed
    arrays, contact sheets and record rebuilt for the whole set."""
    size = opts.size
    # A re-ingested clip keeps its place, so the label indices of the others do not move.
    order = list(existing.clips) + [label for label in new if label not in existing.clips]
    # Old kept rows, in manifest order, are the rows of the old packed arrays.
    old_rows: dict[str, list[tuple[dict, int | None]]] = {}
    k = 0
    for row in existing.rows:
        index = None
        if row["kept"] == "1":
            index, k = k, k + 1
        old_rows.setdefault(row["label"], []).append((row, index))
    old_packed = None
    packed_path = out / "packed" / f"{size}.npy"
    if existing.rows and packed_path.is_file():
        old_packed = np.load(packed_path, mmap_mode="r")
        if old_packed.shape[0] != k:
            old_packed = None  # out of step with the manifest: fall back to the PNGs

    rows: list[dict] = []
    sources: list[tuple[str, object]] = []  # per kept row, where its pixels come from
    clips_meta: dict[str, dict] = {}
    for label in order:
        if label in new:
            clip = new[label]
            rows += clip.rows
            sources += [("new", (label, j)) for j in range(len(clip.kept))]
            clips_meta[label] = {"path": str(clip.result.path), "hash": clip.hash,
                                 "options_hash": opts.clip_hash(), "options": opts.as_dict(),
                                 "counts": clip.result.counts, **clip.info}
            continue
        clips_meta[label] = existing.clips[label]
        for row, index in old_rows.get(label, []):
            rows.append(row)
            if row["kept"] == "1":
                ds.link_or_copy(out / row["file"], tmp / row["file"])
                sources.append(("old", (index, row["file"])))
        thumbs = out / "thumbs" / f"{label}_dropped.npy"
        if thumbs.is_file():
            ds.link_or_copy(thumbs, tmp / "thumbs" / thumbs.name)

    labels = order
    label_index = {label: i for i, label in enumerate(labels)}
    kept_rows = [r for r in rows if str(r["kept"]) == "1"]

    def pixels():
        for kind, ref in sources:
            if kind == "new":
                label, j = ref
                yield new[label].frame(j)
            elif old_packed is not None:
                yield np.asarray(old_packed[ref[0]]).transpose(1, 2, 0)
            else:
                yield ds.read_png(out / ref[1])

    ds.write_packed(tmp / "packed", pixels(), len(kept_rows), size,
                    np.array([label_index[r["label"]] for r in kept_rows], np.int64))
    ds.write_manifest(tmp / "manifest.csv", rows)
    _contact_sheets(tmp, rows, kept_rows, size)
    record = make_record("ingest", opts.as_dict(), {}, size=size, count=len(kept_rows), labels=labels,
                         clips=clips_meta)
    record["inputs"] = {label: {"path": meta["path"], "hash": meta["hash"]} for label, meta in clips_meta.items()}
    write_record(tmp, record)
    summary.count, summary.labels = len(kept_rows), labels


def _contact_sheets(tmp: Path, rows: list[dict], kept_rows: list[dict], size: int) -> None:
    res = min(size, ds.THUMB)
    packed = np.load(tmp / "packed" / f"{res}.npy", mmap_mode="r")
    pick = ds.spread(len(kept_rows), ds.SHEET_TILES)
    tiles = np.stack([ds.thumb(np.asarray(packed[i]).transpose(1, 2, 0)) for i in pick]) if len(pick) else \
        np.zeros((0, ds.THUMB, ds.THUMB, 3), np.uint8)
    ds.contact_sheet(tiles, [kept_rows[i]["label"] for i in pick], tmp / "contact_kept.png",
                     f"kept: {len(kept_rows)} frames (showing {len(pick)})")
    dropped_rows = [r for r in rows if str(r["kept"]) != "1"]
    thumbs_by_label: dict[str, np.ndarray] = {}
    position: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    for r in dropped_rows:
        j = seen.get(r["label"], 0)
        seen[r["label"]] = j + 1
        position.append((r["label"], j))
    pick = ds.spread(len(dropped_rows), ds.SHEET_TILES)
    tiles, captions = [], []
    for i in pick:
        label, j = position[i]
        if label not in thumbs_by_label:
            f = tmp / "thumbs" / f"{label}_dropped.npy"
            thumbs_by_label[label] = np.load(f, mmap_mode="r") if f.is_file() else np.zeros((0,))
        t = thumbs_by_label[label]
        tiles.append(np.asarray(t[j]) if j < len(t) else np.zeros((ds.THUMB, ds.THUMB, 3), np.uint8))
        reason = dropped_rows[i]["reason"].replace("duplicate", "dup")
        captions.append(f'{reason} {float(dropped_rows[i]["time_s"]):.1f}s')
    ds.contact_sheet(np.stack(tiles) if tiles else np.zeros((0, ds.THUMB, ds.THUMB, 3), np.uint8), captions,
                     tmp / "contact_dropped.png", f"dropped: {len(dropped_rows)} frames (showing {len(pick)})")
