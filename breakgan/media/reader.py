"""Stream decoded frames out of FFmpeg through a pipe, already filtered and scaled."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from breakgan.errors import BreakganError
from breakgan.media.ffmpeg_bin import ffmpeg_exe


def read_frames(
    path: str | Path,
    width: int,
    height: int,
    *,
    filters: Sequence[str] = (),
    fps: float | None = None,
    start: float | None = None,
    duration: float | None = None,
    loop: bool = False,
) -> Iterator[np.ndarray]:
    """Yield HxWx3 uint8 RGB frames of `path` after `filters` (FFmpeg -vf syntax, in order).

    `fps` resamples the stream (FFmpeg's fps filter, so variable frame rates come out even);
    the last filter must leave frames at width x height, else a scale is appended. FFmpeg applies
    rotation metadata itself. `loop` repeats the input forever (for footage shorter than audio).
    """
    chain = list(filters)
    if fps:
        chain.insert(0, f"fps={fps:.6f}")
    chain.append(f"scale={width}:{height}:flags=area")
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
    if loop:
        cmd += ["-stream_loop", "-1"]
    if start:
        cmd += ["-ss", f"{start:.6f}"]
    cmd += ["-i", str(path)]
    if duration is not None:
        cmd += ["-t", f"{duration:.6f}"]
    cmd += ["-an", "-sn", "-vf", ",".join(chain), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1 << 20)
    err: list[bytes] = []
    drain = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    drain.start()
    size = width * height * 3
    got = 0
    try:
        while True:
            buf = proc.stdout.read(size)
            if len(buf) < size:
                break
            got += 1
            yield np.frombuffer(buf, np.uint8).reshape(height, width, 3)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.wait()
        drain.join(timeout=5)
    message = b"".join(err).decode(errors="replace").strip()
    if proc.returncode not in (0, -9) and got == 0:
        last = (message.splitlines() or ["unknown error"])[-1]
        raise BreakganError(f"{path}: FFmpeg could not decode video ({last})")
