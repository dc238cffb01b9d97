"""Read what a media file holds with ffprobe (container chosen by content, not by extension)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from breakgan.errors import BreakganError
from breakgan.media.ffmpeg_bin import ffprobe_exe


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    has_video: bool
    has_audio: bool
    width: int = 0  # display size: rotation metadata already applied
    height: int = 0
    fps: float = 0.0  # average frame rate (frames per second)
    duration: float = 0.0  # seconds
    rotation: int = 0  # degrees, as the container/side data says
    codec: str = ""
    audio_rate: int = 0  # samples per second


def _rate(text: str | None) -> float:
    try:
        r = Fraction(text or "0/1")
        return float(r) if r.denominator else 0.0
    except (ValueError, ZeroDivisionError):
        return 0.0


def _rotation(stream: dict) -> int:
    rot = stream.get("tags", {}).get("rotate")
    if rot is None:
        for side in stream.get("side_data_list", []):
            if "rotation" in side:
                rot = side["rotation"]
    try:
        return int(float(rot or 0)) % 360
    except ValueError:
        return 0


def probe(path: str | Path) -> MediaInfo:
    """Probe a file; raise BreakganError naming the file when FFmpeg cannot read it."""
    path = Path(path)
    if not path.exists():
        raise BreakganError(f"{path}: no such file")
    if not path.is_file():
        raise BreakganError(f"{path}: not a file")
    cmd = [ffprobe_exe(), "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise BreakganError(f"{path}: not a media file FFmpeg can read ({last.split(': ')[-1]})")
    info = json.loads(proc.stdout or "{}")
    streams = info.get("streams", [])
    # Cover art in audio files shows up as a one-frame "video" stream: not footage.
    video = [s for s in streams if s.get("codec_type") == "video"
             and not s.get("disposition", {}).get("attached_pic")]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    fmt_duration = float(info.get("format", {}).get("duration") or 0.0)
    arate = int(audio[0].get("sample_rate") or 0) if audio else 0
    if not video:
        return MediaInfo(path, False, bool(audio), duration=fmt_duration, audio_rate=arate)
    v = video[0]
    rot = _rotation(v)
    w, h = int(v.get("width") or 0), int(v.get("height") or 0)
    if rot in (90, 270):
        w, h = h, w
    fps = _rate(v.get("avg_frame_rate")) or _rate(v.get("r_frame_rate"))
    duration = float(v.get("duration") or 0.0) or fmt_duration
    return MediaInfo(path, True, bool(audio), w, h, fps, duration, rot, v.get("codec_name", ""), arate)
