"""What a drums candidate folder holds: MIDI (whole + per part), onsets.json data, piano roll, audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from breakgan.drums.encoding import STEPS_PER_QUARTER, part_pitches
from breakgan.parts import PARTS

TICKS_PER_QUARTER = 480
TICKS_PER_STEP = TICKS_PER_QUARTER // STEPS_PER_QUARTER


def step_seconds(tempo: float) -> float:
    return 60.0 / tempo / STEPS_PER_QUARTER


def hit_time(step: int, offsets: np.ndarray | None, part: int) -> float:
    """A hit's time in 16th steps: its step plus its humanized offset (never before the start)."""
    return float(step) if offsets is None else max(0.0, float(step) + float(offsets[step, part]))


def onsets_dict(pattern: np.ndarray, tempo: float, beats_per_bar: int, *, selected_parts=PARTS,
                audio: str | None = "mix.wav", offsets: np.ndarray | None = None) -> dict:
    """The interface-3 onsets.json structure for a (steps, 9) velocity pattern; offsets (steps, 9) in
    16th steps move each hit off the grid (humanized timing; "step" stays the grid step)."""
    steps = len(pattern)
    spb = beats_per_bar * STEPS_PER_QUARTER
    bars = steps / spb
    dt = step_seconds(tempo)
    parts = {}
    for k, part in enumerate(PARTS):
        idx = np.nonzero(pattern[:, k])[0]
        parts[part] = [{"time": round(hit_time(i, offsets, k) * dt, 6), "step": int(i),
                        "velocity": int(pattern[i, k])}
                       for i in idx]
    return {"tempo": float(tempo), "steps_per_quarter": STEPS_PER_QUARTER, "beats_per_bar": int(beats_per_bar),
            "bars": int(bars) if bars == int(bars) else bars, "duration": round(steps * dt, 6), "audio": audio,
            "selected_parts": list(selected_parts), "parts": parts}


def notes_of(pattern: np.ndarray, tempo: float, parts=PARTS,
             offsets: np.ndarray | None = None) -> list[tuple[float, int, int]]:
    """(time s, pitch, velocity) of every hit of the given parts, sorted by time."""
    pitches = part_pitches()
    dt = step_seconds(tempo)
    out = []
    for k, part in enumerate(PARTS):
        if part in parts:
            out += [(hit_time(i, offsets, k) * dt, pitches[k], int(pattern[i, k]))
                    for i in np.nonzero(pattern[:, k])[0]]
    return sorted(out)


def midi_bytes(pattern: np.ndarray, tempo: float, beats_per_bar: int, parts=PARTS, name: str = "drums",
               offsets: np.ndarray | None = None) -> bytes:
    """A type-1 MIDI file: a tempo / time-signature track and one channel-10 drum track.

    Each hit lasts one 16th step at note-seq's decoding pitch for its part. Deterministic bytes.
    """
    import io

    import mido

    mf = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_QUARTER)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("track_name", name="breakgan drums", time=0))
    meta.append(mido.MetaMessage("set_tempo", tempo=int(round(60_000_000 / tempo)), time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=int(beats_per_bar), denominator=4, time=0))
    meta.append(mido.MetaMessage("end_of_track", time=len(pattern) * TICKS_PER_STEP))
    mf.tracks.append(meta)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    pitches = part_pitches()
    events = []  # (tick, order, kind, pitch, velocity): note-offs before note-ons at the same tick
    for k, part in enumerate(PARTS):
        if part not in parts:
            continue
        steps = np.nonzero(pattern[:, k])[0]
        ons = [int(round(hit_time(i, offsets, k) * TICKS_PER_STEP)) for i in steps]
        for j, (i, on) in enumerate(zip(steps, ons)):
            # a hit lasts one step, or until the part's next (humanized) hit, so notes never overlap
            off = min(on + TICKS_PER_STEP, ons[j + 1]) if j + 1 < len(ons) else on + TICKS_PER_STEP
            events.append((on, 1, "note_on", pitches[k], int(pattern[i, k])))
            events.append((off, 0, "note_off", pitches[k], 0))
    events.sort()
    now = 0
    for tick, _, kind, pitch, vel in events:
        track.append(mido.Message(kind, channel=9, note=pitch, velocity=vel, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, len(pattern) * TICKS_PER_STEP - now)))
    mf.tracks.append(track)
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def write_pianoroll(path: Path, pattern: np.ndarray, beats_per_bar: int, seed_steps: int = 0,
                    title: str = "") -> None:
    """One row per part (kick at the bottom), velocity as shade, bar lines, the seed shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = len(pattern)
    spb = beats_per_bar * STEPS_PER_QUARTER
    fig, ax = plt.subplots(figsize=(max(6.0, min(24.0, steps / 8)), 3.2), dpi=100)
    img = np.ma.masked_equal(pattern.T.astype(np.float32), 0) / 127.0
    ax.imshow(img, aspect="auto", origin="lower", cmap="magma_r", vmin=0, vmax=1, interpolation="nearest",
              extent=(0, steps, -0.5, len(PARTS) - 0.5))
    if seed_steps:
        ax.axvspan(0, min(seed_steps, steps), color="tab:blue", alpha=0.08, label="seed")
    for b in range(0, steps + 1, spb):
        ax.axvline(b, color="0.5", lw=0.6)
    for b in range(0, steps + 1, STEPS_PER_QUARTER):
        ax.axvline(b, color="0.85", lw=0.3, zorder=0)
    ax.set_yticks(range(len(PARTS)))
    ax.set_yticklabels(PARTS, fontsize=7)
    ax.set_xticks(range(0, steps + 1, spb))
    ax.set_xticklabels([str(i + 1) for i in range(len(range(0, steps + 1, spb)))], fontsize=7)
    ax.set_xlabel("bar", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    import soundfile as sf

    sf.write(str(path), np.clip(audio, -1.0, 1.0), rate, subtype="PCM_16")
