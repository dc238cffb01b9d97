"""Regenerate the studio's drums at another temperature: `breakgan drums` in a background process.

The new patterns continue the same seed as the current drums folder: the seed MIDI its breakgan.json
records (used only if that file still has the recorded content), else its text seed pattern, else the
chosen candidate's own pattern.mid with its seed steps. Length, tempo and decoding options are the
folder's; only the temperature and the pattern seed change. The output is a new folder under the
studio's renders folder (drums-tTTT-sSEED, -2, -3 ... if taken), never an existing one.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Callable

from breakgan.errors import BreakganError
from breakgan.seeds import check_seed
from breakgan.stage import file_hash, read_record
from breakgan.studio.drums import Drums, inside
from breakgan.studio.jobs import CliJob

MAX_TEMPERATURE = 2.0
MAX_CANDIDATES = 8  # a regeneration keeps the folder's candidate count, up to this many
DRUMS_RE = re.compile(r"drums-t\d{3}-s\d+(-\d+)?")


def check_temperature(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= MAX_TEMPERATURE:
        raise BreakganError(f"temperature: a number from 0 to {MAX_TEMPERATURE:g}, got {str(value)[:40]}")
    return float(value)


def _number(value, lo: float, hi: float, whole: bool = False):
    """A record's number if it is one in [lo, hi] (whole if asked), else None: a damaged value is left out."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if whole and not float(value).is_integer():
        return None
    return (int(value) if whole else float(value)) if lo <= value <= hi else None


def _recorded_file(entry) -> Path | None:
    """An input file a record names, if it is still there with the recorded content (sha256)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not isinstance(entry.get("hash"), str):
        return None
    path = Path(entry["path"])
    try:
        return path.resolve() if path.is_file() and file_hash(path) == entry["hash"] else None
    except OSError:
        return None


def regenerate_args(drums: Drums, candidate: int, temperature: float, seed: int) -> list[str]:
    """`breakgan drums` options (all but --out) that redo drums' folder at `temperature` with pattern `seed`."""
    cand = drums.folder_of(candidate)
    if cand is None:
        raise BreakganError(f"drums candidate {candidate}: no such candidate")
    record = read_record(drums.folder) or {}
    opts = record.get("options") if isinstance(record.get("options"), dict) else {}
    inputs = record.get("inputs") if isinstance(record.get("inputs"), dict) else {}
    bars = _number(record.get("bars", opts.get("bars")), 1, 256, whole=True) or drums.describe(candidate)["bars"]
    bars = _number(bars, 1, 256, whole=True) or 4
    args = ["--bars", str(bars), "--temperature", f"{temperature:g}", "--random-seed", str(seed)]

    seed_midi, seed_pattern = _recorded_file(inputs.get("seed")), opts.get("seed_pattern")
    seed_bars = _number(opts.get("seed_bars"), 0, 4096)
    if seed_midi is not None:
        args += ["--seed", str(seed_midi)]
        if (channel := _number(opts.get("drum_channel"), 1, 16, whole=True)) is not None:
            args += ["--drum-channel", str(channel)]
    elif isinstance(seed_pattern, str) and seed_pattern.strip() and len(seed_pattern) <= 10_000:
        args.append(f"--seed-pattern={seed_pattern}")  # one token: a pattern is never read as an option
    else:
        pattern = inside(drums.folder, cand / "pattern.mid")
        if pattern is None:
            raise BreakganError(f"{cand}: no seed recorded and no pattern.mid to continue from")
        args += ["--seed", str(pattern)]
        cand_record = read_record(cand) or {}
        beats = _number((cand_record.get("options") or {}).get("beats_per_bar"), 1, 16, whole=True) or 4
        steps = _number(cand_record.get("seed_steps"), 1, 1 << 20, whole=True)
        # the candidate's own seed part; without a record, its first beat (a whole bar would leave nothing new)
        seed_bars = steps / (4 * beats) if steps is not None else 0.25
    if seed_bars is not None:
        args += ["--seed-bars", f"{seed_bars:g}"]

    count = _number(opts.get("candidates", len(drums.numbers())), 1, 99, whole=True) or 1
    args += ["--candidates", str(min(count, MAX_CANDIDATES))]
    for key, option, lo, hi, whole in [("tempo", "--tempo", 10, 400, False), ("beats_per_bar", "--beats-per-bar", 1, 16, True),
                                       ("groove_keep", "--groove-keep", 0, 1, False), ("top_p", "--top-p", 0, 1, False),
                                       ("density_cap", "--density-cap", 0, 16, False), ("humanize", "--humanize", 0, 1, False),
                                       ("sample_rate", "--sample-rate", 8000, 192000, True)]:
        value = _number(opts.get(key), lo, hi, whole)
        if value is not None:
            args += [option, str(value) if whole else f"{value:.17g}"]
    parts = opts.get("parts")
    if isinstance(parts, list) and parts and all(isinstance(p, str) and re.fullmatch(r"[a-z_]{1,20}", p) for p in parts):
        args += ["--parts", ",".join(parts)]
    for key, option in (("model", "--model"), ("soundfont", "--soundfont")):
        if (path := _recorded_file(inputs.get(key))) is not None:
            args += [option, str(path)]
    return args


class DrumsJob(CliJob):
    label = "drums"

    def __init__(self, args: list[str], out: Path, on_done: Callable[[Path], None]):
        self.out, self.on_done = out, on_done
        super().__init__(args)

    def succeeded(self) -> bool:
        if not (self.out / "breakgan.json").is_file():
            return False
        self.on_done(self.out)
        return True

    def status(self) -> dict:
        return {"folder": self.out.name, **super().status()}


class Regenerations:
    """New drums folders under the renders folder, one `breakgan drums` at a time."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.job: DrumsJob | None = None

    def fresh_folder(self, temperature: float, seed: int) -> Path:
        base = f"drums-t{round(temperature * 100):03d}-s{seed}"
        names = [base] + [f"{base}-{k}" for k in range(2, 1000)]
        name = next((n for n in names if not (self.folder / n).exists()), None)
        if name is None:
            raise BreakganError(f"{self.folder / base}: too many folders of this name; pick another seed")
        return self.folder / name

    def start(self, drums: Drums, candidate: int, temperature, seed, on_done: Callable[[Path], None]) -> DrumsJob:
        temperature = check_temperature(temperature)
        seed = check_seed(seed, "seed")
        if self.job is not None and self.job.state == "running":
            raise BreakganError("drums are already being regenerated; wait for them to finish")
        args = regenerate_args(drums, candidate, temperature, seed)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BreakganError(f"{self.folder}: cannot create the renders folder ({e.strerror or e})") from None
        out = self.fresh_folder(temperature, seed)
        self.job = DrumsJob(["drums", *args, "--out", str(out)], out, on_done)
        return self.job

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop()
