"""Per-part onset events (time in seconds, velocity 0..1): the shared clock of `render` and `live`.

A Timeline is built from a drums folder's `onsets.json`, from that dict directly (live regenerates
patterns in memory), or from any audio file by onset detection on its percussive part. Everything
here except the two readers is pure and vectorised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from breakgan.errors import BreakganError
from breakgan.media.audio import decode_audio
from breakgan.parts import PARTS

# Frequency bands (Hz) for onset detection from audio, as maua-stylegan2 splits them:
# low -> kick, mid -> snare, high -> closed hi-hat.
AUDIO_BANDS_HZ: dict[str, tuple[float, float]] = {
    "kick": (0.0, 150.0),
    "snare": (150.0, 2500.0),
    "hihat_closed": (5000.0, float("inf")),
}


def _empty_onsets() -> np.ndarray:
    return np.zeros((0, 2), np.float64)


@dataclass(frozen=True, eq=False)  # arrays inside: compare fields explicitly
class Timeline:
    """Onset events per drum part.

    parts: part name -> array (n, 2) of [time_s, velocity in 0..1], sorted by time; all 9 parts present.
    duration: length in seconds (the pattern length or the audio length).
    tempo: beats per minute when known.
    audio: the audio file the timeline belongs to (mix.wav or the analysed song), if any.
    """

    parts: dict[str, np.ndarray]
    duration: float
    tempo: float | None = None
    beats_per_bar: int = 4
    audio: Path | None = None
    # Free-form provenance (e.g. source file, candidate); not used by the math.
    source: dict = field(default_factory=dict, compare=False)

    def onsets(self, part: str) -> np.ndarray:
        """The (n, 2) [time_s, velocity] array of one part (empty when the part never plays)."""
        return self.parts.get(part, _empty_onsets())

    @property
    def active_parts(self) -> tuple[str, ...]:
        """Parts with at least one onset, in canonical order."""
        return tuple(p for p in PARTS if len(self.onsets(p)))

    def frame_count(self, fps: float) -> int:
        """Number of video frames covering the timeline: round(duration_s * fps)."""
        return frame_count(self.duration, fps)


def frame_count(duration_s: float, fps: float) -> int:
    """round(duration_s * fps) video frames (at least 1)."""
    return max(1, int(round(duration_s * fps)))


def frame_times(count: int, fps: float) -> np.ndarray:
    """Times in seconds at which frames 0..count-1 are sampled: the centre of each frame's interval.

    Frame k is on screen during [k/fps, (k+1)/fps); sampling its centre keeps the visual error of an
    onset within half a frame either way.
    """
    return (np.arange(count, dtype=np.float64) + 0.5) / float(fps)


def _onset_array(events, where: str) -> np.ndarray:
    if not isinstance(events, list):
        raise BreakganError(f"{where}: expected a list of onsets")
    if not events:
        return _empty_onsets()
    try:
        arr = np.array([[float(e["time"]), float(e.get("velocity", 100)) / 127.0] for e in events],
                       np.float64)
    except (TypeError, KeyError, ValueError):
        raise BreakganError(f"{where}: each onset needs a numeric 'time' (s) and 'velocity' (1..127)") from None
    if not np.all(np.isfinite(arr)):
        raise BreakganError(f"{where}: onset times and velocities must be finite")
    arr[:, 1] = np.clip(arr[:, 1], 0.0, 1.0)
    return arr[np.argsort(arr[:, 0], kind="stable")]


def timeline_from_onsets(data: dict, base: Path | None = None) -> Timeline:
    """Build a Timeline from the onsets.json dict (interface 3); `base` resolves the relative audio name."""
    where = str(Path(base) / "onsets.json") if base is not None else "onsets"
    if not isinstance(data, dict) or not isinstance(data.get("parts"), dict):
        raise BreakganError(f"{where}: no 'parts' table of onsets")
    unknown = sorted(set(data["parts"]) - set(PARTS))
    if unknown:
        raise BreakganError(f"{where}: unknown drum part(s) {', '.join(unknown)}")
    parts = {p: _onset_array(data["parts"].get(p, []), f"{where} part {p}") for p in PARTS}
    tempo = data.get("tempo")
    tempo = float(tempo) if tempo else None
    bpb = int(data.get("beats_per_bar") or 4)
    duration = data.get("duration")
    if duration is None and tempo and data.get("bars"):
        duration = float(data["bars"]) * bpb * 60.0 / tempo
    if duration is None:
        last = max((a[-1, 0] for a in parts.values() if len(a)), default=0.0)
        duration = last
    duration = float(duration)
    if not np.isfinite(duration) or duration <= 0:
        raise BreakganError(f"{where}: duration must be a positive number of seconds")
    audio = None
    if data.get("audio"):
        audio = Path(data["audio"])
        if base is not None and not audio.is_absolute():
            audio = Path(base) / audio
    return Timeline(parts, duration, tempo, bpb, audio, {"onsets": where})


def _candidate_folder(folder: Path, candidate: int | None) -> Path:
    if (folder / "onsets.json").is_file() and candidate is None:
        return folder
    cands = sorted(p for p in folder.glob("cand-*") if p.is_dir())
    if not cands:
        if (folder / "onsets.json").is_file():
            return folder
        raise BreakganError(f"{folder}: no onsets.json (not a breakgan drums folder)")
    index = 1 if candidate is None else candidate
    chosen = folder / f"cand-{index:02d}"
    if not chosen.is_dir():
        names = ", ".join(p.name for p in cands)
        raise BreakganError(f"{folder}: no candidate {index} (has {names})")
    return chosen


def timeline_from_drums(folder: str | Path, candidate: int | None = None) -> Timeline:
    """Read a drums candidate folder (`cand-NN/`), or a drums output folder (its cand-01 by default)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BreakganError(f"{folder}: no such drums folder")
    cand = _candidate_folder(folder, candidate)
    path = cand / "onsets.json"
    if not path.is_file():
        raise BreakganError(f"{cand}: no onsets.json (not a breakgan drums folder)")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BreakganError(f"{path}: unreadable onsets ({e})") from None
    return timeline_from_onsets(data, cand)


