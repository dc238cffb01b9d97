"""A Standard MIDI File's structure checked from its bytes before mido parses it.

mido builds a Python object per event and reads payloads byte by byte: a 4 MB file costs it about 18 s
and 370 MB. This scan walks the chunk headers and the event framing (delta time, status, running
status, lengths) without building anything, and stops at the first limit, so an oversized, truncated
or non-MIDI file is refused in milliseconds. GMD files are below 100 KB and 10 000 events.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from breakgan.errors import BreakganError

MAX_MIDI_BYTES = 2 * 1024 * 1024
MAX_TRACKS = 256
MAX_EVENTS = 100_000  # all tracks together
MAX_PAYLOAD_BYTES = 256 * 1024  # meta and sysex data together (mido copies these byte by byte)

# data bytes after the status byte, by the status's high nibble (0x8..0xE)
_DATA_LEN = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}


@dataclass(frozen=True)
class MidiShape:
    format: int
    tracks: int
    ticks_per_quarter: int
    events: int


def read_midi_bytes(path: str | Path) -> bytes:
    """The bytes of a MIDI file no larger than MAX_MIDI_BYTES (the size is checked before reading)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise BreakganError(f"{path}: not a file")
        if size == 0:
            raise BreakganError(f"{path}: empty file, not a MIDI file")
        if size > MAX_MIDI_BYTES:
            raise BreakganError(f"{path}: {size / 2**20:.1f} MB is too large for a MIDI file here "
                                f"(limit {MAX_MIDI_BYTES // 2**20} MB)")
        with open(path, "rb") as f:
            return f.read(MAX_MIDI_BYTES + 1)[:MAX_MIDI_BYTES]
    except FileNotFoundError:
        raise BreakganError(f"{path}: MIDI file not found") from None
    except OSError as e:
        raise BreakganError(f"{path}: cannot read ({e.strerror or e})") from None


def scan_midi(data: bytes, where: str) -> MidiShape:
    """Check the framing of a Standard MIDI File; one-line BreakganError naming `where` if it is wrong."""
    def bad(what: str) -> BreakganError:
        return BreakganError(f"{where}: not a readable MIDI file ({what})")

    if len(data) < 14 or data[:4] != b"MThd":
        raise bad("no MThd header")
    hlen, fmt, ntrks, division = struct.unpack(">LHHH", data[4:14])
    if hlen < 6 or 8 + hlen > len(data):
        raise bad("bad header length")
    if fmt > 2:
        raise bad(f"format {fmt}")
    if division & 0x8000:
        raise BreakganError(f"{where}: SMPTE-timed MIDI files are not supported (no ticks per quarter)")
    if division == 0:
        raise bad("0 ticks per quarter note")
    if ntrks == 0:
        raise bad("no tracks")
    if ntrks > MAX_TRACKS:
        raise BreakganError(f"{where}: {ntrks} tracks, more than the {MAX_TRACKS} a MIDI file may have here")
    pos = 8 + hlen
    events = payload = 0
    for track in range(ntrks):
        if pos + 8 > len(data):
            raise bad(f"truncated: track {track + 1} of {ntrks} is missing")
        name, length = struct.unpack(">4sL", data[pos:pos + 8])
        if name != b"MTrk":
            raise bad(f"track {track + 1} has no MTrk header")
        start, end = pos + 8, pos + 8 + length
        if end > len(data):
            raise bad(f"truncated: track {track + 1} runs past the end of the file")
        i, running = start, None
        while i < end:
            # delta time: a variable-length number of at most 4 bytes
            for _ in range(4):
                if i >= end:
                    raise bad(f"truncated event in track {track + 1}")
                b = data[i]
                i += 1
                if b < 0x80:
                    break
            else:
                raise bad(f"delta time longer than 4 bytes in track {track + 1}")
            if i >= end:
                raise bad(f"truncated event in track {track + 1}")
            status = data[i]
            if status < 0x80:  # running status: this is the first data byte
                if running is None:
                    raise bad(f"running status without a status byte in track {track + 1}")
                status = running
            else:
                i += 1
            if status == 0xFF or status in (0xF0, 0xF7):
                if status == 0xFF:
                    i += 1  # meta type
                n, i = _varlen(data, i, end, bad, track)
                i += n
                payload += n
                if payload > MAX_PAYLOAD_BYTES:
                    raise BreakganError(f"{where}: more than {MAX_PAYLOAD_BYTES // 1024} KB of meta and "
                                        f"sysex data, too much for a MIDI file here")
                if status != 0xFF:
                    running = None
            elif 0x80 <= status < 0xF0:
                running = status
                i += _DATA_LEN[status >> 4]  # from the first data byte (running status or not)
            else:
                raise bad(f"undefined status byte 0x{status:02x} in track {track + 1}")
            if i > end:
                raise bad(f"truncated event in track {track + 1}")
            events += 1
            if events > MAX_EVENTS:
                raise BreakganError(f"{where}: more than {MAX_EVENTS} MIDI events, too many for a MIDI file "
                                    f"here")
        pos = end
    return MidiShape(fmt, ntrks, division, events)


def _varlen(data: bytes, i: int, end: int, bad, track: int) -> tuple[int, int]:
    n = 0
    for _ in range(4):
        if i >= end:
            raise bad(f"truncated event in track {track + 1}")
        b = data[i]
        i += 1
        n = (n << 7) | (b & 0x7F)
        if b < 0x80:
            return n, i
    raise bad(f"length longer than 4 bytes in track {track + 1}")


__all__ = ["MAX_MIDI_BYTES", "MAX_TRACKS", "MAX_EVENTS", "MidiShape", "read_midi_bytes", "scan_midi"]
