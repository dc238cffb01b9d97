"""`render_video` end to end with a tiny deterministic generator: sync, frame count, footage, failures."""

import json
import os
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from breakgan.errors import BreakganError
from breakgan.media import probe, read_frames
from breakgan.parts import PARTS
from breakgan.render import render_video
from breakgan.render.layout import FOOTAGE, make_layout
from breakgan.trajectory import Motion

torch.set_num_threads(1)
LATENT = 16
FPS = 25
SIZE = (192, 108)
# Onsets per part (s), spaced wider than attack + release (0.46 s) so each change starts from stillness;
# some sit on frame boundaries (1.0 s = frame 25 exactly), some just before or after a frame centre.
ONSETS = {
    "kick": [0.37, 1.0, 2.05, 2.91],
    "snare": [0.6, 1.5, 2.519, 3.3],
    "hihat_closed": [0.21, 1.021, 1.84, 2.66, 3.53],
}


class TinyG(torch.nn.Module):
    """z (B, 16) -> (B, 3, 8, 8) in [-1, 1]: a fixed random projection, so images follow z closely."""

    def __init__(self, fail_after: int | None = None):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.W = torch.nn.Parameter(torch.randn(LATENT, 3 * 64, generator=g) / LATENT ** 0.5 * 1.5)
        self.calls, self.fail_after = 0, fail_after

    def forward(self, z):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("generator exploded")
        return torch.tanh(z.float() @ self.W).view(-1, 3, 8, 8)


def write_drums(folder, onsets=ONSETS, duration=4.0, audio=True):
    folder.mkdir(parents=True, exist_ok=True)
    parts = {p: [{"time": t, "step": 0, "velocity": 110} for t in onsets.get(p, [])] for p in PARTS}
    data = {"tempo": 120.0, "steps_per_quarter": 4, "beats_per_bar": 4, "bars": 2, "duration": duration,
            "audio": "mix.wav", "selected_parts": list(onsets), "parts": parts}
    (folder / "onsets.json").write_text(json.dumps(data))
    if audio:
        rng = np.random.default_rng(0)
        sf.write(folder / "mix.wav", (0.05 * rng.standard_normal(int(22050 * (duration + 0.5)))).astype(np.float32),
                 22050)
    return folder


@pytest.fixture
def drums(tmp_path):
    return write_drums(tmp_path / "drums" / "cand-01").parent


@pytest.fixture
def footage(make_clip):
    # 2 s at 10 fps: shorter than the 4 s pattern (must loop) and at another frame rate (must resample)
    return make_clip("foot.mp4", "testsrc2=size=160x120:rate=10", 2.0)


def tile_diffs(frames, tile, margin=3):
    """Mean absolute difference of a tile between consecutive frames; diffs[k] = |frame k - frame k-1|."""
    crop = frames[:, tile.y + margin:tile.y + tile.h - margin, tile.x + margin:tile.x + tile.w - margin]
    crop = crop.astype(np.float32)
    return np.concatenate([[0.0], np.abs(np.diff(crop, axis=0)).mean(axis=(1, 2, 3))])


def decode(path, size=SIZE):
    return np.stack(list(read_frames(path, *size)))


