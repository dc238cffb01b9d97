"""Trajectory: slerp/ease, keyframes, and the latent path as a pure function of time."""

import time

import numpy as np
import pytest

from breakgan.parts import PARTS
from breakgan.timeline import Timeline, frame_count, frame_times
from breakgan.trajectory import (Motion, ease, keyframes, keyframes_from_seeds, latent_path, part_motion,
                                 part_paths, phase, slerp)


def test_slerp_endpoints_norm_and_vectorised():
    a, b = keyframes(16, 2, seed=1)
    t = np.array([0.0, 0.25, 0.5, 1.0])
    out = slerp(a, b, t)
    assert out.shape == (4, 16)
    np.testing.assert_allclose(out[0], a, atol=1e-6)
    np.testing.assert_allclose(out[-1], b, atol=1e-6)
    # for unit vectors slerp stays on the sphere, unlike lerp
    ua, ub = a / np.linalg.norm(a), b / np.linalg.norm(b)
    np.testing.assert_allclose(np.linalg.norm(slerp(ua, ub, t), axis=1), 1.0, atol=1e-9)
    # parallel vectors fall back to lerp instead of dividing by zero
    np.testing.assert_allclose(slerp(ua, 2 * ua, 0.5), 1.5 * ua, atol=1e-9)


def test_ease_curves():
    t = np.array([-1.0, 0.0, 0.5, 1.0, 2.0])
    for curve in ("linear", "smoothstep", "ease_out", "ease_in"):
        e = ease(t, curve)
        assert e[0] == 0 and e[1] == 0 and e[3] == 1 and e[4] == 1 and 0 < e[2] < 1
    assert ease(0.5) == 0.5
    with pytest.raises(ValueError):
        ease(0.5, "bounce")


def test_keyframes_deterministic():
    k = keyframes(8, 3, seed=5)
    assert k.shape == (3, 8) and k.dtype == np.float32
    np.testing.assert_array_equal(k, keyframes(8, 3, seed=5))
    assert not np.allclose(k, keyframes(8, 3, seed=6))


def test_keyframes_from_seeds_match_torch_sampling():
    import torch

    k = keyframes_from_seeds([3, 7], 12)
    np.testing.assert_array_equal(k[1], torch.randn(12, generator=torch.Generator().manual_seed(7)).numpy())
    assert k.shape == (2, 12) and k.dtype == np.float32


def test_onset_moves_to_next_key_and_velocity_scales_step():
    keys = keyframes(32, 3, seed=0)
    onsets = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 0.5]])
    m = Motion(attack_ms=50, release_ms=100)
    t = np.array([0.0, 0.999, 1.5, 2.5, 3.5, 5.0])
    path = latent_path(onsets, keys, t, m)
    assert path.shape == (6, 32) and path.dtype == np.float32
    np.testing.assert_allclose(path[0], keys[0], atol=1e-5)
    np.testing.assert_allclose(path[1], keys[0], atol=1e-5)  # nothing moves before the onset
    np.testing.assert_allclose(path[2], keys[1], atol=1e-5)
    np.testing.assert_allclose(path[3], keys[2], atol=1e-5)
    np.testing.assert_allclose(path[4], keys[0], atol=1e-5)  # wraps mod K
    np.testing.assert_allclose(path[5], slerp(keys[0], keys[1], 0.5), atol=1e-5)  # half velocity, half step
    np.testing.assert_allclose(phase(onsets, t, m), [0, 0, 1, 2, 3, 3.5])


def test_motion_starts_at_onset_and_is_monotone_with_overlapping_hits():
    m = Motion(attack_ms=60, release_ms=400)
    onsets = np.array([[1.0, 1.0], [1.1, 1.0], [1.2, 0.8]])  # inside each other's release
    t = np.linspace(0.0, 3.0, 3001)
    s = phase(onsets, t, m)
    assert np.all(np.diff(s) >= -1e-12)
    assert s[t < 1.0].max() == 0 and s[(t > 1.0)][0] > 0
    # most of a step is covered within the attack
    assert phase(onsets[:1], np.array([1.06]), m)[0] == pytest.approx(0.8)
    assert s[-1] == pytest.approx(2.8)


