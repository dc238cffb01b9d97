"""Per-part onset events (time in seconds, velocity 0..1): the shared clock of `render` and `live`.

A Timeline is built from a drums folder's `onsets.json`, from that dict directly (live regenerates
patterns in memory), or from any audio file by onset detection on its percussive part. Everything
here except the readers (files, FFmpeg) is pure and vectorised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from breakgan.errors import BreakganError, shown
from breakgan.jsonfile import read_json
from breakgan.media.audio import audio_blocks
from breakgan.parts import PARTS
from breakgan.paths import confined, need_folder

# Limits of an onsets.json (README, render section): a drums pattern is minutes long with a few thousand
# onsets; these bounds only stop absurd files before they cost memory or time downstream.
ONSETS_MAX_BYTES = 64 * 2**20      # file size, checked before parsing
MAX_DURATION_S = 6 * 3600.0        # also the longest song `render --audio` analyses
MAX_ONSETS_PER_PART = 1_000_000
TEMPO_RANGE = (1.0, 1000.0)        # bpm; live's clock and drums have their own, narrower ranges
MAX_BEATS_PER_BAR = 32
VELOCITY_RANGE = (1, 127)          # MIDI velocities
TIME_SLACK_S = 1e-6                # onsets.json rounds times and duration to 1 us

# Onset analysis of a song: STFT/HPSS windows of ANALYSIS_BLOCK_S plus ANALYSIS_MARGIN_S either side
# (the margin only needs to cover the 2048-sample STFT window and HPSS's 31-frame median filter).
N_FFT = 2048
ANALYSIS_BLOCK_S = 20.0
ANALYSIS_MARGIN_S = 1.0

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


def _number(value, where: str, what: str) -> float:
    """A finite JSON number (not a bool, not a string) as float, else a BreakganError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BreakganError(f"{where}: {what} must be a number, got {shown(value)}")
    try:
        x = float(value)
    except OverflowError:
        raise BreakganError(f"{where}: {what} {shown(value)} is too large") from None
    if not math.isfinite(x):
        raise BreakganError(f"{where}: {what} must be a finite number, got {x}")
    return x


def _onset_array(events, where: str) -> np.ndarray:
    """(n, 2) [time_s, velocity 0..1] of one part's onset list, sorted by time (stable)."""
    if not isinstance(events, list):
        raise BreakganError(f"{where}: expected a list of onsets, got {type(events).__name__}")
    if len(events) > MAX_ONSETS_PER_PART:
        raise BreakganError(f"{where}: {len(events):,} onsets; at most {MAX_ONSETS_PER_PART:,} per part")
    arr = np.empty((len(events), 2), np.float64)
    lo, hi = VELOCITY_RANGE
    for i, e in enumerate(events):
        here = f"{where} onset {i}"
        if not isinstance(e, dict) or "time" not in e:
            raise BreakganError(f"{here}: each onset needs a numeric 'time' (s) and 'velocity' ({lo}..{hi})")
        t = _number(e["time"], here, "time")
        if t < 0:
            raise BreakganError(f"{here}: time {t:g} s is negative")
        v = _number(e.get("velocity", 100), here, "velocity")
        if not lo <= v <= hi:
            raise BreakganError(f"{here}: velocity {v:g} is outside {lo}..{hi}")
        arr[i] = t, v / 127.0
    # Times need not be sorted in the file (hand-edited files often are not): sorted here, once.
    return arr[np.argsort(arr[:, 0], kind="stable")]


def _optional_number(data: dict, key: str, where: str) -> float | None:
    value = data.get(key)
    return None if value is None else _number(value, where, f"'{key}'")


