"""OSC control in: a UDP listener that turns known messages into `Control` values on a queue.

Nothing from the network is evaluated: each address is matched against a fixed table, arguments are
checked for type and range, and anything else (unknown address, wrong type, malformed or truncated
packet) is counted, logged at a limited rate and ignored. The listener thread never dies from input.
"""

from __future__ import annotations

import logging
import math
import queue
import socket
import threading
import time
from dataclasses import dataclass

from pythonosc.osc_message import OscMessage

from breakgan.console import warn
from breakgan.errors import BreakganError, shown
from breakgan.live.clock import MAX_TEMPO, MIN_TEMPO
from breakgan.live.osc_out import PREFIX
from breakgan.parts import PARTS
from breakgan.seeds import check_seed

# Control names and what they carry.
GLOBAL_CONTROLS = ("tempo", "play", "stop", "temperature", "regenerate", "reseed", "keyframe_seed",
                   "motion_seed", "pattern_seed")
PART_CONTROLS = ("mute", "solo", "seed")
# Messages that carry one seed: /breakgan/reseed (all three), /breakgan/<kind>_seed, /breakgan/<part>/seed.
SEED_CONTROLS = ("reseed", "keyframe_seed", "motion_seed", "pattern_seed")


@dataclass(frozen=True)
class Control:
    """One accepted command: name (e.g. 'tempo', 'mute'), the part for per-part controls, a value."""
    name: str
    part: str | None = None
    value: float | int | bool | None = None


def _number(args: list, address: str) -> float:
    if len(args) != 1:
        raise ValueError(f"{address} takes one number, got {len(args)} arguments")
    v = args[0]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{address} takes a number, got {type(v).__name__}")
    if not math.isfinite(v):
        raise ValueError(f"{address} got a non-finite number")
    return v


def _seed(args: list, address: str) -> int:
    """A seed under the one seed rule (`breakgan.seeds.check_seed`): an OSC int32/int64, or a float that
    is a whole number (0 <= s < 2**63)."""
    v = _number(args, address)
    try:
        return check_seed(v, address)
    except BreakganError as e:
        raise ValueError(str(e)) from None


def _trigger(args: list, address: str) -> bool:
    """Play/stop/regenerate: no argument, or one number where 0 means 'button released' (ignored)."""
    if not args:
        return True
    return _number(args, address) != 0


def control_from_message(address: str, args: list) -> Control | None:
    """The Control for one OSC message, None for a trigger released (value 0); ValueError if not accepted."""
    if not isinstance(address, str) or not address.startswith(PREFIX + "/"):
        raise ValueError(f"unknown address {shown(address, 80)}")
    segs = address[len(PREFIX) + 1:].split("/")
    args = list(args)
    if len(segs) == 1:
        name = segs[0]
        if name == "tempo":
            v = float(_number(args, address))
            if not MIN_TEMPO <= v <= MAX_TEMPO:
                raise ValueError(f"{address} {v} is out of range {MIN_TEMPO:g}..{MAX_TEMPO:g}")
            return Control("tempo", value=v)
        if name == "temperature":
            v = float(_number(args, address))
            if not 0.0 < v <= 10.0:
                raise ValueError(f"{address} {v} is out of range (0, 10]")
            return Control("temperature", value=v)
        if name in SEED_CONTROLS:
            return Control(name, value=_seed(args, address))
        if name in ("play", "stop", "regenerate"):
            return Control(name) if _trigger(args, address) else None
    elif len(segs) == 2 and segs[0] in PARTS:
        part, name = segs
        if name in ("mute", "solo"):
            return Control(name, part, _number(args, address) != 0)
        if name == "seed":
            return Control("seed", part, _seed(args, address))
    raise ValueError(f"unknown address {shown(address, 80)}")


def _not_from_pythonosc(record: logging.LogRecord) -> bool:
    # python-osc warns on the root logger for every odd packet; we count and log those ourselves.
    return "pythonosc" not in record.pathname


logging.getLogger().addFilter(_not_from_pythonosc)


