"""Decode audio through FFmpeg (any container, or a video's audio track) into numpy, whole or in blocks."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from breakgan.errors import BreakganError
from breakgan.media.ffmpeg_bin import ffmpeg_exe
from breakgan.media.probe import probe

_SAMPLE_BYTES = 4  # float32


def audio_blocks(path: str | Path, sr: int, block_samples: int, *,
                 max_samples: int | None = None) -> Iterator[np.ndarray]:
    """Yield the mono float32 signal of `path` at `sr` Hz in blocks of `block_samples` (the last one
    shorter), read from an FFmpeg pipe: memory stays at one block whatever the song's length.

    `max_samples` bounds the decoded length: one sample more raises BreakganError naming the file
    (a container can lie about its duration, so the bound is enforced on what FFmpeg delivers).
    """
    path = Path(path)
    info = probe(path)
    if not info.has_audio:
        raise BreakganError(f"{path}: has no audio stream")
    if block_samples < 1:
        raise ValueError("block_samples must be positive")
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path),
           "-vn", "-ac", "1", "-ar", str(int(sr)), "-f", "f32le", "pipe:1"]
    # stderr goes to a file, not a pipe: a damaged file can make FFmpeg write more error lines
    # than a pipe holds, which would stall it while we wait on stdout.
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, bufsize=0)
        total = 0
        try:
            buf = bytearray(block_samples * _SAMPLE_BYTES)
            view = memoryview(buf)
            while True:
                got = 0
                while got < len(buf):
                    n = proc.stdout.readinto(view[got:])
                    if not n:
                        break
                    got += n
                got -= got % _SAMPLE_BYTES
                if got:
                    total += got // _SAMPLE_BYTES
                    if max_samples is not None and total > max_samples:
                        raise BreakganError(f"{path}: audio longer than {max_samples / sr:g} s "
                                            f"(the limit for onset analysis)")
                    yield np.frombuffer(buf, np.float32, count=got // _SAMPLE_BYTES).copy()
                if got < len(buf):
                    break
            proc.wait()
        finally:
            if proc.poll() is None:  # stopped early (error or the consumer closed the generator)
                proc.kill()
            proc.stdout.close()
            proc.wait()
        if proc.returncode != 0:
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines() or ["unknown error"]
            raise BreakganError(f"{path}: FFmpeg could not decode audio ({lines[-1]})")


def decode_audio(path: str | Path, sr: int) -> np.ndarray:
    """Decode any audio (or video's audio) with FFmpeg to mono float32 at `sr` samples per second.

    Holds the whole signal: for short clips and tests; long songs go through `audio_blocks`.
    """
    blocks = list(audio_blocks(path, sr, 1 << 20))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
