"""Beat clocks for `breakgan live`: internal (tempo as a number) or Ableton Link (tempo shared with peers).

Both map a monotonic time in seconds (`now()`) to a beat position and back. The scheduler works in
that timebase; `unix_offset` turns it into Unix seconds for OSC timetags (measured once, so timetags
never jump when the wall clock is adjusted).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Protocol

from breakgan.errors import BreakganError

MIN_TEMPO = 20.0
MAX_TEMPO = 999.0


class Clock(Protocol):
    unix_offset: float

    def now(self) -> float: ...
    def tempo(self) -> float: ...
    def set_tempo(self, bpm: float, at: float | None = None) -> None: ...
    def beat_at(self, t: float) -> float: ...
    def time_at_beat(self, beat: float) -> float: ...
    def close(self) -> None: ...
    def start_beat(self, after: float, beats_per_bar: int) -> float: ...


def check_tempo(bpm: float, what: str = "tempo") -> float:
    """A tempo in bpm that a clock accepts, or a BreakganError naming the bad value."""
    bpm = float(bpm)
    if not math.isfinite(bpm) or not MIN_TEMPO <= bpm <= MAX_TEMPO:
        raise BreakganError(f"{what} {bpm} bpm is out of range ({MIN_TEMPO:g}..{MAX_TEMPO:g})")
    return bpm


def next_bar_beat(clock: Clock, after: float, beats_per_bar: int) -> float:
    """The first bar line (a beat that is a multiple of beats_per_bar) at or after time `after`."""
    return math.ceil(clock.beat_at(after) / beats_per_bar - 1e-9) * beats_per_bar


class InternalClock:
    """Beats from a tempo: beat(t) = beat0 + (t - t0) * tempo / 60, re-anchored on each tempo change.

    `now` is injectable so tests can run it on a virtual clock.
    """

    def __init__(self, tempo: float, *, now: Callable[[], float] = time.perf_counter, origin: float | None = None):
        self._now = now
        self._tempo = check_tempo(tempo)
        self._t0 = now() if origin is None else origin
        self._b0 = 0.0
        self._started = False
        self.unix_offset = time.time() - now()

    def now(self) -> float:
        return self._now()

    def tempo(self) -> float:
        return self._tempo

    def set_tempo(self, bpm: float, at: float | None = None) -> None:
        # Re-anchor at the change so the beat position stays continuous.
        at = self._now() if at is None else at
        self._b0 = self.beat_at(at)
        self._t0 = at
        self._tempo = check_tempo(bpm)

    def beat_at(self, t: float) -> float:
        return self._b0 + (t - self._t0) * self._tempo / 60.0

    def time_at_beat(self, beat: float) -> float:
        return self._t0 + (beat - self._b0) * 60.0 / self._tempo

    def start_beat(self, after: float, beats_per_bar: int) -> float:
        """Start playback at time `after`: the clock jumps ahead to the next bar line there (nobody else
        shares this clock, so there is no need to wait for one). Returns that bar line's beat: 0 the
        first time, so bar and beat counts start at 0."""
        beat = next_bar_beat(self, after, beats_per_bar) if self._started else 0
        self._started = True
        self._t0, self._b0 = after, float(beat)
        return float(beat)

    def close(self) -> None:
        pass


class LinkClock:
    """Ableton Link session (LinkPython-extern, `import link`): tempo and beat shared with peers such as
    TouchDesigner's Ableton Link CHOP. Time is Link's own microsecond clock, in seconds."""

    def __init__(self, tempo: float, quantum: int = 4):
        try:
            import link  # LinkPython-extern
        except ImportError as e:  # pragma: no cover - depends on the optional wheel
            raise BreakganError("--link needs the LinkPython-extern package: pip install 'breakgan[link]'") from e
        self._quantum = float(quantum)
        self._link = link.Link(check_tempo(tempo))
        self._link.enabled = True
        self._link.startStopSyncEnabled = True
        self.unix_offset = time.time() - self.now()

    def now(self) -> float:
        return self._link.clock().micros() / 1e6

    def peers(self) -> int:
        return int(self._link.numPeers())

    def tempo(self) -> float:
        return float(self._link.captureAppSessionState().tempo())

    def set_tempo(self, bpm: float, at: float | None = None) -> None:
        state = self._link.captureAppSessionState()
        at = self.now() if at is None else at
        state.setTempo(check_tempo(bpm), int(at * 1e6))
        self._link.commitAppSessionState(state)

    def set_playing(self, playing: bool) -> None:
        state = self._link.captureAppSessionState()
        state.setIsPlaying(bool(playing), int(self.now() * 1e6))
        self._link.commitAppSessionState(state)

    def beat_at(self, t: float) -> float:
        return float(self._link.captureAppSessionState().beatAtTime(int(round(t * 1e6)), self._quantum))

    def time_at_beat(self, beat: float) -> float:
        return self._link.captureAppSessionState().timeAtBeat(float(beat), self._quantum) / 1e6

    def start_beat(self, after: float, beats_per_bar: int) -> float:
        """The session's next bar line at or after `after` (Link's phase decides; peers stay in step)."""
        return float(next_bar_beat(self, after, beats_per_bar))

    def close(self) -> None:
        self._link.enabled = False
