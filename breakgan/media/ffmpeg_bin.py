"""Locate FFmpeg: the system binary, else the one shipped by the imageio-ffmpeg wheel."""

from __future__ import annotations

import functools
import shutil

from breakgan.errors import BreakganError


@functools.lru_cache(maxsize=None)
def ffmpeg_exe() -> str:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - any failure means "not found"
        raise BreakganError(
            "ffmpeg not found: install it (apt-get install ffmpeg, brew install ffmpeg) "
            "or `pip install imageio-ffmpeg`"
        ) from None


@functools.lru_cache(maxsize=None)
def ffprobe_exe() -> str:
    exe = shutil.which("ffprobe")
    if exe:
        return exe
    raise BreakganError("ffprobe not found: install FFmpeg (apt-get install ffmpeg, brew install ffmpeg)")
