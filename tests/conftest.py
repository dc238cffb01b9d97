"""Shared fixtures: small media made by FFmpeg, and ../shared/ material when present."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytest.register_assert_rewrite("badinput")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared/ beside the project root; tests that need it skip cleanly when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared/ not present")
    return SHARED


def ffmpeg(*args: str) -> None:
    """Run FFmpeg quietly; used by tests to make their own clips."""
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture
def make_clip(tmp_path):
    """make_clip(name, lavfi_source, seconds, extra_args...) -> Path of a clip made from a lavfi source."""

    def _make(name: str, source: str = "testsrc2=size=320x240:rate=25", seconds: float = 2.0, *extra: str) -> Path:
        out = tmp_path / name
        ffmpeg("-f", "lavfi", "-i", source, "-t", str(seconds), *extra, "-pix_fmt", "yuv420p", str(out))
        return out

    return _make
