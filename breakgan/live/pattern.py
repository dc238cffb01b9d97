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
# onsets.json stores seconds rounded to 1 us, which puts a hit on beat 8 at 7.9999996 beats (110 bpm) or
# a 4-bar loop at 16.0000005 beats: positions within SNAP_BEATS of the 1/GRID-beat grid are put back on
# it (1 us is under 1e-5 beats up to 999 bpm), so loop starts, bar lines and hits coincide exactly.
GRID = 960
SNAP_BEATS = 1e-5


def snap_beats(x):
    """Positions (beats) within SNAP_BEATS of a multiple of 1/GRID beat, moved onto it; others unchanged."""
    x = np.asarray(x, np.float64)
    on_grid = np.round(x * GRID) / GRID
    return np.where(np.abs(x - on_grid) <= SNAP_BEATS, on_grid, x)


@dataclass(frozen=True, eq=False)
class Pattern:
    """A timeline as a loop in beats.

    tempo: bpm the timeline's seconds are written at; length: loop length in beats;
    ev_pos / ev_part / ev_vel: every onset of every part, sorted by position (beats in the loop, each
    < length), part as an index into PARTS, velocity 0..1; part_onsets: per part, the same onsets as
    (n, 2) [song time s, velocity] for the envelope and latent math; velocity_sum: per part, over one loop.
    """
    timeline: Timeline
    tempo: float
    beats_per_bar: int
    length: float
    ev_pos: np.ndarray
    ev_part: np.ndarray
    ev_vel: np.ndarray
    part_onsets: dict[str, np.ndarray] = field(default_factory=dict)
    velocity_sum: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_timeline(cls, timeline: Timeline, tempo: float | None = None) -> "Pattern":
        bpm = timeline.tempo or tempo
        if not bpm or bpm <= 0:
            raise BreakganError(f"{timeline.source.get('onsets', 'pattern')}: no tempo; give --tempo")
        length = float(snap_beats(timeline.duration * bpm / 60.0))
        if length < 1e-3:
            raise BreakganError(f"{timeline.source.get('onsets', 'pattern')}: the pattern is empty (0 beats)")
        pos, part, vel, per_part, vsum = [], [], [], {}, {}
        for i, p in enumerate(PARTS):
            on = timeline.onsets(p)
            beats = snap_beats(on[:, 0] * bpm / 60.0)
            keep = beats < length - EPS  # an onset at the loop end belongs to the next loop
            pos.append(beats[keep])
            part.append(np.full(int(keep.sum()), i))
            vel.append(on[keep, 1])
            per_part[p] = np.stack([beats[keep] * 60.0 / bpm, on[keep, 1]], axis=1).reshape(-1, 2)
            vsum[p] = float(on[keep, 1].sum())
        pos, part, vel = np.concatenate(pos), np.concatenate(part), np.concatenate(vel)
        order = np.lexsort((part, pos))  # by position, then canonical part order
        return cls(timeline, float(bpm), int(timeline.beats_per_bar), length,
                   pos[order], part[order].astype(np.int64), vel[order], per_part, vsum)

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
        on = self.part_onsets[part]
        d = self.duration
        first = max(loop - 1, 0)
        return np.concatenate([on + np.array([[k * d, 0.0]]) for k in range(first, loop + 1)])


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
        return int(math.floor((self.local(position) + EPS) / self.pattern.length))

    def song_time(self, position: float) -> float:
        return self.pattern.seconds(self.local(position))


@dataclass
class EventGroup:
    """Everything that happens at one position (beats): a loop start, a bar line, a beat, onsets; or the
    end of playback (end=True, nothing else is sent), or a pending pattern swap (swap=True)."""
    position: float
    loop: int | None = None
    bar: int | None = None
    beat: int | None = None
    onsets: list[tuple[str, float]] = field(default_factory=list)
    swap: bool = False
    end: bool = False


