"""A second look at each onset candidate of one head: `RescoreNet` sees, around the candidate, a
finely resolved low band (7.8 Hz bins up to 500 Hz, which the 64-mel front end and its pooling blur into
~110 Hz steps), the log-mel frames and all heads' activations, and says whether a hit of its head is there.

Why: with an accompaniment, 88% of false kicks sit on a bass note (a low onset with a hat or snare on
it looks like a kick through coarse bands) and missed kicks under a snare peak at 0.59, below the kick
threshold. A bass note is a steady pitch with harmonics, a kick a short falling thump: told apart in
the fine low band. Candidates are peaks above CANDIDATE_THRESHOLD, so the rescorer can also recover kicks
the network was unsure of.

A rescorer may also see a **fine high band** (`high`): 8 ms FFTs every 2.5 ms, 2-8 kHz, from 50 ms before
to 100 ms after the candidate. The log-mel front end's 64 ms window smears a hi-hat's or a snare's
few-millisecond attack, so a sharp hit and the softer onset of a chord look alike through it. A rescorer
whose entry says `"high_rate": 32000` hears that band up to 16 kHz from audio decoded at 32 kHz beside the
networks' 16 kHz (a hi-hat's energy lies mostly above the 8 kHz that 16 kHz audio can hold).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from breakgan.transcribe import features as F

LOW_FFT = 2048              # 128 ms at 16 kHz: 7.8 Hz bins
LOW_BINS = 64               # bins 1..64: 7.8-500 Hz
BEFORE, AFTER = 10, 30      # frames of context: 100 ms before the candidate, 300 ms after
WIDTH = BEFORE + AFTER + 1
CANDIDATE_THRESHOLD = 0.3
_WINDOW = np.hanning(LOW_FFT + 1)[:-1].astype(np.float32)
HIGH_FFT, HIGH_HOP = 128, 40          # 8 ms windows every 2.5 ms at 16 kHz
HIGH_BEFORE, HIGH_AFTER = 20, 40      # 50 ms before the candidate, 100 ms after
HIGH_WIDTH = HIGH_BEFORE + HIGH_AFTER
HIGH_FIRST_BIN = 16                   # of 125 Hz bins: from 2 kHz (to 8 kHz at 16 kHz)
HIGH_RATES = (F.SR, 2 * F.SR)         # the rates a high band may be heard at: up to 8 or 16 kHz


def low_band(audio: np.ndarray, frames: np.ndarray, first_sample: int = 0) -> np.ndarray:
    """Log power of bins 1..LOW_BINS of a LOW_FFT window centred on each frame's sample (frame i is
    centred on sample i * HOP; `audio` starts at sample `first_sample`; zeros outside it).
    -> (len(frames), LOW_BINS) float32."""
    frames = np.asarray(frames, np.int64)
    if len(frames) > 512:  # the sample index grid is 16 kB a frame: a span is done in pieces
        return np.concatenate([low_band(audio, frames[i:i + 512], first_sample) for i in range(0, len(frames), 512)])
    starts = frames * F.HOP - LOW_FFT // 2 - first_sample
    idx = starts[:, None] + np.arange(LOW_FFT)[None, :]
    inside = (idx >= 0) & (idx < len(audio))
    seg = np.zeros(idx.shape, np.float32)
    seg[inside] = audio[idx[inside]]
    spec = np.abs(np.fft.rfft(seg * _WINDOW, axis=1)[:, 1:LOW_BINS + 1]) ** 2
    return np.log(spec + 1e-6).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _hann(n: int) -> np.ndarray:
    return np.hanning(n + 1)[:-1].astype(np.float32)  # periodic


def high_bins(rate: int = F.SR) -> int:
    """How many 125 Hz bins the high band holds at `rate`: 2 kHz up to rate / 2."""
    return HIGH_FFT * (rate // F.SR) // 2 + 1 - HIGH_FIRST_BIN


def high_band(audio: np.ndarray, frames: np.ndarray, first_sample: int = 0, rate: int = F.SR) -> np.ndarray:
    """Log power from 2 kHz to rate / 2 in HIGH_WIDTH short windows around each frame's time (the k-th
    window centred (k - HIGH_BEFORE) * 2.5 ms from it; `audio` at `rate` starts at sample `first_sample`;
    zeros outside it) -> (n, HIGH_WIDTH, high_bins(rate)). The windows last 8 ms at any rate, so the bins
    stay 125 Hz wide and those below 8 kHz mean the same at 16 and 32 kHz."""
    frames = np.asarray(frames, np.int64)
    if len(frames) > 256:
        return np.concatenate([high_band(audio, frames[i:i + 256], first_sample, rate)
                               for i in range(0, len(frames), 256)])
    k = rate // F.SR
    fft = HIGH_FFT * k
    centres = frames[:, None] * F.HOP * k + (np.arange(HIGH_WIDTH) - HIGH_BEFORE)[None, :] * HIGH_HOP * k
    idx = (centres - fft // 2 - first_sample)[..., None] + np.arange(fft)
    inside = (idx >= 0) & (idx < len(audio))
    seg = np.zeros(idx.shape, np.float32)
    seg[inside] = audio[idx[inside]]
    spec = np.abs(np.fft.rfft(seg * _hann(fft), axis=-1)[..., HIGH_FIRST_BIN:]) ** 2
    return np.log(spec + 1e-6).astype(np.float32)


def high_patches(audio: np.ndarray, first_sample: int, frames: np.ndarray, rate: int = F.SR) -> np.ndarray:
    """The high band of candidates at `frames`, each less its own mean (as `patches` gives it)."""
    hb = high_band(audio, frames, first_sample, rate)
    return hb - hb.mean(axis=(1, 2), keepdims=True) if len(hb) else hb


def high_rate(spec: dict) -> int | None:
    """The rate a rescorer's entry (meta["rescore"][head]) hears its high band at; None without one."""
    return int(spec.get("high_rate", F.SR)) if spec.get("high") else None


