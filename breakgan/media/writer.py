"""Pipe RGB frames into FFmpeg: H.264 yuv420p MP4 with faststart, optional audio, atomic rename."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from pathlib import Path

import numpy as np

from breakgan.errors import BreakganError
from breakgan.media.ffmpeg_bin import ffmpeg_exe


class VideoWriter:
    """Context manager: `with VideoWriter(out, w, h, fps, audio=wav) as vw: vw.write(frame)`.

    Frames go straight into FFmpeg's stdin (no image folder). The MP4 is written to a temporary
    name and renamed to `path` only when FFmpeg finished cleanly, so a failed or interrupted render
    never leaves a half-written file under the final name. With `audio`, the audio is cut to the
    video's length (`-shortest` is avoided: it can drop the last frames).
    """

    def __init__(self, path, width: int, height: int, fps: float, *, audio=None,
                 audio_offset: float = 0.0, crf: int = 18, preset: str = "veryfast"):
        if width % 2 or height % 2:
            raise BreakganError(f"{path}: video size {width}x{height} must be even for yuv420p")
        self.path = Path(path)
        self.width, self.height, self.fps = width, height, fps
        self.frames = 0
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
               "-r", f"{fps}", "-i", "pipe:0"]
        if audio is not None:
            if audio_offset:
                cmd += ["-ss", f"{audio_offset:.6f}"]
            cmd += ["-i", str(audio)]
        cmd += ["-map", "0:v:0"]
        if audio is not None:
            cmd += ["-map", "1:a:0", "-c:a", "aac", "-b:a", "192k"]
        cmd += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                "-movflags", "+faststart", "-f", "mp4"]
        self._cmd = cmd
        self._audio = audio
        self._proc: subprocess.Popen | None = None
        self._err: list[bytes] = []

    def __enter__(self) -> "VideoWriter":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BreakganError(f"{self.path.parent}: cannot create output folder ({e.strerror})") from None
        self._proc = subprocess.Popen(self._cmd + [str(self.tmp)],
                                      stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self._drain = threading.Thread(target=lambda: self._err.append(self._proc.stderr.read()),
                                       daemon=True)
        self._drain.start()
        return self

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.shape} {frame.dtype}, want {(self.height, self.width, 3)} uint8")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError:
            self._fail()
        self.frames += 1

    def _fail(self):
        self._proc.wait()
        self._drain.join(timeout=5)
        msg = b"".join(self._err).decode(errors="replace").strip().splitlines()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)
        raise BreakganError(f"{self.path}: FFmpeg failed ({msg[-1] if msg else 'no message'})")

    def __exit__(self, exc_type, exc, tb):
        proc = self._proc
        if exc_type is not None:
            proc.kill()
            proc.wait()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)
            return False
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        if proc.wait() != 0:
            self._fail()
        self._drain.join(timeout=5)
        if self._audio is not None:
            self._trim_audio_to_video()
        os.replace(self.tmp, self.path)
        return False

    def _trim_audio_to_video(self) -> None:
        # AAC priming and a longer audio input can make the audio run past the last frame;
        # a stream-copy pass with -t cuts the container to exactly the video's duration.
        duration = self.frames / self.fps
        cut = self.tmp.with_name(self.tmp.name + ".cut.mp4")
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(self.tmp),
               "-t", f"{duration:.6f}", "-c", "copy", "-movflags", "+faststart", str(cut)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(cut)
            raise BreakganError(f"{self.path}: FFmpeg failed to trim audio ({proc.stderr.strip()[-200:]})")
        os.replace(cut, self.tmp)