def timeline_from_onsets(data, base: Path | None = None, *, where: str | None = None) -> Timeline:
    """Build a Timeline from the onsets.json structure (interface 3), validating every value once.

    `base` is the folder the file lies in: the `audio` name must resolve inside it. `where` names the
    source in error messages (default BASE/onsets.json). Limits: duration in (0, MAX_DURATION_S],
    at most MAX_ONSETS_PER_PART onsets per part, times >= 0 and not past the duration, velocities
    1..127, tempo TEMPO_RANGE bpm, beats_per_bar 1..MAX_BEATS_PER_BAR. Unsorted times are sorted.
    """
    if where is None:
        where = str(Path(base) / "onsets.json") if base is not None else "onsets"
    if not isinstance(data, dict):
        raise BreakganError(f"{where}: expected a JSON object with a 'parts' table, got {type(data).__name__}")
    table = data.get("parts")
    if not isinstance(table, dict):
        raise BreakganError(f"{where}: no 'parts' table of onsets")
    unknown = sorted(set(table) - set(PARTS))
    if unknown:
        listed = ", ".join(shown(u) for u in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise BreakganError(f"{where}: unknown drum part(s) {listed}; the parts are {' '.join(PARTS)}")
    parts = {p: _onset_array(table.get(p, []), f"{where} part {p}") for p in PARTS}

    tempo = _optional_number(data, "tempo", where)
    # An unknown tempo is null (what `drums transcribe` writes); 0 is refused with the other values out
    # of range, since live would otherwise play it at a tempo the file never asked for.
    if tempo is not None and not TEMPO_RANGE[0] <= tempo <= TEMPO_RANGE[1]:
        raise BreakganError(f"{where}: tempo {tempo:g} bpm is outside {TEMPO_RANGE[0]:g}..{TEMPO_RANGE[1]:g}")
    bpb = _optional_number(data, "beats_per_bar", where)
    bpb = 4.0 if bpb is None else bpb
    if bpb != int(bpb) or not 1 <= bpb <= MAX_BEATS_PER_BAR:
        raise BreakganError(f"{where}: beats_per_bar must be a whole number in 1..{MAX_BEATS_PER_BAR}, got {bpb:g}")
    bpb = int(bpb)

    duration = _optional_number(data, "duration", where)
    bars = _optional_number(data, "bars", where)
    if duration is None and tempo and bars is not None:
        if bars <= 0:
            raise BreakganError(f"{where}: bars must be positive, got {bars:g}")
        duration = bars * bpb * 60.0 / tempo
    if duration is None:
        duration = max((float(a[-1, 0]) for a in parts.values() if len(a)), default=0.0)
    if not 0 < duration <= MAX_DURATION_S:
        raise BreakganError(f"{where}: duration {duration:g} s is outside the accepted (0, {MAX_DURATION_S:g}] s "
                            f"({MAX_DURATION_S / 3600:g} hours at most)")
    for p, arr in parts.items():
        if len(arr) and arr[-1, 0] > duration + TIME_SLACK_S:
            raise BreakganError(f"{where} part {p}: onset at {arr[-1, 0]:g} s is past the duration {duration:g} s")

    audio = data.get("audio")
    if audio in (None, ""):
        audio = None
    elif base is not None:
        audio = confined(Path(base), audio, where, "'audio'")
    elif isinstance(audio, str):
        audio = Path(audio)  # a structure built in memory (live regenerates): no folder to confine to
    else:
        raise BreakganError(f"{where}: 'audio' must be a file name, got {shown(audio)}")
    return Timeline(parts, float(duration), tempo, bpb, audio, {"onsets": where})


def read_onsets_file(path: str | Path) -> dict:
    """The parsed JSON of an onsets.json file, read with a size bound; a BreakganError naming the file
    for anything that is not UTF-8 JSON (random bytes, a nesting too deep to parse, a huge file)."""
    return read_json(path, "an onsets file", max_bytes=ONSETS_MAX_BYTES)


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


def timeline_from_drums(folder: str | Path, candidate: int | None = None, *, playable: bool = False) -> Timeline:
    """Read a drums candidate folder (`cand-NN/`), or a drums output folder (its cand-01 by default).

    playable: also refuse a pattern without a single onset, which no command can play (nothing would
    move). Off by default because such a folder is still a valid one: `drums transcribe` writes it for
    a song without drums, to be edited.
    """
    folder = need_folder(folder, "drums folder")
    cand = _candidate_folder(folder, candidate)
    path = cand / "onsets.json"
    if not path.is_file():
        raise BreakganError(f"{cand}: no onsets.json (not a breakgan drums folder)")
    timeline = timeline_from_onsets(read_onsets_file(path), cand, where=str(path))
    if playable and not timeline.active_parts:
        raise BreakganError(f"{path}: no onsets in any part: nothing would move")
    return timeline


def _band_strengths(y: np.ndarray, sr: int, hop_length: int, bands_hz: dict[str, tuple[float, float]],
                    ref: float, n_fft: int = N_FFT) -> dict[str, np.ndarray]:
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


def _peak_ref(peak: float, n_fft: int = N_FFT) -> float:
    """The log compression's reference: about the STFT peak of a full-scale tone at the song's peak."""
    return float(peak) * n_fft / 4 + 1e-9


def stream_onset_strengths(blocks: Iterable[np.ndarray], sr: int, ref: float, *, hop_length: int = 256,
                           bands_hz: dict[str, tuple[float, float]] = AUDIO_BANDS_HZ,
                           block_s: float = ANALYSIS_BLOCK_S, margin_s: float = ANALYSIS_MARGIN_S,
                           n_fft: int = N_FFT) -> dict[str, np.ndarray]:
    """Per-band onset strength envelopes (one value per hop_length samples) of a mono signal given as
    consecutive sample blocks of any size (an FFmpeg pipe), with `ref` from `_peak_ref` of its peak.

    The STFT and HPSS run on windows of `block_s` seconds plus `margin_s` either side; each window
    keeps only its core's envelope frames, so the stitched envelopes equal those of the whole signal
    (the margin covers the STFT window, the HPSS median filter and the onset lag) and at most one
    window of samples is held at a time. The result is the same for any split of `blocks`.
    """
    core = max(1, int(block_s * sr) // hop_length) * hop_length
    margin = max(1, int(margin_s * sr) // hop_length) * hop_length
    names = ["all", *bands_hz]
    pieces: dict[str, list[np.ndarray]] = {k: [] for k in names}
    source = iter(blocks)
    buf, buf_start = np.zeros(0, np.float32), 0  # samples from index buf_start on
    eof = False
    start = 0  # first sample of the current core
    while True:
        need = start + core + margin
        chunks, have = [buf], buf_start + len(buf)
        while not eof and have < need:
            block = next(source, None)
            if block is None:
                eof = True
                break
            block = np.asarray(block, np.float32).reshape(-1)
            chunks.append(block)
            have += len(block)
        if len(chunks) > 1:
            buf = np.concatenate(chunks)
        end = buf_start + len(buf)  # samples known so far (the total once eof)
        if start >= end:  # an empty signal
            break
        lo, hi = max(0, start - margin), min(end, need)
        strengths = _band_strengths(buf[lo - buf_start:hi - buf_start], sr, hop_length, bands_hz, ref, n_fft)
        last = eof and start + core >= end
        f0 = start // hop_length
        f1 = 1 + end // hop_length if last else (start + core) // hop_length
        for k in names:
            part = strengths[k][f0 - lo // hop_length:f1 - lo // hop_length]
            if len(part) < f1 - f0:  # cannot happen for a whole window; keeps the frame grid if it did
                part = np.pad(part, (0, f1 - f0 - len(part)))
            pieces[k].append(part.astype(np.float32, copy=False))
        if last:
            break
        start += core
        keep = max(0, start - margin)
        buf, buf_start = buf[keep - buf_start:].copy(), keep  # copy: let the consumed samples go
    return {k: np.concatenate(v) if v else np.zeros(1, np.float32) for k, v in pieces.items()}


def onset_strengths(y: np.ndarray, sr: int, *, hop_length: int = 256,
                    bands_hz: dict[str, tuple[float, float]] = AUDIO_BANDS_HZ,
                    block_s: float = ANALYSIS_BLOCK_S, margin_s: float = ANALYSIS_MARGIN_S) -> dict[str, np.ndarray]:
    """`stream_onset_strengths` of a signal already in memory (its own peak as the reference)."""
    y = np.asarray(y, np.float32).reshape(-1)
    ref = _peak_ref(float(np.max(np.abs(y))) if len(y) else 0.0)
    step = max(1, int(sr))
    return stream_onset_strengths((y[i:i + step] for i in range(0, len(y), step)), sr, ref,
                                  hop_length=hop_length, bands_hz=bands_hz, block_s=block_s, margin_s=margin_s)


TEMPO_WINDOW_S = 8.0  # librosa.feature.tempo's default autocorrelation window (ac_size)


def mean_tempogram(strength: np.ndarray, sr: int, hop_length: int, *, chunk: int = 2048) -> np.ndarray:
    """The time average of librosa's tempogram (centred, Hann, 8 s window) of an onset envelope, built
    `chunk` frames at a time: the whole (window x frames) matrix costs 1.5 GB for a 10-minute song,
    and only its mean is used. Each column depends only on its own window of the envelope."""
    import librosa

    strength = np.asarray(strength, np.float32).reshape(-1)
    n = len(strength)
    win = int(librosa.time_to_frames(TEMPO_WINDOW_S, sr=sr, hop_length=hop_length))
    # tempogram(center=True) pads win//2 frames with a linear ramp each side; column j is padded[j:j+win].
    padded = np.pad(strength, win // 2, mode="linear_ramp", end_values=0)
    if len(padded) < n + win - 1:
        padded = np.pad(padded, (0, n + win - 1 - len(padded)))
    total = np.zeros(win, np.float64)
    for c0 in range(0, n, chunk):
        c1 = min(n, c0 + chunk)
        tg = librosa.feature.tempogram(onset_envelope=padded[c0:c1 + win - 1], sr=sr, hop_length=hop_length,
                                       win_length=win, center=False)
        total += tg.sum(axis=-1, dtype=np.float64)
    return (total / max(n, 1)).astype(np.float32)


def tempo_from_envelope(strength: np.ndarray, sr: int, hop_length: int) -> float | None:
    """librosa's global tempo estimate (`librosa.feature.tempo` with its defaults) of an onset envelope,
    in bpm rounded to 0.01, from `mean_tempogram`; None when there is no pulse to measure."""
    import librosa

    if len(strength) == 0:
        return None
    tg = mean_tempogram(strength, sr, hop_length)[:, None]
    bpm = float(np.atleast_1d(librosa.feature.tempo(tg=tg, sr=sr, hop_length=hop_length))[0])
    return round(bpm, 2) if math.isfinite(bpm) and bpm > 0 else None


def onsets_from_signal(y: np.ndarray | None, sr: int, *, hop_length: int = 256,
                       bands_hz: dict[str, tuple[float, float]] = AUDIO_BANDS_HZ,
                       delta: float = 0.07, min_strength: float = 0.15,
                       strengths: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per-band onsets of the percussive part (librosa HPSS) of a mono signal.

    Returns part -> (n, 2) [time_s, velocity 0..1]; velocity is the band's onset strength at the
    peak relative to the band's strongest onset; onsets weaker than `min_strength` of that are dropped.
    `hop_length` is in samples (256 at 22050 Hz = 11.6 ms). Peaks are picked on the whole envelopes
    (small: 4 bytes per hop), so an onset on the seam of two analysis blocks is found once.
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
                        bands_hz: dict[str, tuple[float, float]] = AUDIO_BANDS_HZ,
                        block_s: float = ANALYSIS_BLOCK_S, margin_s: float = ANALYSIS_MARGIN_S) -> Timeline:
    """Onsets of any audio file: HPSS, then band onsets (low -> kick, mid -> snare, high -> hihat_closed).

    The song is streamed from FFmpeg twice (its peak level first, then the analysis in windows of
    `block_s` s), so memory does not grow with its length beyond the small envelopes. Songs longer
    than MAX_DURATION_S are refused. Raises BreakganError naming the file when no onset is found in
    any band (silence, drones).
    """
    from breakgan.media.probe import probe

    path = Path(path)
    known = probe(path).duration
    if known > MAX_DURATION_S:
        raise BreakganError(f"{path}: {known / 3600:.1f} hours of audio; onset analysis takes at most "
                            f"{MAX_DURATION_S / 3600:g} hours")
    max_samples = int(MAX_DURATION_S * sr)
    peak, count = 0.0, 0
    for block in audio_blocks(path, sr, sr, max_samples=max_samples):
        level = float(np.max(np.abs(block)))  # NaN when any sample is (a float WAV can hold NaN)
        if not math.isfinite(level):
            raise BreakganError(f"{path}: the audio holds non-finite samples (NaN or inf)")
        peak = max(peak, level)
        count += len(block)
    if count == 0:
        raise BreakganError(f"{path}: audio is empty")
    duration = count / sr
    strengths = stream_onset_strengths(audio_blocks(path, sr, sr, max_samples=max_samples), sr, _peak_ref(peak),
                                       hop_length=hop_length, bands_hz=bands_hz, block_s=block_s,
                                       margin_s=margin_s)
    found = onsets_from_signal(None, sr, hop_length=hop_length, bands_hz=bands_hz, strengths=strengths)
    if not any(len(a) for a in found.values()):
        raise BreakganError(f"{path}: no onsets found in the audio (is it silent or without percussion?)")
    parts = {p: found.get(p, _empty_onsets()) for p in PARTS}
    return Timeline(parts, duration, tempo_from_envelope(strengths["all"], sr, hop_length), 4, path,
                    {"audio": str(path)})


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
