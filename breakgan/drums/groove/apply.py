"""Applying the humanize model: a quantised pattern -> velocities and timing offsets per hit.

amount 0 leaves the pattern exactly as it is; amount 1 takes the predicted velocity and offset of every
hit (plus a little seeded variation, so repeated bars are not identical); in between, velocities are
blended and offsets scaled. Offsets are fractions of a 16th step within +-MAX_OFFSET, so the hits of
one part keep their order and their step.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from breakgan.drums.groove.model import MAX_OFFSET, SHIPPED, load, predict
from breakgan.drums.options import check_float

VELOCITY_JITTER = 3.0  # std of the seeded variation, MIDI velocity units (at amount 1)
OFFSET_JITTER = 0.02  # the same for timing, in 16th steps (~2.5 ms at 120 BPM)


def check_amount(value, option: str = "--humanize") -> float:
    return check_float(value, option, 0.0, 1.0)


@functools.lru_cache(maxsize=2)
def _model(path: str, mtime: float):
    return load(Path(path))


def groove_model(path=None):
    p = Path(path) if path is not None else SHIPPED
    try:
        mtime = p.stat().st_mtime
    except OSError:
        mtime = 0.0  # load() reports the missing file
    return _model(os.fspath(p), mtime)


def humanize(pattern: np.ndarray, tempo: float, amount: float, *, seed: int = 0,
             model=None) -> tuple[np.ndarray, np.ndarray]:
    """(steps, 9) uint8 velocities -> (humanized velocities (steps, 9) uint8, offsets (steps, 9) float32
    in 16th steps). Hits stay hits and rests stay rests; amount 0 returns the pattern unchanged."""
    pattern = np.asarray(pattern, dtype=np.uint8)
    amount = check_amount(amount)
    offsets = np.zeros(pattern.shape, np.float32)
    if amount == 0 or not pattern.any():
        return pattern.copy(), offsets
    net, _ = groove_model(model)
    hits = pattern > 0
    vel, off = predict(net, hits, tempo)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(seed) >> 32, 0x6709]))
    vel = vel + rng.normal(0.0, VELOCITY_JITTER, vel.shape)
    off = off + rng.normal(0.0, OFFSET_JITTER, off.shape)
    blended = (1.0 - amount) * pattern + amount * vel
    out = np.where(hits, np.clip(np.round(blended), 1, 127), 0).astype(np.uint8)
    offsets[hits] = np.clip(amount * off[hits], -MAX_OFFSET, MAX_OFFSET)
    return out, offsets
