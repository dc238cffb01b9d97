"""Hydrogen drum kits (Debian hydrogen-drumkits: multi-sampled acoustic and electronic kits as WAV/FLAC/AIFF
plus a drumkit.xml) as a training sound source beside the SoundFont kits. Instruments are sorted into the
transcription heads by their names; velocity layers are honoured; an open hi-hat is choked by the next
closed or pedal hat, as a real one is."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from breakgan.transcribe import features as F

KITS_DIR = Path("/usr/share/hydrogen/data/drumkits")
# Held out of training: "The Black Pearl" is the benchmark's kit (the same samples as the AVL SoundFont);
# the other two are hand percussion with no drum-kit heads.
EXCLUDED = ("The Black Pearl 1.0", "Gimme A Hand 1.0", "circAfrique v4")
MAX_SAMPLE_S = 2.5

# Instrument name -> kind; the first rule that matches wins. A kind names the GMD pitches it can voice.
NAME_RULES: tuple[tuple[str, str], ...] = (
    (r"cowbell|conga|bongo|agogo|tambourine|whistle|zap|fx|clave|shake|click|sample:", ""),
    (r"kick|bass ?drum|bassdrum|\bbd\b", "kick"),
    (r"stick|rim ?click", "side_stick"),
    (r"clap", "clap"),
    (r"snare", "snare"),
    (r"pedal", "hh_pedal"),
    (r"(?=.*(hat|hh))(?=.*(open|\bop\b|\bohh\b|semi|ring|free))", "hh_open"),
    (r"(hat|hh)", "hh_closed"),
    (r"\btom|drum \d", "tom"),
    (r"crash|splash|china|cymbal", "crash"),
    (r"ride", "ride"),
)
# GMD pitch -> the kinds that can voice it, best first (the last resort is any instrument of the same head).
PITCH_KINDS = {36: ("kick",), 35: ("kick",), 38: ("snare",), 40: ("snare",), 37: ("side_stick", "snare"),
               39: ("clap", "snare"), 42: ("hh_closed",), 22: ("hh_closed",), 44: ("hh_pedal", "hh_closed"),
               46: ("hh_open",), 26: ("hh_open",), 43: ("tom",), 58: ("tom",), 45: ("tom",), 47: ("tom",),
               48: ("tom",), 50: ("tom",), 49: ("crash",), 55: ("crash",), 57: ("crash",), 52: ("crash",),
               51: ("ride",), 59: ("ride",), 53: ("ride",)}
KIND_HEAD = {"kick": 0, "snare": 1, "side_stick": 1, "clap": 1, "hh_closed": 2, "hh_pedal": 2, "hh_open": 3,
             "tom": 4, "crash": 5, "ride": 6}


def kind_of(name: str) -> str:
    n = name.lower()
    for pattern, kind in NAME_RULES:
        if re.search(pattern, n):
            return kind
    return ""


@dataclass
class Instrument:
    name: str
    kind: str
    gain: float
    layers: list[tuple[float, float, float, Path]]       # (min velocity, max velocity, gain, file) in 0..1
    audio: dict[Path, np.ndarray] = field(default_factory=dict)


def _text(el, tag, default=None):
    x = el.find(tag)
    return x.text if x is not None and x.text is not None else default


def read_kit(folder: str | Path) -> list[Instrument]:
    """The drum instruments of one Hydrogen kit folder (those whose names map to a head and that have samples)."""
    folder = Path(folder)
    root = ET.parse(folder / "drumkit.xml").getroot()
    ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    out = []
    for ins in root.iter(ns + "instrument"):
        name = _text(ins, ns + "name", "") or ""
        kind = kind_of(name)
        if not kind:
            continue
        layers = []
        for layer in ins.iter(ns + "layer"):
            fn = _text(layer, ns + "filename")
            if fn and (folder / fn).is_file():
                layers.append((float(_text(layer, ns + "min", 0)), float(_text(layer, ns + "max", 1)),
                               float(_text(layer, ns + "gain", 1)), folder / fn))
        fn = _text(ins, ns + "filename")  # old kits: one sample, no layers
        if not layers and fn and (folder / fn).is_file():
            layers.append((0.0, 1.0, 1.0, folder / fn))
        if layers:
            out.append(Instrument(name, kind, float(_text(ins, ns + "gain", 1)), layers))
    return out


def available_kits(root: str | Path = KITS_DIR) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "drumkit.xml").is_file() and p.name not in EXCLUDED)


class HydrogenKit:
    """One kit as a renderer of (time, pitch, velocity) notes at `rate`."""

    def __init__(self, folder: str | Path, rate: int = F.SR):
        self.folder = Path(folder)
        self.name = self.folder.name
        self.rate = int(rate)
        self.instruments = read_kit(folder)
        self.by_kind: dict[str, list[Instrument]] = {}
        for ins in self.instruments:
            self.by_kind.setdefault(ins.kind, []).append(ins)
        self.heads = {KIND_HEAD[k] for k in self.by_kind}

    def choose(self, pitch: int, head: int, rng: np.random.Generator, memo: dict) -> Instrument | None:
        """The instrument for a GMD pitch; memo keeps one choice per kind for a whole clip, as a drummer
        keeps one snare."""
        for kind in PITCH_KINDS.get(pitch, ()):
            if kind in self.by_kind:
                if (self.name, kind) not in memo:
                    options = self.by_kind[kind]
                    memo[(self.name, kind)] = options[int(rng.integers(len(options)))]
                return memo[(self.name, kind)]
        same_head = [i for k, v in self.by_kind.items() if KIND_HEAD[k] == head for i in v]
        return same_head[int(rng.integers(len(same_head)))] if same_head else None

    def sample(self, ins: Instrument, velocity: int, rng: np.random.Generator) -> np.ndarray:
        v = velocity / 127.0
        fitting = [layer for layer in ins.layers if layer[0] <= v <= layer[1]] or ins.layers
        lo, hi, gain, path = fitting[int(rng.integers(len(fitting)))]
        if path not in ins.audio:
            ins.audio[path] = load_sample(path, self.rate)
        return ins.audio[path] * (gain * ins.gain * v)


def load_sample(path: Path, rate: int) -> np.ndarray:
    import soundfile as sf
    from math import gcd

    from scipy.signal import resample_poly

    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(1)[: int(MAX_SAMPLE_S * sr)]
    if sr != rate:
        g = gcd(int(sr), rate)
        x = resample_poly(x, rate // g, int(sr) // g).astype(np.float32)
    fade = min(len(x), int(0.05 * rate))
    if fade:
        x[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
    return x


def render(kit_for_head, notes, length_s: float, rate: int, rng: np.random.Generator, heads: np.ndarray):
    """notes (time, pitch, velocity) -> (audio, labels (time, head, velocity)); kit_for_head[h] is the
    HydrogenKit that voices head h. Open hats stop 10 ms into the next closed or pedal hat."""
    out = np.zeros(int(round(length_s * rate)), np.float32)
    labels = []
    notes = sorted(n for n in notes if 0 <= n[0] < length_s and 0 <= n[1] < 128 and heads[n[1]] >= 0)
    closes = np.array([t for t, p, _ in notes if heads[p] == 2])
    memo: dict = {}
    for t, pitch, vel in notes:
        h = int(heads[pitch])
        kit = kit_for_head[h]
        ins = kit.choose(pitch, h, rng, memo)
        if ins is None:
            continue
        x = kit.sample(ins, int(vel), rng)
        start = int(round(t * rate))
        if h == 3 and len(closes):
            later = closes[closes > t + 0.02]
            if len(later):
                stop = int(round((later[0] - t + 0.01) * rate))
                if stop < len(x):
                    x = x[:stop].copy()
                    n = min(len(x), int(0.01 * rate))
                    x[-n:] *= np.linspace(1, 0, n, dtype=np.float32)
        seg = x[: len(out) - start]
        out[start:start + len(seg)] += seg
        labels.append((float(t), h, int(vel)))
    return out, labels