def audio_rate(meta: dict) -> int:
    """The highest rate a model's rescorers hear: F.SR, or more when one wants a high band above 8 kHz
    (then inference decodes the song at this rate too, beside F.SR)."""
    return max([F.SR, *(high_rate(s) or F.SR for s in meta.get("rescore", {}).values())])


def _window(a: np.ndarray, frame: int, first_frame: int) -> np.ndarray:
    """a[frame - BEFORE : frame + AFTER + 1] (a starts at first_frame), zero rows outside a."""
    rows = np.arange(frame - BEFORE, frame + AFTER + 1) - first_frame
    ok = (rows >= 0) & (rows < len(a))
    out = np.zeros((WIDTH, a.shape[1]), np.float32)
    out[ok] = a[rows[ok]]
    return out


def patches(audio, first_sample, logmel, mel_first, acts, act_first, frames,
            high: bool = False) -> tuple[np.ndarray, ...]:
    """Inputs of RescoreNet for candidates at `frames` (global frame indices):
    -> low (n, WIDTH, LOW_BINS), mel (n, WIDTH, N_MELS), acts (n, WIDTH, heads) and, with `high`, the fine
    high band of `audio` (n, HIGH_WIDTH, 49; `high_patches` gives it from audio at another rate); each log
    patch less its own mean, so the level of the song does not matter."""
    low, mel, act = [], [], []
    frames = np.asarray(frames, np.int64)
    if len(frames):  # neighbouring candidates share most frames: one FFT per frame of the span
        span_first = int(frames.min()) - BEFORE
        span = low_band(audio, np.arange(span_first, int(frames.max()) + AFTER + 1), first_sample)
    for fr in frames:
        lb = span[fr - BEFORE - span_first:fr + AFTER + 1 - span_first]
        lm = _window(logmel, int(fr), mel_first)
        low.append(lb - lb.mean())
        mel.append(lm - lm.mean())
        act.append(_window(acts, int(fr), act_first))
    n_heads = acts.shape[1]
    if not low:
        out = (np.zeros((0, WIDTH, LOW_BINS), np.float32), np.zeros((0, WIDTH, F.N_MELS), np.float32),
               np.zeros((0, WIDTH, n_heads), np.float32))
        return (*out, np.zeros((0, HIGH_WIDTH, high_bins()), np.float32)) if high else out
    out = (np.stack(low), np.stack(mel), np.stack(act))
    return (*out, high_patches(audio, first_sample, frames)) if high else out


def _branch() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((4, 4)), nn.Flatten())


