"""Ingest options: one frozen record, validated up front, hashed to decide whether a clip needs redoing."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields

from breakgan.errors import BreakganError

CROP_MODES = ("auto", "dancer", "center", "none")
MAX_SECONDS = 24 * 3600.0
_OPTION = {"follow_s": "--follow-seconds"}  # fields whose option name is not the field's own


@dataclass(frozen=True)
class IngestOptions:
    size: int = 256  # output frame side in pixels (a power of two, 4..1024)
    fps: float = 5.0  # candidate frames sampled per second of footage (capped at the clip's rate)
    crop: str = "auto"  # auto | dancer | center | none (see crop.py)
    follow_s: float = 1.0  # dancer crop: seconds per crop box while following the body
    min_sharpness: float = 0.35  # drop as blur below this share of the clip's sharp (90th percentile) level
    still_motion: float = 1.0  # motion (percent of frame width per second) below which a frame is still
    still_share: float = 0.2  # share of a still stretch that is kept (evenly spaced, at least one)
    still_min_frames: int = 3  # a still stretch shorter than this is left alone
    dup_distance: int = 4  # perceptual-hash Hamming distance at or below which a frame is a near-duplicate
    max_frames: int = 0  # at most this many kept frames per clip, evenly spread (0 = no limit)
    start: float = 0.0  # seconds skipped at the start of every clip
    duration: float = 0.0  # seconds read per clip after `start` (0 = to the end)
    mirror: bool = False  # add a horizontally mirrored copy of every kept frame

    def validate(self) -> "IngestOptions":
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise BreakganError(f"{_OPTION.get(f.name, '--' + f.name.replace('_', '-'))} {value}: "
                                    f"must be a finite number")
        if self.size < 4 or self.size > 1024 or self.size & (self.size - 1):
            raise BreakganError(f"--size {self.size}: must be a power of two from 4 to 1024")
        if not 0 < self.fps <= 120:
            raise BreakganError(f"--fps {self.fps}: must be above 0 and at most 120")
        if self.crop not in CROP_MODES:
            raise BreakganError(f"--crop {self.crop}: must be one of {', '.join(CROP_MODES)}")
        if self.follow_s <= 0:
            raise BreakganError(f"--follow-seconds {self.follow_s}: must be above 0")
        if not 0 <= self.min_sharpness < 1:
            raise BreakganError(f"--min-sharpness {self.min_sharpness}: must be in [0, 1)")
        if self.still_motion < 0:
            raise BreakganError(f"--still-motion {self.still_motion}: must be 0 or more")
        if not 0 <= self.still_share <= 1:
            raise BreakganError(f"--still-share {self.still_share}: must be in [0, 1]")
        if self.still_min_frames < 1:
            raise BreakganError(f"--still-min-frames {self.still_min_frames}: must be 1 or more")
        if not -1 <= self.dup_distance <= 64:
            raise BreakganError(f"--dup-distance {self.dup_distance}: must be in -1..64 (-1 keeps duplicates)")
        if self.max_frames < 0 or self.start < 0 or self.duration < 0:
            raise BreakganError("--max-frames, --start and --duration must be 0 or more")
        if self.start > MAX_SECONDS or self.duration > MAX_SECONDS:
            raise BreakganError(f"--start and --duration must be at most {MAX_SECONDS:.0f} s (24 hours)")
        if self.follow_s > 3600 or self.still_motion > 1000 or self.still_min_frames > 100_000:
            raise BreakganError("--follow-seconds is at most 3600, --still-motion at most 1000 (percent of the "
                                "frame width per second), --still-min-frames at most 100000")
        return self

    def as_dict(self) -> dict:
        return asdict(self)

    def clip_hash(self) -> str:
        """Hash of every option that changes what one clip contributes (all of them, today)."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_kwargs(cls, **kwargs) -> "IngestOptions":
        known = {f.name for f in fields(cls)}
        unknown = set(kwargs) - known
        if unknown:
            raise BreakganError(f"unknown ingest option(s): {', '.join(sorted(unknown))}")
        return cls(**kwargs).validate()
