"""`breakgan demo`: the recipe variables it sets, and the summary it prints at the end."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from breakgan.console import console
from breakgan.errors import BreakganError
from breakgan.pipeline.recipe import PROJECT_ROOT, Recipe

SEEDS = PROJECT_ROOT / "assets" / "seeds"
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg"}


def seed_file(seed: str) -> Path:
    """A seed name from assets/seeds/ (with or without .mid) or a MIDI file path."""
    p = Path(seed)
    if p.suffix.lower() in (".mid", ".midi") or p.exists():
        if not p.is_file():
            raise BreakganError(f"{p}: seed MIDI not found")
        return p
    name = seed.replace("-", "_")
    for cand in (SEEDS / f"{name}.mid", SEEDS / name):
        if cand.is_file():
            return cand
    names = sorted(q.stem for q in SEEDS.glob("*.mid")) if SEEDS.is_dir() else []
    raise BreakganError(f"--seed {seed}: not a MIDI file nor a seed in {SEEDS} "
                        f"({', '.join(names) or 'none shipped'})")


def first_video(clips: list[Path]) -> Path:
    """The clip the render shows as live footage: the first file, or the first video in a folder."""
    for c in clips:
        if c.is_file():
            return c
        if c.is_dir():
            found = sorted(q for q in c.rglob("*") if q.suffix.lower() in VIDEO_SUFFIXES and q.is_file())
            if found:
                return found[0]
    raise BreakganError(f"--clips {' '.join(map(str, clips))}: no video file found")


def demo_sets(*, out: Path, clips: list[Path] | None, seed: str, bars: int, preview: bool,
              kimg: float) -> dict[str, Any]:
    """Recipe overrides for pipelines/demo.toml from the demo's options."""
    sets: dict[str, Any] = {"out": os.fspath(out), "seed": _short(seed_file(seed)), "bars": bars,
                            "preview": preview}
    if clips:
        for c in clips:
            if not c.exists():
                raise BreakganError(f"{c}: clip not found")
        sets["clips"] = [os.fspath(c) for c in clips]
        sets["footage"] = os.fspath(first_video(clips))
        # Own footage: train a small generator on it and render with that instead of the shipped one.
        sets["train.enabled"] = True
        sets["train.kimg"] = kimg
        sets["generator"] = "@train"
    return sets


def print_demo_summary(recipe: Recipe, steps, sets: dict[str, Any]) -> None:
    by = {s.stage.name: s for s in steps}

    def where(name: str) -> str | None:
        s = by.get(name)
        return s.stage.out if s is not None and s.status != "disabled" else None

    video = _video(where("render"))
    render = by.get("render")
    generator = where("train") or (render.stage.inputs.get("run") if render is not None else None)
    rows = [("dataset", where("ingest")), ("generator", generator), ("drums", where("drums")),
            ("video", video), ("blended", _video(where("blend")))]
    console.print()
    console.print("[bold green]demo done[/bold green]")
    for label, path in rows:
        if path:
            console.print(f"  {label:<10} {_short(path)}")
    out = sets["out"]
    console.print("\n[bold]try next[/bold]")
    for line in (
        f"  play it:            ffplay {_short(video) if video else out}",
        f"  another groove:     breakgan demo --seed four_on_the_floor --out {out}-house",
        "  your own footage:   breakgan demo --clips my-dance.mp4 --out renders/mine",
        f"  new drum pattern:   breakgan drums --seed {_short(sets['seed'])} --temperature 1.2 --out renders/drums-hot",
        f"  live, over OSC:     breakgan live --drums {_short(where('drums') or out)} --port 7000 "
        f"--generator {_short(generator)}",
        "  the full artwork:   breakgan run pipelines/breakgan-512.toml --set clips=footage/ --dry-run",
    ):
        console.print(line)


def _video(render_out: str | None) -> str | None:
    if render_out is None:
        return None
    p = Path(render_out)
    if p.suffix:
        return render_out
    found = sorted(p.glob("*.mp4")) if p.is_dir() else []
    return os.fspath(found[0]) if found else render_out


def _short(path: str | os.PathLike) -> str:
    p = Path(path)
    try:
        return os.fspath(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return os.fspath(p)
