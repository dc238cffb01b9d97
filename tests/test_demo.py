"""`breakgan demo` end to end on the built-in assets, reduced (2 bars, --preview), checked like a viewer would."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from breakgan.media import probe, read_frames

ROOT = Path(__file__).resolve().parents[1]


def demo(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "breakgan.cli", "demo", "--out", str(out), "--bars", "2",
                           "--preview", *extra], capture_output=True, text=True, cwd=ROOT, timeout=600)


def frame_count(path: Path) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=nb_read_frames", "-of", "csv=p=0", str(path)], capture_output=True, text=True)
    return int(out.stdout.strip())


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    t0 = time.monotonic()
    proc = demo(out)
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc, seconds


@pytest.mark.slow
def test_demo_writes_a_playable_video_with_the_drums(demo_run):
    out, proc, seconds = demo_run
    onsets = json.loads((out / "drums" / "cand-01" / "onsets.json").read_text())
    assert onsets["bars"] == 2
    for name in ("tiles", "blend"):
        video = out / name / "render.mp4"
        info = probe(video)
        assert info.has_video and info.has_audio, name
        assert info.codec == "h264"
        # exactly round(duration x fps) frames, and the container lasts the pattern
        assert frame_count(video) == round(onsets["duration"] * info.fps), name
        assert info.duration == pytest.approx(onsets["duration"], abs=2 / info.fps + 0.05), name
        assert max(info.width, info.height) <= 320  # --preview
    # The summary names where everything is and what to try next.
    text = proc.stderr + proc.stdout
    for label in ("dataset", "generator", "drums", "video", "try next"):
        assert label in text, label
    assert "render.mp4" in text
    assert (out / "dataset" / "packed").is_dir()


@pytest.mark.slow
def test_each_part_tile_changes_on_its_onsets(demo_run):
    """In the tiles video the kick tile moves on kick hits: frames at onsets change more than the rest."""
    from breakgan.render.layout import make_layout

    out, _, _ = demo_run
    video = out / "tiles" / "render.mp4"
    info = probe(video)
    record = json.loads((out / "tiles" / "breakgan.json").read_text())
    parts = tuple(record["options"]["parts"])
    layout = make_layout("tiles", parts, info.width, info.height, footage=True)
    frames = np.stack(list(read_frames(video, info.width, info.height))).astype(np.float32)
    onsets = json.loads((out / "drums" / "cand-01" / "onsets.json").read_text())
    checked = 0
    for part in parts:
        hits = [e["time"] for e in onsets["parts"][part]]
        if len(hits) < 2:
            continue
        t = layout.tile(part)
        tile = frames[:, t.y:t.y + t.h, t.x:t.x + t.w]
        change = np.abs(np.diff(tile, axis=0)).mean(axis=(1, 2, 3))  # change[i]: frame i -> i+1
        on = np.zeros(len(change), bool)
        for s in hits:
            f = int(s * info.fps)  # the frame that contains the onset
            on[max(f - 1, 0):min(f + 1, len(change))] = True  # the change into f and into f+1
        assert change[on].mean() > 3 * change[~on].mean() + 0.1, part
        checked += 1
    assert checked >= 1


@pytest.mark.slow
def test_second_demo_run_skips_every_stage(demo_run):
    out, _, first = demo_run
    t0 = time.monotonic()
    proc = demo(out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("unchanged") >= 4
    assert time.monotonic() - t0 < max(20.0, first / 2)
