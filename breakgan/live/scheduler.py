"""Waiting for deadlines precisely: sleep until just before, then spin.

`time.sleep` wakes up late by a variable amount (timer slack, a busy CPU), so the last `spin_s`
seconds are spent polling the clock instead. Deadlines are always absolute times computed from the
start (start + k / rate, or the clock's time of a beat), never accumulated sleeps, so an early or late
wake-up never shifts the ticks after it: the error does not grow over a long run.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

DEFAULT_SPIN_S = 0.002


def wait_until(deadline: float, now: Callable[[], float] = time.perf_counter,
               sleep: Callable[[float], None] = time.sleep, spin_s: float = DEFAULT_SPIN_S) -> float:
    """Return at (or just after) `deadline` on the `now` clock; returns the time it actually woke."""
    remaining = deadline - now()
    if remaining > spin_s:
        sleep(remaining - spin_s)
    t = now()
    while t < deadline:
        t = now()
    return t


def realtime_priority(priority: int = 10) -> str | None:
    """Ask the OS to run this process before ordinary ones (Linux SCHED_FIFO), so a busy machine does not
    delay the wake-ups. Returns None on success, else why not (needs root or CAP_SYS_NICE / rtprio)."""
    if not hasattr(os, "sched_setscheduler"):
        return "not supported on this system"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as e:
        return getattr(e, "strerror", None) or str(e)
    return None


def ordinary_priority() -> None:
    """Put the calling thread back on the ordinary scheduler (threads inherit SCHED_FIFO)."""
    if hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except (OSError, AttributeError):
            pass


class Lateness:
    """Sent-minus-scheduled times (seconds), kept in a bounded ring for summaries."""

    def __init__(self, keep: int = 100_000):
        self._values = np.zeros(keep)
        self._n = 0

    def add(self, late_s: float) -> None:
        self._values[self._n % self._values.size] = late_s
        self._n += 1

    def values(self) -> np.ndarray:
        if self._n <= self._values.size:
            return self._values[: self._n].copy()
        i = self._n % self._values.size
        return np.concatenate([self._values[i:], self._values[:i]])

    def summary(self) -> dict[str, float]:
        v = self.values()
        if v.size == 0:
            return {"count": 0}
        ms = v * 1e3
        return {"count": int(v.size), "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max())}
