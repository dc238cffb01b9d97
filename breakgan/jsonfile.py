"""Reading JSON a user may have damaged or crafted: one rule for every JSON input breakgan reads.

Size is bounded before anything is read, the bytes must be UTF-8, the JSON valid and not nested past
what Python's parser survives; anything else is one BreakganError naming the file and what it should
have been. What the JSON must hold is checked by each reader after this.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from breakgan.errors import BreakganError


def _mb(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n // 1024} KB"


def parse_json(text: str | bytes, where: str | os.PathLike, what: str) -> Any:
    """JSON text (or UTF-8 bytes) -> Python value; `where` names the source in the error, `what` its kind."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise BreakganError(f"{where}: not UTF-8 text (not {what})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise BreakganError(f"{where}: JSON nested too deeply (not {what})") from None
    except ValueError as e:  # JSONDecodeError, and integers with too many digits
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BreakganError(f"{where}: not valid JSON ({first[:80]}; not {what})") from None


def read_json(path: str | os.PathLike, what: str, *, max_bytes: int) -> Any:
    """Read and parse a JSON file of at most `max_bytes`; one-line errors name the file and `what`."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise BreakganError(f"{path}: larger than {_mb(max_bytes)} (not {what})")
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)  # the file may grow after stat()
    except FileNotFoundError:
        raise BreakganError(f"{path}: no such file ({what})") from None
    except OSError as e:
        raise BreakganError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(raw) > max_bytes:
        raise BreakganError(f"{path}: larger than {_mb(max_bytes)} (not {what})")
    return parse_json(raw, path, what)
