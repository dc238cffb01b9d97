"""Training the humanize model on the Groove MIDI Dataset's train split (a few CPU minutes).

    python -m breakgan.drums.groove.train [--data /work/shared/data/groove] [--minutes 4] [--out FILE]

Every 2-bar window (hop 1 bar) of every 4/4 train performance; L1 loss on velocity (/127) and timing
offset (steps) at the hits only, since both are reported as mean absolute errors. One thread, seeded.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from breakgan.drums.groove.data import load_split
from breakgan.drums.groove.model import SHIPPED, STEPS_PER_BAR, GrooveNet, save, windows


def training_windows(perfs, window_bars: int) -> tuple[np.ndarray, ...]:
    hits, vel, off, tempo = [], [], [], []
    for p in perfs:
        h, _ = windows(p.velocity > 0, window_bars)
        v, _ = windows(p.velocity.astype(np.float32) / 127.0, window_bars)
        o, _ = windows(p.offset, window_bars)
        hits.append(h), vel.append(v), off.append(o), tempo.append(np.full(len(h), p.tempo, np.float32))
    return tuple(np.concatenate(a) for a in (hits, vel, off, tempo))


def train(data: str, minutes: float, seed: int = 0, hidden: int = 64, layers: int = 2, window_bars: int = 2,
          batch: int = 64, offset_weight: float = 2.0, log=print) -> tuple[GrooveNet, dict]:
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    perfs = load_split(data, "train", min_bars=1)
    hits, vel, off, tempo = (torch.from_numpy(a) for a in training_windows(perfs, window_bars))
    log(f"{len(perfs)} train performances, {len(hits)} windows")
    net = GrooveNet(hidden, layers, window_bars)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    t0, step, ema = time.perf_counter(), 0, None
    budget = minutes * 60
    while time.perf_counter() - t0 < budget:
        idx = torch.from_numpy(rng.integers(0, len(hits), batch))
        h, v, o, tp = hits[idx], vel[idx], off[idx], tempo[idx]
        pv, po = net(h, tp)
        mask = h > 0
        loss = (pv - v).abs()[mask].mean() + offset_weight * (po - o).abs()[mask].mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        frac = (time.perf_counter() - t0) / budget
        for g in opt.param_groups:  # cosine decay over the time budget
            g["lr"] = 3e-3 * 0.5 * (1 + np.cos(np.pi * min(1.0, frac)))
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        step += 1
        if step % 500 == 0:
            log(f"step {step}: loss {ema:.4f} ({time.perf_counter() - t0:.0f} s)")
    net.eval()
    meta = {"train_steps": step, "train_seconds": round(time.perf_counter() - t0, 1), "batch": batch,
            "train_windows": int(len(hits)), "train_files": len(perfs), "threads": 1, "seed": seed,
            "offset_weight": offset_weight,
            "data": "Groove MIDI Dataset v1.0.0, train split (CC BY 4.0)", "steps_per_bar": STEPS_PER_BAR}
    return net, meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/work/shared/data/groove")
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--out", type=Path, default=SHIPPED)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--window-bars", type=int, default=2)
    ap.add_argument("--offset-weight", type=float, default=2.0)
    args = ap.parse_args()
    net, meta = train(args.data, args.minutes, args.seed, hidden=args.hidden, window_bars=args.window_bars,
                      offset_weight=args.offset_weight)
    save(net, args.out, meta)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
