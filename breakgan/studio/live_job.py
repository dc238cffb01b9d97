"""`breakgan live` in a background process, started and stopped from the page (one at a time).

The studio runs the very command a user would type, in its own process so OSC timing never competes
with the web server. What the page shows is read from the lines live prints: its preview URL and its
OSC control port once it listens, "... Ctrl-C stops" once it plays, "error: ..." if it fails.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time

from breakgan.errors import BreakganError

_PREVIEW_RE = re.compile(r"preview of each part's frames at (http://127\.0\.0\.1:\d+/)")
_CONTROL_RE = re.compile(r"control on [^\s,;]+:(\d+)")
_PLAYING_RE = re.compile(r"Ctrl-C stops")
STOP_WAIT_S = 10.0  # live sends its zeroed values and closes the preview on SIGTERM; then it is killed


class LiveJob:
    """One `breakgan live` process: state starting -> running -> stopped (or failed)."""

    def __init__(self, args: list[str], osc: tuple[str, int]):
        self.args, self.osc = args, osc
        self.state = "starting"
        self.error = ""
        self.preview: str | None = None
        self.control_port: int | None = None
        self.started = time.time()
        self.finished: float | None = None
        self._stopping = False
        env = dict(os.environ, NO_COLOR="1", COLUMNS="200", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "breakgan.cli", "live", *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        self._reader = threading.Thread(target=self._read, name="studio-live", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        lines: list[str] = []
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            lines = (lines + [line])[-50:]
            if m := _PREVIEW_RE.search(line):
                self.preview = m.group(1)
            if m := _CONTROL_RE.search(line):
                self.control_port = int(m.group(1))
            if _PLAYING_RE.search(line) and self.state == "starting":
                self.state = "running"
        code = self.proc.wait()
        self.finished = time.time()
        if self._stopping or code == 0:
            self.state = "stopped"
        else:
            errors = [ln for ln in lines if ln.startswith("error:")]
            self.error = (errors or lines or [f"live exited with code {code}"])[-1]
            self.state = "failed"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def status(self) -> dict:
        state = self.state
        return {"state": state, "error": self.error, "osc": f"{self.osc[0]}:{self.osc[1]}",
                "osc_port": self.osc[1], "control_port": self.control_port,
                "preview": self.preview if state == "running" else None,
                "seconds": round((self.finished or time.time()) - self.started, 2),
                "command": "breakgan live " + shlex.join(self.args)}

    def stop(self) -> None:
        """SIGTERM (live ends as on Ctrl-C: zeroed values sent), then kill if it does not end in time."""
        self._stopping = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2.0)


class Live:
    """The studio's one live process."""

    def __init__(self):
        self.job: LiveJob | None = None
        self._lock = threading.Lock()

    def start(self, args: list[str], osc: tuple[str, int]) -> LiveJob:
        with self._lock:
            if self.job is not None and self.job.alive():
                raise BreakganError("live is already running; stop it first")
            self.job = LiveJob(args, osc)
            return self.job

    def status(self) -> dict:
        return self.job.status() if self.job is not None else {"state": "stopped", "error": "", "preview": None}

    def stop(self) -> dict:
        with self._lock:
            if self.job is not None:
                self.job.stop()
            return self.status()
