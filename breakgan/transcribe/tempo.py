"""Tempo, beats and bar lines of a transcription, from its onset-probability envelope (librosa's beat
tracker on the network's output rather than on raw spectral flux: accompaniment no longer drives it)."""

from __future__ import annotations

import numpy as np

from breakgan.transcribe import features as F

START_BPM = 120.0


def beat_grid(env: np.ndarray, onsets: dict[str, np.ndarray], beats_per_bar: int = 4
              ) -> tuple[float | None, np.ndarray, np.ndarray]:
    """-> (tempo bpm or None, beat times, bar-line times). The first beat of a bar is the phase whose
    beats hold the most kick and the least snare (rock/funk/pop convention: kick on 1, snare on 2 and 4)."""
    import librosa

    env = np.asarray(env, np.float32)
    if len(env) < 4 * F.FPS or float(env.max(initial=0.0)) < 0.5:
        return None, np.zeros(0), np.zeros(0)
    tempo, beats = librosa.beat.beat_track(onset_envelope=env, sr=F.SR, hop_length=F.HOP, start_bpm=START_BPM,
                                           units="time", trim=False)
    tempo = float(np.atleast_1d(tempo)[0])
    if not np.isfinite(tempo) or tempo <= 0 or len(beats) < 2:
        return None, np.zeros(0), np.zeros(0)
    beats = np.asarray(beats, np.float64)

    def near(times, grid):
        if len(times) == 0:
            return np.zeros(len(grid))
        idx = np.clip(np.searchsorted(times, grid), 1, len(times) - 1)
        d = np.minimum(np.abs(times[idx] - grid), np.abs(times[idx - 1] - grid))
        return (d < 0.06).astype(np.float64)

    kick = near(onsets.get("kick", np.zeros((0, 2)))[:, 0], beats)
    snare = near(onsets.get("snare", np.zeros((0, 2)))[:, 0], beats)
    score = [float(np.sum(kick[p::beats_per_bar]) - np.sum(snare[p::beats_per_bar])) for p in range(beats_per_bar)]
    phase = int(np.argmax(score))
    return round(tempo, 2), beats, beats[phase::beats_per_bar]
