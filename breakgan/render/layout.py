"""Where each image stream goes in the output frame, and compositing one frame (pure numpy).

Streams are the selected drum parts plus "footage". Every stream arrives already at its tile's size
(generated images are resized on the generator's device, footage by FFmpeg), so compositing is only
copies and, for `blend`, one weighted sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from breakgan.errors import BreakganError

FOOTAGE = "footage"
LAYOUTS = ("tiles", "blend", "pip", "solo")


@dataclass(frozen=True)
class Tile:
    name: str  # a part name or FOOTAGE
    x: int  # left edge, pixels
    y: int  # top edge, pixels
    w: int
    h: int


@dataclass(frozen=True)
class Layout:
    kind: str
    width: int  # output frame size, pixels
    height: int
    tiles: tuple[Tile, ...]  # drawn in order; for blend the second is mixed over the first

    def tile(self, name: str) -> Tile:
        return next(t for t in self.tiles if t.name == name)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tiles if t.name != FOOTAGE)

    @property
    def has_footage(self) -> bool:
        return any(t.name == FOOTAGE for t in self.tiles)


def grid_shape(n: int, width: int, height: int) -> tuple[int, int]:
    """(cols, rows) for n tiles in a width x height frame: cells as square as possible, few empty cells."""
    best, best_score = (1, n), math.inf
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        aspect = (width / cols) / (height / rows)
        score = abs(math.log(aspect)) + 0.35 * (cols * rows - n)
        if score < best_score:
            best, best_score = (cols, rows), score
    return best


def _edges(total: int, count: int) -> list[int]:
    return [round(i * total / count) for i in range(count + 1)]


def make_layout(kind: str, parts: tuple[str, ...], width: int, height: int, *, footage: bool,
                part: str | None = None) -> Layout:
    """The tiles of a layout. `part` picks the generated stream of solo/blend (default: first part)."""
    if kind not in LAYOUTS:
        raise BreakganError(f"--layout must be one of {', '.join(LAYOUTS)}, got {kind!r}")
    if not parts:
        raise BreakganError("no drum part selected to render")
    main = part or parts[0]
    if main not in parts:
        raise BreakganError(f"--part {main} is not among the rendered parts ({', '.join(parts)})")
    if kind == "solo":
        return Layout(kind, width, height, (Tile(main, 0, 0, width, height),))
    if kind == "blend":
        if not footage:
            raise BreakganError("--layout blend mixes generated frames over footage: give --footage")
        return Layout(kind, width, height, (Tile(FOOTAGE, 0, 0, width, height), Tile(main, 0, 0, width, height)))
    if kind == "tiles":
        names = list(parts) + ([FOOTAGE] if footage else [])
        cols, rows = grid_shape(len(names), width, height)
        xs, ys = _edges(width, cols), _edges(height, rows)
        tiles = []
        for i, name in enumerate(names):
            r, c = divmod(i, cols)
            tiles.append(Tile(name, xs[c], ys[r], xs[c + 1] - xs[c], ys[r + 1] - ys[r]))
        return Layout(kind, width, height, tuple(tiles))
    # pip: footage (or the main part) fills the frame; the other parts are square insets, bottom right.
    base = FOOTAGE if footage else main
    insets = [p for p in parts if p != base]
    size = max(2, min(width, height) // 4)
    margin = max(1, size // 8)
    per_row = max(1, (width - margin) // (size + margin))
    tiles = [Tile(base, 0, 0, width, height)]
    for i, name in enumerate(insets):
        r, c = divmod(i, per_row)
        x = width - (c + 1) * (size + margin)
        y = height - (r + 1) * (size + margin)
        if y < 0:
            raise BreakganError(f"--layout pip: {len(insets)} insets do not fit in {width}x{height}")
        tiles.append(Tile(name, x, y, size, size))
    return Layout(kind, width, height, tuple(tiles))


def compose(layout: Layout, images: dict[str, np.ndarray], alpha: float = 1.0,
            out: np.ndarray | None = None) -> np.ndarray:
    """One output frame (H, W, 3) uint8 from per-stream images at their tile sizes.

    `alpha` (0..1) is the weight of the generated stream in `blend`; other layouts ignore it.
    `out` may be a reused buffer (empty tiles stay black).
    """
    if out is None:
        out = np.zeros((layout.height, layout.width, 3), np.uint8)
    if layout.kind == "blend":
        import cv2

        base, top = layout.tiles
        a = float(np.clip(alpha, 0.0, 1.0))
        cv2.addWeighted(images[base.name], 1.0 - a, images[top.name], a, 0.0, dst=out)
        return out
    for t in layout.tiles:
        out[t.y:t.y + t.h, t.x:t.x + t.w] = images[t.name]
    return out


def cover_filters(width: int, height: int) -> list[str]:
    """FFmpeg -vf steps that scale footage to cover width x height and crop the centre (no bars)."""
    return [f"scale={width}:{height}:force_original_aspect_ratio=increase:flags=area",
            f"crop={width}:{height}", "setsar=1"]
