"""A drums folder's candidates, addressed by number: the page never names a file.

`breakgan drums --out D` writes D/cand-01, D/cand-02, ... (onsets.json, mix.wav, pianoroll.png,
stems/PART.wav); `--drums` may also name one candidate folder, which is then candidate 1.
"""

from __future__ import annotations

import re
from pathlib import Path

from breakgan.errors import BreakganError
from breakgan import paths
from breakgan.parts import PARTS
from breakgan.timeline import read_onsets_file, timeline_from_drums

CANDIDATE_RE = re.compile(r"cand-(\d{2,3})")
FILES = {"mix": "mix.wav", "pianoroll": "pianoroll.png"}


def inside(base: Path, path: Path) -> Path | None:
    """path resolved, if it lies inside base (the one rule, breakgan.paths) and is a file; else None."""
    real = paths.inside(base, path)
    return real if real is not None and real.is_file() else None


class Drums:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise BreakganError(f"--drums {folder}: no such folder")
        if (self.folder / "onsets.json").is_file():
            self.single = True
        else:
            self.single = False
            if not self.numbers():
                raise BreakganError(f"--drums {folder}: no cand-NN folders and no onsets.json (give a "
                                    "`breakgan drums` output folder)")

    def check(self) -> "Drums":
        """Every candidate read as `render` and `live` will read it: at start, a damaged or silent one
        is one line rather than a failed render or live take later."""
        for number in self.numbers():
            timeline_from_drums(self.folder_of(number), playable=True)
        return self

    def numbers(self) -> list[int]:
        if self.single:
            return [1]
        return sorted(int(m.group(1)) for p in self.folder.iterdir()
                      if p.is_dir() and (m := CANDIDATE_RE.fullmatch(p.name)))

    def folder_of(self, number: int) -> Path | None:
        if number not in self.numbers():
            return None
        return self.folder if self.single else self.folder / f"cand-{number:02d}"

    def file(self, number: int, what: str) -> Path | None:
        """mix.wav / pianoroll.png (what = mix, pianoroll) or stems/PART.wav (what = a part name)."""
        folder = self.folder_of(number)
        if folder is None:
            return None
        if what in FILES:
            return inside(self.folder, folder / FILES[what])
        if what in PARTS:
            return inside(self.folder, folder / "stems" / f"{what}.wav")
        return None

    def describe(self, number: int) -> dict:
        folder = self.folder_of(number)
        info = {"number": number, "name": folder.name, "tempo": None, "bars": None, "parts": []}
        path = inside(self.folder, folder / "onsets.json")
        if path is not None:
            try:
                data = read_onsets_file(path)
                info["tempo"] = data.get("tempo")
                info["bars"] = data.get("bars")
                info["parts"] = [p for p in PARTS if data.get("parts", {}).get(p)]
            except (BreakganError, AttributeError, TypeError):
                pass  # damaged after the start check (edited while serving): still listed, render names it
        info["stems"] = [p for p in PARTS if self.file(number, p) is not None]
        info["has_mix"] = self.file(number, "mix") is not None
        info["has_pianoroll"] = self.file(number, "pianoroll") is not None
        return info

    def render_args(self, number: int) -> list[str]:
        """--drums/--candidate options for `breakgan render`."""
        if self.folder_of(number) is None:
            raise BreakganError(f"drums candidate {number}: no such candidate")
        return ["--drums", str(self.folder)] + ([] if self.single else ["--candidate", str(number)])
