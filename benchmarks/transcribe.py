"""Drum transcription against the band method and plain onset detection, on held-out audio.

    python benchmarks/transcribe.py [--files 20] [--seconds 30] [--model FILE] [--json OUT]

GMD **validation** grooves (4/4 "beat" files of at least --seconds, in info.csv order), first --seconds
each, rendered with a drum kit training never used (default: the AVL "Black Pearl" acoustic kit,
Debian avldrums.lv2-soundfont; the training kits were TimGM6mb and FluidR3 GM), 44.1 kHz WAV:
1. drums only; 2. with a bass + chords accompaniment (random MIDI, csound's sf_GMbank melodic programs,
   the same RMS as the drums).
For each: per-part precision / recall / F (onsets matched one-to-one within +-50 ms), the median
|timing error| of matched onsets, tempo within 4% of info.csv's bpm (double/half counted wrong), for
`breakgan drums transcribe` (the model), the band method `timeline_from_audio` (render --audio's
former analysis) and plain `librosa.onset.onset_detect` (every onset counted for every part).
Needs `apt-get install avldrums.lv2-soundfont csound-soundfont` (only this benchmark; tests and the
command do not). Also the model's CPU real-time factor on all the mixes end to end (FFmpeg decoding, features, network,
peaks and tempo envelope; 2 threads; model load included).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HELD_OUT_KIT = "/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2"
ACCOMP_FONT = "/usr/share/sounds/sf2/sf_GMbank.sf2"
GROOVE = "/work/shared/data/groove"
PARTS3 = ("kick", "snare", "hihat_closed")
RATE = 44100


def render_set(files, seconds, kit_path, bank, accomp_path, folder: Path, seed: int = 0):
    """-> list of (name, bpm, labels {head: times}, drums wav, mix wav)."""
    import soundfile as sf

    from breakgan.transcribe.model import HEADS
    from breakgan.transcribe.synthesis import (KitSynth, MelodicSynth, accompaniment_events, groove_notes,
                                               make_clip, notes_window)

    kit = KitSynth(kit_path, RATE, bank=bank)
    melodic = MelodicSynth(accomp_path, RATE)
    rng = np.random.default_rng(seed)
    out = []
    for i, g in enumerate(files):
        notes = notes_window(groove_notes(g.path), 0.0, seconds)
        drums, labels = make_clip(notes, g.bpm, seconds, [(kit, kit.presets[0])], None, rng, augment_audio=False)
        kicks = np.array([t for t, h, _ in labels if h == 0])
        acc = melodic.render(accompaniment_events(g.bpm, seconds, rng, kicks),
                             {0: int(rng.choice(MelodicSynth.BASS)), 1: int(rng.choice(MelodicSynth.CHORDS))},
                             seconds)
        acc *= (np.sqrt(np.mean(drums ** 2)) + 1e-9) / (np.sqrt(np.mean(acc ** 2)) + 1e-9)
        mix = drums + acc
        scale = 0.9 / max(np.abs(mix).max(), np.abs(drums).max())
        d_path, m_path = folder / f"{i:02d}_drums.wav", folder / f"{i:02d}_mix.wav"
        sf.write(d_path, drums * scale, RATE, subtype="PCM_16")
        sf.write(m_path, mix * scale, RATE, subtype="PCM_16")
        ref = {h: np.array([t for t, hh, _ in labels if hh == k]) for k, h in enumerate(HEADS)}
        out.append((g.path.name, g.bpm, ref, d_path, m_path))
    melodic.close()
    kit.close()
    return out


def tempo_ok(est, ref, tol=0.04):
    return est is not None and abs(est - ref) <= tol * ref


class Score:
    def __init__(self):
        self.counts, self.errors, self.tempo = {}, [], []

    def add(self, part, ref, est):
        from breakgan.transcribe.peaks import match

        tp, fp, fn, err = match(ref, est)
        c = self.counts.setdefault(part, [0, 0, 0])
        c[0] += tp
        c[1] += fp
        c[2] += fn
        self.errors.extend(np.abs(err).tolist())

    def table(self):
        from breakgan.transcribe.peaks import prf

        parts = {p: dict(zip(("P", "R", "F"), (round(x, 3) for x in prf(*c))), n=c[0] + c[2])
                 for p, c in self.counts.items()}
        return {"parts": parts, "median_abs_timing_ms": round(1000 * float(np.median(self.errors)), 1)
                if self.errors else None,
                "tempo_within_4pct": f"{sum(self.tempo)}/{len(self.tempo)}"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groove", default=GROOVE)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--kit", default=HELD_OUT_KIT)
    ap.add_argument("--kit-bank", type=int, default=0)
    ap.add_argument("--accompaniment-font", default=ACCOMP_FONT)
    ap.add_argument("--model", default=None)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    import librosa
    import torch

    from breakgan.parts import PARTS
    from breakgan.timeline import timeline_from_audio
    from breakgan.transcribe.infer import transcribe_file
    from breakgan.transcribe.model import HEADS
    from breakgan.transcribe.tempo import beat_grid

    torch.set_num_threads(2)
    for font in (a.kit, a.accompaniment_font):
        if not Path(font).is_file():
            sys.exit(f"{font}: not installed (apt-get install avldrums.lv2-soundfont csound-soundfont)")
    files = [g for g in __import__("breakgan.transcribe.synthesis", fromlist=["x"]).groove_files(a.groove, "validation")
             if g.beat_type == "beat" and g.duration >= a.seconds][:a.files]
    results = {"files": len(files), "seconds": a.seconds, "kit": Path(a.kit).name,
               "accompaniment_font": Path(a.accompaniment_font).name}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        rendered = render_set(files, a.seconds, a.kit, a.kit_bank, a.accompaniment_font, Path(tmp))
        print(f"rendered {len(rendered)} files in {time.time() - t0:.0f} s", flush=True)
        for cond, col in (("drums_only", 3), ("with_accompaniment", 4)):
            model, band, plain = Score(), Score(), Score()
            for name, bpm, ref, d_path, m_path in rendered:
                path = (d_path, m_path)[col - 3]
                tr, _ = transcribe_file(path, a.model)
                for h in HEADS:
                    model.add(h, ref[h], tr.onsets[h][:, 0])
                tempo, _, _ = beat_grid(tr.envelope, tr.onsets)
                model.tempo.append(tempo_ok(tempo, bpm))
                if a.no_baselines:
                    continue
                tl = timeline_from_audio(path)
                for p in PARTS3:
                    band.add(p, ref[p], tl.onsets(p)[:, 0])
                band.tempo.append(tempo_ok(tl.tempo, bpm))
                y, sr = librosa.load(str(path), sr=22050)
                on = librosa.onset.onset_detect(y=y, sr=sr, units="time")
                for p in PARTS3:
                    plain.add(p, ref[p], on)
                plain.tempo.append(tempo_ok(float(np.atleast_1d(librosa.feature.tempo(y=y, sr=sr))[0]), bpm))
            results[cond] = {"model": model.table()}
            if not a.no_baselines:
                results[cond]["band_method"] = band.table()
                results[cond]["librosa_onset_detect"] = plain.table()
            print(cond, json.dumps(results[cond]), flush=True)
        # real-time factor on one long file (all the mixes end to end), the model loaded once per call
        import soundfile as sf
        long_path = Path(tmp) / "all_mixes.wav"
        sf.write(long_path, np.concatenate([sf.read(str(r[4]), dtype="float32")[0] for r in rendered]), RATE,
                 subtype="PCM_16")
        t1 = time.perf_counter()
        tr, _ = transcribe_file(long_path, a.model)
        seconds = time.perf_counter() - t1
        results["realtime_factor"] = {"audio_s": round(tr.duration, 1), "seconds": round(seconds, 2),
                                      "factor": round(tr.duration / seconds, 1)}
        print("real-time factor", results["realtime_factor"], flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
