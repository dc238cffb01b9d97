"""The studio's files in the run folder, in the formats `render --favourites` and live read.

    STUDIO/favourites/NAME.json   {"seeds": [3, 7, 9]}            render --favourites (keyframe seeds)
    STUDIO/favourites/NAME.npy    (K, D) float32 latents           render --favourites (exact, truncation kept)
    STUDIO/parts.json             {"kick": [3, 7], "snare": [9]}   render --favourites (per part)
    STUDIO/blends/NAME.npy        (1, D) one blended keyframe
    STUDIO/blends.npy             (K, D) every blend, by name      render --favourites
    STUDIO/blends/NAME.blend.json what a blend was made of (seeds, truncations, weights)
    STUDIO/studio.json            the studio's own state: truncation of each favourite, next seed

A seed file says nothing about truncation (render draws seeds untruncated), so each list also has
its `.npy`, which holds every favourite's latent exactly as the page showed it.
Every write goes through a temporary file and a rename (`breakgan.stage`).
"""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path

import numpy as np

from breakgan.errors import BreakganError, shown
from breakgan.parts import PARTS
from breakgan.seeds import MAX_KEYFRAMES, check_seed, check_truncation
from breakgan.stage import write_bytes_atomic, write_json_atomic

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
MAX_FAVOURITES = 256  # per list; render cycles through them, more would never be seen
MAX_LISTS = 100


