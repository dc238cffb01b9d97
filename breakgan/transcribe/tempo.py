"""Tempo, beats and bar lines of a transcription, from its onset-probability envelope (librosa's beat
tracker on the network's output rather than on raw spectral flux: accompaniment no longer drives it)."""

from __future__ import annotations

import numpy as np

from breakgan.transcribe import features as F

START_BPM = 90.0  # librosa's prior centre; see infer.TEMPO_WEIGHTS


def beat_grid(env: np.ndarray, onsets: dict[str, np.ndarray], beats_per_bar: int = 4
              ) -> tuple[float | None, np.ndarray, np.ndarray]:
    """-> (tempo bpm or None, beat times, bar-line times). The first beat of a bar is the phase whose
    beats hold the most kick and the least snare (rock/funk/pop convention: kick on 1, snare on 2 and 4);
    a tie goes to the beat of the first kick."""
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

    kick_t = onsets.get("kick", np.zeros((0, 2)))[:, 0]
    snare_t = onsets.get("snare", np.zeros((0, 2)))[:, 0]
    # the tracker can lock onto the off-beats (hats and bass on the 8ths): take the half-beat shift
    # when more kicks and snares fall on it
    half = 30.0 / tempo
    shifted = beats + half
    if np.sum(near(kick_t, shifted) + near(snare_t, shifted)) > np.sum(near(kick_t, beats) + near(snare_t, beats)):
        beats = shifted
    period = 60.0 / tempo
    lead = int(np.floor(beats[0] / period + 0.1))  # the tracker starts late: extend the grid back to 0
    if lead > 0:
        beats = np.concatenate([beats[0] - period * np.arange(lead, 0, -1), beats])
        beats = np.maximum(beats[beats > -0.1 * period], 0.0)
    kick = near(kick_t, beats)
    snare = near(snare_t, beats)
    score = [float(np.sum(kick[p::beats_per_bar]) - np.sum(snare[p::beats_per_bar])) for p in range(beats_per_bar)]
    if kick.any():  # ties (kicks on 1 and 3): music usually starts on a downbeat, so the first kick's beat
        score[int(np.argmax(kick > 0)) % beats_per_bar] += 0.5
    phase = int(np.argmax(score))
    return round(tempo, 2), beats, beats[phase::beats_per_bar]
