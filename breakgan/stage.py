"""The stage contract: every stage writes one folder with a `breakgan.json` record, atomically.

The record holds the stage name, the package version, the options used and the inputs with their
content hashes, so the next stage can find what it needs and `breakgan run` can skip a stage whose
inputs and options are unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from breakgan import __version__
from breakgan.errors import BreakganError

RECORD_NAME = "breakgan.json"


def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's content, as 'sha256:<hex>'."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return "sha256:" + h.hexdigest()


def path_hash(path: str | os.PathLike) -> str:
    """Content hash of a file, or of a folder (its files' relative names and hashes, sorted)."""
    p = Path(path)
    if p.is_file():
        return file_hash(p)
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        h.update(str(f.relative_to(p)).encode())
        h.update(file_hash(f).encode())
    return "sha256:" + h.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def make_record(stage: str, options: dict, inputs: dict[str, str | os.PathLike], **extra) -> dict:
    """Build the breakgan.json content; `inputs` maps a role to a path, hashed here."""
    return {
        "stage": stage,
        "version": __version__,
        "options": _jsonable(options),
        "inputs": {
            role: {"path": os.fspath(p), "hash": path_hash(p)} for role, p in inputs.items()
        },
        **_jsonable(extra),
    }


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temp path beside `path` to write; it is renamed onto `path` only if the block completes.

    On any error (or Ctrl-C) the temp file is removed and `path` keeps its previous content, so a
    reader never sees half a file. `fsync` makes the data durable before the rename (checkpoints).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> None:
    with atomic_file(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON through a temp file + rename: readers never see half a file."""
    write_bytes_atomic(path, (json.dumps(_jsonable(data), indent=2) + "\n").encode())


def write_record(folder: str | os.PathLike, record: dict) -> Path:
    path = Path(folder) / RECORD_NAME
    write_json_atomic(path, record)
    return path


def read_record(folder: str | os.PathLike) -> dict | None:
    path = Path(folder) / RECORD_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BreakganError(f"{path}: unreadable stage record ({e})") from None


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Build a folder under a temporary name beside `final`, rename it into place on success.

    On any error (or Ctrl-C) the temporary folder is removed and `final` keeps its previous state.
    With replace=True an existing `final` is swapped out only after the new one is complete.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    except OSError as e:
        raise BreakganError(f"{final}: cannot write output folder ({e.strerror})") from None
    try:
        yield tmp
        if final.exists():
            if not replace:
                raise BreakganError(f"{final}: already exists")
            old = final.with_name(f".{final.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
