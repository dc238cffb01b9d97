"""Ingest throughput next to FFmpeg alone decoding + scaling the same clip at the same sample rate.

    python benchmarks/ingest.py                   # makes a 1280x720 30 fps test clip first
    python benchmarks/ingest.py --clip my.mp4 --fps 5 --size 256 --crop auto

Prints candidate frames per second for both and the ratio (ingest / FFmpeg alone; target >= 0.7:
analysis must not dominate decoding). Each side runs --repeat times, alternating; the best run counts.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from breakgan.ingest import ingest_clips  # noqa: E402
from breakgan.media import ffmpeg_exe, probe, read_frames  # noqa: E402


def make_clip(path: Path, seconds: float) -> None:
    """A 720p30 clip with a moving subject over a textured, slightly noisy background (phone-like bitrate)."""
    graph = ("testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t[bg];"
             "testsrc=size=240x480:rate=30[fg];[bg][fg]overlay=x='520+300*sin(t)':y=120[out0]")
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", graph,
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
                    "-pix_fmt", "yuv420p", str(path)], check=True)


def ffmpeg_alone(clip: Path, size: int, fps: float) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = sum(1 for _ in read_frames(clip, size, size, fps=fps))
    return time.perf_counter() - t0, n


def ingest(clip: Path, size: int, fps: float, crop: str, work: Path) -> tuple[float, int]:
    out = work / "dataset"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    summary = ingest_clips([clip], out, size=size, fps=fps, crop=crop, report=False)
    elapsed = time.perf_counter() - t0
    if summary.failed:
        raise SystemExit(f"ingest failed: {summary.failed[0].error}")
    return elapsed, summary.clips[0].counts["candidates"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, help="clip to use (default: generate a 720p30 test clip)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the generated clip")
    ap.add_argument("--fps", type=float, default=5.0, help="sample rate (candidates per second)")
    ap.add_argument("--size", type=int, default=256, help="output size")
    ap.add_argument("--crop", default="auto", help="crop mode for ingest")
    ap.add_argument("--repeat", type=int, default=2, help="runs per side; the best counts")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="breakgan-bench-") as tmp:
        work = Path(tmp)
        clip = args.clip
        if clip is None:
            clip = work / "bench.mp4"
            make_clip(clip, args.seconds)
        info = probe(clip)
        print(f"clip {clip.name}: {info.width}x{info.height} {info.fps:.3f} fps {info.duration:.1f} s; "
              f"sample {args.fps} fps -> {args.size}px, crop {args.crop}")
        base, ours = [], []
        for _ in range(args.repeat):
            base.append(ffmpeg_alone(clip, args.size, args.fps))
            ours.append(ingest(clip, args.size, args.fps, args.crop, work))
        tb, nb = min(base)
        ti, ni = min(ours)
        print(f"ffmpeg alone : {nb} frames in {tb:.2f} s = {nb / tb:.1f} frames/s")
        print(f"ingest       : {ni} frames in {ti:.2f} s = {ni / ti:.1f} frames/s")
        print(f"ratio ingest/ffmpeg = {(ni / ti) / (nb / tb):.2f} (target >= 0.7)")


if __name__ == "__main__":
    main()