def test_pure_function_of_time_any_grid():
    """live evaluates at arbitrary ticks and must get what render gets on its frame grid."""
    keys = keyframes(24, 4, seed=2)
    onsets = np.array([[0.3, 1.0], [0.31, 0.4], [0.9, 0.7], [1.4, 1.0]])
    m = Motion(pulse=0.3, drift=0.2, seed=9)
    grid = frame_times(60, 30)
    full = latent_path(onsets, keys, grid, m)
    picks = np.array([41, 3, 17, 17, 59])
    np.testing.assert_array_equal(latent_path(onsets, keys, grid[picks], m), full[picks])
    one = np.concatenate([latent_path(onsets, keys, grid[i:i + 1], m) for i in range(60)])
    np.testing.assert_allclose(one, full, atol=1e-6)
    np.testing.assert_array_equal(full, latent_path(onsets, keys, grid, m))  # deterministic


def test_pulse_and_drift_are_seeded_offsets():
    keys = keyframes(24, 4, seed=2)
    onsets = np.array([[0.5, 1.0]])
    t = np.array([0.25, 0.5001, 0.6, 2.0])
    plain = latent_path(onsets, keys, t, Motion())
    pulsed = latent_path(onsets, keys, t, Motion(pulse=0.5, pulse_ms=100))
    push = np.linalg.norm(pulsed - plain, axis=1)
    assert push[0] == 0 and push[1] > push[2] > push[3] > 0  # a push on the hit that decays
    d1 = latent_path(onsets, keys, t, Motion(drift=0.3, seed=1))
    d2 = latent_path(onsets, keys, t, Motion(drift=0.3, seed=2))
    assert np.linalg.norm(d1 - plain, axis=1).min() > 0
    assert not np.allclose(d1, d2)


def test_part_paths_each_part_follows_its_own_onsets():
    parts = {p: np.zeros((0, 2)) for p in PARTS}
    parts["kick"] = np.array([[0.5, 1.0]])
    parts["snare"] = np.array([[1.0, 1.0]])
    tl = Timeline(parts, 2.0)
    keys = {"kick": keyframes(8, 2, 0), "snare": keyframes(8, 2, 1), "ride": keyframes(8, 2, 2)}
    t = frame_times(tl.frame_count(10), 10)
    paths = part_paths(tl, keys, t, Motion(drift=0.1))
    assert set(paths) == set(keys)
    moved = {p: np.linalg.norm(np.diff(paths[p], axis=0), axis=1) for p in paths}
    assert part_motion(Motion(seed=1), "kick").seed != part_motion(Motion(seed=1), "snare").seed
    plain = part_paths(tl, keys, t)
    step = {p: np.flatnonzero(np.linalg.norm(np.diff(plain[p], axis=0), axis=1) > 1e-6) for p in plain}
    assert step["kick"][0] == 4 and step["snare"][0] == 9 and len(step["ride"]) == 0
    assert all(m.shape == (19,) for m in moved.values())


def test_ten_minute_path_is_fast():
    # not a benchmark (see benchmarks/render.py): a guard that the path stays vectorised
    onsets = np.stack([np.arange(0, 600, 0.125), np.full(4800, 0.8)], 1)
    t = frame_times(frame_count(600, 30), 30)
    keys = keyframes(512, 8, 0)
    t0 = time.perf_counter()
    path = latent_path(onsets, keys, t, Motion(pulse=0.2, drift=0.1))
    assert time.perf_counter() - t0 < 5.0 and path.shape == (18000, 512)


@pytest.mark.parametrize("K", [1, 2, 70])
def test_path_matches_slerp_reference_for_any_key_count(K):
    keys = keyframes(12, K, seed=4)
    onsets = np.array([[0.2, 1.0], [0.5, 0.6], [0.55, 1.0]])
    t = np.linspace(0, 1.5, 40)
    m = Motion(pulse=0.2, drift=0.1, seed=3)
    s = phase(onsets, t, m)
    i = np.floor(s).astype(int)
    ref = slerp(keys[i % K], keys[(i + 1) % K], s - np.floor(s))
    plain = latent_path(onsets, keys, t, Motion())
    np.testing.assert_allclose(plain, ref, atol=1e-5)
    # pulse + drift are the same offsets whatever the key count
    offsets = latent_path(onsets, keys, t, m) - plain
    other = latent_path(onsets, keyframes(12, 3, seed=1), t, m) - latent_path(onsets, keyframes(12, 3, seed=1), t)
    np.testing.assert_allclose(offsets, other, atol=1e-5)
