"""Keyframe latents + a part's onsets -> one latent vector per time: the shared path of render and live.

Each drum part walks its own cycle of keyframes. A continuous "phase" counts how far the part has
moved along the cycle: onset i adds `step * velocity`, spread over its attack (most of the way, eased
out so the hit reads at once) and release (the settle). The latent at phase s is the slerp between
key floor(s) and key floor(s)+1 (mod K) at frac(s); pulse and drift add deterministic offsets on top.

`latent_path` is a pure function of time: the same onsets, keys, motion and time give the same
vector whether evaluated on a regular frame grid (render) or at arbitrary clock ticks (live).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable

import numpy as np

from breakgan.errors import BreakganError
from breakgan.parts import PARTS
from breakgan.seeds import keyframe_cycle, latents_for_seeds

# Share of a step covered during the attack; the rest settles over the release.
ATTACK_SHARE = 0.8
# Directions the pulse pushes along, cycled by onset index (a small pool keeps memory O(D)).
PULSE_DIRECTIONS = 8
# Drift is a sum of slow sinusoids in fixed random directions, periods scaled by these factors.
DRIFT_PERIODS = (1.0, 1.618, 2.618)
# (field, min, max) of each Motion number; the option of the same name (--attack-ms, ...) says so.
MOTION_LIMITS = (("attack_ms", 0.0, 60_000.0), ("release_ms", 0.0, 60_000.0), ("step", -1000.0, 1000.0),
                 ("pulse", 0.0, 10.0), ("pulse_ms", 0.0, 60_000.0), ("drift", 0.0, 10.0),
                 ("drift_period_s", 0.01, 3600.0))


@dataclass(frozen=True)
class Motion:
    """How a part's latent moves.

    attack_ms: time to cover most (80 %) of a step after an onset, in milliseconds.
    release_ms: time over which the remaining 20 % settles after the attack, in milliseconds.
    step: keyframes advanced per onset at velocity 1 (velocity scales it).
    pulse: size of a short push on each hit, as a fraction of the latent's typical norm; 0 = off.
    pulse_ms: time constant of the pulse's exponential decay, in milliseconds.
    drift: size of a slow walk independent of hits, as a fraction of the latent norm; 0 = off.
    drift_period_s: period of the slowest drift component, in seconds.
    seed: the motion seed: pulse and drift directions (`motion_directions`).
    """

    attack_ms: float = 60.0
    release_ms: float = 400.0
    step: float = 1.0
    pulse: float = 0.0
    pulse_ms: float = 150.0
    drift: float = 0.0
    drift_period_s: float = 8.0
    seed: int = 0

    def __post_init__(self):
        # Validated here, where both sinks (render, live) build it: a NaN or absurd value would
        # otherwise turn every latent into NaN (a black video) or spin for ever.
        for name, lo, hi in MOTION_LIMITS:
            value = getattr(self, name)
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and lo <= value <= hi):
                option = "--" + name.replace("_s", "").replace("_", "-")
                raise BreakganError(f"{option} must be a finite number in {lo:g}..{hi:g}, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise BreakganError(f"motion seed: a seed is a whole number 0 <= s < 2**63, got {self.seed!r}")


def ease(t, curve: str = "smoothstep") -> np.ndarray:
    """Easing of t in [0, 1] (clipped) -> [0, 1]; curves: linear, smoothstep, ease_out (cubic), ease_in."""
    t = np.clip(np.asarray(t, np.float64), 0.0, 1.0)
    if curve == "linear":
        return t
    if curve == "smoothstep":
        return t * t * (3.0 - 2.0 * t)
    if curve == "ease_out":
        return 1.0 - (1.0 - t) ** 3
    if curve == "ease_in":
        return t ** 3
    raise ValueError(f"unknown easing curve {curve!r}")


def slerp(a: np.ndarray, b: np.ndarray, t) -> np.ndarray:
    """Spherical interpolation between latents a and b (shape (..., D), broadcast) at t (shape (...)).

    Falls back to linear interpolation where a and b are (anti)parallel. Returns (..., D) float64
    (float32 inputs are computed in float64 for accuracy and can be cast by the caller).
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)[..., None]
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    nb = np.linalg.norm(b, axis=-1, keepdims=True)
    cos = np.sum(a * b, axis=-1, keepdims=True) / np.maximum(na * nb, 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    so = np.sin(omega)
    safe = so > 1e-6
    so_safe = np.where(safe, so, 1.0)
    wa = np.where(safe, np.sin((1.0 - t) * omega) / so_safe, 1.0 - t)
    wb = np.where(safe, np.sin(t * omega) / so_safe, t)
    return wa * a + wb * b


def keyframes(latent_size: int, count: int, seed: int) -> np.ndarray:
    """The (count, latent_size) float32 keyframes of keyframe seed `seed`: the latents of seeds
    seed..seed+count-1 (`breakgan.seeds.keyframe_cycle`), as `render --seeds PART=S` and live's
    `/breakgan/<part>/seed S` give."""
    return keyframe_cycle(seed, count, latent_size)


def keyframes_from_seeds(seeds: Iterable[int], latent_size: int) -> np.ndarray:
    """One latent per keyframe seed (`breakgan.seeds.latent_for_seed`, as `breakgan sample --seeds`
    draws): (len(seeds), latent_size) float32."""
    return latents_for_seeds(seeds, latent_size)


def step_progress(dt_s: np.ndarray, attack_s: float, release_s: float) -> np.ndarray:
    """Fraction 0..1 of one step covered dt_s seconds after its onset (0 before the onset).

    Ease-out over the attack to ATTACK_SHARE, then smoothstep over the release to 1.
    """
    dt_s = np.asarray(dt_s, np.float64)
    if attack_s > 0:
        a = ease(dt_s / attack_s, "ease_out")
    else:
        a = (dt_s >= 0).astype(np.float64)
    if release_s > 0:
        r = ease((dt_s - attack_s) / release_s, "smoothstep")
    else:
        r = (dt_s >= attack_s).astype(np.float64)
    return np.where(dt_s < 0, 0.0, ATTACK_SHARE * a + (1.0 - ATTACK_SHARE) * r)


def phase(onsets: np.ndarray, times: np.ndarray, motion: Motion) -> np.ndarray:
    """Keyframe phase (steps travelled along the cycle) at each time (s): (F,) float64.

    Completed onsets are summed by a prefix sum; only onsets still inside their attack + release
    window are evaluated, so the cost is O(F * m + n) with m the most onsets in one window.
    """
    times = np.asarray(times, np.float64)
    onsets = np.asarray(onsets, np.float64).reshape(-1, 2)
    if len(onsets) == 0:
        return np.zeros(times.shape, np.float64)
    t_on = onsets[:, 0]
    steps = motion.step * onsets[:, 1]
    attack_s = max(motion.attack_ms, 0.0) / 1000.0
    release_s = max(motion.release_ms, 0.0) / 1000.0
    window = attack_s + release_s
    done_cum = np.concatenate([[0.0], np.cumsum(steps)])
    started = np.searchsorted(t_on, times, side="right")  # onsets with t_on <= t
    # Onsets whose window has ended (t_on + window <= t; a step completes exactly at the window end).
    done = np.minimum(np.searchsorted(t_on + window, times, side="right"), started)
    if window == 0:
        return done_cum[started]
    out = done_cum[done].copy()
    in_flight = started - done
    for k in range(int(in_flight.max()) if len(in_flight) else 0):
        live = in_flight > k
        i = np.where(live, done + k, 0)
        out += np.where(live, steps[i] * step_progress(times - t_on[i], attack_s, release_s), 0.0)
    return out


def motion_directions(motion_seed: int, latent_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The motion seed's rule: pulse directions, drift directions and drift phases (render and live)."""
    rng = np.random.default_rng([int(motion_seed), 0x70A5E])
    pulse_dirs = rng.standard_normal((PULSE_DIRECTIONS, latent_size))
    drift_dirs = rng.standard_normal((len(DRIFT_PERIODS), latent_size))
    drift_phase = rng.uniform(0.0, 2.0 * np.pi, len(DRIFT_PERIODS))
    return pulse_dirs, drift_dirs, drift_phase


def latent_path(onsets: np.ndarray, keys: np.ndarray, times: np.ndarray, motion: Motion = Motion()) -> np.ndarray:
    """Latent per time: (F, D) float32 for onsets (n, 2) [time_s, velocity], keys (K, D), times (F,) s.

    Before the first onset the latent is keys[0]; onset i moves it from key i to key i+1 (mod K) at
    velocity 1 and step 1. Pulse adds `pulse * velocity * exp(-dt/pulse_ms)` along one of a few
    seeded directions after the latest onset; drift adds a seeded sum of slow sinusoids.
    """
    keys = np.asarray(keys, np.float64)
    if keys.ndim != 2 or len(keys) == 0:
        raise BreakganError(f"keyframes must be a (K, D) array, got shape {keys.shape}")
    times = np.asarray(times, np.float64).reshape(-1)
    onsets = np.asarray(onsets, np.float64).reshape(-1, 2)
    K, D = keys.shape
    s = phase(onsets, times, motion)
    base = np.floor(s)
    frac = s - base
    idx = base.astype(np.int64) % K
    # slerp weights per frame from the K consecutive-key angles (scalars): the path is then a weighted sum
    # of a few basis rows (two keys, pulse and drift directions).
    nxt = np.roll(keys, -1, axis=0)
    cos = np.sum(keys * nxt, axis=1) / np.maximum(np.linalg.norm(keys, axis=1) * np.linalg.norm(nxt, axis=1), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))[idx]
    so = np.sin(omega)
    safe = so > 1e-6
    so_safe = np.where(safe, so, 1.0)
    wa = np.where(safe, np.sin((1.0 - frac) * omega) / so_safe, 1.0 - frac)
    wb = np.where(safe, np.sin(frac * omega) / so_safe, frac)
    # Each row is summed term by term in one fixed order, not by a matrix product: BLAS picks its kernel by
    # the number of rows, which changes the last bits, and live's single ticks must equal render's frames.
    k32 = keys.astype(np.float32)
    path = np.take(k32, idx, axis=0)
    path *= wa.astype(np.float32)[:, None]
    tmp = np.take(k32, (idx + 1) % K, axis=0)
    tmp *= wb.astype(np.float32)[:, None]
    path += tmp
    if motion.pulse or motion.drift:
        pulse_dirs, drift_dirs, drift_phase = motion_directions(motion.seed, D)
        if motion.pulse and len(onsets):
            last = np.searchsorted(onsets[:, 0], times, side="right") - 1
            ok = last >= 0
            li = np.where(ok, last, 0)
            dt = times - onsets[li, 0]
            tau = max(motion.pulse_ms, 1e-3) / 1000.0
            amount = np.where(ok, motion.pulse * onsets[li, 1] * np.exp(-dt / tau), 0.0)
            np.take(pulse_dirs.astype(np.float32), li % PULSE_DIRECTIONS, axis=0, out=tmp)
            tmp *= amount.astype(np.float32)[:, None]
            path += tmp
        if motion.drift:
            period = max(motion.drift_period_s, 1e-3)
            waves = np.sin(2.0 * np.pi * times[:, None] / (period * np.asarray(DRIFT_PERIODS))[None, :]
                           + drift_phase[None, :]) * (motion.drift / np.sqrt(len(DRIFT_PERIODS)))
            w32, d32 = waves.astype(np.float32), drift_dirs.astype(np.float32)
            for j in range(len(DRIFT_PERIODS)):
                np.multiply(w32[:, j:j + 1], d32[j], out=tmp)
                path += tmp
    return path


def part_motion(motion: Motion, part: str) -> Motion:
    """The motion of one part: same settings, its own pulse/drift seed (so parts don't move in lockstep)."""
    return replace(motion, seed=int(motion.seed) * len(PARTS) + PARTS.index(part))


def part_paths(timeline, keys: dict[str, np.ndarray], times: np.ndarray,
               motion: Motion = Motion()) -> dict[str, np.ndarray]:
    """Latent paths (F, D) float32 for every part in `keys`, each driven by that part's onsets."""
    return {part: latent_path(timeline.onsets(part), k, times, part_motion(motion, part))
            for part, k in keys.items()}
