"""Peak memory of `render --audio` for a long song against a short one: the analysis must stream.

    python benchmarks/audio_memory.py [--long 600] [--short 20] [--fps 15] [--no-render]

Makes two songs with FFmpeg (lavfi: 60 Hz kick thumps on the beat, noise-burst hats off the beat and a
440 Hz tone, 120 bpm, stereo 44.1 kHz MP3), then, each in its own process, measures peak RSS
(os.wait4 ru_maxrss: the largest of that process and its reaped FFmpeg children) of:
1. the onset analysis alone: `timeline_from_audio(SONG)`;
2. `breakgan render --run assets/demo/generator.safetensors --audio SONG --size 64x64 --preview --fps F
   --device cpu` (FFmpeg muxes the audio straight from the song file).
Target (issue 10): the long song's peak within 150 MB of the short song's, for each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "assets" / "demo" / "generator.safetensors"
TARGET_MB = 150.0

# One beat every 0.5 s: a decaying 60 Hz thump on the beat, a short noise burst half a beat later.
SONG_EXPR = ("0.8*sin(2*PI*60*t)*exp(-mod(t\\,0.5)/0.04)"
             "+0.3*(random(0)*2-1)*exp(-mod(t+0.25\\,0.5)/0.008)+0.1*sin(2*PI*440*t)")

ANALYSIS = """
import json, sys, time
from breakgan.timeline import timeline_from_audio
t0 = time.perf_counter()
tl = timeline_from_audio(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t0, "tempo": tl.tempo, "duration": tl.duration,
                  "onsets": {p: len(a) for p, a in tl.parts.items() if len(a)}}))
"""


def make_song(path: Path, seconds: float) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"aevalsrc={SONG_EXPR}|{SONG_EXPR}:s=44100:d={seconds:g}", "-c:a", "libmp3lame",
                    "-b:a", "192k", str(path)], check=True)


def peak_rss(cmd: list[str]) -> tuple[float, float, float, str]:
    """Run cmd; return (peak RSS of that process in MB, its CPU seconds, wall seconds, its stdout).
    Exits on failure."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT)
        # wait4, not wait: it returns this child's own rusage; ru_maxrss is its peak RSS (KB on Linux).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{stderr[-2000:]}")
    return usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime, wall, stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--long", type=float, default=600.0, help="long song (s)")
    ap.add_argument("--short", type=float, default=20.0, help="short song (s)")
    ap.add_argument("--fps", type=float, default=15.0, help="render fps (--preview caps it at 15)")
    ap.add_argument("--no-render", action="store_true", help="measure the analysis only")
    ap.add_argument("--keep", help="folder for the songs and renders (default: a temporary one)")
    args = ap.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="breakgan-audio-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    breakgan = [sys.executable, "-m", "breakgan.cli"]
    results: dict[str, dict] = {}
    for name, seconds in (("short", args.short), ("long", args.long)):
        song = work / f"song-{seconds:g}s.mp3"
        if not song.is_file():
            make_song(song, seconds)
        mb, cpu, wall, out = peak_rss([sys.executable, "-c", ANALYSIS, str(song)])
        row = {"seconds": seconds, "analysis_peak_mb": round(mb, 1), "analysis_cpu_s": round(cpu, 1),
               "analysis_wall_s": round(wall, 1),
               "analysis": json.loads(out.strip().splitlines()[-1])}
        if not args.no_render:
            out_dir = work / f"render-{seconds:g}s"
            mb, cpu, wall, _ = peak_rss([*breakgan, "render", "--run", str(GENERATOR), "--audio", str(song),
                                    "--out", str(out_dir), "--size", "64x64", "--preview", "--fps", f"{args.fps:g}",
                                    "--device", "cpu"])
            row.update(render_peak_mb=round(mb, 1), render_cpu_s=round(cpu, 1), render_wall_s=round(wall, 1))
        results[name] = row
        print(json.dumps({name: row}), flush=True)

    keys = ["analysis_peak_mb"] + ([] if args.no_render else ["render_peak_mb"])
    summary = {}
    for key in keys:
        diff = results["long"][key] - results["short"][key]
        summary[key.replace("_peak_mb", "")] = {
            "short_mb": results["short"][key], "long_mb": results["long"][key], "difference_mb": round(diff, 1),
            "target_mb": TARGET_MB, "met": diff <= TARGET_MB}
    print(json.dumps(summary, indent=2))
    print(f"songs and renders in {work}")


if __name__ == "__main__":
    main()
