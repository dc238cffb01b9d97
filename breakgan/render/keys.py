"""Keyframe latents per drum part, from seeds (`kick=3,snare=7:8:9`), a random seed, or a favourites file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from breakgan.errors import BreakganError
from breakgan.parts import PARTS
from breakgan.trajectory import keyframes, keyframes_from_seeds


def parse_seed_spec(text: str | None) -> dict[str, list[int]]:
    """'kick=3,snare=7:8:9' -> {'kick': [3], 'snare': [7, 8, 9]} (':' separates a part's seeds)."""
    out: dict[str, list[int]] = {}
    if not text:
        return out
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        part, sep, seeds = item.partition("=")
        part = part.strip()
        if not sep or part not in PARTS:
            raise BreakganError(f"--seeds: expected PART=SEED[:SEED...] with PART one of {' '.join(PARTS)}, "
                                f"got {item!r}")
        try:
            out[part] = [int(s) for s in seeds.split(":") if s.strip()]
        except ValueError:
            raise BreakganError(f"--seeds: seeds must be integers, got {item!r}") from None
        if not out[part]:
            raise BreakganError(f"--seeds: no seed given for {part}")
    return out


def parse_class_spec(text: str | None, labels: list[str]) -> dict[str, int]:
    """'kick=0,snare=dancer2' -> part -> class index (a label name or an index into `labels`)."""
    out: dict[str, int] = {}
    if not text:
        return out
    for item in text.split(","):
        part, sep, value = item.strip().partition("=")
        if not sep or part not in PARTS:
            raise BreakganError(f"--classes: expected PART=CLASS, got {item.strip()!r}")
        value = value.strip()
        if value in labels:
            out[part] = labels.index(value)
        else:
            try:
                out[part] = int(value)
            except ValueError:
                raise BreakganError(f"--classes: {value!r} is neither a class index nor one of the labels "
                                    f"{', '.join(labels) or '(none)'}") from None
    return out


def read_favourites(path: str | Path, latent_size: int) -> dict[str, np.ndarray] | np.ndarray:
    """Keyframes from a favourites file: a shared (K, D) array, or part -> (K, D).

    Formats: `.npy` latents (K, D) (e.g. projected real frames; loaded without pickle); `.json` a list
    of seeds, or {part: [seeds]}, or {"seeds": [...]}; anything else: seeds as text (whitespace or
    comma separated, '#' starts a comment).
    """
    path = Path(path)
    if not path.is_file():
        raise BreakganError(f"{path}: no such favourites file")
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise BreakganError(f"{path}: not a readable .npy array ({e})") from None
        if arr.ndim != 2 or arr.shape[1] != latent_size or len(arr) == 0:
            raise BreakganError(f"{path}: favourites latents have shape {arr.shape}, expected (K, {latent_size})")
        return arr.astype(np.float32)
    text = path.read_text()
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise BreakganError(f"{path}: invalid JSON ({e})") from None
        if isinstance(data, dict) and "seeds" in data:
            data = data["seeds"]
        try:
            if isinstance(data, dict):
                unknown = [p for p in data if p not in PARTS]
                if unknown:
                    raise BreakganError(f"{path}: unknown drum part(s) {', '.join(unknown)}")
                return {p: keyframes_from_seeds([int(s) for s in seeds], latent_size) for p, seeds in data.items()}
            return keyframes_from_seeds([int(s) for s in data], latent_size)
        except (TypeError, ValueError):
            raise BreakganError(f"{path}: favourites must be integer seeds") from None
    words = [w for line in text.splitlines() for w in line.split("#")[0].replace(",", " ").split()]
    try:
        seeds = [int(w) for w in words]
    except ValueError:
        raise BreakganError(f"{path}: favourites must be integer seeds, one or more per line") from None
    if not seeds:
        raise BreakganError(f"{path}: no seeds in favourites file")
    return keyframes_from_seeds(seeds, latent_size)


def part_keys(parts, latent_size: int, count: int = 8, *, seeds: dict[str, list[int]] | None = None,
              random_seed: int = 0, favourites: dict[str, np.ndarray] | np.ndarray | None = None
              ) -> dict[str, np.ndarray]:
    """(K, D) keyframes for each part, first match wins: --seeds, favourites, then --random-seed.

    A single seed S for a part means the cycle S, S+1, ..., S+count-1 (so the part still moves);
    a shared favourites array is rotated so each part starts on a different favourite.
    """
    seeds = seeds or {}
    out: dict[str, np.ndarray] = {}
    for n, part in enumerate(parts):
        if part in seeds:
            s = seeds[part]
            s = s if len(s) > 1 else [s[0] + i for i in range(count)]
            out[part] = keyframes_from_seeds(s, latent_size)
        elif isinstance(favourites, dict) and part in favourites:
            out[part] = favourites[part]
        elif isinstance(favourites, np.ndarray):
            out[part] = np.roll(favourites, -n, axis=0)
        else:
            # part i of PARTS uses seed + i: the same keyframes `breakgan live --seed` gives that part
            out[part] = keyframes(latent_size, count, int(random_seed) + PARTS.index(part))
    return out
