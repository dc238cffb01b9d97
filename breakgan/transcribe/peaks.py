"""Onset picking from frame activations, and onset matching for evaluation (pure functions)."""

from __future__ import annotations

import numpy as np

from breakgan.transcribe import features as F

RADIUS = 3  # frames: a peak is the largest activation within +-30 ms


def pick(act: np.ndarray, threshold: float, first_frame: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(times s, peak values) of `peak_frames`."""
    _, times, values = peak_frames(act, threshold, first_frame)
    return times, values


def peak_frames(act: np.ndarray, threshold: float, first_frame: int = 0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Peaks of one activation track (frames, probability 0..1) -> (frame indices, times s, peak values).

    A peak is a frame above `threshold` that is the largest within +-RADIUS frames (the earliest
    wins a tie); its time is refined between frames by a parabola through the peak and its neighbours.
    `first_frame` is the frame index of act[0] (for a window of a stream).
    """
    act = np.asarray(act, np.float32)
    n = len(act)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    pad = np.concatenate([np.full(RADIUS, -1.0, np.float32), act, np.full(RADIUS, -1.0, np.float32)])
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * RADIUS + 1)
    is_max = (act >= win.max(1)) & (act > threshold)
    # ties: keep a frame only if no earlier frame within the radius has the same value
    before = np.lib.stride_tricks.sliding_window_view(pad[:-RADIUS - 1], RADIUS)[:n]
    is_max &= ~(before >= act[:, None]).any(1)
    idx = np.nonzero(is_max)[0]
    left = act[np.maximum(idx - 1, 0)]
    right = act[np.minimum(idx + 1, n - 1)]
    mid = act[idx]
    denom = left - 2 * mid + right
    shift = np.where(np.abs(denom) > 1e-9, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    shift = np.clip(shift, -0.5, 0.5)
    return idx + first_frame, F.frame_time(idx + first_frame + shift), mid.astype(np.float64)


def match(ref: np.ndarray, est: np.ndarray, tol: float = 0.05) -> tuple[int, int, int, np.ndarray]:
    """Greedy one-to-one matching of sorted onset times within +-tol s, closest pairs first.
    -> (true positives, false positives, false negatives, signed errors est - ref of the matches)."""
    ref = np.sort(np.asarray(ref, np.float64))
    est = np.sort(np.asarray(est, np.float64))
    if len(ref) == 0 or len(est) == 0:
        return 0, len(est), len(ref), np.zeros(0)
    pairs = []
    j0 = 0
    for i, r in enumerate(ref):
        while j0 < len(est) and est[j0] < r - tol:
            j0 += 1
        j = j0
        while j < len(est) and est[j] <= r + tol:
            pairs.append((abs(est[j] - r), i, j))
            j += 1
    pairs.sort()
    used_r, used_e, errors = set(), set(), []
    for d, i, j in pairs:
        if i in used_r or j in used_e:
            continue
        used_r.add(i)
        used_e.add(j)
        errors.append(est[j] - ref[i])
    tp = len(errors)
    return tp, len(est) - tp, len(ref) - tp, np.asarray(errors)


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f
