"""breakgan live --preview-port: each part's GAN frames rendered in a child process, served as MJPEG."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from breakgan.errors import BreakganError
from breakgan.live.clock import InternalClock
from breakgan.live.player import LiveOptions, Player
from breakgan.timeline import timeline_from_onsets

from test_live import VirtualTime, onsets_data


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import torch

    from breakgan.gan.checkpoint import prefixed, write_checkpoint
    from breakgan.gan.networks import Generator, NetConfig

    torch.manual_seed(0)
    cfg = NetConfig(resolution=8, latent_size=24, fmap_base=32, fmap_max=16)
    run = tmp_path_factory.mktemp("runs") / "tiny"
    write_checkpoint(run, 1000, prefixed(Generator(cfg).state_dict(), "G_ema."),
                     {"net": cfg.to_dict(), "level": cfg.levels - 1, "alpha": 1.0, "kimg": 1.0, "labels": []})
    return run


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def test_preview_serves_a_tile_per_part(tiny_run):
    import cv2

    from breakgan.live.preview import Preview

    preview = Preview(tiny_run, port=0, device="cpu", fps=100)
    try:
        assert preview.latent_size == 24
        rng = np.random.default_rng(0)
        preview.show(["kick", "snare", "ride"], rng.standard_normal((3, 24)), 0.0)
        first = fetch(preview.url + "frame.jpg")
        img = cv2.imdecode(np.frombuffer(first, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (2 * 192, 2 * 192, 3)  # 3 parts -> 2 x 2 grid of 192 px tiles
        assert img[200:, 200:].mean() < 3  # the unused fourth tile stays black (JPEG blurs its edge)
        # A new latent gives a new frame.
        preview.show(["kick", "snare", "ride"], 3 * rng.standard_normal((3, 24)), 1.0)
        deadline = time.monotonic() + 20
        while fetch(preview.url + "frame.jpg") == first:
            assert time.monotonic() < deadline, "the preview never changed"
            time.sleep(0.05)
        with urllib.request.urlopen(preview.url + "stream", timeout=10) as r:
            assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            assert r.read(7) == b"--frame"
    finally:
        preview.close()


def test_a_viewer_that_hangs_up_leaves_no_traceback(tiny_run, capfd):
    import socket
    import struct

    from breakgan.live.preview import Preview

    preview = Preview(tiny_run, port=0, device="cpu", fps=100)
    try:
        preview.show(["kick"], np.zeros((1, 24)), 0.0)
        fetch(preview.url + "frame.jpg")
        for path in ("/stream", "/frame.jpg") * 10:
            s = socket.create_connection(("127.0.0.1", preview.port), timeout=5)
            s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
            s.close()
        time.sleep(1.0)
        assert fetch(preview.url + "frame.jpg")[:2] == b"\xff\xd8"  # still serving
        with pytest.raises(urllib.error.HTTPError, match="405"):
            urllib.request.urlopen(urllib.request.Request(preview.url, data=b"x", method="POST"), timeout=10)
    finally:
        preview.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err[-2000:]


def test_preview_of_a_missing_generator_is_one_error(tmp_path):
    from breakgan.live.preview import Preview

    with pytest.raises(BreakganError, match="nope"):
        Preview(tmp_path / "nope", port=0)


class FakePreview:
    period = 0.04

    def __init__(self):
        self.frames = []
        self._last = -1e9

    def due(self, t):
        return t - self._last >= self.period

    def show(self, names, z, t):
        self._last = t
        self.frames.append((names, z))


def test_player_hands_latents_to_the_preview_at_its_rate():
    vt = VirtualTime()
    clock = InternalClock(120, now=vt.now, origin=vt.t)
    fake = FakePreview()
    player = Player(timeline_from_onsets(onsets_data(bars=1)), clock, lambda d: None,
                    LiveOptions(parts=("kick", "snare"), latent_dims=0, latent_size=16, bars=1),
                    sleep=vt.sleep, log=lambda m: None, preview=fake)
    player.run()
    assert 40 <= len(fake.frames) <= 52  # 2 s at 25 frames a second (ticks are 60 Hz)
    names, z = fake.frames[-1]
    assert names == ["kick", "snare"] and z.shape == (2, 16)
