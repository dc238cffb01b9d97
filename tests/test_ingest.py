"""`breakgan ingest`: clips made by FFmpeg here, ingested small (64 px), checked like a user would."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from breakgan.errors import BreakganError
from breakgan.ingest import ingest_clips
from conftest import ffmpeg

SIZE = 64


def _clip(folder: Path, name: str, source: str, seconds: float, *extra: str) -> Path:
    out = folder / name
    ffmpeg("-f", "lavfi", "-i", source, "-t", str(seconds), *extra, "-pix_fmt", "yuv420p", str(out))
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    c = {
        "plain": _clip(d, "plain.mp4", "testsrc2=size=320x240:rate=25", 2),
        "other": _clip(d, "other.mp4", "mandelbrot=size=320x240:rate=25", 2),
        "letterbox": _clip(d, "letterbox.mp4", "testsrc2=size=320x180:rate=25", 2, "-vf", "pad=320:240:0:30"),
        "still": _clip(d, "still.mp4", "testsrc2=size=320x240:rate=25:duration=2", 4,
                       "-vf", "tpad=stop_mode=clone:stop_duration=2"),
        "blurred": _clip(d, "blurred.mp4", "testsrc2=size=320x240:rate=25", 4,
                         "-vf", "gblur=sigma=6:enable='gte(t,2)'"),
        "ntsc": _clip(d, "ntsc.mp4", "testsrc2=size=320x240:rate=24000/1001", 2),
        "odd": _clip(d, "odd.mp4", "testsrc2=size=692x1108:rate=25", 1),
        "flat": _clip(d, "flat.mp4", "color=gray:size=320x240:rate=25", 2),
    }
    # Half white over half black, stored landscape, tagged to display rotated by 90 degrees.
    halves = _clip(d, "halves.mp4", "color=white:size=320x240:rate=25", 1,
                   "-vf", "drawbox=x=0:y=120:w=320:h=120:color=black:t=fill")
    c["rotated"] = d / "rotated.mov"
    ffmpeg("-i", str(halves), "-metadata:s:v:0", "rotate=90", "-c", "copy", str(c["rotated"]))
    # 23.976 fps with a soundtrack.
    c["audio"] = d / "with_audio.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24000/1001", "-f", "lavfi", "-i",
           "sine=frequency=440:sample_rate=44100", "-t", "2", "-pix_fmt", "yuv420p", "-c:a", "aac",
           str(c["audio"]))
    # A small colourful "dancer" crossing a grey room, and one standing on the right.
    c["crossing"] = _clip(d, "crossing.mp4", "color=gray:size=320x180:rate=25[bg];testsrc2=size=50x90:rate=25[fg];"
                          "[bg][fg]overlay=x='10+t*85':y=45:shortest=0[out0]", 3)
    c["standing"] = _clip(d, "standing.mp4", "color=gray:size=320x180:rate=25[bg];testsrc2=size=50x90:rate=25[fg];"
                          "[bg][fg]overlay=x=255:y=45[out0]", 2)
    return c


def _rows(dataset: Path) -> list[dict]:
    with open(dataset / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def _frames(dataset: Path, label: str | None = None) -> list[np.ndarray]:
    return [cv2.cvtColor(cv2.imread(str(dataset / r["file"])), cv2.COLOR_BGR2RGB)
            for r in _rows(dataset) if r["kept"] == "1" and (label is None or r["label"] == label)]


def _ingest(clips, out, **options):
    return ingest_clips(clips, out, size=SIZE, report=False, **options)


def test_dataset_folder_matches_the_interface(clips, tmp_path):
    out = tmp_path / "ds"
    summary = _ingest([clips["plain"], clips["other"]], out)
    assert summary.written and not summary.failed
    rows = _rows(out)
    assert list(rows[0]) == ["clip", "time_s", "sharpness", "motion", "hash", "kept", "reason", "file", "label",
                             "region", "dup_bits"]
    kept = [r for r in rows if r["kept"] == "1"]
    assert all(r["reason"] == "" and (out / r["file"]).is_file() for r in kept)
    assert all(r["reason"] and r["file"] == "" for r in rows if r["kept"] == "0")
    assert all(r["file"] == f"frames/{r['label']}_{int(r['file'][-10:-4]):06d}.png" for r in kept)
    record = json.loads((out / "breakgan.json").read_text())
    assert record["stage"] == "ingest" and record["size"] == SIZE and record["count"] == len(kept)
    assert record["labels"] == ["plain", "other"]
    assert set(record["clips"]) == {"plain", "other"}
    assert record["clips"]["plain"]["hash"].startswith("sha256:")
    for res in (4, 8, 16, 32, 64):
        arr = np.load(out / "packed" / f"{res}.npy", mmap_mode="r")
        assert arr.shape == (len(kept), 3, res, res) and arr.dtype == np.uint8
    labels = np.load(out / "packed" / "labels.npy")
    assert labels.dtype == np.int64
    assert [record["labels"][i] for i in labels] == [r["label"] for r in kept]
    packed = np.load(out / "packed" / "64.npy")
    assert np.array_equal(packed[0].transpose(1, 2, 0), _frames(out)[0])  # PNG and packed row agree
    # 2x2 box average between resolutions, as progressive training expects.
    p32 = np.load(out / "packed" / "32.npy")
    assert np.abs(p32[0].astype(int) - packed[0].reshape(3, 32, 2, 32, 2).mean(axis=(2, 4))).max() <= 1
    for sheet in ("contact_kept.png", "contact_dropped.png"):
        assert cv2.imread(str(out / sheet)) is not None
    # Same clips, same options -> the same manifest (nothing random in ingest).
    again = tmp_path / "again"
    _ingest([clips["plain"], clips["other"]], again)
    assert (again / "manifest.csv").read_text() == (out / "manifest.csv").read_text()


def test_letterbox_bars_are_removed(clips, tmp_path):
    auto, none = tmp_path / "auto", tmp_path / "none"
    _ingest([clips["letterbox"]], auto)
    _ingest([clips["letterbox"]], none, crop="none")
    meta = json.loads((auto / "breakgan.json").read_text())["clips"]["letterbox"]
    assert meta["bars"] and meta["content"] == [0, 30, 320, 180]
    for frame in _frames(auto):
        assert frame[:2].mean() > 40 and frame[-2:].mean() > 40  # no black stripes left
    # --crop none keeps the whole frame, bars included (padded square): the stripes are there.
    frame = _frames(none)[0]
    assert frame[10:14].mean() < 20 and frame[-14:-10].mean() < 20


def test_static_stretch_is_thinned(clips, tmp_path):
    out = tmp_path / "ds"
    _ingest([clips["still"]], out)
    rows = _rows(out)
    moving = [r for r in rows if float(r["time_s"]) < 2.0]
    frozen = [r for r in rows if float(r["time_s"]) >= 2.2]
    assert moving and all(r["kept"] == "1" for r in moving)
    assert len(frozen) >= 8
    assert {r["reason"] for r in frozen} <= {"still", "duplicate"}
    assert sum(r["reason"] == "still" for r in frozen) >= len(frozen) // 2
    assert sum(r["kept"] == "1" for r in frozen) <= 0.2 * len(frozen) + 1
    # A larger share keeps more of the stretch (before near-duplicates are removed).
    more = tmp_path / "more"
    _ingest([clips["still"]], more, still_share=1.0, dup_distance=-1)
    assert all(r["kept"] == "1" for r in _rows(more))


def test_blurred_stretch_is_dropped(clips, tmp_path):
    out = tmp_path / "ds"
    summary = _ingest([clips["blurred"]], out)
    rows = _rows(out)
    sharp = [r for r in rows if float(r["time_s"]) < 1.95]
    blurred = [r for r in rows if float(r["time_s"]) > 2.05]
    assert all(r["kept"] == "1" for r in sharp)
    assert blurred and all(r["reason"] == "blur" for r in blurred)
    assert summary.clips[0].counts["blur"] == len([r for r in rows if r["reason"] == "blur"])


def test_rotation_fractional_rate_audio_and_odd_size(clips, tmp_path):
    out = tmp_path / "ds"
    summary = _ingest([clips["rotated"], clips["audio"], clips["odd"]], out, crop="none", fps=4)
    assert not summary.failed
    # Rotation honoured: the white half, stored on top, is displayed on one side.
    frame = _frames(out, "rotated")[0].astype(float)
    left, right = frame[:, 10:30].mean(), frame[:, 34:54].mean()
    top, bottom = frame[5:25, 10:54].mean(), frame[39:59, 10:54].mean()
    assert abs(left - right) > 150 and abs(top - bottom) < 30
    times = [float(r["time_s"]) for r in _rows(out) if r["label"] == "with_audio"]
    assert 7 <= len(times) <= 9
    assert np.allclose(np.diff(times), 0.25)
    odd = _frames(out, "odd")
    assert odd and odd[0].shape == (SIZE, SIZE, 3)
    meta = json.loads((out / "breakgan.json").read_text())["clips"]["odd"]
    assert meta["content"] == [0, 0, 692, 1108]


def test_auto_square_keeps_an_off_centre_dancer(clips, tmp_path):
    out = tmp_path / "ds"
    _ingest([clips["standing"]], out)
    x, y, side = json.loads((out / "breakgan.json").read_text())["clips"]["standing"]["square"]
    assert side == 180 and x > 100  # the largest square, slid right to where the dancer is
    center = tmp_path / "center"
    _ingest([clips["standing"]], center, crop="center")
    assert _colourful(_frames(out)[0]) > 2 * _colourful(_frames(center)[0])


def _colourful(frame: np.ndarray) -> float:
    """Share of saturated pixels: the testsrc2 'dancer' is colourful, the room is grey."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    return float((hsv[..., 1] > 80).mean())


