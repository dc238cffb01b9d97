"""Training and benchmark audio from Groove MIDI Dataset performances: drums rendered with FluidSynth
from several SoundFont kits (one kit per part, chosen at random), an optional bass + chords accompaniment
from random MIDI, then gain, EQ, reverb, soft compression and noise. Every random choice takes a seed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from breakgan.drums.synth import BLOCK, DrumSynth, _quiet_fluidsynth, _stderr_silenced, check_soundfont
from breakgan.transcribe import features as F
from breakgan.transcribe.model import HEADS, PART_TO_HEAD

# GMD's Roland TD-11 pitches that General MIDI kits lack, rendered as their GM neighbour.
RENDER_PITCH = {22: 42, 26: 46, 58: 43}
DRUM_PRESETS = (0, 8, 16, 24, 25, 32, 40)   # GM/GS kits: standard, room, power, electronic, TR-808, jazz, brush
VELOCITY_STEP = 8                            # hits rendered per 8 velocity levels (keeps the hit cache small)


def pitch_heads() -> np.ndarray:
    """MIDI pitch -> head index (-1: not a drum class), via note-seq's drum classes of the pitch as it is
    rendered: GMD's 58 (floor-tom rim, a crash in note-seq's classes) sounds as a floor tom, so it is
    labelled a tom."""
    from breakgan.drums.encoding import pitch_to_part
    from breakgan.parts import PARTS

    parts = pitch_to_part()
    return np.array([PART_TO_HEAD[PARTS[parts[RENDER_PITCH.get(p, p)]]] if parts[p] >= 0 else -1
                     for p in range(len(parts))], np.int64)


@dataclass
class Groove:
    path: Path
    bpm: float
    split: str
    beat_type: str
    duration: float


def groove_files(root: str | Path, split: str) -> list[Groove]:
    from breakgan.drums.groove.data import split_rows

    return [Groove(Path(root) / r["midi_filename"], float(r["bpm"]), r["split"], r["beat_type"], float(r["duration"]))
            for r in split_rows(root, split)]


def groove_notes(path: str | Path) -> list[tuple[float, int, int]]:
    """(time s, pitch, velocity) of every drum note in a GMD MIDI file, sorted."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    notes = [(n.start, n.pitch, n.velocity) for inst in pm.instruments for n in inst.notes]
    return sorted(notes)


class KitSynth(DrumSynth):
    """DrumSynth on any bank/preset of a SoundFont (GM drum kits at bank 128, single-kit fonts at bank 0),
    with one hit cache per preset."""

    def __init__(self, soundfont, sample_rate: int = F.SR, bank: int = 128):
        import fluidsynth

        self.path = check_soundfont(soundfont)
        _quiet_fluidsynth()
        self.rate = int(sample_rate)
        self.fs = fluidsynth.Synth(gain=0.5, samplerate=float(self.rate),
                                   **{"synth.reverb.active": 0, "synth.chorus.active": 0})
        with _stderr_silenced():
            self.sfid = self.fs.sfload(str(self.path))
        self.bank = bank
        self.presets = [p for p in (DRUM_PRESETS if bank == 128 else (0,))
                        if self.fs.program_select(9, self.sfid, bank, p) == 0
                        and self.fs.program_info(9)[2] == p]
        self._caches: dict[int, dict] = {}
        self.use(self.presets[0])
        self._samples(4 * BLOCK)

    def use(self, preset: int) -> None:
        self.fs.program_select(9, self.sfid, self.bank, preset)
        self._cache = self._caches.setdefault(preset, {})


