"""Crop geometry: letterbox bars, the square that keeps the dancer whole, and following the body.

Coordinates are pixels of the clip's *content* (the display frame after rotation, bars removed)
unless a name says otherwise. Everything here is pure numpy/OpenCV on small arrays; FFmpeg does
the decoding, the bar crop and the scaling (see decode.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

MARGIN = 0.15  # room kept around the dancer's extent, as a share of it
DANCER_MIN_SIDE = 0.5  # `dancer` never zooms in to less than this share of the content's short side
MASK_WIDTH = 96  # the motion mask is computed on frames this wide: enough for a body, cheap
_CROP_RE = re.compile(r"crop=(-?\d+):(-?\d+):(-?\d+):(-?\d+)")


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int


def parse_cropdetect(log: str) -> Rect | None:
    """The last `crop=w:h:x:y` FFmpeg's cropdetect logged (it accumulates over the frames it saw)."""
    found = _CROP_RE.findall(log)
    if not found:
        return None
    w, h, x, y = (int(v) for v in found[-1])
    return Rect(x, y, w, h)


def content_rect(detected: Rect | None, width: int, height: int) -> Rect | None:
    """The part of a width x height frame without bars, or None when there are no bars to remove.

    A detection that keeps less than a third of the frame is taken for a dark scene, not bars.
    """
    if detected is None or detected.w <= 0 or detected.h <= 0:
        return None
    x, y = max(0, detected.x), max(0, detected.y)
    w, h = min(detected.w, width - x), min(detected.h, height - y)
    if w * h < width * height / 3:
        return None
    if w >= width - 4 and h >= height - 4:
        return None
    return Rect(x, y, w, h)


def foreground_boxes(grays: np.ndarray) -> np.ndarray:
    """Per frame, the box around what moves: (N, 4) [x0, y0, x1, y1] as shares of width/height, NaN if none.

    `grays` is (N, h, w) uint8, small frames in clip order. Moving pixels are those far from the
    clip's median frame (background subtraction: the dancer who moves around) or from the
    neighbouring frames (frame difference: limbs of a dancer who stays in place).
    """
    n, h, w = grays.shape
    boxes = np.full((n, 4), np.nan, np.float32)
    if n < 2:
        return boxes
    g = grays.astype(np.int16)
    pick = np.linspace(0, n - 1, min(n, 41)).round().astype(int)
    background = np.median(g[pick], axis=0).astype(np.int16)
    from_bg = np.abs(g - background)
    step = np.abs(np.diff(g, axis=0))
    from_neighbours = np.maximum(np.concatenate([step[:1], step]), np.concatenate([step, step[-1:]]))
    # Compression noise and small camera shake set the floor; the dancer stands out well above it.
    threshold = max(18.0, 3.0 * float(np.median(from_bg)))
    kernel = np.ones((3, 3), np.uint8)
    min_pixels = max(4, int(0.003 * h * w))
    for i in range(n):
        mask = ((from_bg[i] > threshold) | (from_neighbours[i] > threshold)).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        ys, xs = np.nonzero(mask)
        if len(xs) < min_pixels:
            continue
        x0, x1 = np.percentile(xs, [1, 99])
        y0, y1 = np.percentile(ys, [1, 99])
        boxes[i] = [x0 / w, y0 / h, (x1 + 1) / w, (y1 + 1) / h]
    return boxes


def place_square(cx: float, cy: float, side: float, width: int, height: int) -> tuple[float, float, float]:
    """Top-left corner and side of a square centred near (cx, cy), kept inside the content.

    Along an axis where the square is larger than the content it is centred on the content, and the
    overflow is filled by mirroring the edge (crop_square), never with black bars.
    """
    side = float(side)
    x = (width - side) / 2 if side >= width else float(np.clip(cx - side / 2, 0, width - side))
    y = (height - side) / 2 if side >= height else float(np.clip(cy - side / 2, 0, height - side))
    return x, y, side


def static_square(boxes: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
    """`auto`: one square for the whole clip, the largest that fits the content, grown (and padded)
    when the dancer's extent over the clip is taller or wider than that."""
    short, long_ = min(width, height), max(width, height)
    valid = boxes[~np.isnan(boxes[:, 0])]
    if len(valid) == 0:
        return place_square(width / 2, height / 2, short, width, height)
    x0, y0 = np.percentile(valid[:, 0], 5) * width, np.percentile(valid[:, 1], 5) * height
    x1, y1 = np.percentile(valid[:, 2], 95) * width, np.percentile(valid[:, 3], 95) * height
    extent = max(x1 - x0, y1 - y0)
    # The margin only matters once the square has to grow past the content's short side.
    side = float(np.clip(extent * (1 + MARGIN), short, long_)) if extent > short else float(short)
    return place_square((x0 + x1) / 2, (y0 + y1) / 2, side, width, height)


def _median3(values: np.ndarray) -> np.ndarray:
    if len(values) < 3:
        return values
    padded = np.concatenate([values[:1], values, values[-1:]])
    return np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)


