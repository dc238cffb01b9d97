"""Humanize model: velocity and timing-offset errors on the Groove MIDI Dataset's validation split.

    python benchmarks/groove.py [--model FILE] [--data /work/shared/data/groove] [--split validation]

For every hit of every 4/4 validation performance (quantised to the 16th grid, offsets kept), the
model predicts velocity and timing offset from the hits alone (and the tempo). Baselines, fitted on
the train split: (a) one constant (the train mean velocity and offset), (b) the per-part,
per-position-in-bar mean. MAE in MIDI velocity units and in ms at each file's tempo.
Target: the model beats (b) by at least 15% on both.
"""

from __future__ import annotations

import argparse

import numpy as np

from breakgan.drums.encoding import NUM_PARTS
from breakgan.drums.groove.data import STEPS_PER_BAR, load_split
from breakgan.drums.groove.model import load, predict


def position_means(perfs) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Train means: (16, 9) velocity and offset per position and part, and the overall means."""
    sv = np.zeros((STEPS_PER_BAR, NUM_PARTS))
    so = np.zeros_like(sv)
    n = np.zeros_like(sv)
    for p in perfs:
        hit = p.velocity > 0
        pos = np.arange(len(hit)) % STEPS_PER_BAR
        for k in range(NUM_PARTS):
            np.add.at(sv[:, k], pos[hit[:, k]], p.velocity[hit[:, k], k])
            np.add.at(so[:, k], pos[hit[:, k]], p.offset[hit[:, k], k])
            np.add.at(n[:, k], pos[hit[:, k]], 1)
    mv, mo = sv.sum() / n.sum(), so.sum() / n.sum()
    safe = np.maximum(n, 1)
    return np.where(n > 0, sv / safe, mv), np.where(n > 0, so / safe, mo), float(mv), float(mo)


def evaluate(model=None, data: str = "/work/shared/data/groove", split: str = "validation",
             variation: float = 0.0) -> dict[str, dict[str, float]]:
    net, _ = load(model)
    pv, po, cv, co = position_means(load_split(data, "train", min_bars=1))
    err = {name: {"vel": [], "ms": []} for name in ("constant", "part x position mean", "model")}
    for p in load_split(data, split, min_bars=1):
        hit = p.velocity > 0
        pos = np.arange(len(hit)) % STEPS_PER_BAR
        true_v, true_o = p.velocity.astype(float), p.offset.astype(float)
        mv, mo = predict(net, hit, p.tempo)
        preds = {"constant": (np.full(hit.shape, cv), np.full(hit.shape, co)),
                 "part x position mean": (pv[pos], po[pos]), "model": (mv, mo)}
        for name, (v, o) in preds.items():
            err[name]["vel"].append(np.abs(v - true_v)[hit])
            err[name]["ms"].append(np.abs(o - true_o)[hit] * p.step_ms)
    return {name: {k: float(np.concatenate(v).mean()) for k, v in e.items()} for name, e in err.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", default="/work/shared/data/groove")
    ap.add_argument("--split", default="validation", choices=["validation", "train"])
    args = ap.parse_args()
    out = evaluate(args.model, args.data, args.split)
    base = out["part x position mean"]
    print(f"split {args.split}: mean absolute error per hit")
    print("| predictor | velocity MAE | timing MAE (ms) |\n|---|---|---|")
    for name, e in out.items():
        print(f"| {name} | {e['vel']:.2f} | {e['ms']:.2f} |")
    m = out["model"]
    print(f"model vs part x position mean: velocity {100 * (1 - m['vel'] / base['vel']):.1f}% lower, "
          f"timing {100 * (1 - m['ms'] / base['ms']):.1f}% lower (target: >= 15% on both)")


if __name__ == "__main__":
    main()
