"""Render throughput against the generator's pure batched forward pass, and latent-path build time.

    python benchmarks/render.py [--run RUN] [--resolution 64] [--batch 16] [--seconds 3] [--size 640x360]

1. Forward baseline: G on `batch` latents at a time, as many latents as the render needs, no I/O;
   its rate in video frames/s = latents/s / parts (each frame needs one latent per part).
2. Render: `render_video` with the same G, batch and parts (tiles layout + a footage tile, H.264 +
   AAC), timed end to end. Target: render fps / forward fps >= 0.85 (compositing and encoding
   overlap with generation).
3. Latent paths of a 10-minute timeline at 30 fps (16th-note hits at 120 bpm), one part and all 9.
   Target: < 1 s for all parts.

Without --run a PGGAN generator with random weights is built at --resolution (speed does not
depend on training). Use --device cuda on a GPU machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from breakgan.parts import PARTS  # noqa: E402
from breakgan.timeline import Timeline, frame_count, frame_times  # noqa: E402
from breakgan.trajectory import Motion, keyframes, part_paths  # noqa: E402


def build_generator(args, device):
    from breakgan.gan.networks import Generator, NetConfig

    if args.run:
        from breakgan.gan import load_generator

        return load_generator(args.run, device=str(device))
    import torch

    torch.manual_seed(0)
    cfg = NetConfig(resolution=args.resolution, latent_size=args.latent, fmap_base=args.fmap_base,
                    fmap_max=args.fmap_max)
    G = Generator(cfg)
    G.clamp = True
    G.eval().requires_grad_(False).to(device)
    return G, {"latent_size": cfg.latent_size, "resolution": cfg.resolution, "num_classes": 0, "labels": []}


def forward_rate(G, latent: int, items: int, batch: int, device) -> float:
    """Latents per second through G alone (batched, AMP on CUDA), after one warm-up batch."""
    import torch

    amp = device.type == "cuda"
    z = torch.randn(batch, latent, device=device)

    def run(n):
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            for _ in range(n):
                G(z).float().cpu()

    def timed() -> float:
        run(1)
        n = max(1, items // batch)
        t0 = time.perf_counter()
        run(n)
        return n * batch / (time.perf_counter() - t0)

    # In a worker thread, like the render's producer: torch's CPU thread pool behaves differently
    # (measurably faster on a loaded machine) off the main thread, which would skew the ratio.
    result: list[float] = []
    worker = threading.Thread(target=lambda: result.append(timed()))
    worker.start()
    worker.join()
    return result[0]


def drums_folder(root: Path, seconds: float, parts: tuple[str, ...]) -> Path:
    """onsets.json with 8th-note hits per part (offset per part) and a noise mix.wav."""
    import soundfile as sf

    d = root / "drums" / "cand-01"
    d.mkdir(parents=True)
    ons = {p: [] for p in PARTS}
    for i, p in enumerate(parts):
        ons[p] = [{"time": float(t), "step": 0, "velocity": 100} for t in np.arange(0.05 * i, seconds, 0.25)]
    (d / "onsets.json").write_text(json.dumps({"tempo": 120.0, "duration": seconds, "audio": "mix.wav",
                                               "parts": ons}))
    sf.write(d / "mix.wav", (0.05 * np.random.default_rng(0).standard_normal(int(22050 * seconds))
                             ).astype(np.float32), 22050)
    return d.parent


def path_times() -> dict:
    fps, seconds = 30.0, 600.0
    hits = np.stack([np.arange(0.0, seconds, 0.125), np.full(int(seconds / 0.125), 0.8)], 1)
    tl = Timeline({p: hits for p in PARTS}, seconds, 120.0)
    times = frame_times(frame_count(seconds, fps), fps)
    motion = Motion(pulse=0.2, drift=0.1)
    out = {}
    for label, parts in (("one_part", ("kick",)), ("all_9_parts", PARTS)):
        keys = {p: keyframes(512, 8, i) for i, p in enumerate(parts)}
        part_paths(tl, keys, times[:100], motion)  # warm-up
        best = float("inf")
        for _ in range(3):  # best of 3: the machine may be shared
            t0 = time.perf_counter()
            part_paths(tl, keys, times, motion)
            best = min(best, time.perf_counter() - t0)
        out[label] = best
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="run folder / checkpoint (default: random-weight PGGAN)")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--latent", type=int, default=256)
    ap.add_argument("--fmap-base", type=int, default=8192)
    ap.add_argument("--fmap-max", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--parts", default="kick,snare,hihat_closed")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = ap.parse_args()

    import torch

    from breakgan.parts import parse_parts
    from breakgan.render import render_video
    from breakgan.device import resolve_device
    from breakgan.render.options import parse_size

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    parts = parse_parts(args.parts)
    G, info = build_generator(args, device)
    frames = frame_count(args.seconds, args.fps)
    items = frames * len(parts)

    paths = path_times()
    fwd_before = forward_rate(G, info["latent_size"], items, args.batch, device) / len(parts)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        drums = drums_folder(tmp, args.seconds, parts)
        footage = tmp / "foot.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=640x360:rate=25", "-t", "3", "-pix_fmt", "yuv420p", str(footage)], check=True)
        t0 = time.perf_counter()
        render_video(tmp / "out", (G, info), drums=drums, footage=footage, parts=parts, size=parse_size(args.size),
                     fps=args.fps, batch=args.batch, device=str(device), show_progress=False)
        rendered = frames / (time.perf_counter() - t0)
    # forward measured before and after the render, averaged: load drift on a shared machine cancels
    fwd_after = forward_rate(G, info["latent_size"], items, args.batch, device) / len(parts)
    fwd = (fwd_before + fwd_after) / 2
    result = {
        "device": str(device), "resolution": info["resolution"], "latent": info["latent_size"],
        "batch": args.batch, "parts": len(parts), "frames": frames, "size": args.size,
        "forward_fps": round(fwd, 2), "forward_fps_before_after": [round(fwd_before, 2), round(fwd_after, 2)], "render_fps": round(rendered, 2), "ratio": round(rendered / fwd, 3),
        "ratio_target": 0.85,
        "latent_path_10min_30fps_s": {k: round(v, 3) for k, v in paths.items()}, "latent_path_target_s": 1.0,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
