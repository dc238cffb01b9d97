"""The contract every bad input must meet, in one place for every test module that feeds the CLI bad input.

`expect_clean_error(argv, ...)` runs `breakgan ARGV` in-process (no interpreter start per case, so a
corpus of hundreds of cases stays fast) and asserts: a non-zero exit, exactly one line on stderr that
names the file or option, no traceback, not the "internal error" fallback of `cli.main`, and nothing
changed in the watched folders outside `--out`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(argv: Sequence[str], *, cwd: str | os.PathLike | None = None) -> CliResult:
    """Run `breakgan ARGV` in this process; stdout/stderr captured, the exit code returned."""
    from breakgan.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_cwd = os.getcwd()
    debug_env = os.environ.pop("BREAKGAN_DEBUG", None)
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in argv])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(old_cwd)
        if debug_env is not None:
            os.environ["BREAKGAN_DEBUG"] = debug_env
    return CliResult(code, out.getvalue(), err.getvalue())


def snapshot(*roots: str | os.PathLike, skip: Iterable[str | os.PathLike] = ()) -> dict[str, str]:
    """Every file and folder under `roots` (hidden ones too) -> a content hash ('dir' for folders)."""
    skip_paths = [Path(s).resolve() for s in skip]
    state: dict[str, str] = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        if root.is_file():
            state[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath).resolve()
            if any(here == s or s in here.parents for s in skip_paths):
                dirnames[:] = []
                continue
            state[dirpath] = "dir"
            for name in filenames:
                p = Path(dirpath) / name
                try:
                    state[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
                except OSError:
                    state[str(p)] = "unreadable"
    return state


def expect_clean_error(argv: Sequence[str], *, names: str | Sequence[str] | None = None,
                       watch: Iterable[str | os.PathLike] = (), out: str | os.PathLike | None = None,
                       cwd: str | os.PathLike | None = None) -> CliResult:
    """Assert the bad-input contract for `breakgan ARGV`; returns the result for further checks.

    names: text the error line must contain (the file or option at fault); any one of a list will do.
    watch: folders/files that must be byte-for-byte unchanged afterwards (except `out`, when given).
    """
    watch = list(watch)
    skip = [out] if out is not None else []
    before = snapshot(*watch, skip=skip)
    res = run_cli(argv, cwd=cwd)
    shown = f"argv={list(map(str, argv))}\nexit={res.code}\nstderr:\n{res.err}\nstdout:\n{res.out[-2000:]}"
    assert res.code != 0, f"expected a non-zero exit\n{shown}"
    assert "Traceback" not in res.err + res.out, f"traceback printed\n{shown}"
    assert "internal error" not in res.err, f"an unexpected exception reached the last resort\n{shown}"
    assert len(res.err_lines) == 1, f"expected exactly one line on stderr\n{shown}"
    if names is not None:
        wanted = [names] if isinstance(names, str) else list(names)
        assert any(w in res.err for w in wanted), f"error line does not name any of {wanted}\n{shown}"
    after = snapshot(*watch, skip=skip)
    assert before == after, (f"files changed outside --out: "
                             f"{sorted(set(before.items()) ^ set(after.items()))[:10]}\n{shown}")
    return res


def python_has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


__all__ = ["CliResult", "run_cli", "snapshot", "expect_clean_error", "python_has"]
