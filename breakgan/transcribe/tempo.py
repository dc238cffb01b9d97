"""Tempo, beats and bar lines of a transcription. librosa's tempo estimate on the network's onset envelope
(not raw spectral flux: accompaniment no longer drives it) proposes a tempo; its metrical relatives (1/2,
2/3, 3/4, 4/5, 5/4, 4/3, 3/2, 2x) compete on what a drum part says about the beat: the pattern repeats every bar,
kicks and snares sit on beats, and tempi far from ~105 bpm are rarer. Then the beat tracker places beats
at the chosen tempo."""

from __future__ import annotations

import numpy as np

from breakgan.transcribe import features as F

START_BPM = 90.0  # librosa's prior centre; see infer.TEMPO_WEIGHTS
# 4:5 and 5:4 too: librosa's guess lands there on some grooves (train-split check: 370 -> 388 of 463 right)
RELATIVES = (0.5, 2 / 3, 0.75, 0.8, 1.0, 1.25, 4 / 3, 1.5, 2.0)
# Score weights of FEATURES, fitted by `python -m breakgan.transcribe.tempo_fit` (a conditional logit on
# 463 windows of 274 train-split grooves with simulated transcription errors: 395 right within 4%, 394
# with files held out in 2 folds; the previous hand-set weights got 388). The validation split was not used.
WEIGHTS = (4.35, 1.47, 1.93, -2.7, -0.31)
PRIOR_BPM = 105.0
WINDOW_S = 4.0   # phase is fitted per window: a 1% tempo error drifts 0.3 s over 30 s


def _trains(onsets: dict[str, np.ndarray], frames: int) -> list[np.ndarray]:
    """Kick, snare and timekeeper onsets as zero-mean impulse trains smoothed over +-20 ms."""
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    out = []
    for heads in (("kick",), ("snare",), ("hihat_closed", "hihat_open", "ride")):
        x = np.zeros(frames)
        for h in heads:
            idx = np.round(onsets.get(h, np.zeros((0, 2)))[:, 0] * F.FPS).astype(int)
            np.add.at(x, idx[(idx >= 0) & (idx < frames)], 1.0)
        x = np.convolve(x, kernel, "same")
        out.append(x - x.mean())
    return out


def _autocorrelation(x: np.ndarray, lag: float) -> float:
    """Normalised autocorrelation at a fractional lag in frames (linear between neighbours)."""
    energy = float(np.dot(x, x)) + 1e-9
    i, frac = int(lag), lag - int(lag)
    if i < 1 or i + 1 >= len(x):
        return 0.0
    at = [float(np.dot(x[:-k], x[k:])) / energy for k in (i, i + 1)]
    return at[0] * (1 - frac) + at[1] * frac


def _on_beats(kick: np.ndarray, snare: np.ndarray, period: float, tol: float = 0.05) -> tuple[float, float]:
    """Per window, the beat phase that puts the most kicks and snares on beats; -> the fractions of
    snares and of kicks within tol of a beat (over all windows)."""
    end = max(kick.max(initial=0.0), snare.max(initial=0.0))
    phases = np.linspace(0, period, 48, endpoint=False)

    def off(t, ph):  # (phases, onsets) distance to the nearest beat
        return np.abs((t[None, :] - ph[:, None] + period / 2) % period - period / 2)

    hits = [0, 0]
    for a in np.arange(0.0, end + 1e-9, WINDOW_S / 2):
        k = kick[(kick >= a) & (kick < a + WINDOW_S)]
        s = snare[(snare >= a) & (snare < a + WINDOW_S)]
        if len(k) + len(s) < 2:
            continue
        both = (off(np.concatenate([k, s]), phases) < tol).sum(1)
        ph = phases[[int(np.argmax(both))]]
        hits[0] += int((off(s, ph) < tol).sum())
        hits[1] += int((off(k, ph) < tol).sum())
    # windows overlap by half: each onset is counted about twice, in the numerator and the denominator
    return hits[0] / max(2 * len(snare), 1), hits[1] / max(2 * len(kick), 1)


FEATURES = ("bar repetition", "snares on beats", "kicks on beats", "log2(tempo / PRIOR_BPM) squared",
            "log2(tempo / PRIOR_BPM)")


def candidates(first_guess: float, onsets: dict[str, np.ndarray], frames: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """The metrical relatives of a tempo estimate within 40-320 bpm and what the drums say about each:
    -> (tempi (n,), features (n, len(FEATURES)))."""
    trains = _trains(onsets, frames)
    kick = onsets.get("kick", np.zeros((0, 2)))[:, 0]
    snare = onsets.get("snare", np.zeros((0, 2)))[:, 0]
    tempi, rows = [], []
    for r in RELATIVES:
        tempo = first_guess * r
        if not 40.0 <= tempo <= 320.0:
            continue
        period = 60.0 / tempo
        bar = float(np.mean([_autocorrelation(x, 4 * period * F.FPS) for x in trains]))
        snare_on, kick_on = _on_beats(kick, snare, period)
        far = float(np.log2(tempo / PRIOR_BPM))
        tempi.append(tempo)
        rows.append((bar, snare_on, kick_on, far ** 2, far))
    return np.asarray(tempi, np.float64), np.asarray(rows, np.float64).reshape(-1, len(FEATURES))


def choose_tempo(first_guess: float, onsets: dict[str, np.ndarray], frames: int) -> float:
    """The best-scoring metrical relative of a tempo estimate (bpm); see WEIGHTS."""
    tempi, feats = candidates(first_guess, onsets, frames)
    if len(tempi) == 0:
        return first_guess
    return float(tempi[int(np.argmax(feats @ np.asarray(WEIGHTS)))])


def beat_grid(env: np.ndarray, onsets: dict[str, np.ndarray], beats_per_bar: int = 4
              ) -> tuple[float | None, np.ndarray, np.ndarray]:
    """-> (tempo bpm or None, beat times, bar-line times). The first beat of a bar is the phase whose
    beats hold the most kick and the least snare (rock/funk/pop convention: kick on 1, snare on 2 and 4);
    a tie goes to the beat of the first kick."""
    import librosa

    env = np.asarray(env, np.float32)
    if len(env) < 4 * F.FPS or float(env.max(initial=0.0)) < 0.5:
        return None, np.zeros(0), np.zeros(0)
    guess = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=env, sr=F.SR, hop_length=F.HOP,
                                                      start_bpm=START_BPM))[0])
    if not np.isfinite(guess) or guess <= 0:
        return None, np.zeros(0), np.zeros(0)
    tempo = choose_tempo(guess, onsets, len(env))
    _, beats = librosa.beat.beat_track(onset_envelope=env, sr=F.SR, hop_length=F.HOP, bpm=tempo, units="time",
                                       trim=False)
    if len(beats) < 2:
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
    # After the last hit the tracker has nothing to follow and wanders: continue the grid at the tempo
    hits = np.concatenate([a[:, 0] for a in onsets.values() if len(a)] or [np.zeros(0)])
    if len(hits) and np.sum(beats <= hits.max() + 0.06) >= 2:
        beats = beats[beats <= hits.max() + 0.06]
        tail = int(np.floor((len(env) / F.FPS - beats[-1]) / period))
        beats = np.concatenate([beats, beats[-1] + period * np.arange(1, tail + 1)])
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
