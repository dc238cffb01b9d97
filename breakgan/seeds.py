"""The seeds a user gives, and the rule each one follows (DESIGN.md "Seeds").

- keyframe seed S -> latent S (`latent_for_seed`), the same in `sample`, `render --seeds`, `live`
  (`--seed`, OSC `/breakgan/<part>/seed`). A part whose keyframe seed is S cycles through the latents
  of S, S+1, ..., S+K-1 (`keyframe_cycle`); parts without a seed of their own take consecutive blocks
  of K seeds after a base seed, in drum-part order (`part_keyframe_seed`).
- motion seed -> the pulse and drift directions (`breakgan.trajectory.motion_directions`).
- pattern seed -> DrumsRNN sampling (`breakgan.drums`).

Every seed is a whole number 0 <= s < 2**63 (`check_seed`, `parse_seed`): one rule for every option,
file and OSC message that takes one.
"""

from __future__ import annotations

import math
import re

import numpy as np

from breakgan.errors import BreakganError

SEED_LIMIT = 2**63  # seeds are 0 <= s < SEED_LIMIT (torch.Generator.manual_seed takes up to 2**64-1)
MAX_KEYFRAMES = 1024  # keyframes per part (--keys, seeds per part, favourites rows)
MIN_TRUNCATION, MAX_TRUNCATION = 0.1, 100.0  # below 0.1 the redraw loop gets slow; above ~6 it does nothing
_SEED_TEXT = re.compile(r"\+?[0-9]{1,25}")


def _rule(option: str, value) -> BreakganError:
    return BreakganError(f"{option}: a seed is a whole number 0 <= s < 2**63, got {value!r}"[:300])


def check_seed(value, option: str = "seed") -> int:
    """A seed given as a number (int, or a float that is a whole number) -> int, else one-line error."""
    if isinstance(value, bool):
        raise _rule(option, value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, np.integer)) and 0 <= int(value) < SEED_LIMIT:
        return int(value)
    raise _rule(option, value)


def parse_seed(text, option: str = "seed") -> int:
    """A seed written as text ('42') -> int, under the rule of `check_seed`."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        return check_seed(text, option)
    s = str(text).strip()
    if not _SEED_TEXT.fullmatch(s):
        raise _rule(option, text if len(str(text)) < 40 else str(text)[:40] + "...")
    return check_seed(int(s), option)


def check_truncation(value, option: str = "--truncation") -> float | None:
    """None (no truncation) or a finite number in [0.1, 100]."""
    if value is None:
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise BreakganError(f"{option}: expected a number, got {value!r}") from None
    if not (math.isfinite(t) and MIN_TRUNCATION <= t <= MAX_TRUNCATION):
        raise BreakganError(f"{option} must be a finite number in {MIN_TRUNCATION:g}..{MAX_TRUNCATION:g}, got {value}")
    return t


def latent_for_seed(seed: int, latent_size: int, truncation: float | None = None) -> np.ndarray:
    """The latent of keyframe seed `seed`: (latent_size,) float32, identical on every machine.

    torch.randn(latent_size) from torch.Generator().manual_seed(seed) on the CPU (never on an
    accelerator, whose generators differ). With `truncation` t, entries with |z| > t are redrawn from
    the same generator until all lie inside (a truncated normal). Scaling z would do nothing: the
    PGGAN generator pixel-normalises its input.
    """
    import torch

    seed = check_seed(seed)
    t = check_truncation(truncation)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(int(latent_size), generator=gen)
    if t is not None:
        while True:
            bad = z.abs() > t
            if not bad.any():
                break
            z[bad] = torch.randn(int(bad.sum()), generator=gen)
    return z.numpy()


def latents_for_seeds(seeds, latent_size: int, truncation: float | None = None) -> np.ndarray:
    """(len(seeds), latent_size) float32, one `latent_for_seed` row per seed."""
    seeds = list(seeds)
    if not seeds:
        raise BreakganError("need at least one seed")
    return np.stack([latent_for_seed(s, latent_size, truncation) for s in seeds])


def keyframe_cycle(seed: int, count: int, latent_size: int) -> np.ndarray:
    """The (count, latent_size) keyframes of a part whose keyframe seed is `seed`: seeds seed..seed+count-1
    (wrapping below 2**63)."""
    seed = check_seed(seed)
    if not 1 <= count <= MAX_KEYFRAMES:
        raise BreakganError(f"--keys: keyframes per part must be 1..{MAX_KEYFRAMES}, got {count}")
    return latents_for_seeds([(seed + j) % SEED_LIMIT for j in range(int(count))], latent_size)


def part_keyframe_seed(base: int, part: str, count: int) -> int:
    """The keyframe seed of `part` when only a base seed is given: part i (in drum-part order, kick = 0)
    takes the i-th block of `count` seeds after `base`, so no two parts share a keyframe."""
    from breakgan.parts import PARTS

    return (check_seed(base) + PARTS.index(part) * int(count)) % SEED_LIMIT