class MelodicSynth:
    """Bass (channel 0) and chords (channel 1) from a General MIDI SoundFont's melodic programs."""

    BASS = tuple(range(32, 40))
    CHORDS = (0, 1, 2, 4, 5, 16, 17, 19, 24, 25, 26, 27, 29, 30, 48, 49, 50, 52, 61, 62, 80, 81, 88, 89, 90, 91,
              94, 95)

    def __init__(self, soundfont, sample_rate: int = F.SR):
        import fluidsynth

        _quiet_fluidsynth()
        self.rate = sample_rate
        self.fs = fluidsynth.Synth(gain=0.4, samplerate=float(sample_rate),
                                   **{"synth.reverb.active": 0, "synth.chorus.active": 0})
        with _stderr_silenced():
            self.sfid = self.fs.sfload(str(check_soundfont(soundfont)))

    def render(self, events: list[tuple[float, int, int, int, bool]], programs: dict[int, int],
               length_s: float) -> np.ndarray:
        """events (time s, channel, pitch, velocity, on?) -> mono float32 of length_s."""
        fs = self.fs
        for ch, prog in programs.items():
            fs.program_select(ch, self.sfid, 0, prog)
        total = int(round(length_s * self.rate))
        chunks, done = [], 0
        for t, ch, pitch, vel, on in sorted(events):
            upto = min(total, int(round(t * self.rate)) // BLOCK * BLOCK)
            if upto > done:
                chunks.append(np.asarray(fs.get_samples(upto - done), np.float32).reshape(-1, 2))
                done = upto
            if on:
                fs.noteon(ch, pitch, vel)
            else:
                fs.noteoff(ch, pitch)
        if total > done:
            chunks.append(np.asarray(fs.get_samples(total - done), np.float32).reshape(-1, 2))
        for ch in programs:
            fs.all_sounds_off(ch)
        fs.get_samples(8 * BLOCK)
        out = np.concatenate(chunks).mean(1) / 32768.0 if chunks else np.zeros(0, np.float32)
        return out[:total].astype(np.float32)

    def close(self):
        self.fs.delete()


class SynthAccompaniment:
    """Bass and chords from a small subtractive synthesizer in numpy, with random voices: saw, square,
    sine or plucked bass with 1-30 ms attacks and an optional pitch drop (synth basses that thump like a
    kick), detuned-saw pads, a low-pass per voice. Beside the SoundFonts' sampled instruments, it teaches
    the network that a low, sharp onset is not always a kick. The same render() as MelodicSynth."""

    def __init__(self, rng: np.random.Generator, sample_rate: int = F.SR):
        self.rate = sample_rate
        self.rng = rng

    def _voice(self, pitch: int, seconds: float, bass: bool, rng: np.random.Generator) -> np.ndarray:
        from scipy.signal import lfilter

        n = max(1, int(seconds * self.rate))
        t = np.arange(n) / self.rate
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        drop = rng.uniform(0, 12) if bass and rng.random() < 0.4 else 0.0   # semitones, gone in ~30 ms
        freq = f0 * 2 ** (drop * np.exp(-t / 0.03) / 12)
        phase = 2 * np.pi * np.cumsum(freq) / self.rate
        kind = int(rng.integers(4)) if bass else 0
        if kind == 0:    # saw (several detuned for pads)
            y = sum(2 * ((phase * d / (2 * np.pi)) % 1.0) - 1 for d in ((1.0,) if bass else (0.995, 1.0, 1.006)))
        elif kind == 1:  # square
            y = np.sign(np.sin(phase))
        elif kind == 2:  # sine with a little second harmonic
            y = np.sin(phase) + 0.3 * np.sin(2 * phase)
        else:            # pluck: decaying harmonics
            y = sum(np.sin(k * phase) * np.exp(-t * k * rng.uniform(3, 8)) / k for k in range(1, 7))
        attack = rng.uniform(0.001, 0.03) if bass else rng.uniform(0.01, 0.3)
        env = np.minimum(1.0, t / attack) * np.exp(-t / (rng.uniform(0.15, 1.5) if bass else 3.0))
        release = min(n, int(0.02 * self.rate))
        env[n - release:] *= np.linspace(1, 0, release)
        cutoff = rng.uniform(150, 1500) if bass else rng.uniform(800, 4000)
        a = np.exp(-2 * np.pi * cutoff / self.rate)
        return lfilter([1 - a], [1, -a], (y * env).astype(np.float32)).astype(np.float32)

    def render(self, events, programs, length_s: float) -> np.ndarray:
        rng = self.rng
        out = np.zeros(int(round(length_s * self.rate)), np.float32)
        starts = {}
        for t, ch, pitch, vel, on in sorted(events):
            if on:
                starts[(ch, pitch)] = (t, vel)
            elif (ch, pitch) in starts:
                t0, v = starts.pop((ch, pitch))
                y = self._voice(pitch, max(0.03, t - t0), ch == 0, rng) * (v / 127.0) * (1.0 if ch == 0 else 0.3)
                i = int(round(t0 * self.rate))
                seg = y[:max(0, len(out) - i)]
                out[i:i + len(seg)] += seg
        return out

    def close(self):
        pass


def accompaniment_events(bpm: float, length_s: float, rng: np.random.Generator,
                         kick_times: np.ndarray | None = None) -> list[tuple[float, int, int, int, bool]]:
    """A random bass line (8ths, often on the kicks) and block chords (a change per bar or half bar)."""
    beat = 60.0 / bpm
    root = int(rng.integers(33, 45))  # bass register A1..G#2
    scale = np.array([0, 2, 3, 5, 7, 8, 10] if rng.random() < 0.5 else [0, 2, 4, 5, 7, 9, 11])
    degrees = rng.choice(7, size=8)
    chord_len = beat * (4 if rng.random() < 0.6 else 2)
    events = []
    t, i = 0.0, 0
    while t < length_s:
        d = int(degrees[i % len(degrees)])
        base = root + 12 + scale[d]
        chord = [base + 12 + scale[(d + k) % 7] - scale[d] + (12 if d + k >= 7 else 0) for k in (0, 2, 4)]
        vel = int(rng.integers(50, 100))
        for p in chord:
            events += [(t, 1, int(p), vel, True), (t + chord_len * rng.uniform(0.5, 0.98), 1, int(p), 0, False)]
        # bass: 8th-note grid, hits where a kick falls with high probability, elsewhere sometimes
        step = beat / 2
        for k in range(int(round(chord_len / step))):
            s = t + k * step
            on_kick = kick_times is not None and len(kick_times) and np.min(np.abs(kick_times - s)) < 0.06
            if rng.random() < (0.8 if on_kick else 0.35):
                p = root + scale[d] + (12 if rng.random() < 0.2 else 0)
                events += [(s, 0, int(p), int(rng.integers(60, 120)), True),
                           (s + step * rng.uniform(0.4, 1.0), 0, int(p), 0, False)]
        t += chord_len
        i += 1
    return [e for e in events if e[0] < length_s]


def biquad_peak(y: np.ndarray, f0: float, gain_db: float, q: float, sr: int = F.SR) -> np.ndarray:
    """RBJ cookbook peaking EQ."""
    from scipy.signal import lfilter

    a_ = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * f0 / sr
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a_, -2 * np.cos(w0), 1 - alpha * a_])
    a = np.array([1 + alpha / a_, -2 * np.cos(w0), 1 - alpha / a_])
    return lfilter(b / a[0], a / a[0], y).astype(np.float32)