def test_render_sync_count_audio_and_footage(tmp_path, drums, footage):
    out = tmp_path / "renders" / "sync"
    mp4 = render_video(out, (TinyG(), {"latent_size": LATENT}), drums=drums, footage=footage,
                       size=SIZE, fps=FPS, batch=7, show_progress=False)
    assert mp4 == out / "render.mp4"
    info = probe(mp4)
    assert info.has_audio and (info.width, info.height) == SIZE and info.codec == "h264"
    frames = decode(mp4)
    assert len(frames) == round(4.0 * FPS)  # exactly round(duration * fps)
    record = json.loads((out / "breakgan.json").read_text())
    assert record["stage"] == "render" and record["frames"] == 100 and record["output"] == "render.mp4"
    assert set(record["inputs"]) == {"drums", "footage"}

    lay = make_layout("tiles", tuple(ONSETS), *SIZE, footage=True)
    for part, times in ONSETS.items():
        diffs = tile_diffs(frames, lay.tile(part))
        threshold = 0.25 * diffs.max()
        for t in times:
            k = int(np.floor(t * FPS))  # the frame containing the onset time
            moving = np.flatnonzero(diffs[k - 4:] > threshold)
            first = k - 4 + moving[0]
            assert abs(first - k) <= 1, f"{part} onset {t}s: change starts on frame {first}, onset in frame {k}"
            assert diffs[k - 4:k - 1].max() < threshold  # still before the hit
    # a part's tile is still between its hits (no other part leaks into it)
    kick = tile_diffs(frames, lay.tile("kick"))
    assert kick[int(1.6 * FPS):int(2.0 * FPS)].max() < 1.0

    foot = lay.tile(FOOTAGE)
    fd = tile_diffs(frames, foot)
    # 10 fps footage in 25 fps video: the picture changes on about 10 of each 25 frames
    changes = int((fd[1:51] > 2.0).sum())
    assert 18 <= changes <= 21
    # 2 s footage loops: frame 60 shows what frame 10 showed (50 frames = 2 s later)
    crop = lambda i: frames[i, foot.y:foot.y + foot.h, foot.x:foot.x + foot.w].astype(np.float32)  # noqa: E731
    assert np.abs(crop(60) - crop(10)).mean() < 6.0 < 20.0 < np.abs(crop(30) - crop(10)).mean()


def test_same_options_same_video(tmp_path, drums):
    kw = dict(drums=drums, size=(64, 32), fps=10, show_progress=False, motion=Motion(pulse=0.3, drift=0.2))
    a = decode(render_video(tmp_path / "a", (TinyG(), {"latent_size": LATENT}), **kw), (64, 32))
    b = decode(render_video(tmp_path / "b", (TinyG(), {"latent_size": LATENT}), **kw), (64, 32))
    c = decode(render_video(tmp_path / "c", (TinyG(), {"latent_size": LATENT}), keyframe_seed=5, **kw), (64, 32))
    kw["motion"] = Motion(pulse=0.3, drift=0.2, seed=5)
    d = decode(render_video(tmp_path / "d", (TinyG(), {"latent_size": LATENT}), **kw), (64, 32))
    assert np.array_equal(a, b)
    assert np.abs(a.astype(int) - c).mean() > 5
    assert np.abs(a.astype(int) - d).mean() > 5  # the motion seed alone changes pulse and drift


@pytest.mark.parametrize("layout,extra", [("solo", {"part": "snare"}), ("pip", {}),
                                          ("blend", {"blend_envelope": "const:1.0"})])
def test_other_layouts(tmp_path, drums, footage, layout, extra):
    out = tmp_path / layout
    mp4 = render_video(out, (TinyG(), {"latent_size": LATENT}), drums=drums, footage=footage, layout=layout,
                       size=(96, 64), fps=10, show_progress=False, **extra)
    frames = decode(mp4, (96, 64))
    assert len(frames) == 40
    if layout == "blend":  # alpha 1: only generated frames, whose colours the test pattern doesn't share
        solo = decode(render_video(tmp_path / "s", (TinyG(), {"latent_size": LATENT}), drums=drums,
                                   layout="solo", size=(96, 64), fps=10, show_progress=False), (96, 64))
        assert np.abs(frames.astype(int) - solo).mean() < 3


def test_preview_is_small_and_fast(tmp_path, drums):
    mp4 = render_video(tmp_path / "p", (TinyG(), {"latent_size": LATENT}), drums=drums, size=(1280, 720),
                       fps=30, preview=True, show_progress=False)
    info = probe(mp4)
    assert (info.width, info.height) == (320, 180) and info.fps == 15


