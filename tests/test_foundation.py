"""The shared plumbing: CLI errors, FFmpeg probe/read/write, the stage contract."""

import json
import subprocess
import sys

import numpy as np
import pytest

from breakgan.errors import BreakganError
from breakgan.media import VideoWriter, probe, read_frames
from breakgan.parts import PARTS, parse_parts
from breakgan.stage import atomic_dir, make_record, read_record, write_record


def test_help_lists_every_stage():
    out = subprocess.run([sys.executable, "-m", "breakgan.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for cmd in ("ingest", "train", "drums", "render", "live", "demo", "run", "sample"):
        assert cmd in out.stdout


def test_user_error_is_one_line_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "breakgan.cli", "render", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    missing = tmp_path / "nope.mp4"
    from breakgan.cli import main

    with pytest.raises(SystemExit) as e:
        main(["ingest", str(missing), "--out", str(tmp_path / "ds")])
    assert e.value.code != 0


def test_probe_reads_rotation_and_fractional_rate(make_clip, tmp_path):
    clip = make_clip("r.mp4", "testsrc2=size=320x180:rate=24000/1001", 1.0)
    rotated = tmp_path / "rot.mov"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(clip), "-metadata:s:v:0", "rotate=90",
                    "-c", "copy", str(rotated)], check=True)
    info = probe(rotated)
    assert info.has_video and not info.has_audio
    assert (info.width, info.height) == (180, 320)  # portrait once rotation is applied
    assert info.fps == pytest.approx(23.976, abs=1e-3)


def test_probe_names_the_file_for_non_media(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(BreakganError, match="notes.mp4"):
        probe(bad)


def test_writer_then_reader_round_trip(tmp_path):
    out = tmp_path / "v.mp4"
    frames = [np.full((64, 96, 3), v, np.uint8) for v in (0, 80, 160, 240)] * 3
    with VideoWriter(out, 96, 64, 12) as vw:
        for f in frames:
            vw.write(f)
    info = probe(out)
    assert info.has_video and (info.width, info.height) == (96, 64)
    back = list(read_frames(out, 96, 64))
    assert len(back) == len(frames)
    means = [int(f.mean()) for f in back[:4]]
    assert means == pytest.approx([0, 80, 160, 240], abs=6)


def test_failed_write_leaves_no_file(tmp_path):
    out = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 32, 32, 10) as vw:
            vw.write(np.zeros((32, 32, 3), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_keeps_previous_state_on_failure(tmp_path):
    final = tmp_path / "ds"
    with atomic_dir(final) as d:
        (d / "a.txt").write_text("one")
        write_record(d, make_record("test", {"x": 1}, {"a": d / "a.txt"}))
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(final) as d:
            (d / "a.txt").write_text("two")
            raise KeyboardInterrupt
    assert (final / "a.txt").read_text() == "one"
    rec = read_record(final)
    assert rec["stage"] == "test" and rec["options"] == {"x": 1}
    assert rec["inputs"]["a"]["hash"].startswith("sha256:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_parse_parts():
    assert parse_parts("all") == PARTS
    assert parse_parts("snare,kick") == ("kick", "snare")
    with pytest.raises(BreakganError, match="cowbell"):
        parse_parts("kick,cowbell")


def test_a_folder_given_for_a_file_or_the_reverse_is_named_as_such(tmp_path):
    from badinput import expect_clean_error

    from breakgan.paths import need_file, need_folder

    folder, file = tmp_path / "song.wav", tmp_path / "frames.txt"
    folder.mkdir()
    file.write_text("x")
    assert need_file(file) == file and need_folder(folder) == folder
    with pytest.raises(BreakganError, match="song.wav: is a folder, not a favourites file"):
        need_file(folder, "favourites file")
    with pytest.raises(BreakganError, match="frames.txt: is a file, not a dataset folder"):
        need_folder(file, "dataset folder")
    with pytest.raises(BreakganError, match="nothing: no such drums folder"):
        need_folder(tmp_path / "nothing", "drums folder")
    expect_clean_error(["drums", "transcribe", folder, "--out", tmp_path / "o"], names="is a folder, not a file",
                       watch=[tmp_path])
    expect_clean_error(["train", file, "--out", tmp_path / "run"], names="is a file, not a dataset folder",
                       watch=[tmp_path])