def check_name(name: str, what: str = "list") -> str:
    """A list or blend name: letters, digits, '-' and '_', at most 40, never a path."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise BreakganError(f"{what} name {shown(name, 60)}: use 1-40 letters, digits, '-' or '_' (starting with a "
                            "letter or digit)")
    return name


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr, np.float32), allow_pickle=False)
    return buf.getvalue()


class Store:
    """Favourites lists, per-part keyframes and blends of one studio folder (thread-safe)."""

    def __init__(self, folder: str | Path, latent_fn):
        """latent_fn(seed, truncation) -> (D,) float32: the engine's seed rule."""
        self.folder = Path(folder)
        self.latent_fn = latent_fn
        self._lock = threading.RLock()
        self._undo: list[tuple[str, list[dict] | None]] = []
        try:
            (self.folder / "favourites").mkdir(parents=True, exist_ok=True)
            (self.folder / "blends").mkdir(exist_ok=True)
        except OSError as e:
            raise BreakganError(f"{self.folder}: cannot create the studio folder ({e.strerror or e})") from None
        self.state = self._read_json(self.folder / "studio.json", {}) or {}
        if not isinstance(self.state, dict):
            self.state = {}

    # --- reading ------------------------------------------------------------------------------
    @staticmethod
    def _read_json(path: Path, default):
        if not path.is_file():
            return default
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise BreakganError(f"{path}: unreadable studio file ({e})") from None

    def list_names(self) -> list[str]:
        return sorted(p.stem for p in (self.folder / "favourites").glob("*.json") if NAME_RE.fullmatch(p.stem))

    def favourites(self, name: str) -> list[dict]:
        """[{seed, truncation}] of list NAME ([] when it does not exist yet)."""
        check_name(name)
        path = self.folder / "favourites" / f"{name}.json"
        data = self._read_json(path, {"seeds": []})
        seeds = data.get("seeds") if isinstance(data, dict) else data
        if not isinstance(seeds, list):
            raise BreakganError(f"{path}: expected {{\"seeds\": [seeds]}}")
        seeds = [check_seed(s, str(path)) for s in seeds]
        truncs = self.state.get("truncation", {}).get(name, {})
        return [{"seed": s, "truncation": check_truncation(truncs.get(str(s)))} for s in seeds]

    def parts(self) -> dict[str, list[int]]:
        path = self.folder / "parts.json"
        data = self._read_json(path, {})
        if not isinstance(data, dict) or any(p not in PARTS for p in data):
            raise BreakganError(f"{path}: expected {{part: [seeds]}} with parts from {' '.join(PARTS)}")
        if any(not isinstance(data[p], list) for p in data):
            raise BreakganError(f"{path}: expected {{part: [seeds]}}")
        return {p: [check_seed(s, str(path)) for s in data[p]] for p in PARTS if p in data}

    def blend_names(self) -> list[str]:
        return sorted(p.name[:-len(".blend.json")] for p in (self.folder / "blends").glob("*.blend.json")
                      if NAME_RE.fullmatch(p.name[:-len(".blend.json")]))

    def blend(self, name: str) -> dict:
        check_name(name, "blend")
        data = self._read_json(self.folder / "blends" / f"{name}.blend.json", None)
        if data is None:
            raise BreakganError(f"blend {name!r}: no such blend")
        return data

    def blend_latent(self, name: str) -> np.ndarray:
        check_name(name, "blend")
        path = self.folder / "blends" / f"{name}.npy"
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise BreakganError(f"{path}: unreadable blend ({e})") from None
        return np.asarray(arr, np.float32).reshape(-1)

    # --- writing ------------------------------------------------------------------------------
    def _save_state(self) -> None:
        write_json_atomic(self.folder / "studio.json", self.state)

    def _write_list(self, name: str, items: list[dict] | None) -> None:
        json_path = self.folder / "favourites" / f"{name}.json"
        npy_path = json_path.with_suffix(".npy")
        truncs = self.state.setdefault("truncation", {})
        if items is None:  # undo of a list's creation: the studio made these files, so it may remove them
            json_path.unlink(missing_ok=True)
            npy_path.unlink(missing_ok=True)
            truncs.pop(name, None)
            self._save_state()
            return
        write_json_atomic(json_path, {"seeds": [it["seed"] for it in items]})
        if items:
            write_bytes_atomic(npy_path, _npy_bytes(np.stack([self.latent_fn(it["seed"], it["truncation"])
                                                              for it in items])))
        else:
            npy_path.unlink(missing_ok=True)  # render refuses an empty (0, D) array
        truncs[name] = {str(it["seed"]): it["truncation"] for it in items if it["truncation"] is not None}
        self._save_state()

    def _change(self, name: str, items: list[dict]) -> list[dict]:
        exists = (self.folder / "favourites" / f"{name}.json").is_file()
        if not exists and len(self.list_names()) >= MAX_LISTS:
            raise BreakganError(f"at most {MAX_LISTS} favourites lists")
        if len(items) > MAX_FAVOURITES:
            raise BreakganError(f"list {name!r}: at most {MAX_FAVOURITES} favourites")
        self._undo.append((name, self.favourites(name) if exists else None))
        del self._undo[:-200]
        self._write_list(name, items)
        return items

    def add(self, name: str, seed: int, truncation: float | None) -> list[dict]:
        """Keep seed (at its truncation) in list NAME; keeping it again moves it to the new truncation."""
        with self._lock:
            check_name(name)
            truncation = check_truncation(truncation)
            seed = check_seed(seed)
            items = [it for it in self.favourites(name) if it["seed"] != seed]
            return self._change(name, items + [{"seed": seed, "truncation": truncation}])

    def remove(self, name: str, seed: int) -> list[dict]:
        with self._lock:
            items = self.favourites(name)
            if not any(it["seed"] == seed for it in items):
                raise BreakganError(f"list {name!r} has no seed {seed}")
            return self._change(name, [it for it in items if it["seed"] != seed])

    def set_list(self, name: str, items: list[dict]) -> list[dict]:
        with self._lock:
            check_name(name)
            clean, seen = [], set()
            for it in items:
                if it["seed"] not in seen:
                    seen.add(it["seed"])
                    clean.append({"seed": check_seed(it["seed"]), "truncation": check_truncation(it["truncation"])})
            return self._change(name, clean)

    def undo(self) -> str | None:
        """Undo the last favourites change; returns the list it touched (None: nothing to undo)."""
        with self._lock:
            if not self._undo:
                return None
            name, items = self._undo.pop()
            self._write_list(name, items)
            return name

    def set_part(self, part: str, seeds: list[int]) -> dict[str, list[int]]:
        """Keyframe seeds of one part ([] removes the part: render then draws its random keys)."""
        with self._lock:
            if part not in PARTS:
                raise BreakganError(f"part {part!r}: one of {' '.join(PARTS)}")
            if len(seeds) > MAX_KEYFRAMES:
                raise BreakganError(f"part {part}: at most {MAX_KEYFRAMES} keyframes")
            parts = self.parts()
            if seeds:
                parts[part] = [check_seed(s) for s in seeds]
            else:
                parts.pop(part, None)
            write_json_atomic(self.folder / "parts.json", {p: parts[p] for p in PARTS if p in parts})
            return parts

    def save_blend(self, name: str, latent: np.ndarray, recipe: dict) -> Path:
        with self._lock:
            check_name(name, "blend")
            write_bytes_atomic(self.folder / "blends" / f"{name}.npy", _npy_bytes(latent[None, :]))
            write_json_atomic(self.folder / "blends" / f"{name}.blend.json", recipe)
            names = self.blend_names()
            write_bytes_atomic(self.folder / "blends.npy",
                               _npy_bytes(np.stack([self.blend_latent(n) for n in names])))
            return self.folder / "blends" / f"{name}.npy"

    def next_seed(self) -> int:
        return int(self.state.get("next_seed", 0))

    def set_next_seed(self, seed: int) -> None:
        with self._lock:
            self.state["next_seed"] = int(seed)
            self._save_state()
