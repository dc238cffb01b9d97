"""`breakgan live --ndi` against a real NDI receiver on loopback (ndi-python, the binding of breakgan[ndi]).

The receiver runs in its own process and finds the sources without mDNS (extra IPs 127.0.0.1). It uses
the plain receive call, one thread per source, which keeps every frame with its timecode: what the
sync check needs (FrameSync would hand back the newest frame at each poll instead).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time

import numpy as np
import pytest

NDIlib = pytest.importorskip("NDIlib")

from breakgan.live.ndi_receiver import record_frames  # noqa: E402  (after the binding is known present)

FPS = 30.0
SIZE = (48, 32)
PARTS = ("kick", "snare", "hihat_closed")
# Seconds at 120 bpm (2 bars = 4 s); each part's hits at least 0.5 s apart (attack + release 0.46 s), some
# on the 30 fps frame grid (0, 0.5, 1, ...) and some between frames.
HITS = {"kick": [0.0, 1.125, 2.0, 3.375], "snare": [0.5, 1.5, 2.625, 3.5],
        "hihat_closed": [0.25, 0.875, 1.75, 2.375, 3.0]}


def receive(names: list[str], conn) -> None:
    """Child process: the project's NDI receiver, keeping each frame's pixels."""
    record_frames(names, conn, pixels=True)


def write_inputs(root):
    """A drums folder with HITS and a random-weight 32 px generator (tests/gan_helpers.TINY)."""
    import torch

    from breakgan.gan.checkpoint import prefixed, write_checkpoint
    from breakgan.gan.networks import Generator, NetConfig
    from breakgan.parts import PARTS as ALL
    from gan_helpers import TINY

    cand = root / "drums" / "cand-01"
    cand.mkdir(parents=True)
    parts = {p: [{"time": t, "step": int(round(t * 8)), "velocity": 110} for t in HITS.get(p, [])] for p in ALL}
    (cand / "onsets.json").write_text(json.dumps({"tempo": 120.0, "steps_per_quarter": 4, "beats_per_bar": 4,
                                                  "bars": 2, "duration": 4.0, "audio": "mix.wav", "parts": parts}))
    torch.manual_seed(0)
    cfg = NetConfig(resolution=32, **TINY)
    write_checkpoint(root / "run", 1000, prefixed(Generator(cfg).state_dict(), "G_ema."),
                     {"net": cfg.to_dict(), "level": cfg.levels - 1, "alpha": 1.0, "kimg": 1.0, "labels": []})
    return root / "drums", root / "run"


def onset_times(sent, clock, part):
    """Clock times (Unix s) of the part's hits, from the OSC bundles' timetags."""
    from pythonosc.osc_bundle import OscBundle

    out = []
    for dgrams in sent:
        for d in dgrams:
            b = OscBundle(d)
            if any(b.content(i).address == f"/breakgan/{part}/onset" and b.content(i).params[0] > 0
                   for i in range(b.num_contents)):
                out.append(b.timestamp)
    return sorted(set(out))


def test_ndi_sources_frame_sizes_and_onset_sync(tmp_path):
    from breakgan.live.clock import InternalClock
    from breakgan.live.frames import COMPOSITE, FrameConfig, LiveFrames, plan_streams
    from breakgan.live.player import LiveOptions, Player
    from breakgan.live.sinks import source_name
    from breakgan.timeline import timeline_from_drums

    drums, run = write_inputs(tmp_path)
    plan = plan_streams(PARTS, "parts,tiles", SIZE)
    frames = LiveFrames(FrameConfig(str(run), plan, FPS, ("ndi",), "cpu", ("127.0.0.1",)))
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    names = [source_name(s) for s in plan.streams]
    proc = ctx.Process(target=receive, args=(names, child), daemon=True)
    proc.start()
    try:
        assert frames.visible == sorted(plan.streams)  # live's own check on --ndi-ips
        assert parent.poll(90), "the receiver did not start"
        assert parent.recv() == sorted(names)  # every source found on 127.0.0.1 and connected
        clock = InternalClock(120.0)
        sent = []
        player = Player(timeline_from_drums(drums), clock, sent.append,
                        LiveOptions(parts=PARTS, latent_dims=0, latent_size=frames.latent_size, bars=2),
                        frames=frames, log=lambda m: None)
        t0_unix = None
        stats = player.run()
        t0_unix = player._t0 + clock.unix_offset
        time.sleep(0.5)
        parent.send("stop")
        assert parent.poll(30)
        rows = parent.recv()
    finally:
        final = frames.close()
        proc.join(5)
        if proc.is_alive():
            proc.terminate()
    expected = int(4.0 * FPS)
    by_source = {n: sorted((r for r in rows if r[0] == n), key=lambda r: r[1]) for n in names}
    for name, rs in by_source.items():
        assert all((r[3], r[4]) == SIZE for r in rs), name
        assert all(r[5].shape == (SIZE[1], SIZE[0], 3) for r in rs)
        ks = np.array([(r[1] - t0_unix) * FPS for r in rs])
        assert np.abs(ks - ks.round()).max() < 0.01, name  # timecodes on the frame grid of the clock
        assert ks.min() >= -0.01 and ks.max() < expected  # nothing before the start or past --bars
        assert len(rs) >= 0.8 * expected, (name, len(rs), final)
    assert stats["frames"]["sent"] >= 0.9 * expected and final["sent"] == stats["frames"]["sent"]
    lateness = np.array([r[2] - r[1] for r in rows])
    assert np.median(lateness) < 0.1, np.percentile(lateness, [50, 99])  # frames arrive around their time

    # Each part's picture changes on the first frame after each of its hits (within one frame of the
    # hit's clock time) and is still before it.
    period = 1.0 / FPS
    verified = 0
    total = 0
    for part in PARTS:
        rs = by_source[source_name(part)]
        T = np.array([r[1] for r in rs])
        X = np.stack([r[5] for r in rs]).astype(np.float32)
        d = np.concatenate([[0.0], np.abs(np.diff(X, axis=0)).mean(axis=(1, 2, 3))])
        threshold = 0.1 * d.max()  # a still picture repeats exactly (d = 0); a hit moves it by far more
        hits = onset_times(sent, clock, part)
        assert len(hits) == len(HITS[part])
        assert np.allclose(np.array(hits) - t0_unix, HITS[part], atol=1e-4)
        previous = -np.inf
        for t_on in hits:
            total += 1
            j = int(np.searchsorted(T, t_on + 1e-6))  # first frame after the hit
            if not (0 < j < len(T)) or T[j] - t_on > period + 1e-3 or T[j] - T[j - 1] > period + 1e-3:
                previous = t_on
                continue  # a frame next to the hit was dropped: this hit cannot be checked to one frame
            assert d[j] > threshold, f"{part} hit at {t_on - t0_unix:.3f} s: no change on the next frame"
            before = (T > max(previous + 0.5, t_on - 0.3)) & (T <= t_on + 1e-6)
            before[0] = False
            assert (d[before] < threshold).all(), f"{part} changes before its hit at {t_on - t0_unix:.3f} s"
            verified += 1
            previous = t_on
    assert verified >= 0.8 * total, (verified, total, final)
    # the composite carries the same clock times
    assert len(by_source[source_name(COMPOSITE)]) >= 0.8 * expected


def test_cli_sends_ndi_frames_and_reports_them(tmp_path):
    from badinput import run_cli

    drums, run = write_inputs(tmp_path)
    res = run_cli(["live", "--drums", drums, "--generator", run, "--ndi", "--ndi-fps", "20", "--ndi-ips",
                   "127.0.0.1", "--parts", "kick,snare", "--bars", "1", "--tempo", "240", "--port", "9",
                   "--latent-dims", "0", "--ndi-device", "cpu"])
    assert res.code == 0, res.err
    assert "lists 2 of the 2 sources" in res.err and "'breakgan kick'" in res.err
    sent = [line for line in res.err.splitlines() if "frames sent" in line]
    assert sent and int(sent[0].split("live: ")[1].split()[0]) >= 10  # 1 bar at 240 bpm = 1 s at 20 fps
