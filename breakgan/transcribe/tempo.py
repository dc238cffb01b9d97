"""Tempo, beats and bar lines of a transcription. librosa's tempo estimate on the network's onset envelope
(not raw spectral flux: accompaniment no longer drives it) proposes a tempo; its metrical relatives (1/2,
2/3, 3/4, 4/5, 5/4, 4/3, 3/2, 2x) compete on what a drum part says about the beat: the pattern repeats every bar,
kicks and snares sit on beats, each part's hits recur at typical distances in 16ths of the candidate's beat, and
tempi far from ~105 bpm are rarer. A small network fitted on transcribed train-split grooves
(`tempo_fit`, `assets/drums/tempo_chooser.safetensors`) scores the candidates. Then the beat tracker places
beats at the chosen tempo."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from breakgan.errors import BreakganError
from breakgan.transcribe import features as F

START_BPM = 90.0  # librosa's prior centre; see infer.TEMPO_WEIGHTS
# 4:5 and 5:4 too: librosa's guess lands there on some grooves (train-split check: 370 -> 388 of 463 right)
RELATIVES = (0.5, 2 / 3, 0.75, 0.8, 1.0, 1.25, 4 / 3, 1.5, 2.0)
PRIOR_BPM = 105.0
WINDOW_S = 4.0   # phase is fitted per window: a 1% tempo error drifts 0.3 s over 30 s
LAGS = 32        # autocorrelations up to two bars, in 16ths of the candidate's beat
CROSS_LAGS = 16  # kick -> snare and snare -> kick, up to one bar
CHOOSER = Path(__file__).resolve().parents[2] / "assets" / "drums" / "tempo_chooser.safetensors"


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


TRAINS = ("kick", "snare", "timekeeper")
FEATURES = (("bar repetition", "snares on beats", "kicks on beats", "log2(tempo / PRIOR_BPM) squared",
             "log2(tempo / PRIOR_BPM)")
            + tuple(f"{t} autocorrelation at {k} 16ths" for t in TRAINS for k in range(1, LAGS + 1))
            + tuple(f"{a} -> {b} correlation at {k} 16ths" for a, b in (("kick", "snare"), ("snare", "kick"))
                    for k in range(CROSS_LAGS)))


def _correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """sum_t x[t] y[t + k] for every lag k >= 0, normalised by both energies (FFT, zero-padded)."""
    n = len(x)
    r = np.fft.irfft(np.conj(np.fft.rfft(x, 2 * n)) * np.fft.rfft(y, 2 * n), 2 * n)[:n]
    return r / (np.sqrt(float(np.dot(x, x)) * float(np.dot(y, y))) + 1e-9)


def _at(r: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """r at fractional lags (linear between neighbours; 0 beyond its end)."""
    i = np.floor(lags).astype(int)
    frac = lags - i
    ok = (i >= 0) & (i + 1 < len(r))
    out = np.zeros(len(lags))
    out[ok] = r[i[ok]] * (1 - frac[ok]) + r[i[ok] + 1] * frac[ok]
    return out


def candidates(first_guess: float, onsets: dict[str, np.ndarray], frames: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """The metrical relatives of a tempo estimate within 40-320 bpm and what the drums say about each:
    -> (tempi (n,), features (n, len(FEATURES)))."""
    trains = _trains(onsets, frames)
    curves = [_correlation(x, x) for x in trains] + [_correlation(trains[0], trains[1]),
                                                     _correlation(trains[1], trains[0])]
    kick = onsets.get("kick", np.zeros((0, 2)))[:, 0]
    snare = onsets.get("snare", np.zeros((0, 2)))[:, 0]
    tempi, rows = [], []
    for r in RELATIVES:
        tempo = first_guess * r
        if not 40.0 <= tempo <= 320.0:
            continue
        period = 60.0 / tempo
        bar = float(np.mean([_at(c, np.array([4 * period * F.FPS]))[0] for c in curves[:3]]))
        snare_on, kick_on = _on_beats(kick, snare, period)
        far = float(np.log2(tempo / PRIOR_BPM))
        sixteenth = period / 4 * F.FPS
        tempi.append(tempo)
        rows.append(np.concatenate([(bar, snare_on, kick_on, far ** 2, far)]
                                   + [_at(c, sixteenth * np.arange(1, LAGS + 1)) for c in curves[:3]]
                                   + [_at(c, sixteenth * np.arange(CROSS_LAGS)) for c in curves[3:]]))
    return np.asarray(tempi, np.float64), np.asarray(rows, np.float64).reshape(-1, len(FEATURES))


class Chooser:
    """Scores candidates: a one-hidden-layer tanh network over their standardised FEATURES (fitted by
    `tempo_fit` as a softmax over each window's candidates)."""

    def __init__(self, mean, std, w1, b1, w2, meta: dict | None = None):
        self.mean, self.std, self.w1, self.b1, self.w2 = (np.asarray(a, np.float64) for a in (mean, std, w1, b1, w2))
        self.meta = meta or {}

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """Per candidate; only their order matters (no output bias: a softmax over candidates ignores it)."""
        return np.tanh(((feats - self.mean) / self.std) @ self.w1 + self.b1) @ self.w2

    def tensors(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "std": self.std, "w1": self.w1, "b1": self.b1, "w2": self.w2}

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {**self.meta, "kind": "breakgan-tempo-chooser", "features": list(FEATURES)}
        save_file({k: v.astype(np.float32) for k, v in self.tensors().items()}, str(path),
                  metadata={"breakgan": json.dumps(meta, sort_keys=True)})
        return path


@lru_cache(maxsize=4)
def load_chooser(path: str | Path = CHOOSER) -> Chooser:
    """The fitted chooser; a BreakganError naming the file if it is missing or not one for these FEATURES."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="np") as f:
            meta = json.loads((f.metadata() or {}).get("breakgan", "null"))
            t = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # a missing file or a damaged header
        raise BreakganError(f"{path}: not a tempo chooser ({str(e).splitlines()[0][:120]})") from None
    n = len(FEATURES)
    if (not isinstance(meta, dict) or meta.get("kind") != "breakgan-tempo-chooser"
            or meta.get("features") != list(FEATURES)
            or {k: v.shape[:1] for k, v in t.items() if k in ("mean", "std", "w1")} != {k: (n,) for k in ("mean", "std", "w1")}
            or set(t) != {"mean", "std", "w1", "b1", "w2"}
            or t["w1"].shape[1:] != t["b1"].shape or t["w2"].shape != t["b1"].shape):
        raise BreakganError(f"{path}: not a tempo chooser for this version's features")
    return Chooser(t["mean"], t["std"], t["w1"], t["b1"], t["w2"], meta)


def compile_kernels() -> None:
    """Compile librosa's numba kernels that tempo and beats use, in this process. numba caches them beside
    librosa, and two processes compiling the same gufunc at once can leave a mismatched cache pair that
    segfaults every later run (numba issue 10128): call this before starting workers that track beats."""
    env = np.zeros(int(10 * F.FPS), np.float32)
    env[::50] = 1.0
    tempo_estimate(env)
    beat_grid(env, {}, tempo=120.0)


def tempo_estimate(env: np.ndarray) -> float | None:
    """librosa's tempo estimate on a transcription's onset envelope (bpm), or None."""
    import librosa

    guess = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=np.asarray(env, np.float32), sr=F.SR,
                                                      hop_length=F.HOP, start_bpm=START_BPM))[0])
    return guess if np.isfinite(guess) and guess > 0 else None


def choose_tempo(first_guess: float, onsets: dict[str, np.ndarray], frames: int,
                 chooser: Chooser | None = None) -> float:
    """The best-scoring metrical relative of a tempo estimate (bpm); see Chooser."""
    tempi, feats = candidates(first_guess, onsets, frames)
    if len(tempi) == 0:
        return first_guess
    return float(tempi[int(np.argmax((chooser or load_chooser()).scores(feats)))])


def beat_grid(env: np.ndarray, onsets: dict[str, np.ndarray], beats_per_bar: int = 4, tempo: float | None = None
              ) -> tuple[float | None, np.ndarray, np.ndarray]:
    """-> (tempo bpm or None, beat times, bar-line times). `tempo`: the song's, when the user knows it (no
    estimate then). The first beat of a bar is the phase whose beats hold the most kick and the least snare
    (rock/funk/pop convention: kick on 1, snare on 2 and 4); a tie goes to the beat of the first kick."""
    import librosa

    env = np.asarray(env, np.float32)
    if len(env) < 4 * F.FPS or float(env.max(initial=0.0)) < 0.5:
        return None, np.zeros(0), np.zeros(0)
    if tempo is None:
        guess = tempo_estimate(env)
        if guess is None:
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
