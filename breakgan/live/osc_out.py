"""OSC messages and timetagged bundles for TouchDesigner: pure byte building, plus a thin UDP sender.

TouchDesigner's OSC In CHOP accepts only float and int arguments, so every value is converted here to
a 32-bit float ('f') or int ('i'): numpy scalars become Python numbers, bools and strings are refused,
non-finite floats become 0. Addresses are lower-case `[a-z0-9_]` segments so they become clean CHOP
channel names. A tick's messages go in one bundle; bundles are split so no datagram reaches 8192 bytes
(python-osc's and many receivers' UDP buffer).
"""

from __future__ import annotations

import functools
import math
import numbers
import re
import socket
import struct

import numpy as np
from pythonosc.parsing import ntp

from breakgan.parts import PARTS

MAX_DATAGRAM = 8192
PREFIX = "/breakgan"
_ADDRESS = re.compile(r"^(/[a-z0-9_]+)+$")
_BUNDLE_HEAD = b"#bundle\x00"
_IMMEDIATELY = struct.pack(">Q", 1)
_INT32 = (-(2**31), 2**31 - 1)
_F32 = struct.Struct(">f")


def address(*segments: str | int) -> str:
    """'/breakgan/<seg>/<seg>' from clean segments (a bad segment is a bug, so it raises ValueError)."""
    text = PREFIX + "".join(f"/{s}" for s in segments)
    if not _ADDRESS.match(text):
        raise ValueError(f"OSC address {text!r} would not make a clean CHOP channel name")
    return text


def part_address(part: str, leaf: str) -> str:
    if part not in PARTS:
        raise ValueError(f"unknown drum part {part!r}")
    return address(part, leaf)


def _padded(data: bytes) -> bytes:
    # OSC strings end with at least one NUL and are padded to a multiple of 4 bytes.
    return data + b"\x00" * (4 - len(data) % 4)


def osc_arg(value) -> tuple[str, bytes]:
    """(type tag, big-endian bytes) for one number: ints -> 'i' (int32), everything else numeric -> 'f'."""
    if type(value) is float:  # the common case, first
        return "f", _F32.pack(value if math.isfinite(value) else 0.0)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.number)):
        raise TypeError(f"OSC value {value!r} is not a number (TouchDesigner CHOPs take only floats and ints)")
    if isinstance(value, (numbers.Integral, np.integer)):
        v = int(value)
        if _INT32[0] <= v <= _INT32[1]:
            return "i", struct.pack(">i", v)
        return "f", struct.pack(">f", float(v))
    v = float(value)
    return "f", struct.pack(">f", v if math.isfinite(v) else 0.0)


@functools.lru_cache(maxsize=4096)
def _head(addr: str, tags: str) -> bytes:
    # Address and type-tag string, padded; the same few dozen addresses go out every tick.
    return _padded(addr.encode("ascii")) + _padded(("," + tags).encode("ascii"))


def osc_message(addr: str, *values) -> bytes:
    """One OSC message datagram: address, type tags, then the numbers."""
    tags, data = [], []
    for value in values:
        tag, raw = osc_arg(value)
        tags.append(tag)
        data.append(raw)
    return _head(addr, "".join(tags)) + b"".join(data)


def osc_floats(addr: str, values: np.ndarray) -> bytes:
    """One message carrying a whole float vector (e.g. a latent), fast path for many floats."""
    v = np.nan_to_num(np.asarray(values, dtype=">f4").ravel(), nan=0.0, posinf=0.0, neginf=0.0)
    return _padded(addr.encode("ascii")) + _padded(("," + "f" * v.size).encode("ascii")) + v.tobytes()


def timetag_bytes(unix_time: float | None) -> bytes:
    """NTP timetag of a Unix time in seconds; None -> the OSC 'immediately' tag."""
    return _IMMEDIATELY if unix_time is None else ntp.system_time_to_ntp(unix_time)


def bundle_dgrams(messages: list[bytes], unix_time: float | None, max_bytes: int = MAX_DATAGRAM) -> list[bytes]:
    """Pack messages into as few bundles as fit under max_bytes each, all with the same timetag.

    Message order is kept across the split. A single message too big for one datagram is a bug.
    """
    head = _BUNDLE_HEAD + timetag_bytes(unix_time)
    out, current, size = [], [], len(head)
    for msg in messages:
        item = struct.pack(">i", len(msg)) + msg
        if len(head) + len(item) >= max_bytes:
            raise ValueError(f"one OSC message of {len(msg)} bytes cannot fit a {max_bytes}-byte datagram")
        if current and size + len(item) >= max_bytes:
            out.append(b"".join(current))
            current, size = [], len(head)
        if not current:
            current.append(head)
        current.append(item)
        size += len(item)
    if current:
        out.append(b"".join(current))
    return out


class OscSender:
    """UDP sender of ready-made datagrams (one socket, reused)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 7000):
        # Resolve the name once: a lookup per send would cost more than the send.
        family, _, _, _, self.target = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)[0]
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self.errors = 0

    def send(self, dgrams: list[bytes]) -> None:
        for d in dgrams:
            try:
                self._sock.sendto(d, self.target)
            except OSError:
                # A receiver that is not up yet (ICMP refused) must not stop the show.
                self.errors += 1

    def close(self) -> None:
        self._sock.close()
