"""Paths read from files or sent by a client stay inside their own folder: one rule for every such path.

A name found in onsets.json (`audio`), in a run's latest.json (`file`) or asked for by the studio page
must not lead out of its folder: no `../../etc/passwd`, no absolute path elsewhere, no symlink pointing
out. Symlinks are followed before the check, so a link inside the folder that points out is refused too.
`need_file` / `need_folder`: the one check that an input path given by the user is what it should be.
"""

from __future__ import annotations

import os
from pathlib import Path

from breakgan.errors import BreakganError, shown


def inside(base: str | os.PathLike, name: str | os.PathLike) -> Path | None:
    """`base / name` resolved (symlinks followed) when it lies strictly inside `base`; else None."""
    if isinstance(name, str) and "\0" in name:
        return None
    try:
        root = Path(base).resolve(strict=True)
        real = (Path(base) / name).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return real if real != root and real.is_relative_to(root) else None


def confined(base: str | os.PathLike, name, where: str | os.PathLike, what: str) -> Path:
    """`base / name` as written, once `inside` has found it in `base`; else one BreakganError naming the
    file it came from (`where`) and the field (`what`)."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise BreakganError(f"{where}: {what} must be a file name, got {shown(name, 80)}")
    if inside(base, name) is None:
        raise BreakganError(f"{where}: {what} {shown(name, 80)} points outside its folder {base}")
    return Path(base) / name


def need_file(path: str | os.PathLike, what: str = "file") -> Path:
    """`path` as a Path if it is a file; else one line saying whether it is missing or a folder."""
    p = Path(path)
    if p.is_file():
        return p
    raise BreakganError(f"{p}: is a folder, not a {what}" if p.is_dir() else f"{p}: no such {what}")


def need_folder(path: str | os.PathLike, what: str = "folder") -> Path:
    """`path` as a Path if it is a folder; else one line saying whether it is missing or a file."""
    p = Path(path)
    if p.is_dir():
        return p
    raise BreakganError(f"{p}: is a file, not a {what}" if p.exists() else f"{p}: no such {what}")
