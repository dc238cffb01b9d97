"""The looping pattern in beats: where the next events are, and each part's onsets around a loop.

Pure math, no I/O and no clock. Positions are in beats from the start of playback (the clock's beat
domain); a `Segment` is one pattern playing from an origin beat (a regenerated pattern starts a new
segment on a bar line). Song time inside a segment is in seconds at the pattern's own tempo, which
is what the timeline's envelope and the trajectory's latent path take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from breakgan.errors import BreakganError
from breakgan.parts import PARTS
from breakgan.timeline import Timeline

EPS = 1e-7  # beats: positions closer than this are the same event


@dataclass(frozen=True, eq=False)
class Pattern:
    """A timeline as a loop in beats.

    tempo: bpm the timeline's seconds are written at; length: loop length in beats;
    ev_pos / ev_part / ev_vel: every onset of every part, sorted by position (beats in the loop),
    part as an index into PARTS, velocity 0..1; velocity_sum: per part, the sum over one loop.
    """
    timeline: Timeline
    tempo: float
    beats_per_bar: int
    length: float
    ev_pos: np.ndarray
    ev_part: np.ndarray
    ev_vel: np.ndarray
    velocity_sum: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_timeline(cls, timeline: Timeline, tempo: float | None = None) -> "Pattern":
        bpm = timeline.tempo or tempo
        if not bpm or bpm <= 0:
            raise BreakganError(f"{timeline.source.get('onsets', 'pattern')}: no tempo; give --tempo")
        length = timeline.duration * bpm / 60.0
        if length < 1e-3:
            raise BreakganError(f"{timeline.source.get('onsets', 'pattern')}: the pattern is empty (0 beats)")
        pos, part, vel, vsum = [], [], [], {}
        for i, p in enumerate(PARTS):
            on = timeline.onsets(p)
            keep = on[:, 0] < timeline.duration  # an onset at the loop end belongs to the next loop
            pos.append(on[keep, 0] * bpm / 60.0)
            part.append(np.full(int(keep.sum()), i))
            vel.append(on[keep, 1])
            vsum[p] = float(on[keep, 1].sum())
        pos, part, vel = np.concatenate(pos), np.concatenate(part), np.concatenate(vel)
        order = np.lexsort((part, pos))  # by position, then canonical part order
        return cls(timeline, float(bpm), int(timeline.beats_per_bar), float(length),
                   pos[order], part[order].astype(np.int64), vel[order], vsum)

    @property
    def duration(self) -> float:
        """Loop length in seconds at the pattern's tempo."""
        return self.length * 60.0 / self.tempo

    def seconds(self, beats: float) -> float:
        return beats * 60.0 / self.tempo

    def two_loops(self, part: str, loop: int) -> np.ndarray:
        """The part's onsets (n, 2) [song time s, velocity] of loops loop-1 and loop (only loop 0 when
        loop is 0), at song time measured from the segment origin: enough history for any envelope or
        latent step still in flight at a time inside `loop`."""
        on = self.timeline.onsets(part)
        on = on[on[:, 0] < self.timeline.duration]
        d = self.duration
        first = max(loop - 1, 0)
        chunks = [on + np.array([[k * d, 0.0]]) for k in range(first, loop + 1)]
        return np.concatenate(chunks) if chunks else on


@dataclass
class Segment:
    """A pattern playing from `origin` (beats); `carry` is each part's keyframe phase at the origin."""
    pattern: Pattern
    origin: float
    carry: dict[str, float] = field(default_factory=lambda: {p: 0.0 for p in PARTS})

    def local(self, position: float) -> float:
        """Beats since the segment origin (clamped at 0 before it)."""
        return max(position - self.origin, 0.0)

    def loop_at(self, position: float) -> int:
        return int(math.floor(self.local(position) / self.pattern.length + 1e-12))

    def song_time(self, position: float) -> float:
        return self.pattern.seconds(self.local(position))


@dataclass
class EventGroup:
    """Everything that happens at one position (beats): a loop start, a bar line, a beat, onsets."""
    position: float
    loop: int | None = None
    bar: int | None = None
    beat: int | None = None
    onsets: list[tuple[str, float]] = field(default_factory=list)
    swap: bool = False


def next_beat(cursor: float) -> float:
    """The first whole beat after `cursor`."""
    return float(math.floor(cursor + EPS) + 1)


def next_loop_start(seg: Segment, cursor: float) -> tuple[float, int]:
    x = cursor - seg.origin
    n = 0 if x < -EPS else math.floor(x / seg.pattern.length + EPS) + 1
    return seg.origin + n * seg.pattern.length, n


def next_onset(seg: Segment, cursor: float) -> float:
    """Position of the first onset strictly after `cursor` (inf for a pattern without onsets)."""
    p = seg.pattern
    if p.ev_pos.size == 0:
        return math.inf
    x = cursor - seg.origin
    if x < -EPS:
        return seg.origin + float(p.ev_pos[0])
    loop = math.floor(x / p.length)
    within = x - loop * p.length
    i = int(np.searchsorted(p.ev_pos, within + EPS, side="right"))
    if i == p.ev_pos.size:
        loop, i = loop + 1, 0
    return seg.origin + loop * p.length + float(p.ev_pos[i])


def onsets_at(seg: Segment, position: float) -> list[tuple[str, float]]:
    """(part, velocity) of every onset at `position` (beats), in canonical part order."""
    p = seg.pattern
    x = position - seg.origin
    if x < -EPS or p.ev_pos.size == 0:
        return []
    loop = math.floor(x / p.length + EPS / p.length)
    within = x - loop * p.length
    lo = int(np.searchsorted(p.ev_pos, within - EPS, side="left"))
    hi = int(np.searchsorted(p.ev_pos, within + EPS, side="right"))
    return [(PARTS[int(p.ev_part[i])], float(p.ev_vel[i])) for i in range(lo, hi)]


def next_group(seg: Segment, cursor: float, beats_per_bar: int, swap_at: float | None = None) -> EventGroup:
    """The next group of events strictly after `cursor` (beats). A pending swap at `swap_at` comes back
    as a group with swap=True (and nothing else), so the caller installs the new segment first."""
    beat = next_beat(cursor)
    loop_pos, loop_n = next_loop_start(seg, cursor)
    onset = next_onset(seg, cursor)
    pos = min(beat, loop_pos, onset)
    if swap_at is not None and swap_at <= pos + EPS:
        return EventGroup(swap_at, swap=True)
    group = EventGroup(pos)
    if abs(loop_pos - pos) < EPS:
        group.loop = loop_n
    if abs(beat - pos) < EPS:
        group.beat = int(round(beat))
        if group.beat % beats_per_bar == 0:
            group.bar = group.beat // beats_per_bar
    if abs(onset - pos) < EPS:
        group.onsets = onsets_at(seg, onset)
    return group
