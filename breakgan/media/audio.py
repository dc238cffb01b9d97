"""Decode audio through FFmpeg (any container, or a video's audio track) into numpy."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from breakgan.errors import BreakganError
from breakgan.media.ffmpeg_bin import ffmpeg_exe
from breakgan.media.probe import probe


def decode_audio(path: str | Path, sr: int) -> np.ndarray:
    """Decode any audio (or video's audio) with FFmpeg to mono float32 at `sr` samples per second."""
    info = probe(path)
    if not info.has_audio:
        raise BreakganError(f"{path}: has no audio stream")
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
           "-vn", "-ac", "1", "-ar", str(sr), "-f", "f32le", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["unknown error"])[-1]
        raise BreakganError(f"{path}: FFmpeg could not decode audio ({last})")
    return np.frombuffer(proc.stdout, np.float32).copy()