def test_failed_render_leaves_previous_output(tmp_path, drums):
    out = tmp_path / "r"
    render_video(out, (TinyG(), {"latent_size": LATENT}), drums=drums, size=(64, 32), fps=10, show_progress=False)
    before = (out / "render.mp4").read_bytes()
    with pytest.raises(RuntimeError, match="exploded"):
        render_video(out, (TinyG(fail_after=2), {"latent_size": LATENT}), drums=drums, size=(64, 32), fps=10,
                     batch=4, show_progress=False)
    assert (out / "render.mp4").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["drums", "r"]  # no partial folder or MP4 left behind
    with pytest.raises(RuntimeError):
        render_video(tmp_path / "new", (TinyG(fail_after=1), {"latent_size": LATENT}), drums=drums,
                     size=(64, 32), fps=10, batch=4, show_progress=False)
    assert not (tmp_path / "new").exists()


def test_bad_inputs(tmp_path, drums):
    g = (TinyG(), {"latent_size": LATENT})
    (tmp_path / "empty").mkdir()
    with pytest.raises(BreakganError, match="empty: no onsets.json"):
        render_video(tmp_path / "o", g, drums=tmp_path / "empty", show_progress=False)
    with pytest.raises(BreakganError, match="nope: no such run folder or checkpoint"):
        render_video(tmp_path / "o", tmp_path / "nope", drums=drums, show_progress=False)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(BreakganError, match="bad.safetensors"):
        render_video(tmp_path / "o", bad, drums=drums, show_progress=False)
    with pytest.raises(BreakganError, match="exactly one of --drums"):
        render_video(tmp_path / "o", g, show_progress=False)
    with pytest.raises(BreakganError, match="blend"):
        render_video(tmp_path / "o", g, drums=drums, layout="blend", show_progress=False)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(BreakganError, match="notes.txt"):
        render_video(tmp_path / "o", g, drums=drums, footage=text, show_progress=False)
    silent = write_drums(tmp_path / "silent", onsets={}, audio=False)
    with pytest.raises(BreakganError, match="no onsets in any part"):
        render_video(tmp_path / "o", g, drums=silent, show_progress=False)
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(22050, np.float32), 22050)
    with pytest.raises(BreakganError, match="quiet.wav: no drum onsets found"):
        render_video(tmp_path / "o", g, audio=quiet, show_progress=False)
    assert not (tmp_path / "o").exists()


def test_missing_mix_renders_silent_video(tmp_path):
    drums = write_drums(tmp_path / "d", audio=False)
    mp4 = render_video(tmp_path / "o", (TinyG(), {"latent_size": LATENT}), drums=drums, size=(64, 32), fps=10,
                       show_progress=False)
    assert not probe(mp4).has_audio
    count = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                            "stream=nb_read_frames", "-of", "csv=p=0", str(mp4)], capture_output=True, text=True)
    assert count.stdout.strip() == "40"


def test_conditional_generator_gets_a_class_per_part(tmp_path, drums):
    seen = []

    class CondG(TinyG):
        def forward(self, z, labels):
            seen.append(labels.tolist())
            return super().forward(z) * 0.5 + (labels.float() / 4).view(-1, 1, 1, 1)

    info = {"latent_size": LATENT, "num_classes": 3, "labels": ["a", "b", "c"]}
    render_video(tmp_path / "o", (CondG(), info), drums=drums, size=(64, 32), fps=5, batch=4,
                 classes={"kick": 1}, show_progress=False)
    flat = [label for batch in seen for label in batch]
    # parts in order kick, snare, hihat_closed: kick=1 as asked, the others part index mod 3
    assert flat == [1, 1, 2] * 20
    with pytest.raises(BreakganError, match="--classes snare=5"):
        render_video(tmp_path / "o", (CondG(), info), drums=drums, classes={"snare": 5}, show_progress=False)
