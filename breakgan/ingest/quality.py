"""Frame scores (sharpness, motion, perceptual hash) and the choice of which frames to keep.

`select` is pure: given the per-frame scores of one clip and the options, it returns why each frame
is dropped ('' = kept). Thresholds are relative to the clip where the footage decides the scale
(sharpness), and in frame-size units where it does not (motion).
"""

from __future__ import annotations

import cv2
import imagehash
import numpy as np
from PIL import Image

FLOW_WIDTH = 96  # optical flow runs on frames this wide: body motion survives, cost stays small
CHANGE_LEVEL = 3  # grey levels (of 255) a pixel must change by to count as moving, above codec noise
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian: high for crisp edges, low for blur (only comparable within a clip)."""
    return float(cv2.Laplacian(gray, cv2.CV_32F).var())


def flow_frame(gray: np.ndarray) -> np.ndarray:
    """The grey frame optical flow runs on: FLOW_WIDTH wide, whatever the output size."""
    h, w = gray.shape
    if w == FLOW_WIDTH:
        return gray
    interp = cv2.INTER_AREA if w > FLOW_WIDTH else cv2.INTER_LINEAR
    return cv2.resize(gray, (FLOW_WIDTH, max(8, round(h * FLOW_WIDTH / w))), interpolation=interp)


def motion(prev: np.ndarray, cur: np.ndarray, dt: float, region: tuple[int, int, int, int] | None = None) -> float:
    """Mean optical-flow magnitude (Farneback) between two small grey frames, in percent per second of
    the frame width, or inside `region` (x0, y0, x1, y1 in these frames' pixels: the dancer) of its
    larger side, so it reads the same at any output size, sample rate and dancer size.

    Farneback reports spurious flow in flat areas even between identical frames, so only pixels
    whose value actually changed (beyond compression noise) count.
    """
    flow = cv2.calcOpticalFlowFarneback(prev, cur, None, 0.5, 3, 9, 3, 5, 1.1, 0)
    magnitude = np.sqrt((flow * flow).sum(axis=2))
    changed = cv2.blur(cv2.absdiff(prev, cur), (3, 3)) > CHANGE_LEVEL
    moving = magnitude * changed
    unit = prev.shape[1]
    if region is not None:
        x0, y0, x1, y1 = region
        moving = moving[y0:y1, x0:x1]
        unit = max(x1 - x0, y1 - y0)
    return float(100.0 * moving.mean() / unit / max(dt, 1e-6))


def phash(frame: np.ndarray) -> int:
    """64-bit perceptual hash (ImageHash pHash) as an int."""
    return int(str(imagehash.phash(Image.fromarray(frame))), 16)


def hamming(a: int, many: np.ndarray) -> np.ndarray:
    """Bit distance between hash `a` and each of `many` (uint64 array)."""
    x = np.bitwise_xor(many, np.uint64(a))
    return _POPCOUNT[x.view(np.uint8).reshape(len(many), 8)].sum(axis=1)


def nearest_kept(hashes: list[int], reasons: list[str]) -> list[int | None]:
    """Per frame, the hash distance (bits) to the nearest earlier kept frame (None for none): how
    close it came to being a near-duplicate."""
    out: list[int | None] = []
    kept = np.zeros(0, np.uint64)
    for h, why in zip(hashes, reasons):
        out.append(int(hamming(h, kept).min()) if len(kept) else None)
        if not why:
            kept = np.append(kept, np.uint64(h))
    return out


def _evenly(count: int, keep: int) -> np.ndarray:
    """Indices of `keep` evenly spaced items out of `count` (first and last included when keep > 1)."""
    if keep >= count:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, keep).round().astype(int))


def select(sharp: np.ndarray, moving: np.ndarray, hashes: list[int], *, min_sharpness: float,
           still_motion: float, still_share: float, still_min_frames: int, dup_distance: int,
           max_frames: int) -> list[str]:
    """Why each candidate of one clip is dropped: 'blur', 'still', 'duplicate', 'limit' or '' (kept).

    Order matters and is fixed: blur first (a blurred frame is never worth keeping), then still
    stretches are thinned to `still_share` of their length, then near-duplicates of an earlier kept
    frame go, then `max_frames` keeps an even spread of what is left.
    """
    n = len(sharp)
    reasons = [""] * n
    if n == 0:
        return reasons
    sharp = np.asarray(sharp, float)
    reference = float(np.percentile(sharp, 90))
    for i in range(n):
        if reference <= 0 or sharp[i] < min_sharpness * reference:
            reasons[i] = "blur"

    still = np.asarray(moving, float) < still_motion
    i = 0
    while i < n:
        if not still[i]:
            i += 1
            continue
        j = i
        while j < n and still[j]:
            j += 1
        if j - i >= still_min_frames:
            alive = [k for k in range(i, j) if not reasons[k]]
            keep = max(1, int(round(still_share * (j - i)))) if alive else 0
            chosen = {alive[k] for k in _evenly(len(alive), keep)} if alive else set()
            for k in alive:
                if k not in chosen:
                    reasons[k] = "still"
        i = j

    if dup_distance >= 0:
        kept_hashes = np.zeros(0, np.uint64)
        for i in range(n):
            if reasons[i]:
                continue
            if len(kept_hashes) and hamming(hashes[i], kept_hashes).min() <= dup_distance:
                reasons[i] = "duplicate"
            else:
                kept_hashes = np.append(kept_hashes, np.uint64(hashes[i]))

    if max_frames:
        alive = [i for i in range(n) if not reasons[i]]
        if len(alive) > max_frames:
            chosen = {alive[k] for k in _evenly(len(alive), max_frames)}
            for i in alive:
                if i not in chosen:
                    reasons[i] = "limit"
    return reasons
