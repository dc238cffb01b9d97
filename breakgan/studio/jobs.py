"""`breakgan render` (and other commands) in a background process, progress read from its progress bar.

A separate process keeps the page answering while the render holds the CPU (or GPU), and runs the
very command a user would type. Its rich progress bar is forced on (TTY_INTERACTIVE=1, NO_COLOR=1)
and the last "render ... N/M" it draws is the progress shown in the page.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from breakgan.errors import BreakganError

TAKE_RE = re.compile(r"take-(\d{3,4})")
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class CliJob:
    """One breakgan command in a background process; its progress is the last "LABEL ... N/M" its bar draws.

    `succeeded()` (called once the process ended with code 0) says whether it made what it should.
    """

    label = "render"

    def __init__(self, args: list[str]):
        self.args = args
        self.done = 0
        self.total = 0
        self.state = "running"
        self.error = ""
        self.started = time.time()
        self.finished: float | None = None
        self._progress_re = re.compile(rf"{self.label}\b[^\n\r]*?(\d+)/(\d+)")
        env = dict(os.environ, TTY_INTERACTIVE="1", NO_COLOR="1", COLUMNS="160", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "breakgan.cli", *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self._reader = threading.Thread(target=self._read, name=f"studio-{self.label}", daemon=True)
        self._reader.start()

    def succeeded(self) -> bool:
        return True

    def _read(self) -> None:
        buf = ""
        while True:
            chunk = self.proc.stderr.read1(4096) if hasattr(self.proc.stderr, "read1") else self.proc.stderr.read(4096)
            if not chunk:
                break
            buf = (buf + _ANSI_RE.sub("", chunk.decode("utf-8", "replace")))[-8192:]
            found = self._progress_re.findall(buf)
            if found:
                self.done, self.total = (int(x) for x in found[-1])
        code = self.proc.wait()
        try:
            ok = code == 0 and self.succeeded()
        except BreakganError as e:
            buf, ok = f"error: {e}", False
        self.finished = time.time()
        if ok:
            self.done = self.total = max(self.total, self.done)
            self.state = "done"
        else:
            lines = [ln.strip() for ln in re.split(r"[\r\n]", buf) if ln.strip()]
            errors = [ln for ln in lines if ln.startswith("error:")]
            self.error = (errors or lines or [f"{self.label} exited with code {code}"])[-1]
            self.state = "failed"

    def status(self) -> dict:
        return {"state": self.state, "done": self.done, "total": self.total, "error": self.error,
                "seconds": round((self.finished or time.time()) - self.started, 2)}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()


class RenderJob(CliJob):
    def __init__(self, take: str, args: list[str], out: Path):
        self.take, self.out = take, out
        super().__init__(args)

    def succeeded(self) -> bool:
        return (self.out / "render.mp4").is_file()

    def status(self) -> dict:
        return {"take": self.take, **super().status(),
                "video": f"/renders/{self.take}/render.mp4" if self.state == "done" else None}


def check_renders_folder(folder: str | Path) -> Path:
    """--renders: a folder the studio can write into, or one it can make; a BreakganError otherwise.

    Checked by doing it (making the missing folders and a scratch folder inside, then removing all
    of them): permission bits do not say it, root passes os.access even under /proc. The studio
    makes the folder itself on the first render, so a session without one leaves nothing behind.
    """
    import tempfile

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise BreakganError(f"--renders {folder}: not a folder")
    made: list[Path] = []
    try:
        for p in reversed([folder, *folder.parents]):
            if not p.exists():
                p.mkdir()
                made.append(p)
        made.append(Path(tempfile.mkdtemp(prefix=".breakgan-check-", dir=folder)))
    except OSError as e:
        raise BreakganError(f"--renders {folder}: cannot write a folder there ({e.strerror or e})") from None
    finally:
        for p in reversed(made):
            with contextlib.suppress(OSError):
                p.rmdir()
    return folder


class Renders:
    """Takes in a renders folder (take-001, take-002, ...), one render at a time."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.jobs: dict[str, RenderJob] = {}
        self._lock = threading.Lock()

    def takes(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir() and TAKE_RE.fullmatch(p.name))

    def running(self) -> RenderJob | None:
        return next((j for j in self.jobs.values() if j.state == "running"), None)

    def start(self, render_args: list[str]) -> RenderJob:
        """Run `breakgan render ARGS --out FOLDER/take-NNN` (a new, unused take folder)."""
        with self._lock:
            if self.running() is not None:
                raise BreakganError("a render is already running; wait for it to finish")
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise BreakganError(f"{self.folder}: cannot create the renders folder ({e.strerror or e})") from None
            used = [int(TAKE_RE.fullmatch(t).group(1)) for t in self.takes()]
            take = f"take-{max(used, default=0) + 1:03d}"
            out = self.folder / take
            job = RenderJob(take, ["render", *render_args, "--out", str(out)], out)
            self.jobs[take] = job
            return job

    def stop_all(self) -> None:
        for job in self.jobs.values():
            job.stop()
