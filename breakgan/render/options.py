"""The documented limits of `breakgan render`'s options, checked once where they enter `render_video`.

Each check returns the clean value or raises a one-line BreakganError naming the option. Motion
options (--step, --attack-ms, ...) are checked by `trajectory.Motion`, keyframe seeds by
`breakgan.seeds`, favourites by `render.keys.read_favourites`.
"""

from __future__ import annotations

import math
import re

from breakgan.errors import BreakganError
from breakgan.seeds import MAX_KEYFRAMES

MIN_SIDE, MAX_SIDE = 16, 4096  # pixels per side; even, as libx264's yuv420p needs
MIN_FPS, MAX_FPS = 1.0, 240.0
MAX_BATCH = 1024  # latents per forward pass
MAX_FOOTAGE_START_S = 24 * 3600.0


def check_size(size, option: str = "--size") -> tuple[int, int]:
    """(width, height) with each side even and in MIN_SIDE..MAX_SIDE."""
    try:
        w, h = size
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (w, h))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise BreakganError(f"{option} must be WIDTHxHEIGHT in pixels, got {size!r:.60}")
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE) or w % 2 or h % 2:
        raise BreakganError(f"{option} {w}x{h}: width and height must be even and {MIN_SIDE}..{MAX_SIDE} pixels")
    return w, h


def parse_size(text: str, option: str = "--size") -> tuple[int, int]:
    """'1280x720' -> (1280, 720), within the limits of `check_size`."""
    m = re.fullmatch(r"\s*([0-9]{1,6})\s*[xX]\s*([0-9]{1,6})\s*", str(text))
    if not m:
        raise BreakganError(f"{option} must look like 1280x720 (each side even, {MIN_SIDE}..{MAX_SIDE}), "
                            f"got {str(text)[:40]!r}")
    return check_size((int(m.group(1)), int(m.group(2))), option)


def check_fps(fps, option: str = "--fps") -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise BreakganError(f"{option} must be a number, got {fps!r:.40}") from None
    if not (math.isfinite(value) and MIN_FPS <= value <= MAX_FPS):
        raise BreakganError(f"{option} must be a finite number in {MIN_FPS:g}..{MAX_FPS:g}, got {fps}")
    return value


def check_count(value, option: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BreakganError(f"{option} must be a whole number in {lo}..{hi}, got {value!r:.40}")
    return value


def check_keys(count) -> int:
    return check_count(count, "--keys", 1, MAX_KEYFRAMES)


def check_batch(batch) -> int:
    return check_count(batch, "--batch", 1, MAX_BATCH)


def check_footage_start(seconds) -> float:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise BreakganError(f"--footage-start must be a number of seconds, got {seconds!r:.40}") from None
    if not (math.isfinite(value) and 0.0 <= value <= MAX_FOOTAGE_START_S):
        raise BreakganError(f"--footage-start must be a finite number of seconds in 0..{MAX_FOOTAGE_START_S:g}, "
                            f"got {seconds}")
    return value
