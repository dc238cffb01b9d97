"""live's frame path without a network: stream plans, the drop rule, the renderer, the player's frame
grid (same latents as OSC, on time, never past the end), and the --ndi* options' errors."""

from __future__ import annotations

import json
import queue
import struct

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from pythonosc.osc_bundle import OscBundle

from breakgan.drums.groove.apply import check_amount
from breakgan.errors import BreakganError
from breakgan.live.clock import InternalClock
from breakgan.live.frames import COMPOSITE, FrameRenderer, pick, plan_streams, too_late
from breakgan.live.osc_in import Control
from breakgan.live.player import LiveOptions, Player, Regenerator
from breakgan.live.sinks import parse_ips, source_name
from breakgan.render.frames import to_tiles
from breakgan.render.layout import compose
from breakgan.timeline import timeline_from_onsets

from badinput import expect_clean_error
from test_live import VirtualTime, onsets_data, play_through_regenerate

LATENT = 12


class LinearG(torch.nn.Module):
    """z (B, 12) -> (B, 3, 8, 8) in [-1, 1] by a fixed random projection."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.W = torch.nn.Parameter(torch.randn(LATENT, 3 * 64, generator=g) / LATENT ** 0.5)

    def forward(self, z):
        return torch.tanh(z.float() @ self.W).view(-1, 3, 8, 8)


# ---- stream plans ---------------------------------------------------------------------------------

def test_plans_name_their_streams_and_sizes():
    parts = ("kick", "snare", "hihat_closed")
    p = plan_streams(parts, "parts", (64, 48))
    assert p.streams == list(parts) and p.layout is None and p.sizes() == {(64, 48): [0, 1, 2]}
    p = plan_streams(parts, "parts,tiles", (64, 48))
    assert p.streams == [*parts, COMPOSITE] and p.layout.kind == "tiles"
    assert sorted(i for idx in p.sizes().values() for i in idx) == [0, 0, 1, 1, 2, 2]  # parts + tiles
    p = plan_streams(parts, "solo", (32, 32), "snare")
    assert p.streams == [COMPOSITE] and p.layout.parts == ("snare",) and p.sizes() == {(32, 32): [1]}
    p = plan_streams(parts, "blend", (32, 32), "hihat_closed")
    assert [t.name for t in p.layout.tiles] == ["kick", "hihat_closed"] and p.main == "hihat_closed"
    assert source_name("kick") == "breakgan kick" and source_name(COMPOSITE) == "breakgan"


@pytest.mark.parametrize("kinds,parts,main,word", [
    ("tiles,solo", ("kick", "snare"), None, "one composite"),
    ("grid", ("kick",), None, "--ndi-layout"),
    (" , ", ("kick",), None, "--ndi-layout"),
    ("blend", ("kick",), None, "two parts"),
    ("solo", ("kick",), "snare", "--ndi-part"),
])
def test_bad_plans_are_one_error(kinds, parts, main, word):
    with pytest.raises(BreakganError, match=word):
        plan_streams(parts, kinds, (32, 32), main)


def test_ips_are_checked():
    assert parse_ips("127.0.0.1, ::1") == ("127.0.0.1", "::1")
    for bad in ("", "localhost", "300.1.1.1", "1.2.3.4;rm", ",".join(["10.0.0.1"] * 33)):
        with pytest.raises(BreakganError, match="--ndi-ips"):
            parse_ips(bad)


# ---- the drop rule --------------------------------------------------------------------------------

def test_pick_takes_the_first_frame_that_can_still_be_made():
    items = [(k, 10.0 + k * 0.1) for k in range(5)]
    chosen, dropped = pick(items, now=10.05, est_s=0.1)  # 10.15 is the first send time >= 10.15
    assert chosen == (2, 10.2) and dropped == items[:2]
    chosen, dropped = pick(items, now=9.0, est_s=0.1)
    assert chosen == items[0] and dropped == []
    chosen, dropped = pick(items, now=11.0, est_s=0.01)
    assert chosen is None and dropped == items
    assert not too_late(1.0, 1.0 + 0.4 / 30, 1 / 30) and too_late(1.0, 1.0 + 0.6 / 30, 1 / 30)


# ---- rendering ------------------------------------------------------------------------------------

def test_renderer_reuses_render_tiles_and_layouts():
    parts = ("kick", "snare", "crash")
    z = np.random.default_rng(0).standard_normal((3, LATENT)).astype(np.float32)
    G = LinearG()
    with torch.no_grad():
        images = G(torch.from_numpy(z))
    plan = plan_streams(parts, "parts,tiles", (40, 24))
    out = FrameRenderer(G, plan, "cpu").render(z)
    assert sorted(out) == sorted([*parts, COMPOSITE])
    for i, p in enumerate(parts):
        assert out[p].shape == (24, 40, 4) and out[p].dtype == np.uint8 and (out[p][:, :, 3] == 255).all()
        assert np.array_equal(out[p][:, :, :3], to_tiles(images[i:i + 1], (40, 24))[0].numpy())
    tiles = {t.name: to_tiles(images[parts.index(t.name)][None], (t.w, t.h))[0].numpy() for t in plan.layout.tiles}
    assert np.array_equal(out[COMPOSITE][:, :, :3], compose(plan.layout, tiles))
    blend = plan_streams(parts, "blend", (16, 16), "snare")
    r = FrameRenderer(G, blend, "cpu")
    base = to_tiles(images[2:3], (16, 16))[0].numpy()  # crash follows snare in the part order
    top = to_tiles(images[1:2], (16, 16))[0].numpy()
    assert np.array_equal(r.render(z, 0.0)[COMPOSITE][:, :, :3], base)
    assert np.array_equal(r.render(z, 1.0)[COMPOSITE][:, :, :3], top)


# ---- the player's frame grid ----------------------------------------------------------------------

class FakeFrames:
    """Stands in for LiveFrames: records what the player hands over, with the virtual time of each push."""

    def __init__(self, clock, plan, fps=30.0, horizon=0.05):
        self.clock, self.fps, self._horizon = clock, fps, horizon
        self.cfg = type("Cfg", (), {"plan": plan})()
        self.pushed, self.skipped, self.clears = [], 0, 0

    def horizon(self):
        return self._horizon

    def stride(self):
        return 1

    def push(self, k, t_send, t_unix, z, alpha):
        self.pushed.append((k, self.clock.now(), t_unix - self.clock.unix_offset, z.copy(), alpha))

    def clear(self):
        self.clears += 1

    def report(self, log):
        pass

    def stats(self):
        return {}


def osc_latents(sent, clock):
    """part -> (clock times of the bundles, whole latent vectors), from /latent messages."""
    out: dict = {}
    for dgrams in sent:
        for d in dgrams:
            b = OscBundle(d)
            t = struct.unpack(">Q", d[8:16])[0] / 2**32 - 2208988800 - clock.unix_offset
            for i in range(b.num_contents):
                m = b.content(i)
                if m.address.endswith("/latent"):
                    ts, zs = out.setdefault(m.address.split("/")[2], ([], []))
                    ts.append(t)
                    zs.append(np.array(m.params))
    return {p: (np.array(ts), np.array(zs)) for p, (ts, zs) in out.items()}


def test_frames_carry_the_osc_latents_of_their_clock_time_across_a_regenerated_pattern():
    def fake_generate(**kw):
        return onsets_data(tempo=kw["tempo"], bars=kw["bars"], kick=(2, 6, 10), snare=(1, 9), hat_every=0)

    vt = VirtualTime()
    clock = InternalClock(120, now=vt.now, origin=vt.t + 0.1)
    parts = ("kick", "snare")
    fr = FakeFrames(clock, plan_streams(parts, "parts,blend", (16, 16), "snare"))
    ctl: queue.Queue = queue.Queue()
    sent = []
    opts = LiveOptions(parts=parts, latent_dims=0, latent_vector=True, latent_size=LATENT, bars=6,
                       lookahead_s=0.02, rate=60.0)
    player = Player(timeline_from_onsets(onsets_data(hat_every=0)), clock, sent.append, opts, controls=ctl,
                    regenerator=Regenerator(fake_generate), sleep=vt.sleep, log=lambda m: None, frames=fr)
    play_through_regenerate(player, ctl)
    t0 = player._t0
    assert player._segment.origin == 8.0  # the regenerated pattern took over at bar 2
    # The grid: every frame from the start to the end of bar 6 (12 s at 120 bpm), none past it.
    ks = [k for k, *_ in fr.pushed]
    assert ks == list(range(len(ks))) and len(ks) == 12 * 30
    for k, pushed_at, t, z, alpha in fr.pushed:
        assert abs(t - (t0 + k / 30)) < 1e-6  # (through Unix seconds: ~1e-7 s resolution)
        assert pushed_at <= t - opts.lookahead_s  # handed over before its send time
    # Same latents as the OSC bundles at the same clock times (every other 60 Hz tick is a frame time),
    # before and after the regenerated pattern took over at a bar line.
    lat = osc_latents(sent, clock)
    checked = 0
    for k, _, t, z, alpha in fr.pushed:
        for i, p in enumerate(parts):
            ts, zs = lat[p]
            j = int(np.argmin(np.abs(ts - t)))
            if abs(ts[j] - t) < 1e-5:
                assert np.allclose(z[i], zs[j], atol=1e-5), (k, p)
                checked += 1
    assert checked >= 2 * 12 * 30 * 0.9
    # blend follows the main part's envelope: 0 before its first hit, up on its hits
    alphas = np.array([a for *_, a in fr.pushed])
    assert alphas.max() > 0.5 and alphas[0] == 0.0


def test_stop_clears_the_frames_and_play_restarts_the_grid():
    vt = VirtualTime()
    clock = InternalClock(120, now=vt.now, origin=vt.t)
    fr = FakeFrames(clock, plan_streams(("kick",), "parts", (16, 16)))
    ctl: queue.Queue = queue.Queue()
    player = Player(timeline_from_onsets(onsets_data()), clock, lambda d: None,
                    LiveOptions(parts=("kick",), latent_dims=0, latent_size=LATENT), controls=ctl,
                    sleep=vt.sleep, log=lambda m: None, frames=fr)
    player._zeroed = False
    player._start()
    for _ in range(30):
        player.step()
    n, clears = len(fr.pushed), fr.clears
    assert n > 10
    ctl.put(Control("stop"))
    for _ in range(5):
        player.step()
    assert len(fr.pushed) == n and fr.clears == clears + 1
    ctl.put(Control("play"))
    player.step()
    assert fr.clears == clears + 2 and fr.pushed[-1][0] < 10  # a new grid from the new start


# ---- CLI errors -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def live_inputs(tmp_path_factory):
    from breakgan.gan.checkpoint import prefixed, write_checkpoint
    from breakgan.gan.networks import Generator, NetConfig

    root = tmp_path_factory.mktemp("ndi_cli")
    cand = root / "drums" / "cand-01"
    cand.mkdir(parents=True)
    (cand / "onsets.json").write_text(json.dumps(onsets_data(bars=1)))
    torch.manual_seed(0)
    cfg = NetConfig(resolution=8, latent_size=8, fmap_base=16, fmap_max=8)
    write_checkpoint(root / "run", 1000, prefixed(Generator(cfg).state_dict(), "G_ema."),
                     {"net": cfg.to_dict(), "level": cfg.levels - 1, "alpha": 1.0, "kimg": 1.0, "labels": []})
    return root


@pytest.mark.parametrize("extra,name", [
    (["--ndi"], "--generator"),
    (["--ndi", "--GEN", "--ndi-size", "99998x99998"], "--ndi-size"),
    (["--ndi", "--GEN", "--ndi-size", "64"], "--ndi-size"),
    (["--ndi", "--GEN", "--ndi-layout", "tiles,solo"], "--ndi-layout"),
    (["--ndi", "--GEN", "--ndi-layout", "mosaic"], "--ndi-layout"),
    (["--ndi", "--GEN", "--ndi-ips", "300.1.1.1"], "--ndi-ips"),
    (["--ndi", "--GEN", "--ndi-fps", "0"], "--ndi-fps"),
    (["--ndi", "--GEN", "--ndi-fps", "nan"], "--ndi-fps"),
    (["--ndi", "--GEN", "--ndi-part", "cowbell"], "--ndi-part"),
    (["--ndi", "--GEN", "--ndi-part", "snare", "--parts", "kick", "--ndi-layout", "solo"], "--ndi-part"),
    (["--ndi", "--GEN", "--ndi-device", "gpu"], "--ndi-device"),
    (["--spout", "--GEN"], "--spout"),
])
def test_frame_options_fail_cleanly(live_inputs, extra, name):
    argv = ["live", "--drums", str(live_inputs / "drums"), "--bars", "1", "--port", "9"]
    for a in extra:
        argv += ["--generator", str(live_inputs / "run")] if a == "--GEN" else [a]
    expect_clean_error(argv, names=name, watch=[live_inputs])


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan", "inf"])
def test_bad_humanize_is_the_drums_options_one_line(live_inputs, value):
    res = expect_clean_error(["live", "--drums", str(live_inputs / "drums"), "--bars", "1", "--port", "9",
                              "--humanize", value], names="--humanize", watch=[live_inputs])
    try:  # the same line as `breakgan drums --humanize` gives: one check for both
        check_amount(float(value))
    except BreakganError as e:
        assert str(e) in res.err
    else:
        raise AssertionError(f"check_amount accepted {value}")


@settings(max_examples=20, deadline=None)
@given(text=st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s))
def test_fuzzed_ndi_text_options_are_accepted_or_one_named_error(text):
    from breakgan.render.options import parse_size

    for option, check in (("--ndi-size", lambda t: parse_size(t, "--ndi-size")), ("--ndi-ips", parse_ips),
                          ("--ndi-layout", lambda t: plan_streams(("kick", "snare"), t, (32, 32)))):
        try:
            check(text)
        except BreakganError as e:
            assert option in str(e)
