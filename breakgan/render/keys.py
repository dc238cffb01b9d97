"""Keyframe latents per drum part, from seeds (`kick=3,snare=7:8:9`), a random seed, or a favourites file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from breakgan.errors import BreakganError
from breakgan.jsonfile import parse_json
from breakgan.paths import need_file
from breakgan.parts import PARTS
from breakgan.seeds import MAX_KEYFRAMES, check_seed, parse_seed, part_keyframe_seed
from breakgan.trajectory import keyframes, keyframes_from_seeds

MAX_FAVOURITES_BYTES = 1 << 20  # a text/JSON list of at most MAX_KEYFRAMES seeds per part is far smaller


def parse_seed_spec(text: str | None) -> dict[str, list[int]]:
    """'kick=3,snare=7:8:9' -> {'kick': [3], 'snare': [7, 8, 9]} (':' separates a part's seeds).

    Each is a keyframe seed under the one seed rule (`breakgan.seeds.parse_seed`)."""
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
                                f"got {item!r:.60}")
        if part in out:
            raise BreakganError(f"--seeds: {part} is given twice")
        out[part] = [parse_seed(s, "--seeds") for s in seeds.split(":") if s.strip()]
        if not out[part]:
            raise BreakganError(f"--seeds: no seed given for {part}")
        if len(out[part]) > MAX_KEYFRAMES:
            raise BreakganError(f"--seeds: more than {MAX_KEYFRAMES} seeds for {part}")
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
    """Keyframes from a favourites file: a shared (K, D) array, or part -> (K, D). Validated here, once.

    Formats: `.npy` latents (K, D) of finite numbers (e.g. projected real frames; loaded without
    pickle); `.json` a list of seeds, or {part: [seeds]}, or {"seeds": [...]}; anything else: seeds as
    text (whitespace or comma separated, '#' starts a comment). Seeds follow the one seed rule; at
    most MAX_KEYFRAMES keyframes per part.
    """
    path = Path(path)
    need_file(path, "favourites file")
    if path.suffix == ".npy":
        return _favourite_latents(path, latent_size)
    try:
        if path.stat().st_size > MAX_FAVOURITES_BYTES:
            raise BreakganError(f"{path}: favourites file larger than {MAX_FAVOURITES_BYTES // 1024} KB")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise BreakganError(f"{path}: favourites file is not UTF-8 text") from None
    except OSError as e:
        raise BreakganError(f"{path}: cannot read favourites ({e.strerror or e})") from None
    if path.suffix == ".json":
        data = parse_json(text, path, "a favourites file")
        if isinstance(data, dict) and "seeds" in data:
            data = data["seeds"]
        if isinstance(data, dict):
            unknown = [str(p)[:20] for p in data if p not in PARTS]
            if unknown:
                raise BreakganError(f"{path}: unknown drum part(s) {', '.join(unknown[:3])}")
            return {p: keyframes_from_seeds(_seed_list(seeds, path, p), latent_size) for p, seeds in data.items()}
        return keyframes_from_seeds(_seed_list(data, path), latent_size)
    words = [w for line in text.splitlines() for w in line.split("#")[0].replace(",", " ").split()]
    return keyframes_from_seeds(_seed_list([_text_seed(w, path) for w in words], path), latent_size)


def _text_seed(word: str, path: Path) -> int:
    try:
        return parse_seed(word, str(path))
    except BreakganError:
        raise BreakganError(f"{path}: {word[:30]!r} is not a seed (a whole number 0 <= s < 2**63)") from None


def _seed_list(data, path: Path, part: str | None = None) -> list[int]:
    where = f"{path}" + (f" ({part})" if part else "")
    if not isinstance(data, list):
        raise BreakganError(f"{where}: favourites must be a list of integer seeds, got {type(data).__name__}")
    if not data:
        raise BreakganError(f"{where}: no seeds in favourites file")
    if len(data) > MAX_KEYFRAMES:
        raise BreakganError(f"{where}: more than {MAX_KEYFRAMES} favourites")
    out = []
    for s in data:
        try:
            out.append(check_seed(s, where))
        except BreakganError:
            raise BreakganError(f"{where}: favourites must be integer seeds 0 <= s < 2**63, "
                                f"got {str(s)[:30]!r}") from None
    return out


def _favourite_latents(path: Path, latent_size: int) -> np.ndarray:
    try:
        # memory-mapped: the header's shape is checked before anything large is read
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except OSError as e:
        raise BreakganError(f"{path}: cannot read ({e.strerror or e})") from None
    except Exception as e:  # numpy's header parser raises ValueError, SyntaxError, TokenError, EOFError...
        raise BreakganError(f"{path}: not a readable .npy array ({type(e).__name__}: {str(e)[:100]})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise BreakganError(f"{path}: favourites latents must be numbers, got dtype {getattr(arr, 'dtype', '?')}")
    if arr.ndim != 2 or arr.shape[1] != latent_size or not 1 <= len(arr) <= MAX_KEYFRAMES:
        raise BreakganError(f"{path}: favourites latents have shape {arr.shape}, expected (K, {latent_size}) "
                            f"with 1 <= K <= {MAX_KEYFRAMES}")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, refused just below
        out = np.array(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise BreakganError(f"{path}: favourites latents hold NaN or infinite values")
    return out


def part_keys(parts, latent_size: int, count: int = 8, *, seeds: dict[str, list[int]] | None = None,
              keyframe_seed: int = 0, favourites: dict[str, np.ndarray] | np.ndarray | None = None
              ) -> dict[str, np.ndarray]:
    """(K, D) keyframes for each part, first match wins: --seeds, favourites, then --keyframe-seed.

    A single keyframe seed S for a part means the cycle S, S+1, ..., S+count-1 (so the part still
    moves); a shared favourites array is rotated so each part starts on a different favourite; with
    neither, part i (kick = 0, in drum-part order) takes seeds keyframe_seed + i*count onwards, as
    `breakgan live --seed` does.
    """
    seeds = seeds or {}
    out: dict[str, np.ndarray] = {}
    for n, part in enumerate(parts):
        if part in seeds:
            s = seeds[part]
            out[part] = keyframes_from_seeds(s, latent_size) if len(s) > 1 else keyframes(latent_size, count, s[0])
        elif isinstance(favourites, dict) and part in favourites:
            out[part] = favourites[part]
        elif isinstance(favourites, np.ndarray):
            out[part] = np.roll(favourites, -n, axis=0)
        else:
            out[part] = keyframes(latent_size, count, part_keyframe_seed(keyframe_seed, part, count))
    return out