# Every "next" below means: the first position p with p > cursor + EPS. Everything at or before
# cursor + EPS has been sent (a group spans [position, position + EPS]), so no event is skipped and none
# is sent twice, whatever the loop length or the origin.

def next_beat(cursor: float) -> float:
    """The first whole beat after `cursor`."""
    return float(math.floor(cursor + EPS) + 1)


def next_loop_start(seg: Segment, cursor: float) -> tuple[float, int]:
    """(position, loop number) of the first loop start after `cursor`."""
    y = cursor + EPS - seg.origin
    n = 0 if y < 0 else math.floor(y / seg.pattern.length) + 1
    return seg.origin + n * seg.pattern.length, n


def _loop_and_within(seg: Segment, y: float) -> tuple[int, float]:
    """y beats after the origin as (loop, beats into that loop), 0 <= within < length."""
    length = seg.pattern.length
    loop = math.floor(y / length)
    within = y - loop * length
    if within >= length:  # float rounding at a loop boundary
        loop, within = loop + 1, within - length
    return loop, max(within, 0.0)


def _first_onset(seg: Segment, cursor: float) -> tuple[int, int] | None:
    """(loop, index into ev_pos) of the first onset after `cursor`; None for a pattern without onsets."""
    p = seg.pattern
    if p.ev_pos.size == 0:
        return None
    y = cursor + EPS - seg.origin
    if y < 0:
        return 0, 0
    loop, within = _loop_and_within(seg, y)
    i = int(np.searchsorted(p.ev_pos, within, side="right"))
    return (loop + 1, 0) if i == p.ev_pos.size else (loop, i)


def _onset_position(seg: Segment, loop: int, i: int) -> float:
    return seg.origin + loop * seg.pattern.length + float(seg.pattern.ev_pos[i])


def next_onset(seg: Segment, cursor: float) -> float:
    """Position of the first onset after `cursor` (inf for a pattern without onsets)."""
    first = _first_onset(seg, cursor)
    return math.inf if first is None else _onset_position(seg, *first)


def _onsets_from(seg: Segment, first: tuple[int, int], hi: float) -> list[tuple[str, float]]:
    """(part, velocity) of the onsets from `first` (loop, index) on whose position is < hi, in order.
    Walks indices instead of re-deriving them from positions, so float rounding cannot drop one."""
    p = seg.pattern
    loop, i = first
    out = []
    while _onset_position(seg, loop, i) < hi:
        out.append((PARTS[int(p.ev_part[i])], float(p.ev_vel[i])))
        i += 1
        if i == p.ev_pos.size:
            loop, i = loop + 1, 0
    return out


def next_group(seg: Segment, cursor: float, beats_per_bar: int, swap_at: float | None = None,
               end: float = math.inf) -> EventGroup:
    """The next group of events after `cursor` (beats). A pending swap at `swap_at` comes back as a group
    with swap=True (and nothing else), so the caller installs the new segment first. Nothing at or after
    `end - EPS` is sent: reaching it gives a group with end=True (--bars: the downbeat after the last bar
    belongs to the next bar, which is not played)."""
    beat = next_beat(cursor)
    loop_pos, loop_n = next_loop_start(seg, cursor)
    first = _first_onset(seg, cursor)
    onset = math.inf if first is None else _onset_position(seg, *first)
    pos = min(beat, loop_pos, onset)
    if swap_at is not None and swap_at <= pos + EPS:
        return EventGroup(swap_at, swap=True)
    if pos >= end - EPS:
        return EventGroup(end, end=True)
    # The group's window: [pos, pos + EPS], cut short before end - EPS.
    hi = min(math.nextafter(pos + EPS, math.inf), end - EPS)  # exclusive
    group = EventGroup(pos)
    if loop_pos < hi:
        group.loop = loop_n
    if beat < hi:
        group.beat = int(round(beat))
        if group.beat % beats_per_bar == 0:
            group.bar = group.beat // beats_per_bar
    if onset < hi:
        group.onsets = _onsets_from(seg, first, hi)
    return group