def follow_squares(boxes: np.ndarray, times: np.ndarray, follow_s: float, width: int,
                   height: int) -> np.ndarray:
    """`dancer`: one square per `follow_s` seconds around the moving body, (N, 3) [x, y, side].

    Each segment takes the union of its frames' boxes; segments without motion borrow their
    neighbour's box; centre and side are smoothed over three segments so the crop does not jump.
    """
    n = len(boxes)
    short, long_ = min(width, height), max(width, height)
    seg = np.floor((times - times[0]) / follow_s).astype(int) if n else np.zeros(0, int)
    nseg = int(seg.max()) + 1 if n else 0
    seg_box = np.full((nseg, 4), np.nan)
    for s in range(nseg):
        b = boxes[(seg == s) & ~np.isnan(boxes[:, 0])]
        if len(b):
            seg_box[s] = [b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]
    have = np.nonzero(~np.isnan(seg_box[:, 0]))[0]
    if len(have) == 0:
        x, y, side = place_square(width / 2, height / 2, short, width, height)
        return np.tile([x, y, side], (n, 1))
    # Nearest segment with motion fills the gaps (forward and backward).
    nearest = have[np.abs(np.arange(nseg)[:, None] - have[None, :]).argmin(axis=1)]
    seg_box = seg_box[nearest] * [width, height, width, height]
    # Within a second only the moving limbs show; over the whole clip every part of the body moves
    # at some point, so the clip's vertical extent is the body height the square must hold.
    valid = boxes[~np.isnan(boxes[:, 0])]
    top, bottom = np.percentile(valid[:, 1], 5) * height, np.percentile(valid[:, 3], 95) * height
    body = (bottom - top) * (1 + MARGIN)
    cx = _median3((seg_box[:, 0] + seg_box[:, 2]) / 2)
    cy = _median3((seg_box[:, 1] + seg_box[:, 3]) / 2)
    extent = np.maximum(seg_box[:, 2] - seg_box[:, 0], seg_box[:, 3] - seg_box[:, 1]) * (1 + MARGIN)
    side = np.clip(np.maximum(_median3(extent), body), DANCER_MIN_SIDE * short, long_)
    # Where the square is tall enough, slide it to hold the whole body height.
    cy = np.where(side >= bottom - top, np.clip(cy, bottom - side / 2, top + side / 2), cy)
    squares = np.array([place_square(cx[s], cy[s], side[s], width, height) for s in range(nseg)])
    return squares[seg]


def dancer_regions(boxes: np.ndarray, times: np.ndarray, window_s: float | None) -> np.ndarray:
    """Per frame, the region the dancer takes: (N, 4) [x0, y0, x1, y1] as shares, NaN where nothing moves.

    With `window_s` (a crop that follows the dancer), the union of the boxes in the frame's window of
    that many seconds; without (a fixed crop), the dancer's extent over the whole clip (5th-95th
    percentiles, like static_square). Motion and near-duplicates are measured there, so a large
    static backdrop does not hide a small dancer's moves.
    """
    n = len(boxes)
    out = np.full((n, 4), np.nan)
    valid = ~np.isnan(boxes[:, 0]) if n else np.zeros(0, bool)
    if not valid.any():
        return out
    if window_s is None:
        b = boxes[valid]
        out[:] = [np.percentile(b[:, 0], 5), np.percentile(b[:, 1], 5),
                  np.percentile(b[:, 2], 95), np.percentile(b[:, 3], 95)]
        return out
    seg = np.floor((times - times[0]) / window_s).astype(int)
    for s in np.unique(seg):
        b = boxes[(seg == s) & valid]
        if len(b):
            out[seg == s] = [b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]
    return out


def region_in_crop(region: np.ndarray, square: tuple[float, float, float] | None, width: int, height: int,
                   size: int, min_side: int = 16) -> tuple[int, int, int, int] | None:
    """A dancer region (shares of a width x height frame) in pixels of the size x size crop of `square`
    (None: the frame is the crop), with MARGIN around it; None when there is none or it is too small."""
    if np.isnan(region[0]):
        return None
    x0, y0, x1, y1 = region * [width, height, width, height]
    pad = MARGIN * max(x1 - x0, y1 - y0) / 2
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    if square is not None:
        sx, sy, side = square
        x0, x1 = (x0 - sx) * size / side, (x1 - sx) * size / side
        y0, y1 = (y0 - sy) * size / side, (y1 - sy) * size / side
    else:
        x0, x1, y0, y1 = x0 * size / width, x1 * size / width, y0 * size / height, y1 * size / height
    x0, y0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    x1, y1 = min(size, int(np.ceil(x1))), min(size, int(np.ceil(y1)))
    if x1 - x0 < min(min_side, size) or y1 - y0 < min(min_side, size):
        return None
    if x1 - x0 >= size and y1 - y0 >= size:
        return None  # the whole frame
    return x0, y0, x1, y1


def crop_square(frame: np.ndarray, x: float, y: float, side: float, size: int) -> np.ndarray:
    """Cut the square (x, y, side) out of `frame` (HxWx3), mirror-filling what lies outside, at size x size."""
    h, w = frame.shape[:2]
    side_i = max(1, int(round(side)))
    x0, y0 = int(round(x)), int(round(y))
    x1, y1 = x0 + side_i, y0 + side_i
    part = frame[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
    pads = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
    if any(pads):
        part = cv2.copyMakeBorder(part, *pads, cv2.BORDER_REFLECT_101)
    if part.shape[0] == size and part.shape[1] == size:
        return np.ascontiguousarray(part)
    interp = cv2.INTER_AREA if side_i > size else cv2.INTER_LINEAR
    return cv2.resize(part, (size, size), interpolation=interp)


def mask_frame(frame: np.ndarray) -> np.ndarray:
    """The small grey frame the motion mask is computed on."""
    h, w = frame.shape[:2]
    mh = max(8, int(round(h * MASK_WIDTH / w)))
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (MASK_WIDTH, mh), interpolation=cv2.INTER_AREA)
