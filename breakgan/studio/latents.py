"""Pure latent math of the studio: blends of favourites and the morph preview's timing.

The morph preview shows one drum hit moving a part from key A to key B exactly as render and live
move it: the fraction of the step covered at dt seconds after the hit is
`trajectory.step_progress(dt, attack, release)` and the latent is `trajectory.slerp(A, B, fraction)`.
"""

from __future__ import annotations

import math

import numpy as np

from breakgan.errors import BreakganError
from breakgan.trajectory import slerp, step_progress

MAX_MORPH_FRAMES = 240  # attack + release of 8 s at 30 fps: the preview never asks for more


def morph_times(attack_ms: float, release_ms: float, fps: float) -> np.ndarray:
    """Times (s) after a hit at which the preview shows a frame: 0 .. attack + release inclusive."""
    for name, v in (("attack_ms", attack_ms), ("release_ms", release_ms), ("fps", fps)):
        if not math.isfinite(v) or v < 0:
            raise BreakganError(f"{name}: must be a finite number >= 0, got {v}")
    if fps <= 0:
        raise BreakganError(f"fps: must be > 0, got {fps}")
    span = (attack_ms + release_ms) / 1000.0
    count = int(math.floor(span * fps + 1e-9)) + 1
    if count > MAX_MORPH_FRAMES:
        raise BreakganError(f"attack + release of {span:g} s at {fps:g} fps is more than {MAX_MORPH_FRAMES} frames")
    times = np.arange(count) / fps
    return times if times[-1] >= span - 1e-9 else np.append(times, span)


def morph_fractions(attack_ms: float, release_ms: float, fps: float) -> np.ndarray:
    """(F,) fraction of the way from key a to key b at each preview frame of one hit: 0 first, 1 last."""
    t = morph_times(attack_ms, release_ms, fps)
    return np.asarray(step_progress(t, attack_ms / 1000.0, release_ms / 1000.0), np.float64)


def morph_path(a: np.ndarray, b: np.ndarray, attack_ms: float, release_ms: float, fps: float) -> np.ndarray:
    """Latents (F, D) float32 of one hit moving key a to key b, one per frame at `fps`."""
    frac = morph_fractions(attack_ms, release_ms, fps)
    return slerp(np.asarray(a)[None, :], np.asarray(b)[None, :], frac).astype(np.float32)


def class_weights(a: int, b: int, fractions: np.ndarray, num_classes: int) -> np.ndarray:
    """(F, num_classes) float32 class weights moving linearly from one-hot class a to one-hot class b."""
    f = np.asarray(fractions, np.float64).reshape(-1)
    w = np.zeros((len(f), num_classes), np.float64)
    w[:, a] += 1.0 - f
    w[:, b] += f
    return w.astype(np.float32)


def blend_latents(latents: np.ndarray, weights) -> np.ndarray:
    """One latent (D,) float32 from 2-4 latents (n, D) and non-negative weights (normalised to sum 1).

    The weighted mean is rescaled to the weighted mean of the norms: an average of independent normal
    vectors is shorter than any of them, and a keyframe should look like the others' length (render
    slerps between keys; PGGAN pixel-normalises its input, so only the direction changes the image).
    """
    z = np.asarray(latents, np.float64)
    w = np.asarray(weights, np.float64).reshape(-1)
    if z.ndim != 2 or not 2 <= len(z) <= 4:
        raise BreakganError(f"blend: needs 2 to 4 favourites, got {len(z)}")
    if len(w) != len(z):
        raise BreakganError(f"blend: {len(w)} weights for {len(z)} favourites")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.max() > 0:
        raise BreakganError("blend: weights must be finite, >= 0 and not all 0")
    w = w / w.max()  # first: two weights of 1e308 would sum to inf
    w = w / w.sum()
    mean = w @ z
    norm = np.linalg.norm(mean)
    if norm < 1e-12:
        raise BreakganError("blend: these favourites and weights cancel out")
    return (mean * (w @ np.linalg.norm(z, axis=1)) / norm).astype(np.float32)