class RescoreNet(nn.Module):
    """(low, mel, acts) patches of candidates -> one logit each: a hit of this net's head or not."""

    def __init__(self, n_heads: int, hidden: int = 128, high: bool = False):
        super().__init__()
        self.low, self.mel = _branch(), _branch()
        self.high = _branch() if high else None
        self.mlp = nn.Sequential(nn.Linear((3 if high else 2) * 512 + WIDTH * n_heads, hidden), nn.ReLU(),
                                 nn.Dropout(0.2), nn.Linear(hidden, 1))

    def forward(self, low: torch.Tensor, mel: torch.Tensor, acts: torch.Tensor,
                high: torch.Tensor | None = None) -> torch.Tensor:
        z = [self.low(low.transpose(1, 2)[:, None]), self.mel(mel.transpose(1, 2)[:, None]), acts.flatten(1)]
        if self.high is not None:
            z.append(self.high(high.transpose(1, 2)[:, None]))
        return self.mlp(torch.cat(z, 1))[:, 0]


class RescoreEnsemble(nn.Module):
    """Rescorers of one head trained on different synthesized sets, their probabilities averaged (as
    model.TranscribeEnsemble averages networks): they err on different candidates."""

    def __init__(self, members: list[RescoreNet]):
        super().__init__()
        if len({m.high is None for m in members}) != 1:
            raise ValueError("the members of a rescorer ensemble must all have the high band or none")
        self.members = nn.ModuleList(members)

    @property
    def high(self) -> nn.Module | None:
        """Not None when the members want the high band (as RescoreNet.high)."""
        return self.members[0].high

    def forward(self, low, mel, acts, high=None) -> torch.Tensor:
        """The logit of the members' mean probability."""
        return logit_of_mean_probability([m(low, mel, acts, high) for m in self.members])


def logit_of_mean_probability(logits: list[torch.Tensor]) -> torch.Tensor:
    """How ensembles (here and model.TranscribeEnsemble) combine their members: average the probabilities,
    not the logits, so one over-confident member does not outvote the others."""
    p = torch.stack([torch.sigmoid(x) for x in logits]).mean(0).clamp(1e-7, 1 - 1e-7)
    return torch.log(p) - torch.log1p(-p)


def probabilities(net: RescoreNet | RescoreEnsemble, low: np.ndarray, mel: np.ndarray, acts: np.ndarray,
                  high: np.ndarray | None = None) -> np.ndarray:
    """RescoreNet's probability per candidate (patches as `patches` returns them; `high` is used only by
    a net with the high branch)."""
    if len(low) == 0:
        return np.zeros(0, np.float32)
    inputs = (low, mel, acts) if net.high is None else (low, mel, acts, high)
    with torch.no_grad():
        logits = net(*(torch.from_numpy(np.ascontiguousarray(x, np.float32)) for x in inputs))
    return torch.sigmoid(logits).numpy()


def head_candidates(model, meta: dict, audio: np.ndarray, logmel: np.ndarray, acts: np.ndarray,
                    floor: float, high_audio: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per head of a whole signal: (times, peak activations, scores) of its peaks, for choosing thresholds.
    A head's onsets at threshold T are the peaks whose score is above T: the score is the peak activation
    (peaks above `floor`), or for a rescored head its rescorer's probability (peaks above its candidate
    threshold), exactly as streaming inference decides them. `high_audio`: the signal at audio_rate(meta),
    when that is above F.SR."""
    from breakgan.transcribe.peaks import peak_frames

    out = []
    for h, name in enumerate(meta["heads"]):
        spec = meta.get("rescore", {}).get(name)
        frames, times, peaks = peak_frames(acts[:, h], spec["candidate_threshold"] if spec else floor)
        scores = peaks
        if spec is not None:
            x = patches(audio, 0, logmel, 0, acts, 0, frames)
            if rate := high_rate(spec):
                if rate != F.SR and high_audio is None:
                    raise ValueError(f"the {name} rescorer hears {rate} Hz audio: pass high_audio")
                x = (*x, high_patches(audio if rate == F.SR else high_audio, 0, frames, rate))
            scores = probabilities(model.rescorers[name], *x)
        out.append((times, peaks, np.asarray(scores, np.float64)))
    return out
