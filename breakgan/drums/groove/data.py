"""Groove MIDI Dataset performances on the 16th grid, with each hit's velocity and timing offset kept.

A performance is read at its first tempo (GMD files are recorded to a click, one tempo, 4/4, starting
on a bar line), every drum note is put on its nearest 16th step, and the distance to that step is kept
as a fraction of a step in [-0.5, 0.5). Two notes of one part on one step keep the louder one.
Training reads the train split and tuning the validation split; `split_rows` also lists the test split of a
full GMD copy, for evaluators' final figures (this project's copy has none, and nothing was tuned on it).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from breakgan.drums.encoding import NUM_PARTS, STEPS_PER_QUARTER, pitch_to_part

STEPS_PER_BAR = 16  # 4/4 only
SPLITS = ("train", "validation", "test")


@dataclass
class Performance:
    name: str
    style: str
    tempo: float  # BPM
    velocity: np.ndarray  # (steps, 9) uint8, 0 = no hit
    offset: np.ndarray  # (steps, 9) float32, fraction of a 16th step, 0 where no hit

    @property
    def bars(self) -> int:
        return len(self.velocity) // STEPS_PER_BAR

    @property
    def step_ms(self) -> float:
        return 60_000.0 / self.tempo / STEPS_PER_QUARTER


def quantize_notes(notes, tempo: float, steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(start s, pitch, velocity) notes -> ((steps, 9) velocities, (steps, 9) offsets in steps)."""
    table = pitch_to_part()
    dt = 60.0 / tempo / STEPS_PER_QUARTER
    pos = [(start / dt, table[pitch], vel) for start, pitch, vel in notes if 0 <= pitch < 128 and table[pitch] >= 0]
    last = max((int(np.floor(p + 0.5)) for p, _, _ in pos), default=-1)
    if steps is None:
        steps = (last // STEPS_PER_BAR + 1) * STEPS_PER_BAR
    vel = np.zeros((steps, NUM_PARTS), np.uint8)
    off = np.zeros((steps, NUM_PARTS), np.float32)
    for p, part, v in pos:
        i = int(np.floor(p + 0.5))
        if 0 <= i < steps and v > vel[i, part]:
            vel[i, part] = min(127, int(v))
            off[i, part] = p - i
    return vel, off


def read_performance(path: Path, name: str = "", style: str = "") -> Performance | None:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    _, tempi = pm.get_tempo_changes()
    tempo = float(tempi[0]) if len(tempi) else 120.0
    notes = [(n.start, n.pitch, n.velocity) for inst in pm.instruments if inst.is_drum for n in inst.notes]
    if not notes:
        return None
    vel, off = quantize_notes(notes, tempo)
    return Performance(name or path.name, style, tempo, vel, off)


def split_rows(root: str | Path, split: str) -> list[dict]:
    """The info.csv rows of one split's 4/4 files, in the file's order. ValueError (one line) when the split
    is unknown or the copy lists none of it."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (one of {', '.join(SPLITS)})")
    info = Path(root) / "info.csv"
    if not info.is_file():
        raise ValueError(f"{info}: not found (a Groove MIDI Dataset folder holds info.csv)")
    with open(info, newline="") as f:
        rows = list(csv.DictReader(f))
    picked = [r for r in rows if r["split"] == split and r["time_signature"] == "4-4"]
    if not picked:
        have = ", ".join(sorted({r["split"] for r in rows})) or "nothing"
        raise ValueError(f"{info}: no 4/4 files of the {split} split (this copy has: {have})")
    return picked


def load_split(root: Path, split: str, *, min_bars: int = 1, beats_only: bool = False,
               limit: int | None = None) -> list[Performance]:
    """The 4/4 performances of one split listed in root/info.csv, sorted by name."""
    root = Path(root)
    rows = sorted((r for r in split_rows(root, split) if not beats_only or r["beat_type"] == "beat"),
                  key=lambda r: r["midi_filename"])
    out = []
    for r in rows:
        perf = read_performance(root / r["midi_filename"], r["midi_filename"], r["style"])
        if perf is not None and perf.bars >= min_bars:
            out.append(perf)
            if limit and len(out) >= limit:
                break
    return out