def _band_strengths(y: np.ndarray, sr: int, hop_length: int, bands_hz: dict[str, tuple[float, float]],
                    ref: float, n_fft: int = 2048) -> dict[str, np.ndarray]:
    """Onset strength per frame (hop_length samples) of each band of the percussive part, plus "all"."""
    import librosa

    stft = librosa.stft(y, n_fft=n_fft, hop_length=hop_length)
    _, perc = librosa.decompose.hpss(stft)
    # Log compression against the whole signal's level (not each band's): a band that only catches
    # another instrument's faint leakage stays near zero instead of being amplified.
    comp = np.log1p(1000.0 * np.abs(perc) / ref)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    out = {"all": librosa.onset.onset_strength(S=comp, sr=sr, hop_length=hop_length)}
    for part, (lo, hi) in bands_hz.items():
        rows = (freqs >= lo) & (freqs < hi)
        out[part] = (librosa.onset.onset_strength(S=comp[rows], sr=sr, hop_length=hop_length) if rows.any()
                     else np.zeros_like(out["all"]))
    return out


def onset_strengths(y: np.ndarray, sr: int, *, hop_length: int = 256,
                    bands_hz: dict[str, tuple[float, float]] = AUDIO_BANDS_HZ,
                    block_s: float = 30.0, margin_s: float = 2.0) -> dict[str, np.ndarray]:
    """Per-band onset strength envelopes (one value per hop_length samples) of a mono signal.

    The STFT and HPSS run on blocks of `block_s` seconds (plus `margin_s` either side, dropped
    afterwards), so memory stays bounded for long songs; only the small envelopes are whole.
    """
    n_fft = 2048
    ref = float(np.max(np.abs(y))) * n_fft / 4 + 1e-9  # about the STFT peak of a full-scale tone
    total_frames = 1 + len(y) // hop_length
    core = max(1, int(block_s * sr) // hop_length) * hop_length
    margin = max(1, int(margin_s * sr) // hop_length) * hop_length
    names = ["all", *bands_hz]
    env = {k: np.zeros(total_frames, np.float32) for k in names}
    for start in range(0, len(y), core):
        lo = max(0, start - margin)
        hi = min(len(y), start + core + margin)
        block = _band_strengths(y[lo:hi], sr, hop_length, bands_hz, ref, n_fft)
        f0, f1 = start // hop_length, min(total_frames, (start + core) // hop_length)
        if start + core >= len(y):
            f1 = total_frames
        for k in names:
            part = block[k][f0 - lo // hop_length:f1 - lo // hop_length]
            env[k][f0:f0 + len(part)] = part
    return env


def onsets_from_signal(y: np.ndarray, sr: int, *, hop_length: int = 256,
                       bands_hz: dict[str, tuple[float, float]] = AUDIO_BANDS_HZ,
                       delta: float = 0.07, min_strength: float = 0.15,
                       strengths: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per-band onsets of the percussive part (librosa HPSS) of a mono signal.

    Returns part -> (n, 2) [time_s, velocity 0..1]; velocity is the band's onset strength at the
    peak relative to the band's strongest onset; onsets weaker than `min_strength` of that are dropped.
    `hop_length` is in samples (256 at 22050 Hz = 11.6 ms).
    """
    import librosa

    if strengths is None:
        strengths = onset_strengths(y, sr, hop_length=hop_length, bands_hz=bands_hz)
    out: dict[str, np.ndarray] = {}
    for part in bands_hz:
        strength = strengths[part]
        if strength.max() <= 1e-6:
            out[part] = _empty_onsets()
            continue
        frames = librosa.onset.onset_detect(onset_envelope=strength, sr=sr, hop_length=hop_length,
                                            delta=delta, units="frames")
        if len(frames) == 0:
            out[part] = _empty_onsets()
            continue
        peak = strength[frames]
        frames = frames[peak >= min_strength * peak.max()]  # drop leakage from other bands
        times = librosa.frames_to_time(frames, sr=sr, hop_length=hop_length)
        vel = strength[frames] / strength[frames].max()
        out[part] = np.stack([times, np.clip(vel, 0.05, 1.0)], axis=1).astype(np.float64)
    return out


def timeline_from_audio(path: str | Path, *, sr: int = 22050, hop_length: int = 256,
                        bands_hz: dict[str, tuple[float, float]] = AUDIO_BANDS_HZ) -> Timeline:
    """Onsets of any audio file: HPSS, then band onsets (low -> kick, mid -> snare, high -> hihat_closed).

    Raises BreakganError naming the file when no onset is found in any band (silence, drones).
    """
    import librosa

    path = Path(path)
    y = decode_audio(path, sr)
    duration = len(y) / sr
    if duration <= 0:
        raise BreakganError(f"{path}: audio is empty")
    strengths = onset_strengths(y, sr, hop_length=hop_length, bands_hz=bands_hz)
    found = onsets_from_signal(y, sr, hop_length=hop_length, bands_hz=bands_hz, strengths=strengths)
    if not any(len(a) for a in found.values()):
        raise BreakganError(f"{path}: no onsets found in the audio (is it silent or without percussion?)")
    parts = {p: found.get(p, _empty_onsets()) for p in PARTS}
    tempo = None
    try:
        bpm = librosa.feature.tempo(onset_envelope=strengths["all"], sr=sr, hop_length=hop_length)
        bpm = float(np.atleast_1d(bpm)[0])
        tempo = round(bpm, 2) if bpm > 0 else None
    except Exception:  # noqa: BLE001 - tempo is informative only
        tempo = None
    return Timeline(parts, duration, tempo, 4, path, {"audio": str(path)})


def envelope(onsets: np.ndarray, times: np.ndarray, attack_s: float, release_s: float,
             overlap: int = 4) -> np.ndarray:
    """Per time (s) a value in 0..1: rises linearly over `attack_s` after each onset, then decays
    linearly to 0 over `release_s`, scaled by the onset's velocity.

    Overlapping hits combine by maximum over the last `overlap` onsets before each time, which keeps
    the cost O(len(times) * overlap + n). `onsets` is (n, 2) [time_s, velocity], sorted by time.
    """
    times = np.asarray(times, np.float64)
    out = np.zeros(times.shape, np.float64)
    onsets = np.asarray(onsets, np.float64).reshape(-1, 2)
    if len(onsets) == 0:
        return out
    t_on, vel = onsets[:, 0], onsets[:, 1]
    last = np.searchsorted(t_on, times, side="right") - 1  # index of the latest onset <= t
    attack_s = max(float(attack_s), 0.0)
    release_s = max(float(release_s), 0.0)
    for back in range(overlap):
        i = last - back
        ok = i >= 0
        ic = np.where(ok, i, 0)
        dt = times - t_on[ic]
        rise = np.clip(dt / attack_s, 0.0, 1.0) if attack_s > 0 else (dt >= 0).astype(np.float64)
        fall = (np.clip(1.0 - (dt - attack_s) / release_s, 0.0, 1.0) if release_s > 0
                else (dt <= attack_s).astype(np.float64))
        value = np.where(ok, vel[ic] * np.minimum(rise, fall), 0.0)
        np.maximum(out, value, out=out)
    return out