def augment(y: np.ndarray, rng: np.random.Generator, sr: int = F.SR) -> np.ndarray:
    """EQ, reverb, soft compression, noise, gain."""
    from scipy.signal import fftconvolve

    for _ in range(int(rng.integers(0, 3))):
        y = biquad_peak(y, float(np.exp(rng.uniform(np.log(60), np.log(6000)))), float(rng.uniform(-9, 9)),
                        float(rng.uniform(0.5, 2.0)), sr)
    if rng.random() < 0.5:
        rt = rng.uniform(0.2, 1.2)
        n = int(rt * sr)
        ir = rng.standard_normal(n).astype(np.float32) * np.exp(-6.9 * np.arange(n) / n).astype(np.float32)
        ir /= np.sqrt(np.sum(ir ** 2))
        wet = fftconvolve(y, ir)[:len(y)].astype(np.float32)
        y = y + rng.uniform(0.05, 0.4) * wet
    peak = float(np.max(np.abs(y))) or 1.0
    y = y / peak
    if rng.random() < 0.5:
        drive = rng.uniform(1.0, 4.0)
        y = np.tanh(drive * y) / np.tanh(drive)
    if rng.random() < 0.7:
        snr_db = rng.uniform(15, 50)
        noise = rng.standard_normal(len(y)).astype(np.float32)
        if rng.random() < 0.5:  # pink-ish: a one-pole low-pass of white noise
            from scipy.signal import lfilter
            noise = lfilter([1.0], [1.0, -0.95], noise).astype(np.float32)
        rms = np.sqrt(np.mean(y ** 2)) + 1e-9
        noise *= rms / (np.sqrt(np.mean(noise ** 2)) + 1e-9) * 10 ** (-snr_db / 20)
        y = y + noise
    y = y / (np.max(np.abs(y)) + 1e-9) * 10 ** (rng.uniform(-30, -1) / 20)
    return y.astype(np.float32)


