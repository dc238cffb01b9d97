"""Log-mel frames (16 kHz, 10 ms hop, 64 mels), computed the same way for a whole clip (training) and
for a stream of blocks (inference): `StreamingLogMel` keeps only the last window's samples."""

from __future__ import annotations

import numpy as np

SR = 16000
HOP = 160            # 10 ms
N_FFT = 1024         # 64 ms: enough low-frequency resolution to tell a kick from a bass note
N_MELS = 64
FMIN, FMAX = 30.0, 8000.0
FPS = SR / HOP


def to_model_rate(y: np.ndarray, rate: int) -> np.ndarray:
    """Samples at `rate` Hz -> at SR (the networks' rate), for audio synthesized at a higher rate so that
    a rescorer can hear above SR / 2."""
    if int(rate) == SR:
        return np.asarray(y, np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(SR, int(rate))
    return resample_poly(np.asarray(y, np.float32), SR // g, int(rate) // g).astype(np.float32)


def frame_time(index) -> np.ndarray:
    """Centre time (s) of frame `index` (frame i is centred on sample i * HOP)."""
    return np.asarray(index, np.float64) * HOP / SR


_MEL = None
_WINDOW = None


def _mel_basis() -> np.ndarray:
    global _MEL, _WINDOW
    if _MEL is None:
        import librosa

        _MEL = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX).astype(np.float32)
        _WINDOW = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann
    return _MEL


def _log_mel(frames: np.ndarray) -> np.ndarray:
    """(n, N_FFT) windows of samples -> (n, N_MELS) float32 log-mel."""
    mel = _mel_basis()
    spec = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)).astype(np.float32) ** 2
    return np.log(spec @ mel.T + 1e-6).astype(np.float32)


class StreamingLogMel:
    """Feed mono float32 blocks at SR with `push`, then `finish`: the frames returned, concatenated, are
    exactly `log_mel(whole signal)` (frames centred, the signal zero-padded by N_FFT/2 at both ends)."""

    def __init__(self):
        self.buf = np.zeros(N_FFT // 2, np.float32)  # the centring pad
        self.next_start = 0      # index in buf of the next frame's first sample
        self.samples = 0
        self.emitted = 0         # frames returned so far

    def _frames(self, final: bool) -> np.ndarray:
        if final:
            self.buf = np.concatenate([self.buf, np.zeros(N_FFT // 2, np.float32)])
        n = 0
        if len(self.buf) - self.next_start >= N_FFT:
            n = (len(self.buf) - self.next_start - N_FFT) // HOP + 1
        if final:  # only frames whose centre lies within the signal (librosa's count: 1 + len // HOP)
            total = 1 + self.samples // HOP
            n = min(n, total - self.emitted)
        if n <= 0:
            return np.zeros((0, N_MELS), np.float32)
        idx = self.next_start + np.arange(n)[:, None] * HOP + np.arange(N_FFT)[None, :]
        out = _log_mel(self.buf[idx])
        self.next_start += n * HOP
        self.emitted += n
        # drop samples no later frame needs
        self.buf = self.buf[self.next_start:]
        self.next_start = 0
        return out

    def push(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, np.float32).ravel()
        self.samples += len(block)
        self.buf = np.concatenate([self.buf, block])
        return self._frames(False)

    def finish(self) -> np.ndarray:
        return self._frames(True)


def log_mel(y: np.ndarray) -> np.ndarray:
    """Whole signal (mono float32 at SR) -> (1 + len // HOP, N_MELS) log-mel frames."""
    s = StreamingLogMel()
    a = s.push(y)
    b = s.finish()
    return np.concatenate([a, b]) if len(b) else a
