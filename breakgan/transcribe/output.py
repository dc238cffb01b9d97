"""A transcription as a drums folder: onsets.json (interface 3, plus beats and bar lines), MIDI per part
and whole, at the detected tempo with unquantized times."""

from __future__ import annotations

import io

import numpy as np

from breakgan.drums.output import TICKS_PER_QUARTER
from breakgan.parts import PART_PITCH, PARTS

NOTE_S = 0.05  # written note length (drum sounds ignore it; some MIDI tools need a note-off)
TOM_PARTS = ("tom_low", "tom_mid", "tom_high")
# Grouping a song's tom hits by pitch (octaves): sorted pitches farther apart than TOM_GAP start a new run;
# a run is a drum if it holds at least TOM_MIN_HITS hits and TOM_MIN_SHARE of them, and its spread (median
# absolute deviation) is at most TOM_TIGHT times its distance to the nearest other drum. Chosen on 69
# train-split grooves with toms (kits TimGM6mb, FluidR3, Red Zeppelin).
TOM_GAP = 0.08
TOM_MIN_HITS = 2
TOM_MIN_SHARE = 0.05
TOM_TIGHT = 0.25


def tom_groups(pitches: np.ndarray) -> np.ndarray:
    """Per-hit pitches (octaves) of one song's tom hits -> per-hit index into TOM_PARTS.

    The song's hits fall into 1, 2 or 3 drums (see TOM_GAP): one drum is tom_mid, two are tom_low and
    tom_mid (as breakgan's parts name a two-tom GMD kit: floor and second tom low, first tom mid, so
    transcribed and generated patterns speak alike), three are low, mid and high, by pitch. More than three runs: the two closest merge until three
    are left. Hits outside every drum's run (a hit masked by a kick, a stray pitch) join the drum whose
    median pitch is nearest."""
    v = np.asarray(pitches, np.float64).ravel()
    if not np.all(np.isfinite(v)):
        raise ValueError("tom pitches must be finite")
    if len(v) == 0:
        return np.zeros(0, np.int64)
    s = np.sort(v)
    runs = [r for r in np.split(s, np.nonzero(np.diff(s) > TOM_GAP)[0] + 1)
            if len(r) >= max(TOM_MIN_HITS, TOM_MIN_SHARE * len(v))]
    while len(runs) > 3:
        centres = [np.median(r) for r in runs]
        j = int(np.argmin(np.diff(centres)))
        runs[j:j + 2] = [np.concatenate(runs[j:j + 2])]
    while len(runs) > 1:  # a loose run is no drum: drop the loosest until all are tight
        centres = np.array([np.median(r) for r in runs])
        loose = [np.median(np.abs(r - c)) / np.min(np.abs(np.delete(centres, k) - c))
                 for k, (r, c) in enumerate(zip(runs, centres))]
        k = int(np.argmax(loose))
        if loose[k] <= TOM_TIGHT:
            break
        del runs[k]
    if len(runs) < 2:
        return np.full(len(v), 1, np.int64)
    centres = np.array([np.median(r) for r in runs])
    nearest = np.argmin(np.abs(v[:, None] - centres[None, :]), 1)
    names = np.array([0, 1] if len(runs) == 2 else [0, 1, 2], np.int64)
    return names[nearest]


def part_onsets(onsets_by_head: dict[str, np.ndarray], tom_pitch: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Heads -> the nine drum parts. The toms head is split into tom_low / tom_mid / tom_high by
    `tom_groups` of its hits' pitches (octaves, one per toms onset); without them it all goes to tom_mid."""
    from breakgan.transcribe.model import HEAD_TO_PART

    out = {p: np.zeros((0, 2)) for p in PARTS}
    for head, arr in onsets_by_head.items():
        arr = np.asarray(arr, np.float64).reshape(-1, 2)
        if head == "toms" and tom_pitch is not None:
            if len(tom_pitch) != len(arr):
                raise ValueError(f"{len(tom_pitch)} tom pitches for {len(arr)} tom onsets")
            labels = tom_groups(tom_pitch)
            for k, part in enumerate(TOM_PARTS):
                out[part] = arr[labels == k]
        else:
            out[HEAD_TO_PART[head]] = arr
    return out


def onsets_json(parts: dict[str, np.ndarray], *, duration: float, tempo: float | None, beats: np.ndarray,
                bar_lines: np.ndarray, audio: str | None, beats_per_bar: int = 4) -> dict:
    bars = round(duration * tempo / 60.0 / beats_per_bar, 3) if tempo else None
    data = {"tempo": tempo, "beats_per_bar": beats_per_bar, "duration": round(duration, 6), "audio": audio,
            "source": "transcribe", "selected_parts": list(PARTS),
            "beats": [round(float(t), 4) for t in beats], "bar_lines": [round(float(t), 4) for t in bar_lines],
            "parts": {p: [{"time": round(min(float(t), duration), 6), "velocity": int(v)} for t, v in parts[p]]
                      for p in PARTS}}
    if bars is not None:
        data["bars"] = bars
    return data


def midi_bytes(parts: dict[str, np.ndarray], tempo: float | None, beats_per_bar: int = 4,
               only: tuple[str, ...] = PARTS, name: str = "drums") -> bytes:
    """Type-1 MIDI: tempo/time-signature track + one channel-10 drum track, times as transcribed."""
    import mido

    bpm = tempo or 120.0
    per_s = TICKS_PER_QUARTER * bpm / 60.0
    mf = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("track_name", name="breakgan transcription", time=0))
    meta.append(mido.MetaMessage("set_tempo", tempo=int(round(60_000_000 / bpm)), time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=int(beats_per_bar), denominator=4, time=0))
    mf.tracks.append(meta)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    events = []
    for p in only:
        for t, v in parts[p]:
            on = int(round(t * per_s))
            events.append((on, 1, "note_on", PART_PITCH[p], int(v)))
            events.append((on + max(1, int(round(NOTE_S * per_s))), 0, "note_off", PART_PITCH[p], 0))
    events.sort()
    now = 0
    for tick, _, kind, pitch, vel in events:
        track.append(mido.Message(kind, channel=9, note=pitch, velocity=vel, time=tick - now))
        now = tick
    mf.tracks.append(track)
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()
