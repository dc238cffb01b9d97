"""Seed (primer) patterns from a MIDI file or a small text grid.

A MIDI seed is quantised in musical time (ticks -> 16th steps), so tempo maps are honoured: notes
land on their step whatever the tempo does; the pattern plays back at the first tempo (or --tempo).
Drums are the notes on channel 10 (what General MIDI and pretty_midi's is_drum mean), or on
`drum_channel`. The pattern starts at the bar of the first drum note and ends at the end of the bar
holding the last drum note, so controllers after the last note (e.g. hi-hat pedal CC4) do not
lengthen it, and a seed shorter than a bar is one bar.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from breakgan.drums.encoding import NUM_PARTS, STEPS_PER_QUARTER, pitch_to_part
from breakgan.errors import BreakganError
from breakgan.parts import PARTS

MAX_SEED_STEPS = 16 * 4096  # 4096 bars of 4/4
MAX_PATTERN_CHARS = 1024 * 1024  # --seed-pattern text
DEFAULT_TEMPO = 120.0


@dataclass
class Seed:
    pattern: np.ndarray  # (steps, 9) uint8 velocities, 0 = no hit
    tempo: float  # quarter notes per minute
    beats_per_bar: int  # quarter notes per bar
    source: str
    notes: int = 0
    tempo_changes: int = 0
    ignored_pitches: list[int] = field(default_factory=list)

    @property
    def steps_per_bar(self) -> int:
        return self.beats_per_bar * STEPS_PER_QUARTER


def _beats_per_bar(num: int, den: int, path) -> int | None:
    quarters = num * 4 / den
    return int(quarters) if quarters == int(quarters) and quarters >= 1 else None


def seed_from_midi(path: str | Path, *, drum_channel: int | None = None,
                   beats_per_bar: int | None = None) -> Seed:
    """Read a seed MIDI file. drum_channel is 1-based (10 = General MIDI drums)."""
    import mido

    from breakgan.drums.smf import read_midi_bytes, scan_midi

    path = Path(path)
    data = read_midi_bytes(path)
    scan_midi(data, str(path))  # size, framing, track and event counts: before mido builds anything
    try:
        mf = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except Exception as e:  # noqa: BLE001 - whatever the parser trips on, the file is not readable MIDI
        raise BreakganError(f"{path}: not a readable MIDI file ({type(e).__name__}: {e})"[:300]) from None
    tpq = mf.ticks_per_beat
    if not tpq or tpq <= 0:
        raise BreakganError(f"{path}: SMPTE-timed MIDI files are not supported (no ticks per quarter)")

    channel = 9 if drum_channel is None else drum_channel - 1
    hits: list[tuple[int, int, int]] = []  # (tick, pitch, velocity)
    tempos: list[tuple[int, int]] = []  # (tick, microseconds per quarter)
    sigs: list[tuple[int, int, int]] = []
    channels_with_notes: set[int] = set()
    n_notes = 0
    for track in mf.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                n_notes += 1
                channels_with_notes.add(msg.channel)
                if msg.channel == channel:
                    hits.append((tick, msg.note, msg.velocity))
            elif msg.type == "set_tempo":
                tempos.append((tick, msg.tempo))
            elif msg.type == "time_signature":
                sigs.append((tick, msg.numerator, msg.denominator))
    if n_notes == 0:
        raise BreakganError(f"{path}: no notes in the MIDI file")
    if not hits:
        others = ", ".join(str(c + 1) for c in sorted(channels_with_notes))
        where = "channel 10 (General MIDI drums)" if drum_channel is None else f"channel {drum_channel}"
        raise BreakganError(f"{path}: no drums on {where}; notes are on channel(s) {others} "
                            f"(pass --drum-channel N to take drums from another channel)")

    table = pitch_to_part()
    hits.sort()
    steps = np.array([round(t * STEPS_PER_QUARTER / tpq) for t, _, _ in hits], dtype=np.int64)
    parts = np.array([table[p] if p < 128 else -1 for _, p, _ in hits], dtype=np.int64)
    vels = np.array([v for _, _, v in hits], dtype=np.int64)
    ignored = sorted({p for (_, p, _), k in zip(hits, parts) if k < 0})
    known = parts >= 0
    if not known.any():
        raise BreakganError(f"{path}: drum notes use no pitch of the 9 drum classes "
                            f"(pitches {', '.join(map(str, ignored[:10]))})")
    steps, parts, vels = steps[known], parts[known], vels[known]

    tempos.sort()
    first_tick = int(steps[0]) * tpq // STEPS_PER_QUARTER
    # tempo in force at the first note (a tempo map's later changes only move notes in time)
    usec = next((u for t, u in reversed(tempos) if t <= first_tick), tempos[0][1] if tempos else 500000)
    # MIDI stores whole microseconds per quarter; 0 is a corrupt tempo (load_seed checks the range)
    tempo = round(60_000_000 / usec, 2) if usec > 0 else float("inf")
    if beats_per_bar is None:
        sig = next((s for s in sorted(sigs, reverse=True) if s[0] <= first_tick), sigs[0] if sigs else None)
        if sig is None:
            beats_per_bar = 4
        else:
            beats_per_bar = _beats_per_bar(sig[1], sig[2], path)
            if beats_per_bar is None:
                raise BreakganError(f"{path}: time signature {sig[1]}/{sig[2]} is not a whole number of "
                                    f"quarter notes per bar; pass --beats-per-bar N")
    spb = beats_per_bar * STEPS_PER_QUARTER
    start = int(steps[0]) // spb * spb
    end = (int(steps[-1]) // spb + 1) * spb
    if end - start > MAX_SEED_STEPS:
        raise BreakganError(f"{path}: {(end - start) // spb} bars of drums is too long for a seed "
                            f"(limit {MAX_SEED_STEPS // spb} bars)")
    pattern = np.zeros((end - start, NUM_PARTS), dtype=np.uint8)
    np.maximum.at(pattern, (steps - start, parts), vels.astype(np.uint8))
    changes = len({u for _, u in tempos}) - 1 if tempos else 0
    return Seed(pattern, tempo, beats_per_bar, str(path), notes=int(known.sum()),
                tempo_changes=max(changes, 0), ignored_pitches=ignored)


PART_ALIASES = {
    "kick": "kick", "bd": "kick", "bass": "kick", "k": "kick",
    "snare": "snare", "sd": "snare", "sn": "snare", "s": "snare",
    "hihat": "hihat_closed", "hh": "hihat_closed", "ch": "hihat_closed", "hihat_closed": "hihat_closed",
    "closed_hihat": "hihat_closed", "chh": "hihat_closed",
    "oh": "hihat_open", "ohh": "hihat_open", "hihat_open": "hihat_open", "open_hihat": "hihat_open",
    "tom_low": "tom_low", "lt": "tom_low", "low_tom": "tom_low",
    "tom_mid": "tom_mid", "mt": "tom_mid", "mid_tom": "tom_mid", "tom": "tom_mid",
    "tom_high": "tom_high", "ht": "tom_high", "high_tom": "tom_high",
    "crash": "crash", "cr": "crash", "cy": "crash",
    "ride": "ride", "rd": "ride",
}
HIT_VELOCITY = {"x": 100, "X": 127, "o": 60}  # hit, accent, ghost
REST = set(".-_0")


def seed_from_pattern(text: str, *, tempo: float | None = None, beats_per_bar: int | None = None) -> Seed:
    """Parse a text grid: one line per part ('kick: x...x...'), one character per 16th step.

    'x' hit, 'X' accent, 'o' ghost note, '.', '-', '_' rest; spaces and '|' are ignored. Lines are
    separated by newlines or ';'. The seed is as long as the longest line.
    """
    if text is not None and not isinstance(text, str):
        raise BreakganError(f"--seed-pattern: expected text, got {type(text).__name__}")
    if text and len(text) > MAX_PATTERN_CHARS:
        raise BreakganError(f"--seed-pattern: {len(text)} characters, more than {MAX_PATTERN_CHARS}")
    lines = [ln.strip() for ln in re.split(r"[;\n]", text or "") if ln.strip()]
    if not lines:
        raise BreakganError("--seed-pattern is empty; e.g. 'kick: x...x...x...x...; snare: ....x.......x...'")
    rows: dict[int, str] = {}
    for ln in lines:
        m = re.match(r"^([A-Za-z_]+)\s*[:=]?\s*(.*)$", ln)
        if not m:
            raise BreakganError(f"--seed-pattern line {_quote(ln)}: expected 'part: x...x...'")
        name, grid = m.group(1).lower(), re.sub(r"[\s|]", "", m.group(2))
        if name not in PART_ALIASES:
            raise BreakganError(f"--seed-pattern line {_quote(ln)}: unknown part {name!r}; "
                                f"use one of {' '.join(PARTS)}")
        bad = sorted({c for c in grid if c not in HIT_VELOCITY and c not in REST})
        if bad:
            raise BreakganError(f"--seed-pattern line {_quote(ln)}: unexpected character(s) {''.join(bad)!r} "
                                f"(x = hit, X = accent, o = ghost, . = rest)")
        if not grid:
            raise BreakganError(f"--seed-pattern line {_quote(ln)}: no steps")
        rows[PARTS.index(PART_ALIASES[name])] = grid
    steps = max(len(g) for g in rows.values())
    if steps > MAX_SEED_STEPS:
        raise BreakganError(f"--seed-pattern: {steps} steps is too long")
    pattern = np.zeros((steps, NUM_PARTS), dtype=np.uint8)
    for part, grid in rows.items():
        for i, ch in enumerate(grid):
            pattern[i, part] = HIT_VELOCITY.get(ch, 0)
    if not pattern.any():
        raise BreakganError("--seed-pattern has no hits (use x for a hit)")
    return Seed(pattern, float(tempo or DEFAULT_TEMPO), beats_per_bar or 4, "pattern",
                notes=int((pattern > 0).sum()))


def _quote(line: str) -> str:
    return repr(line if len(line) <= 40 else line[:40] + "...")


def pattern_to_text(pattern: np.ndarray, steps_per_bar: int = 16) -> str:
    """The inverse of seed_from_pattern (for logs and tests): one line per non-empty part."""
    lines = []
    for k, part in enumerate(PARTS):
        col = pattern[:, k]
        if not col.any():
            continue
        cells = "".join("X" if v >= 120 else "x" if v >= 80 else "o" if v else "." for v in col)
        bars = [cells[i:i + steps_per_bar] for i in range(0, len(cells), steps_per_bar)]
        lines.append(f"{part}: {'|'.join(bars)}")
    return "\n".join(lines)
