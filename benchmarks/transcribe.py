"""Drum transcription against the band method and plain onset detection, on held-out audio.

    python benchmarks/transcribe.py [--files 20] [--seconds 30] [--model FILE] [--json OUT]
                                    [--conditions drums_only,with_accompaniment,sub_kick,heavy_room]

GMD **validation** grooves (--split; 4/4 "beat" files of at least --seconds, in info.csv order), first --seconds
each, rendered with a drum kit training never used (default: the AVL "Black Pearl" acoustic kit,
Debian avldrums.lv2-soundfont; the training kits were TimGM6mb and FluidR3 GM), 44.1 kHz WAV, under
the --conditions asked for (default the first two, the figures the README has always given):
- drums_only: the drums alone;
- with_accompaniment: plus a bass + chords accompaniment (random MIDI, csound's sf_GMbank melodic
  programs, the same RMS as the drums);
- sub_kick: with_accompaniment with the kit's kick replaced by a transient-less 808-style kick
  (`sub_kick_track`: a sine gliding 60 -> 45 Hz, 15 ms attack, -40 dB at 400 ms; as loud (RMS) as the
  kick it replaces), the labels unchanged: an electronic kick without a click;
- heavy_room: with_accompaniment played in a large synthetic room (`room_impulse`: early reflections
  and a tail of RT60 1.8 s, shorter for the highs; the reverb 3 dB louder (RMS) than the direct sound):
  a live recording's room.
For each: per-part precision / recall / F (onsets matched one-to-one within +-50 ms), the median
|timing error| of matched onsets, tempo within 4% of info.csv's bpm (double/half counted wrong), for
`breakgan drums transcribe` (the model), the band method `timeline_from_audio` (render --audio's
former analysis) and plain `librosa.onset.onset_detect` (every onset counted for every part).
Tom labels: of the model's tom onsets matched to a GMD tom hit, the share whose low/mid/high part
(`output.tom_groups`, by pitch) names the hit's drum, against writing them all as tom_mid, by two
references: GMD's drums (43 floor tom = low, 45/47 second tom = mid, 48/50 first tom = high; 41 low)
and breakgan's parts (note-seq's classes: 41/43/45 low, 47/48 mid, 50 high).
A real recording, if ../shared/media/webaudiosamples_break29.wav is there (an acoustic breakbeat, about
120 BPM, no labels): its tempo and hits per part, a sanity check only.
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

from breakgan.drums.groove.data import SPLITS  # noqa: E402
from breakgan.transcribe.synthesis import groove_files  # noqa: E402

HELD_OUT_KIT = "/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2"
ACCOMP_FONT = "/usr/share/sounds/sf2/sf_GMbank.sf2"
GROOVE = "/work/shared/data/groove"
REAL_AUDIO = ROOT.parent / "shared" / "media" / "webaudiosamples_break29.wav"
PARTS3 = ("kick", "snare", "hihat_closed")
RATE = 44100
CONDITIONS = ("drums_only", "with_accompaniment", "sub_kick", "heavy_room")
DEFAULT_CONDITIONS = "drums_only,with_accompaniment"
GMD_TOM = {41: 0, 43: 0, 58: 0, 45: 1, 47: 1, 48: 2, 50: 2}  # GMD's drums: floor tom (58: its rim), second tom, first tom
ROOM_RT60 = 1.8        # s
ROOM_WET_DB = 3.0      # reverb level over the direct sound


def rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) + 1e-12


def sub_kick_track(hits, rate: int, length_s: float, *, f_start: float = 60.0, f_end: float = 45.0,
                   glide_s: float = 0.06, attack_s: float = 0.015, decay_s: float = 0.4) -> np.ndarray:
    """(time s, velocity 1..127) hits -> an 808-style kick track of length_s: per hit a sine whose pitch
    glides from f_start to f_end Hz (time constant glide_s), rising over attack_s (raised cosine, no click)
    and then falling by 40 dB over decay_s. Like a drum machine's voice, a hit ends the one before it
    (with a 5 ms fade, so the cut adds no click either)."""
    out = np.zeros(int(round(length_s * rate)), np.float64)
    starts = [int(round(t * rate)) for t, _ in hits]
    tau = decay_s / np.log(100.0)
    fade = int(0.005 * rate)
    for k, ((t, vel), start) in enumerate(zip(hits, starts)):
        end = min(len(out), start + int((attack_s + 1.5 * decay_s) * rate),
                  starts[k + 1] if k + 1 < len(starts) else len(out))
        if end <= start:
            continue
        x = np.arange(end - start) / rate
        freq = f_end + (f_start - f_end) * np.exp(-x / glide_s)
        phase = 2 * np.pi * np.cumsum(freq) / rate
        env = np.where(x < attack_s, np.sin(0.5 * np.pi * np.minimum(x / attack_s, 1.0)) ** 2,
                       np.exp(-(x - attack_s) / tau))
        env[-min(fade, len(env)):] *= np.linspace(1.0, 0.0, min(fade, len(env)))
        out[start:end] += (vel / 127.0) * env * np.sin(phase)
    return out.astype(np.float32)


def room_impulse(rate: int, rng: np.random.Generator, *, rt60: float = ROOM_RT60, early: int = 12,
                 predelay_s: float = 0.02) -> np.ndarray:
    """A large room's impulse response without the direct sound: `early` discrete reflections between 5
    and 80 ms (random delays and signs, weaker when later), then from predelay_s a diffuse tail of noise
    falling by 60 dB over rt60 s, its part above about 1 kHz twice as fast (air and walls absorb the highs
    first). Peak 1."""
    from scipy.signal import lfilter

    n = int((predelay_s + 1.2 * rt60) * rate)
    t = np.arange(n) / rate
    ir = np.zeros(n, np.float64)
    for d in np.sort(rng.uniform(0.005, 0.08, early)):
        ir[int(d * rate)] += rng.choice((-1.0, 1.0)) * rng.uniform(0.4, 0.8) * (1.0 - 5.0 * d)
    decay = np.exp(-np.log(1000.0) * np.maximum(t - predelay_s, 0.0) / rt60) * (t >= predelay_s)
    noise = rng.standard_normal(n)
    pole = np.exp(-2 * np.pi * 1000.0 / rate)
    dark = lfilter([1.0 - pole], [1.0, -pole], noise)
    bright = noise - dark
    tail = decay * (dark / rms(dark) + decay * bright / rms(bright))
    ir += 0.3 * tail / np.abs(tail).max()
    return (ir / np.abs(ir).max()).astype(np.float32)


def in_room(y: np.ndarray, ir: np.ndarray, wet_db: float = ROOM_WET_DB) -> np.ndarray:
    """y plus its reverb (y convolved with ir, cut to y's length), the reverb wet_db louder (RMS)."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(y, ir)[:len(y)]
    return (y + wet * (rms(y) / rms(wet)) * 10 ** (wet_db / 20)).astype(np.float32)


def render_set(files, seconds, kit_path, bank, accomp_path, folder: Path, seed: int = 0,
               conditions=CONDITIONS[:2]):
    """-> per file a dict: name, bpm, ref {head: times}, toms (times, GM pitches), paths {condition: wav}.
    drums_only and with_accompaniment are rendered whatever is asked (the other conditions start from
    them), with the random draws they have always had, so their figures stay comparable."""
    import soundfile as sf

    from breakgan.transcribe.model import HEADS
    from breakgan.transcribe.synthesis import (KitSynth, MelodicSynth, accompanied, groove_notes, make_clip,
                                               notes_window, pitch_heads)

    kit = KitSynth(kit_path, RATE, bank=bank)
    melodic = MelodicSynth(accomp_path, RATE)
    rng = np.random.default_rng(seed)
    heads = pitch_heads()
    kick_head, tom_head = HEADS.index("kick"), HEADS.index("toms")
    out = []
    for i, g in enumerate(files):
        notes = notes_window(groove_notes(g.path), 0.0, seconds)
        drums, acc, labels = accompanied(notes, g.bpm, seconds, kit, melodic, rng)
        mix = drums + acc
        scale = 0.9 / max(np.abs(mix).max(), np.abs(drums).max())
        audio = {"drums_only": drums * scale, "with_accompaniment": mix * scale}
        if "sub_kick" in conditions:
            kick_notes = [n for n in notes if 0 <= n[1] < 128 and heads[n[1]] == kick_head]
            # the kit is the only choice make_clip draws here: any generator renders the same kick track
            kick, _ = make_clip(kick_notes, g.bpm, seconds, [(kit, kit.presets[0])], None,
                                np.random.default_rng(0), augment_audio=False)
            sub = sub_kick_track([(t, v) for t, h, v in labels if h == kick_head], RATE, seconds)
            y = drums - kick + sub * (rms(kick) / rms(sub)) + acc
            audio["sub_kick"] = y * 0.9 / np.abs(y).max()
        if "heavy_room" in conditions:
            y = in_room(mix, room_impulse(RATE, np.random.default_rng([seed, i])))
            audio["heavy_room"] = y * 0.9 / np.abs(y).max()
        paths = {}
        for cond, y in audio.items():
            paths[cond] = folder / f"{i:02d}_{cond}.wav"
            sf.write(paths[cond], y, RATE, subtype="PCM_16")
        ref = {h: np.array([t for t, hh, _ in labels if hh == k]) for k, h in enumerate(HEADS)}
        toms = [(t, p) for t, p, _ in notes if 0 <= p < 128 and heads[p] == tom_head]
        out.append({"name": g.path.name, "bpm": g.bpm, "ref": ref, "paths": paths,
                    "toms": (np.array([t for t, _ in toms]), np.array([p for _, p in toms], np.int64))})
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


class TomLabels:
    """Of the model's tom onsets matched to a GMD tom hit: how many get the right low/mid/high part."""

    def __init__(self):
        self.n = 0
        self.right = {"gmd_drums": 0, "breakgan_parts": 0}
        self.all_mid = {"gmd_drums": 0, "breakgan_parts": 0}
        self.songs = {"several_drums": [0, 0], "one_drum": [0, 0]}   # [songs, songs split]

    def add(self, ref_times, ref_pitches, parts):
        from breakgan.drums.encoding import pitch_to_part
        from breakgan.parts import PARTS
        from breakgan.transcribe.output import TOM_PARTS
        from breakgan.transcribe.peaks import match_pairs
        from breakgan.transcribe.synthesis import RENDER_PITCH

        est = np.concatenate([parts[p][:, 0] for p in TOM_PARTS])
        label = np.concatenate([np.full(len(parts[p]), k) for k, p in enumerate(TOM_PARTS)])
        pairs = match_pairs(ref_times, est)
        if len(pairs) == 0:
            return
        pitch, label = ref_pitches[pairs[:, 0]], label[pairs[:, 1]]
        truth = {"gmd_drums": np.array([GMD_TOM.get(int(p), -1) for p in pitch]),
                 "breakgan_parts": np.array([TOM_PARTS.index(PARTS[pitch_to_part()[RENDER_PITCH.get(int(p), int(p))]])
                                             for p in pitch])}  # 58 sounds (and is labelled) as a floor tom
        self.n += len(pairs)
        for ref, t in truth.items():
            self.right[ref] += int((label == t).sum())
            self.all_mid[ref] += int((t == 1).sum())
        if len(pairs) >= 2:
            song = self.songs["several_drums" if len(set(truth["gmd_drums"])) > 1 else "one_drum"]
            song[0] += 1
            song[1] += int(len(set(label)) > 1)

    def table(self):
        def share(c):
            return round(c / self.n, 3) if self.n else None

        return {"matched_tom_hits": self.n,
                "split_right": {k: share(v) for k, v in self.right.items()},
                "all_mid_right": {k: share(v) for k, v in self.all_mid.items()},
                "songs_split": {k: f"{s}/{n}" for k, (n, s) in self.songs.items()}}


def real_audio_check(path: Path, model):
    """Transcribe a real recording (no labels): its tempo and hits per part, or None if it is absent."""
    from breakgan.transcribe.run import transcribe_song

    if not path.is_file():
        print(f"real audio: {path} absent, skipped", flush=True)
        return None
    parts, data, _ = transcribe_song(path, model, None)
    out = {"file": path.name, "duration_s": round(data["duration"], 2),
           "tempo": round(data["tempo"], 1) if data["tempo"] else None,
           "hits": {p: len(a) for p, a in parts.items()}}
    print("real audio", json.dumps(out), flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", "--groove", dest="groove", default=GROOVE, help="a Groove MIDI Dataset folder")
    ap.add_argument("--split", default="validation", choices=SPLITS,
                    help="the GMD split to measure on; test only on a full copy, for final figures (never used for tuning)")
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--kit", default=HELD_OUT_KIT)
    ap.add_argument("--kit-bank", type=int, default=0)
    ap.add_argument("--accompaniment-font", default=ACCOMP_FONT)
    ap.add_argument("--model", default=None)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--conditions", default=DEFAULT_CONDITIONS,
                    help=f"comma-separated, of {','.join(CONDITIONS)} (default {DEFAULT_CONDITIONS})")
    ap.add_argument("--real-audio", default=str(REAL_AUDIO), help="a real recording to sanity-check ('' skips)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    conditions = tuple(c.strip() for c in a.conditions.split(",") if c.strip())
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or not conditions:
        sys.exit(f"--conditions: unknown {' '.join(unknown) or '(empty)'}; choose from {','.join(CONDITIONS)}")

    import librosa
    import torch

    from breakgan.parts import PARTS
    from breakgan.timeline import timeline_from_audio
    from breakgan.transcribe.infer import transcribe_file
    from breakgan.transcribe.model import HEADS
    from breakgan.transcribe.output import part_onsets
    from breakgan.transcribe.tempo import beat_grid

    torch.set_num_threads(2)
    for font in (a.kit, a.accompaniment_font):
        if not Path(font).is_file():
            sys.exit(f"{font}: not installed (apt-get install avldrums.lv2-soundfont csound-soundfont)")
    try:
        files = [g for g in groove_files(a.groove, a.split) if g.beat_type == "beat" and g.duration >= a.seconds]
    except ValueError as e:
        sys.exit(str(e))
    files = files[:a.files]
    results = {"files": len(files), "seconds": a.seconds, "kit": Path(a.kit).name,
               "accompaniment_font": Path(a.accompaniment_font).name}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        rendered = render_set(files, a.seconds, a.kit, a.kit_bank, a.accompaniment_font, Path(tmp),
                              conditions=conditions)
        print(f"rendered {len(rendered)} files in {time.time() - t0:.0f} s", flush=True)
        for cond in conditions:
            model, band, plain, toms = Score(), Score(), Score(), TomLabels()
            for r in rendered:
                path, ref, bpm = r["paths"][cond], r["ref"], r["bpm"]
                tr, _ = transcribe_file(path, a.model)
                for h in HEADS:
                    model.add(h, ref[h], tr.onsets[h][:, 0])
                toms.add(*r["toms"], part_onsets(tr.onsets, tr.tom_pitch))
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
            results[cond] = {"model": model.table(), "tom_labels": toms.table()}
            if not a.no_baselines:
                results[cond]["band_method"] = band.table()
                results[cond]["librosa_onset_detect"] = plain.table()
            print(cond, json.dumps(results[cond]), flush=True)
        # real-time factor on one long file (all the mixes end to end), the model loaded once per call
        import soundfile as sf
        long_path = Path(tmp) / "all_mixes.wav"
        sf.write(long_path, np.concatenate([sf.read(str(r["paths"]["with_accompaniment"]), dtype="float32")[0]
                                            for r in rendered]), RATE, subtype="PCM_16")
        t1 = time.perf_counter()
        tr, _ = transcribe_file(long_path, a.model)
        seconds = time.perf_counter() - t1
        results["realtime_factor"] = {"audio_s": round(tr.duration, 1), "seconds": round(seconds, 2),
                                      "factor": round(tr.duration / seconds, 1)}
        print("real-time factor", results["realtime_factor"], flush=True)
    if a.real_audio:
        results["real_audio"] = real_audio_check(Path(a.real_audio), a.model)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
