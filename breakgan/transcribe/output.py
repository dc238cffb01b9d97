"""A transcription as a drums folder: onsets.json (interface 3, plus beats and bar lines), MIDI per part
and whole, at the detected tempo with unquantized times."""

from __future__ import annotations

import io

import numpy as np

from breakgan.drums.output import TICKS_PER_QUARTER
from breakgan.parts import PART_PITCH, PARTS

NOTE_S = 0.05  # written note length (drum sounds ignore it; some MIDI tools need a note-off)


def part_onsets(onsets_by_head: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Heads -> the nine drum parts (the toms head goes to tom_mid; tom_low and tom_high stay empty)."""
    from breakgan.transcribe.model import HEAD_TO_PART

    out = {p: np.zeros((0, 2)) for p in PARTS}
    for head, arr in onsets_by_head.items():
        out[HEAD_TO_PART[head]] = np.asarray(arr, np.float64).reshape(-1, 2)
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