MAX_BUNDLE_DEPTH = 8


def osc_messages(dgram: bytes, depth: int = 0) -> list[OscMessage]:
    """The messages of one datagram (a message, or a bundle walked recursively); ValueError if malformed.

    Bundle framing is checked here rather than by python-osc, whose bundle parser loops forever on a
    negative element size; timetags of incoming bundles are ignored (controls apply on arrival).
    """
    if dgram.startswith(b"#bundle\x00"):
        if depth >= MAX_BUNDLE_DEPTH:
            raise ValueError("bundles nested too deep")
        if len(dgram) < 16:
            raise ValueError("truncated bundle header")
        out, i = [], 16
        while i < len(dgram):
            if i + 4 > len(dgram):
                raise ValueError("truncated bundle element")
            size = int.from_bytes(dgram[i:i + 4], "big", signed=True)
            i += 4
            if size <= 0 or size % 4 or i + size > len(dgram):
                raise ValueError(f"bad bundle element size {size}")
            out += osc_messages(dgram[i:i + size], depth + 1)
            i += size
        return out
    if dgram.startswith(b"/"):
        return [OscMessage(dgram)]
    raise ValueError("not an OSC message or bundle")


def controls_from_datagram(dgram: bytes) -> tuple[list[Control], list[str]]:
    """Parse one UDP datagram (message or bundle, nested bundles included) into accepted controls and
    one problem string per rejected part. Never raises."""
    try:
        messages = osc_messages(bytes(dgram))
    except Exception as e:  # python-osc raises ParseError, but garbage can trip anything: never die
        return [], [f"malformed OSC packet ({len(dgram)} bytes): {e if isinstance(e, ValueError) else type(e).__name__}"]
    controls, problems = [], []
    for msg in messages:
        try:
            c = control_from_message(msg.address, msg.params)
        except Exception as e:
            problems.append(str(e))
            continue
        if c is not None:
            controls.append(c)
    return controls, problems


class RateLimitedLog:
    """At most `per_second` warnings a second; the rest are counted and summarised later."""

    def __init__(self, per_second: float = 4.0, emit=warn, prefix: str = "OSC in: "):
        self._prefix = prefix
        self._gap = 1.0 / per_second
        self._last = -math.inf
        self._suppressed = 0
        self._emit = emit

    def __call__(self, message: str) -> None:
        t = time.monotonic()
        if t - self._last < self._gap:
            self._suppressed += 1
            return
        extra = f" ({self._suppressed} more ignored)" if self._suppressed else ""
        self._suppressed = 0
        self._last = t
        self._emit(f"{self._prefix}{message}{extra}")


class ControlListener:
    """UDP listener thread: accepted controls go on `self.controls` (a queue the player drains each tick).

    Binds 127.0.0.1 unless told otherwise; port 0 picks a free port (see `.port`).
    """

    def __init__(self, port: int, host: str = "127.0.0.1", log=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, int(port)))
        except OSError as e:
            self._sock.close()
            raise BreakganError(f"cannot listen for OSC on {host}:{port}: {e.strerror or e}") from e
        try:  # room for bursts (a fader sweep) while the thread is busy
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        except OSError:
            pass
        self._sock.settimeout(0.2)
        self.host, self.port = self._sock.getsockname()[:2]
        self.controls: queue.Queue[Control] = queue.Queue()
        self.accepted = 0
        self.rejected = 0
        self._log = log or RateLimitedLog()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="breakgan-osc-in", daemon=True)

    def start(self) -> "ControlListener":
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                dgram, peer = self._sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            try:
                controls, problems = controls_from_datagram(dgram)
                for c in controls:
                    self.controls.put(c)
                self.accepted += len(controls)
                self.rejected += len(problems)
                for p in problems:
                    self._log(f"{p} from {peer[0]}:{peer[1]}")
            except Exception as e:  # belt and braces: the listener must keep serving
                self.rejected += 1
                self._log(f"ignored a packet: {type(e).__name__}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0) if self._thread.is_alive() else None
        self._sock.close()
