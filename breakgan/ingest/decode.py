"""What FFmpeg does for ingest: find letterbox bars, then decode, crop and scale in one filter graph.

Bars are found by FFmpeg's cropdetect on the keyframes only (`-skip_frame nokey`), which costs a
small fraction of a full decode; clips with too few keyframes get a low-rate look at their first seconds.
The frames then come through a pipe already cropped and scaled, never as full-size images.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from breakgan.ingest.crop import Rect, content_rect, parse_cropdetect
from breakgan.ingest.options import IngestOptions
from breakgan.media import MediaInfo, ffmpeg_exe, read_frames

# round=2 keeps the crop exact on odd-sized footage; skip=0 because keyframes are few.
_CROPDETECT = "cropdetect=round=2:skip=0:reset=0"


def _cropdetect(path: Path, before_input: list[str], after_input: list[str], vf: str) -> tuple[Rect | None, int]:
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "info", *before_input, "-i", str(path),
           *after_input, "-an", "-sn", "-vf", vf, "-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    return parse_cropdetect(proc.stderr), proc.stderr.count("crop=")


def detect_bars(path: Path, info: MediaInfo, opts: IngestOptions) -> Rect | None:
    """The content rectangle (display coordinates) when the clip has letterbox/pillarbox bars, else None."""
    seek = ["-ss", f"{opts.start:.3f}"] if opts.start else []
    span = ["-t", f"{opts.duration:.3f}"] if opts.duration else []
    found, frames = _cropdetect(path, ["-skip_frame", "nokey", *seek], span, _CROPDETECT)
    if frames < 3:
        look = min(opts.duration or info.duration or 3.0, 3.0)  # a few seconds: cheap next to the clip
        found, _ = _cropdetect(path, seek, ["-t", f"{look:.3f}"], f"fps=2,{_CROPDETECT}")
    return content_rect(found, info.width, info.height)


def sample_rate(info: MediaInfo, opts: IngestOptions) -> float:
    """Candidates per second: the asked rate, never above the clip's own (that would only repeat frames)."""
    return min(opts.fps, info.fps) if info.fps > 0 else opts.fps


@dataclass(frozen=True)
class Plan:
    """How one clip is read: FFmpeg filters before the pipe and the frame size that comes out."""

    filters: tuple[str, ...]
    width: int
    height: int
    content: Rect  # the content rectangle in display pixels (bars removed)
    scale: float  # piped pixels per content pixel
    final: bool  # frames come out at the output size, nothing left to crop in Python


def plan(info: MediaInfo, opts: IngestOptions, bars: Rect | None) -> Plan:
    """Filters for the crop mode: center/none finish in FFmpeg; auto/dancer stream the content at a
    moderate size and take their square in Python once the dancer has been found."""
    size = opts.size
    content = bars or Rect(0, 0, info.width, info.height)
    filters = [f"crop={content.w}:{content.h}:{content.x}:{content.y}"] if bars else []
    if opts.crop == "none":
        # The whole frame, bars and all, fitted into the square and padded with black.
        scale = size / max(info.width, info.height)
        w, h = max(1, round(info.width * scale)), max(1, round(info.height * scale))
        filters = [f"scale={w}:{h}:flags=area", f"pad={size}:{size}:{(size - w) // 2}:{(size - h) // 2}:black"]
        return Plan(tuple(filters), size, size, Rect(0, 0, info.width, info.height), scale, True)
    if opts.crop == "center":
        side = min(content.w, content.h)
        filters.append(f"crop={side}:{side}:{(content.w - side) // 2}:{(content.h - side) // 2}")
        return Plan(tuple(filters), size, size, content, size / side, True)
    short = min(content.w, content.h)
    # auto never zooms in (its square is at least the short side): the short side at `size` is enough.
    # dancer may zoom to DANCER_MIN_SIDE of it, so it streams up to twice as much detail.
    target = size if opts.crop == "auto" else min(2 * size, max(size, short))
    scale = target / short
    w, h = max(1, round(content.w * scale)), max(1, round(content.h * scale))
    return Plan(tuple(filters), w, h, content, scale, False)


def stream(path: Path, p: Plan, rate: float, opts: IngestOptions) -> Iterator[np.ndarray]:
    """Frames of the clip after the plan's filters, `rate` per second, as HxWx3 uint8 RGB."""
    return read_frames(path, p.width, p.height, filters=p.filters, fps=rate,
                       start=opts.start or None, duration=opts.duration or None)
