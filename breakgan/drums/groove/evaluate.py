"""Humanize figures: velocity and timing-offset errors per hit, for the model and the two baselines.

Baselines are fitted on the given train performances: (a) one constant (the mean velocity and offset),
(b) the per-part, per-position-in-bar mean. Errors are mean absolute errors in MIDI velocity units and in
milliseconds at each performance's tempo. Used by `benchmarks/groove.py` and by training's --holdout.
"""

from __future__ import annotations

import numpy as np

from breakgan.drums.encoding import NUM_PARTS
from breakgan.drums.groove.data import STEPS_PER_BAR
from breakgan.drums.groove.model import predict

BASELINE = "part x position mean"


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


def errors(net, train_perfs, eval_perfs) -> dict[str, dict[str, float]]:
    """{predictor: {"vel": MAE, "ms": MAE}} over every hit of eval_perfs, plus each figure's gain over (b)."""
    pv, po, cv, co = position_means(train_perfs)
    err = {name: {"vel": [], "ms": []} for name in ("constant", BASELINE, "model")}
    for p in eval_perfs:
        hit = p.velocity > 0
        pos = np.arange(len(hit)) % STEPS_PER_BAR
        true_v, true_o = p.velocity.astype(float), p.offset.astype(float)
        mv, mo = predict(net, hit, p.tempo)
        preds = {"constant": (np.full(hit.shape, cv), np.full(hit.shape, co)),
                 BASELINE: (pv[pos], po[pos]), "model": (mv, mo)}
        for name, (v, o) in preds.items():
            err[name]["vel"].append(np.abs(v - true_v)[hit])
            err[name]["ms"].append(np.abs(o - true_o)[hit] * p.step_ms)
    out = {name: {k: float(np.concatenate(v).mean()) for k, v in e.items()} for name, e in err.items()}
    base, model = out[BASELINE], out["model"]
    out["gain"] = {k: 1.0 - model[k] / base[k] for k in ("vel", "ms")}
    return out
