"""Studio responsiveness: a batch of 16 images over HTTP, and the page's answers while a render runs.

    python benchmarks/studio.py [--generator assets/demo/generator.safetensors] [--repeats 5] [--bars 4]

1. Batch: POST /api/batch (16 new seeds) then GET the 16 images, as the page does, against a real
   uvicorn server on 127.0.0.1. Baseline: the generator's bare forward passes for the same 16 latents
   (one per pass, as `sample` does). Ratio = baseline / batch time (1.0 = HTTP, PNG and caching cost
   nothing). Target: batch < 1 s for 16 images at 64 px on CPU.
2. While a render runs (the Render button: `breakgan render` in a background process), the page's
   requests (GET /, /api/info, a cached image, the job's progress) are timed every 50 ms:
   p50/p99/max. Target: p99 < 200 ms. A new batch during the render is timed too (it shares the CPU).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(app):
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port}"


def batch_once(client, start: int) -> float:
    t = time.perf_counter()
    r = client.post("/api/batch", json={"count": 16, "start": start})
    r.raise_for_status()
    for url in r.json()["urls"]:
        client.get(url).raise_for_status()
    return time.perf_counter() - t


def pct(values, q):
    return float(np.percentile(np.asarray(values) * 1000, q))


def run_breakgan(argv) -> None:
    from breakgan.cli import main as cli_main

    try:
        cli_main([str(a) for a in argv])
    except SystemExit as e:
        if e.code:
            raise RuntimeError(f"breakgan {' '.join(map(str, argv))} failed ({e.code})") from None


def bench() -> None:
    import httpx

    from breakgan.gan import load_generator
    from breakgan.gan.sampling import generate_images, latents_for_seeds
    from breakgan.studio.app import create_app

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", default=str(ROOT / "assets/demo/generator.safetensors"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bars", type=int, default=4, help="length of the drums the render runs over")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    G, info = load_generator(args.generator, device="cpu")
    app = create_app(args.generator, work / "studio", drums=None, renders=work / "renders", device="cpu",
                     generator=(G, info))
    server, url = serve(app)
    client = httpx.Client(base_url=url, timeout=60)
    batch_once(client, 10_000)  # warm-up: first forward pass, allocator

    batch, bare = [], []
    for k in range(args.repeats):
        batch.append(batch_once(client, 1000 + 16 * k))
        z = latents_for_seeds(range(2000 + 16 * k, 2016 + 16 * k), info["latent_size"])  # (16, D) tensor
        t = time.perf_counter()
        generate_images(G, z, batch_size=1)
        bare.append(time.perf_counter() - t)
    b_med, g_med = statistics.median(batch), statistics.median(bare)
    print(f"batch of 16 at {info['resolution']} px over HTTP: median {b_med * 1000:.0f} ms, best "
          f"{min(batch) * 1000:.0f} ms (target < 1000 ms); bare generator {g_med * 1000:.0f} ms; "
          f"ratio {g_med / b_med:.2f}")
    server.should_exit = True

    # 2. page latency while a render runs
    drums = work / "drums"
    run_breakgan(["drums", "--seed", ROOT / "assets/seeds/breakbeat.mid", "--bars", args.bars, "--out", drums])
    app = create_app(args.generator, work / "studio", drums=drums, renders=work / "renders", device="cpu",
                     generator=(G, info))
    server, url = serve(app)
    client = httpx.Client(base_url=url, timeout=60)
    client.put("/api/parts/kick", json={"seeds": [1, 2, 3]}).raise_for_status()
    client.put("/api/parts/snare", json={"seeds": [4, 5]}).raise_for_status()
    client.get("/img/seed/1.png").raise_for_status()
    job = client.post("/api/render", json={"source": "parts", "preview": False}).json()
    take = job["take"]
    lat: dict[str, list[float]] = {"/": [], "/api/info": [], "/img/seed/1.png": [], f"/api/render/{take}": []}
    during_frames: list[float] = []
    batch_during: list[float] = []
    state = "running"
    t_render = time.perf_counter()
    while state == "running":
        for path in lat:
            t = time.perf_counter()
            r = client.get(path)
            r.raise_for_status()
            dt = time.perf_counter() - t
            lat[path].append(dt)
            if path.startswith("/api/render"):
                status = r.json()
                state = status["state"]
                if status["done"] > 0:
                    during_frames.append(dt)
        if len(batch_during) < 2 and during_frames:
            batch_during.append(batch_once(client, 5000 + 16 * len(batch_during)))
        time.sleep(0.05)
    render_s = time.perf_counter() - t_render
    status = client.get(f"/api/render/{take}").json()
    server.should_exit = True
    allv = [v for vs in lat.values() for v in vs]
    print(f"render ({status['state']}, {status['total']} frames, {render_s:.1f} s incl. start-up): "
          f"{len(allv)} page requests meanwhile")
    for path, vs in lat.items():
        print(f"  GET {path:22s} p50 {pct(vs, 50):6.1f} ms  p99 {pct(vs, 99):6.1f} ms  max {max(vs) * 1000:6.1f} ms")
    print(f"  all                       p50 {pct(allv, 50):6.1f} ms  p99 {pct(allv, 99):6.1f} ms  "
          f"max {max(allv) * 1000:6.1f} ms (target p99 < 200 ms)")
    if batch_during:
        print(f"  a new batch of 16 during the render: {statistics.median(batch_during) * 1000:.0f} ms")


if __name__ == "__main__":
    bench()