def render_drums(notes, kits: list, length_s: float, rng: np.random.Generator, head_gain_db: float = 0.0
                 ) -> tuple[np.ndarray, list[tuple[float, int, int]]]:
    """notes (time, pitch, velocity) in [0, length) -> mono drums, and labels (time, head, velocity).

    Each head takes its sound from one of `kits` — a (KitSynth, preset) or a HydrogenKit — chosen at random:
    a random kit mix. A Hydrogen kit lacking the head hands it to a SoundFont kit. head_gain_db: each head's
    level is drawn within +-this (a mix engineer's balance)."""
    from breakgan.transcribe import hydrogen

    heads = pitch_heads()
    fonts = [k for k in kits if not isinstance(k, hydrogen.HydrogenKit)]
    choice = []
    for h in range(len(HEADS)):
        k = kits[int(rng.integers(len(kits)))]
        if isinstance(k, hydrogen.HydrogenKit) and h not in k.heads and fonts:
            k = fonts[int(rng.integers(len(fonts)))]
        choice.append(k)
    gains = 10 ** (rng.uniform(-head_gain_db, head_gain_db, len(HEADS)) / 20) if head_gain_db else np.ones(len(HEADS))
    rate = kit_rate(kits[0])
    h2 = [n for n in notes if 0 <= n[1] < 128 and heads[n[1]] >= 0 and isinstance(choice[heads[n[1]]], hydrogen.HydrogenKit)]
    out, labels = np.zeros(int(round(length_s * rate)), np.float32), []
    if h2:
        parts = []
        for h in range(len(HEADS)):  # one head at a time, so each takes its own gain
            sel = [n for n in h2 if heads[n[1]] == h]
            if sel:
                y, lab = hydrogen.render(choice, sel, length_s, rate, rng, heads)
                out += y * gains[h]
                parts += lab
        labels += parts
    for t, pitch, vel in notes:
        h = heads[pitch] if 0 <= pitch < 128 else -1
        if h < 0 or t >= length_s or isinstance(choice[h], hydrogen.HydrogenKit):
            continue
        synth, preset = choice[h]
        synth.use(preset)
        v = int(min(127, max(1, (vel // VELOCITY_STEP) * VELOCITY_STEP + VELOCITY_STEP // 2)))
        hit = synth.one_shot(RENDER_PITCH.get(pitch, pitch), v, 0.1)
        start = int(round(t * rate))
        seg = hit[:len(out) - start].mean(1)
        out[start:start + len(seg)] += seg * gains[h]
        labels.append((float(t), int(h), int(vel)))
    return out, sorted(labels)


def kit_rate(kit) -> int:
    """The sample rate a kit of `render_drums` (a (KitSynth, preset) or a HydrogenKit) renders at."""
    return int((kit[0] if isinstance(kit, tuple) else kit).rate)


def make_clip(notes, bpm: float, length_s: float, kits, melodic: MelodicSynth | None, rng: np.random.Generator,
              *, accompaniment: float | None = None, augment_audio: bool = True, head_gain_db: float = 0.0):
    """One clip: (audio, labels). accompaniment: level of the accompaniment relative to the drums in dB
    (None: drums only)."""
    drums, labels = render_drums(notes, kits, length_s, rng, head_gain_db)
    y = drums
    if melodic is not None and accompaniment is not None:
        kicks = np.array([t for t, h, _ in labels if h == 0])
        ev = accompaniment_events(bpm, length_s, rng, kicks)
        programs = {0: int(rng.choice(MelodicSynth.BASS)), 1: int(rng.choice(MelodicSynth.CHORDS))}
        acc = melodic.render(ev, programs, length_s)
        d_rms = np.sqrt(np.mean(drums ** 2)) + 1e-9
        a_rms = np.sqrt(np.mean(acc ** 2)) + 1e-9
        y = drums + acc * (d_rms / a_rms) * 10 ** (accompaniment / 20)
    if augment_audio:
        y = augment(y, rng, kit_rate(kits[0]))
    return y.astype(np.float32), labels


def accompanied(notes, bpm: float, length_s: float, kit: KitSynth, melodic: MelodicSynth, rng: np.random.Generator):
    """Drums on one kit (its first preset, no audio augmentation) and a bass + chords accompaniment at the
    drums' RMS, for measuring: -> (drums, accompaniment, labels)."""
    drums, labels = make_clip(notes, bpm, length_s, [(kit, kit.presets[0])], None, rng, augment_audio=False)
    kicks = np.array([t for t, h, _ in labels if h == 0])
    acc = melodic.render(accompaniment_events(bpm, length_s, rng, kicks),
                         {0: int(rng.choice(MelodicSynth.BASS)), 1: int(rng.choice(MelodicSynth.CHORDS))}, length_s)
    acc *= (np.sqrt(np.mean(drums ** 2)) + 1e-9) / (np.sqrt(np.mean(acc ** 2)) + 1e-9)
    return drums, acc, labels


def notes_window(notes, start: float, length: float):
    return [(t - start, p, v) for t, p, v in notes if start <= t < start + length]
