"""Ingest throughput next to FFmpeg alone decoding + cropping + scaling the same clip at the same sample rate.

    python benchmarks/ingest.py                   # makes a 1280x720 30 fps test clip first
    python benchmarks/ingest.py --clip my.mp4 --fps 5 --size 256 --crop auto
    python benchmarks/ingest.py --portrait --clip /tmp/portrait60.mp4 --fps 8   # a phone clip: 60 s of
        1080x1920 H.264 at 24 fps (made there once, minutes on 2 cores; reused when it exists)

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


def make_portrait_clip(path: Path, seconds: float) -> None:
    """A phone clip: 1080x1920 at 24 fps, a small figure moving in front of a large static, noisy backdrop."""
    graph = ("color=0x707880:size=1080x1920:rate=24,drawgrid=width=120:height=120:thickness=4:color=white@0.5,"
             "noise=alls=4:allf=t[bg];testsrc=size=320x720:rate=24[fg];"
             "[bg][fg]overlay=x='380+300*sin(t)':y='600+100*sin(1.7*t)'[out0]")
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", graph,
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-b:v", "16M", "-maxrate", "20M",
                    "-bufsize", "32M", "-pix_fmt", "yuv420p", str(path)], check=True)  # a phone's bitrate


def ffmpeg_alone(clip: Path, size: int, fps: float) -> tuple[float, int]:
    """FFmpeg alone: decode, sample at `fps`, crop the centre square, scale to size x size raw RGB frames."""
    info = probe(clip)
    side = min(info.width, info.height)
    t0 = time.perf_counter()
    n = sum(1 for _ in read_frames(clip, size, size, fps=fps, filters=[f"crop={side}:{side}"]))
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
    ap.add_argument("--clip", type=Path, help="clip to use (default: generate a 720p30 test clip); with "
                    "--portrait, made at this path when missing")
    ap.add_argument("--portrait", action="store_true", help="the phone case: 60 s of 1080x1920 at 24 fps")
    ap.add_argument("--seconds", type=float, default=None, help="length of the generated clip (10; 60 portrait)")
    ap.add_argument("--profile", type=Path, help="also write a cProfile of one ingest run to this file")
    ap.add_argument("--fps", type=float, default=5.0, help="sample rate (candidates per second)")
    ap.add_argument("--size", type=int, default=256, help="output size")
    ap.add_argument("--crop", default="auto", help="crop mode for ingest")
    ap.add_argument("--repeat", type=int, default=2, help="runs per side; the best counts")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="breakgan-bench-") as tmp:
        work = Path(tmp)
        clip = args.clip
        if args.portrait:
            clip = clip or work / "portrait.mp4"
            if not clip.exists():
                make_portrait_clip(clip, args.seconds or 60.0)
        elif clip is None:
            clip = work / "bench.mp4"
            make_clip(clip, args.seconds or 10.0)
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
        if args.profile:
            import cProfile

            cProfile.runctx("ingest(clip, args.size, args.fps, args.crop, work)", globals(),
                            {"clip": clip, "args": args, "work": work, "ingest": ingest}, str(args.profile))
            print(f"profile of one ingest run: {args.profile} (python -m pstats)")


if __name__ == "__main__":
    main()
