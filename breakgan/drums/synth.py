"""SoundFont rendering with FluidSynth (pyfluidsynth): one stem per part, sample-accurate note starts.

Each distinct (pitch, velocity) hit is rendered once by FluidSynth from the SoundFont's drum kit
(reverb and chorus off) and placed at its exact sample position, round(time * rate): FluidSynth itself
only starts notes on 64-sample block boundaries. Stems of a pattern therefore line up sample for
sample, and the mix is their sum. (Hits within a part overlap rather than choke each other.)
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from breakgan.errors import BreakganError

BLOCK = 64  # FluidSynth renders in blocks of 64 samples
SILENCE = 1e-4  # peak below which a hit's tail is cut


def default_soundfont() -> Path:
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def check_soundfont(path: str | os.PathLike | None) -> Path:
    """Path of a SoundFont 2 file whose RIFF structure is whole, else a BreakganError naming it.

    FluidSynth prints its own errors for a broken file (and libinstpatch a GLib warning), so the
    structure is checked here first: RIFF....sfbk, the size it declares, and its INFO, sdta and pdta lists.
    """
    p = Path(path) if path is not None else default_soundfont()
    if not p.is_file():
        raise BreakganError(f"{p}: SoundFont not found")
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
                raise BreakganError(f"{p}: not a SoundFont 2 (.sf2) file")
            if int.from_bytes(head[4:8], "little") + 8 != size:
                raise BreakganError(f"{p}: not a whole SoundFont 2 file (its RIFF size does not match the file)")
            lists, pos = [], 12
            while pos + 12 <= size:
                f.seek(pos)
                chunk = f.read(12)
                length = int.from_bytes(chunk[4:8], "little")
                if chunk[:4] == b"LIST":
                    lists.append(chunk[8:12])
                pos += 8 + length + (length & 1)
    except OSError as e:
        raise BreakganError(f"{p}: cannot read SoundFont ({e.strerror or e})") from None
    if pos > size or lists != [b"INFO", b"sdta", b"pdta"]:
        raise BreakganError(f"{p}: not a whole SoundFont 2 file (expected INFO, sdta and pdta lists)")
    return p


def _quiet_fluidsynth() -> None:
    """FluidSynth logs to stderr; breakgan reports a failed load itself, in one line."""
    import fluidsynth

    try:
        for level in range(5):  # FLUID_PANIC .. FLUID_DBG
            fluidsynth._fl.fluid_set_log_function(level, None, None)
    except AttributeError:  # a pyfluidsynth without the raw library handle: keep its logging
        pass


@contextlib.contextmanager
def _stderr_silenced():
    """Point file descriptor 2 at /dev/null for the duration (C libraries write there directly)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class DrumSynth:
    """A FluidSynth instance with the SoundFont's standard drum kit on MIDI channel 10."""

    def __init__(self, soundfont: str | os.PathLike | None = None, sample_rate: int = 44100):
        import fluidsynth

        self.path = check_soundfont(soundfont)
        _quiet_fluidsynth()
        self.rate = int(sample_rate)
        self.fs = fluidsynth.Synth(gain=0.5, samplerate=float(self.rate),
                                   **{"synth.reverb.active": 0, "synth.chorus.active": 0})
        with _stderr_silenced():  # libinstpatch (FluidSynth's DLS loader) warns through GLib on a bad file
            self.sfid = self.fs.sfload(str(self.path))
        if self.sfid < 0:
            self.fs.delete()
            raise BreakganError(f"{self.path}: FluidSynth cannot load this SoundFont")
        if self.fs.program_select(9, self.sfid, 128, 0) != 0:
            self.fs.delete()
            raise BreakganError(f"{self.path}: SoundFont has no drum kit (bank 128, preset 0)")
        self._cache: dict[tuple[int, int, int], np.ndarray] = {}
        self._samples(4 * BLOCK)

    def one_shot(self, pitch: int, velocity: int, hold_s: float, max_s: float = 3.0) -> np.ndarray:
        """One hit rendered from sample 0: note-on, note-off after hold_s, until silent or max_s.

        Everything is requested in whole FluidSynth blocks, so nothing is left buffered between hits
        and each hit starts exactly at sample 0.
        """
        key = (int(pitch), int(velocity), round(hold_s * self.rate))
        if key in self._cache:
            return self._cache[key]
        fs = self.fs
        hold = max(BLOCK, int(round(hold_s * self.rate / BLOCK)) * BLOCK)
        fs.noteon(9, int(pitch), int(velocity))
        chunks = [self._samples(hold)]
        fs.noteoff(9, int(pitch))
        limit = int(max_s * self.rate)
        done = hold
        while done < limit:
            c = self._samples(16 * BLOCK)
            chunks.append(c)
            done += len(c)
            if np.abs(c).max() < SILENCE and fs.get_active_voice_count() == 0:
                break
        fs.all_sounds_off(9)
        self._samples(4 * BLOCK)  # drain the released voices before the next hit
        hit = np.concatenate(chunks)
        loud = np.nonzero(np.abs(hit).max(1) >= SILENCE)[0]
        hit = hit[:loud[-1] + 1] if len(loud) else hit[:0]
        self._cache[key] = hit
        return hit

    def render(self, notes: list[tuple[float, int, int]], hold_s: float, length_s: float) -> np.ndarray:
        """notes (time s, pitch, velocity 1..127) -> (samples, 2) float32 stereo of length_s, each hit
        placed at sample round(time * rate)."""
        total = int(round(length_s * self.rate))
        out = np.zeros((total, 2), np.float32)
        for t, pitch, vel in notes:
            start = int(round(t * self.rate))
            if start >= total:
                continue
            hit = self.one_shot(pitch, vel, hold_s)[:total - start]
            out[start:start + len(hit)] += hit
        return out

    def _samples(self, n: int) -> np.ndarray:
        s = np.asarray(self.fs.get_samples(n), dtype=np.float32).reshape(-1, 2)
        return s / 32768.0

    def close(self) -> None:
        self.fs.delete()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