def test_dancer_crop_follows_the_body(clips, tmp_path):
    dancer, center = tmp_path / "dancer", tmp_path / "center"
    _ingest([clips["crossing"]], dancer, crop="dancer", dup_distance=-1)
    _ingest([clips["crossing"]], center, crop="center", dup_distance=-1)
    followed = [_colourful(f) for f in _frames(dancer)]
    fixed = [_colourful(f) for f in _frames(center)]
    assert len(followed) == len(_rows(dancer)) >= 14  # every sample holds the dancer ...
    assert min(followed) > 0.15  # ... and large
    # A fixed centre square loses them at the sides: empty grey frames, dropped as featureless.
    assert sum(r["reason"] == "blur" for r in _rows(center)) >= 2
    assert np.mean(followed) > 1.3 * np.mean(fixed)


def test_bad_inputs_one_line_each_others_still_ingested(clips, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    empty = bad / "empty_folder"
    empty.mkdir()
    (empty / "readme.txt").write_text("no videos here")
    notes = bad / "notes.mp4"
    notes.write_text("this is not a video")
    audio = bad / "tone.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440", "-t", "1", str(audio))
    truncated = bad / "truncated.mp4"
    data = clips["plain"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # moov atom at the end: gone
    wrong_ext = bad / "really_a_video.dat"
    shutil.copy(clips["other"], wrong_ext)
    missing = bad / "missing.mp4"
    out = tmp_path / "ds"
    from breakgan.cli import main

    with pytest.raises(SystemExit) as e:
        main(["ingest", str(clips["plain"]), str(missing), str(empty), str(notes), str(audio), str(truncated),
              str(wrong_ext), str(clips["flat"]), "--out", str(out), "--size", str(SIZE)])
    assert e.value.code != 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    for path, what in [(missing, "no such file"), (empty, "no video files"), (notes, "not a media file"),
                       (audio, "audio only"), (truncated, "not a media file"),
                       (clips["flat"], "no frame survived")]:
        line = [l for l in lines if str(path) in l]
        assert len(line) == 1 and what in line[0], (path, lines)
    assert "6 of 8 clips failed" in err
    record = json.loads((out / "breakgan.json").read_text())
    assert record["labels"] == ["plain", "really_a_video"]  # chosen by content, not extension


def test_unusable_output_is_one_error(clips, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BreakganError, match=str(blocker / "ds")):
        _ingest([clips["plain"]], blocker / "ds")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(BreakganError, match="not a breakgan dataset"):
        _ingest([clips["plain"]], foreign)
    assert (foreign / "keep.txt").read_text() == "mine"


def test_incremental_skip_add_and_replace(clips, tmp_path):
    out = tmp_path / "ds"
    first = _ingest([clips["plain"]], out)
    n_plain = first.count
    manifest = (out / "manifest.csv").read_text()
    again = _ingest([clips["plain"]], out)
    assert again.clips[0].status == "skipped" and not again.written
    assert (out / "manifest.csv").read_text() == manifest
    added = _ingest([clips["plain"], clips["other"]], out)
    assert [c.status for c in added.clips] == ["skipped", "ingested"]
    record = json.loads((out / "breakgan.json").read_text())
    assert record["labels"] == ["plain", "other"]
    assert record["count"] == n_plain + added.clips[1].counts["kept"]
    assert np.load(out / "packed" / "8.npy").shape[0] == record["count"]
    assert (np.load(out / "packed" / "labels.npy") == 0).sum() == n_plain
    assert all((out / r["file"]).is_file() for r in _rows(out) if r["kept"] == "1")
    # Different options for a clip already in: it is redone in place, the other is untouched.
    replaced = _ingest([clips["plain"]], out, max_frames=3)
    assert replaced.clips[0].status == "ingested"
    rows = _rows(out)
    assert sum(r["kept"] == "1" for r in rows if r["label"] == "plain") == 3
    assert {r["reason"] for r in rows if r["label"] == "plain"} >= {"limit"}
    assert json.loads((out / "breakgan.json").read_text())["labels"] == ["plain", "other"]
    assert len(list((out / "frames").glob("plain_*.png"))) == 3
    with pytest.raises(BreakganError, match="64 px"):
        ingest_clips([clips["other"]], out, size=32, report=False)


def test_interrupted_ingest_leaves_previous_state(clips, tmp_path, monkeypatch):
    out = tmp_path / "ds"
    _ingest([clips["plain"]], out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    from breakgan.ingest import dataset

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dataset, "write_packed", killed)
    with pytest.raises(KeyboardInterrupt):
        _ingest([clips["other"]], out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no half-built folder left beside it


def test_mirror_adds_flipped_copies_and_warns(clips, tmp_path, capsys):
    out = tmp_path / "ds"
    summary = ingest_clips([clips["plain"]], out, size=SIZE, mirror=True)
    assert "asymmetric" in capsys.readouterr().err
    rows = _rows(out)
    mirrored = [r for r in rows if r["reason"] == "mirror"]
    originals = [r for r in rows if r["kept"] == "1" and not r["reason"]]
    assert mirrored and len(mirrored) == len(originals) == summary.clips[0].counts["mirrored"]
    assert all(r["kept"] == "1" and "mirrored" in r["file"] for r in mirrored)
    a = cv2.imread(str(out / originals[0]["file"]))
    b = cv2.imread(str(out / mirrored[0]["file"]))
    assert np.array_equal(a[:, ::-1], b)
    assert np.load(out / "packed" / "64.npy").shape[0] == 2 * len(originals)


def test_cli_ingest_prints_summary_table(clips, tmp_path):
    proc = subprocess.run(["breakgan", "ingest", str(clips["plain"]), "--out", str(tmp_path / "ds"),
                           "--size", "32"], capture_output=True, text=True, env={"COLUMNS": "200", "PATH":
                           str(Path(shutil.which("breakgan")).parent) + ":/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "plain.mp4" in proc.stderr and "ingested" in proc.stderr and "dup" in proc.stderr


def test_real_footage_squats(shared_dir, tmp_path):
    clip = shared_dir / "media" / "tfjs_pose_squats.mp4"
    if not clip.is_file():
        pytest.skip("tfjs_pose_squats.mp4 not present")
    out = tmp_path / "ds"
    summary = _ingest([clip], out, crop="dancer")
    counts = summary.clips[0].counts
    assert not summary.failed and counts["candidates"] >= 60
    assert 10 <= counts["kept"] <= counts["candidates"]
    assert np.load(out / "packed" / "64.npy").shape == (summary.count, 3, 64, 64)


def test_truncated_but_decodable_clip_is_ingested_with_a_warning(tmp_path, capsys):
    clip = tmp_path / "whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "4", "-movflags", "+faststart",
           "-pix_fmt", "yuv420p", str(clip))
    cut = tmp_path / "cut.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) * 4 // 10])  # index intact at the front, the end of the footage gone
    summary = _ingest([cut], tmp_path / "ds")
    assert not summary.failed and 0 < summary.clips[0].counts["candidates"] < 15
    err = capsys.readouterr().err
    assert "warning" in err and "cut.mp4" in err and "truncated" in err


# Pure parts: selection rules and crop geometry on made-up numbers.

def test_select_rules_in_order():
    from breakgan.ingest.quality import select

    sharp = np.array([100, 100, 20, 100, 100, 100, 100, 100, 100, 100], float)
    moving = np.array([5, 5, 5, 0, 0, 0, 0, 0, 5, 5], float)  # samples 3..7: a still stretch of five
    hashes = [int(h) for h in np.random.default_rng(0).integers(0, 1 << 62, 10)]  # ~30 bits apart
    hashes[9] = hashes[8] ^ (1 << 40) ^ (1 << 3)  # two bits from sample 8: a near-duplicate
    reasons = select(sharp, moving, hashes, min_sharpness=0.5, still_motion=1.0, still_share=0.2,
                     still_min_frames=3, dup_distance=2, max_frames=0)
    assert reasons[2] == "blur"
    assert [reasons[i] for i in range(3, 8)].count("") == 1  # 20% of five
    assert {reasons[i] for i in range(3, 8)} == {"", "still"}
    assert reasons[9] == "duplicate" and reasons[8] == ""
    limited = select(sharp, moving, hashes, min_sharpness=0.5, still_motion=1.0, still_share=0.2,
                     still_min_frames=3, dup_distance=2, max_frames=2)
    assert limited.count("") == 2 and "limit" in limited


def test_crop_geometry():
    from breakgan.ingest.crop import Rect, content_rect, crop_square, place_square, static_square

    assert content_rect(Rect(0, 30, 320, 180), 320, 240) == Rect(0, 30, 320, 180)
    assert content_rect(Rect(100, 80, 100, 60), 320, 240) is None  # a dark scene, not bars
    assert content_rect(Rect(0, 0, 320, 240), 320, 240) is None
    assert place_square(300, 90, 180, 320, 180) == (140, 0, 180)  # slid inside, not past the edge
    # A tall dancer in portrait footage: the square grows past the width (and is mirror-filled).
    boxes = np.array([[0.3, 0.05, 0.7, 0.95]] * 5)
    x, y, side = static_square(boxes, 720, 1280)
    assert side > 720 and x < 0
    frame = np.zeros((100, 50, 3), np.uint8)
    frame[:, :25] = 255
    out = crop_square(frame, -25, 0, 100, 20)
    assert out.shape == (20, 20, 3)
    assert out[:, :4].mean() > 200 and out[:, -4:].mean() < 20  # the fill mirrors the edge: no black bar


def test_folder_argument_takes_the_videos_in_it(clips, tmp_path):
    folder = tmp_path / "shoot"
    (folder / "day2").mkdir(parents=True)
    shutil.copy(clips["plain"], folder / "take1.MOV")
    shutil.copy(clips["other"], folder / "day2" / "take2")  # no extension at all
    (folder / "notes.txt").write_text("good light after 5pm")
    cv2.imwrite(str(folder / "poster.png"), np.zeros((32, 32, 3), np.uint8))
    summary = _ingest([folder], tmp_path / "ds")
    assert not summary.failed
    assert sorted(c.path.name for c in summary.clips) == ["take1.MOV", "take2"]
    assert summary.labels == ["take2", "take1"]  # day2/take2 sorts first


# Dancer-aware filters: a small figure in front of a large static backdrop.

POSES = 6  # distinct poses, each held POSE_S seconds
POSE_S = 0.8


def _stick_figure(canvas: np.ndarray, pose: int, cx: int, top: int, scale: float = 1.6) -> None:
    """A stick figure about 64 px wide and 100 px tall; `pose` picks where its hands and feet are."""
    # (left hand, right hand, left foot, right foot) as offsets from the neck / hip
    limbs = [((-16, -14), (16, -14), (-8, 26), (8, 26)),    # arms up
             ((-14, 14), (14, 14), (-8, 26), (8, 26)),      # arms down
             ((-18, 0), (18, 0), (-18, 22), (18, 22)),      # arms out, legs apart
             ((-16, -14), (14, 14), (-4, 28), (16, 14)),    # one arm up, knee raised
             ((10, -16), (18, 4), (-16, 20), (4, 28)),      # both arms right
             ((-18, 4), (-10, -16), (-4, 28), (16, 20))][pose]  # both arms left
    white, width = (250, 250, 250), 5
    neck, hip = np.array([cx, top + 14 * scale]), np.array([cx, top + 36 * scale])
    cv2.circle(canvas, (cx, int(top + 6 * scale)), int(6 * scale), white, -1)
    cv2.line(canvas, tuple(map(int, neck)), tuple(map(int, hip)), white, width)
    for base, offset in zip((neck, neck, hip, hip), limbs):
        cv2.line(canvas, tuple(map(int, base)), tuple(map(int, base + np.multiply(offset, scale))), white, width)


def _dancer_clip(path: Path, fps: int = 25) -> Path:
    """Portrait 288x512: a detailed static backdrop (noise texture + grid) and, near the middle, a small
    figure holding each of POSES poses for POSE_S seconds; light sensor noise on every frame."""
    rng = np.random.default_rng(0)
    w, h = 288, 512
    backdrop = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 4)
    backdrop = cv2.normalize(backdrop, None, 40, 200, cv2.NORM_MINMAX)
    backdrop[::32] = backdrop[:, ::32] = 90
    frames = []
    for k in range(int(POSES * POSE_S * fps)):
        frame = backdrop.copy()
        _stick_figure(frame, k // int(POSE_S * fps), w // 2, 250)
        noise = rng.integers(-3, 4, frame.shape)
        frames.append(np.clip(frame.astype(int) + noise, 0, 255).astype(np.uint8))
    proc = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
                           "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0",
                           "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", str(path)],
                          input=np.stack(frames).tobytes())
    assert proc.returncode == 0
    return path


def test_a_small_dancer_keeps_its_distinct_poses(tmp_path):
    clip = _dancer_clip(tmp_path / "poses.mp4")
    out = tmp_path / "ds"
    summary = ingest_clips([clip], out, size=128, fps=5, report=False)
    assert not summary.failed
    rows = _rows(out)
    kept = [r for r in rows if r["kept"] == "1"]
    poses_kept = {int(float(r["time_s"]) / POSE_S + 1e-6) for r in kept}
    assert poses_kept == set(range(POSES)), [(r["time_s"], r["reason"], r["motion"], r["dup_bits"]) for r in rows]
    # held poses are still thinned and repeats dropped: roughly one frame per pose, not every sample
    assert len(kept) <= 2 * POSES
    # both measures are in the manifest, taken on the dancer's region (far smaller than the frame)
    for r in rows:
        x0, y0, x1, y1 = map(int, r["region"].split())
        assert (x1 - x0) * (y1 - y0) < 128 * 128 / 4
    assert all(r["dup_bits"] != "" for r in rows[1:]) and rows[0]["dup_bits"] == ""
