"""breakgan live: OSC building, pattern events, control parsing (fuzzed), and drift on a virtual clock."""

from __future__ import annotations

import queue
import random
import socket
import struct
import time

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from breakgan.live import osc_out
from breakgan.live.clock import InternalClock, LinkClock, next_bar_beat
from breakgan.live.osc_in import Control, ControlListener, control_from_message, controls_from_datagram
from breakgan.live.pattern import Pattern, Segment, next_group
from breakgan.live.player import LiveOptions, Player, Regenerator
from breakgan.live.scheduler import wait_until
from breakgan.parts import PARTS
from breakgan.render.keys import part_keys
from breakgan.seeds import part_keyframe_seed
from breakgan.timeline import timeline_from_onsets
from breakgan.trajectory import keyframes, latent_path, part_motion


def onsets_data(tempo=120.0, bars=2, kick=(0, 8), snare=(4, 12), hat_every=2, velocity=100):
    """An onsets.json dict: 16th-note steps per bar; kick/snare at the given steps of every bar."""
    step = 60.0 / tempo / 4
    parts = {p: [] for p in PARTS}
    for s in range(16 * bars):
        if s % 16 in kick:
            parts["kick"].append({"time": s * step, "step": s, "velocity": velocity})
        if s % 16 in snare:
            parts["snare"].append({"time": s * step, "step": s, "velocity": 90})
        if hat_every and s % hat_every == 0:
            parts["hihat_closed"].append({"time": s * step, "step": s, "velocity": 70})
    return {"tempo": tempo, "steps_per_quarter": 4, "beats_per_bar": 4, "bars": bars,
            "duration": bars * 4 * 60.0 / tempo, "audio": "mix.wav", "parts": parts}


class VirtualTime:
    """A fake monotonic clock: each read advances 2 us (so spinning ends), sleep oversleeps 0..3 ms."""

    def __init__(self, seed=0, oversleep_s=0.003):
        self.t = 1000.0
        self.rng = random.Random(seed)
        self.oversleep_s = oversleep_s

    def now(self):
        self.t += 2e-6
        return self.t

    def sleep(self, d):
        self.t += max(d, 0.0) + self.rng.uniform(0.0, self.oversleep_s)


def play_through_regenerate(player, controls, *, regenerate=True, at_beat=5.0, timeout_s=30.0):
    """Start `player`, play `at_beat` beats, send /breakgan/regenerate there (unless regenerate=False) and
    wait for the background generation, then play to the end (give the player LiveOptions(bars=...))."""
    player._zeroed = False
    player._start()
    while player._cursor < player._segment.origin + at_beat:
        player.step()
    if regenerate:
        controls.put(Control("regenerate"))
        player._drain()
        deadline = time.monotonic() + timeout_s
        while player.regenerator.busy() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not player.regenerator.busy(), f"no regenerated pattern within {timeout_s:g} s"
    while player.step():
        pass


# ---- OSC out ------------------------------------------------------------------------------------

def test_osc_args_are_numbers_only_and_numpy_is_converted():
    msg = OscMessage(osc_out.osc_message("/breakgan/kick/env", np.float32(0.5), np.int64(3), np.float64(2.25),
                                         7, float("nan")))
    assert msg.address == "/breakgan/kick/env"
    assert msg.params == [0.5, 3, 2.25, 7, 0.0]
    assert [type(v) for v in msg.params] == [float, int, float, int, float]
    for bad in (True, np.bool_(False), "fast", b"\x00", None):
        with pytest.raises(TypeError):
            osc_out.osc_message("/breakgan/x", bad)


def test_addresses_become_clean_channel_names():
    assert osc_out.part_address("hihat_open", "onset") == "/breakgan/hihat_open/onset"
    with pytest.raises(ValueError):
        osc_out.address("Bad Name")
    with pytest.raises(ValueError):
        osc_out.part_address("cowbell", "onset")


def test_bundle_split_keeps_order_timetag_and_size():
    vec = np.arange(512, dtype=np.float32)
    msgs = [osc_out.osc_floats(osc_out.part_address(p, "latent"), vec + i) for i, p in enumerate(PARTS)]
    unix = 1_763_700_000.123456
    dgrams = osc_out.bundle_dgrams(msgs, unix)
    assert len(dgrams) > 1 and all(len(d) < osc_out.MAX_DATAGRAM for d in dgrams)
    got = []
    for d in dgrams:
        b = OscBundle(d)
        assert abs(b.timestamp - unix) < 1e-6
        got += [b.content(i) for i in range(b.num_contents)]
    assert [m.address for m in got] == [osc_out.part_address(p, "latent") for p in PARTS]
    assert np.allclose(got[3].params, vec + 3)
    assert osc_out.bundle_dgrams([osc_out.osc_message("/breakgan/beat", 1)], None)[0][8:16] == struct.pack(">Q", 1)


# ---- pattern and clock --------------------------------------------------------------------------

def test_events_walk_the_loop_in_order():
    pat = Pattern.from_timeline(timeline_from_onsets(onsets_data(bars=1, hat_every=0)))
    assert pat.length == 4.0
    seg = Segment(pat, origin=8.0)
    cursor, seen = 7.9, []
    for _ in range(12):
        g = next_group(seg, cursor, 4)
        seen.append((g.position, g.loop, g.bar, g.beat, tuple(p for p, _ in g.onsets)))
        cursor = g.position
    assert seen[0] == (8.0, 0, 2, 8, ("kick",))
    assert seen[1] == (9.0, None, None, 9, ("snare",))
    assert seen[2] == (10.0, None, None, 10, ("kick",))
    assert seen[4] == (12.0, 1, 3, 12, ("kick",))  # second loop starts on the next bar
    assert [s[0] for s in seen] == sorted(s[0] for s in seen)


def test_internal_clock_tempo_change_keeps_beat_continuous():
    vt = VirtualTime()
    clock = InternalClock(120, now=vt.now, origin=vt.t)
    t = clock.now() + 1.0
    b = clock.beat_at(t)
    clock.set_tempo(60, at=t)
    assert abs(clock.beat_at(t) - b) < 1e-12
    assert abs(clock.time_at_beat(b + 1) - (t + 1.0)) < 1e-9
    assert next_bar_beat(clock, t, 4) == 4


def test_link_clock_roundtrip():
    pytest.importorskip("link", reason="LinkPython-extern not installed (pip install -e '.[link]')")
    clock = LinkClock(123.0, 4)
    try:
        t = clock.now() + 0.5
        assert abs(clock.time_at_beat(clock.beat_at(t)) - t) < 2e-6
        clock.set_tempo(100.0)
        assert abs(clock.tempo() - 100.0) < 1e-6
    finally:
        clock.close()


def test_scheduler_drift_does_not_grow_over_ten_simulated_minutes():
    """Player on a virtual clock whose sleep oversleeps randomly: sent-minus-scheduled (from the bundles'
    own timetags) stays bounded and does not grow; a naive loop of relative sleeps drifts away."""
    vt = VirtualTime(seed=1)
    clock = InternalClock(120, now=vt.now, origin=vt.t + 0.1)
    errors = []

    def send(dgrams):
        ntp = struct.unpack(">Q", dgrams[0][8:16])[0]
        scheduled = ntp / 2**32 - 2208988800 - clock.unix_offset
        errors.append(vt.t - scheduled)

    minutes = 10
    opts = LiveOptions(parts=("kick",), latent_dims=0, bars=minutes * 60 * 2 // 4)  # 120 bpm: 2 beats/s
    Player(timeline_from_onsets(onsets_data()), clock, send, opts, sleep=vt.sleep, log=lambda m: None).run()
    err = np.array(errors)
    assert len(err) == minutes * 60 * 60 + 1  # 60 Hz control ticks (beats and hits fall on them) + the end
    first, last = err[: len(err) // 10], err[-len(err) // 10:]
    assert err.min() >= -1e-5 and err.max() < 0.002
    assert abs(last.mean() - first.mean()) < 2e-4

    # The same sleep on a naive loop (sleep the interval, then send) accumulates the oversleep.
    vt2 = VirtualTime(seed=1)
    start = vt2.now()
    for k in range(1, minutes * 60 * 60):
        vt2.sleep(1 / 60)
    assert vt2.now() - (start + (minutes * 3600 - 1) / 60) > 1.0  # seconds behind after 10 minutes


def test_wait_until_spins_to_the_deadline():
    vt = VirtualTime(oversleep_s=0.0015)
    deadline = vt.t + 0.1
    woke = wait_until(deadline, vt.now, vt.sleep, spin_s=0.002)
    assert deadline <= woke < deadline + 1e-4


# ---- latents and envelopes ----------------------------------------------------------------------

def _decode(msgs):
    return {m.address: m.params for m in map(OscMessage, msgs)}


def test_live_latent_equals_render_path_and_continues_over_the_loop():
    tl = timeline_from_onsets(onsets_data(bars=1))
    vt = VirtualTime()
    clock = InternalClock(120, now=vt.now, origin=vt.t)
    opts = LiveOptions(latent_dims=4, latent_size=16, keys=5, parts=("kick", "snare"))
    player = Player(tl, clock, lambda d: None, opts, sleep=vt.sleep, log=lambda m: None)
    player._start()
    origin = player._segment.origin
    keys = keyframes(16, 5, part_keyframe_seed(opts.keyframe_seed, "snare", 5))
    for beats in (0.3, 1.1, 2.75):
        got = _decode(player._control_messages(origin + beats))
        want = latent_path(tl.onsets("snare"), keys, np.array([beats * 0.5]), part_motion(opts.motion, "snare"))[0]
        assert np.allclose([got[f"/breakgan/snare/z{i}"][0] for i in range(4)], want[:4], atol=1e-6)
    # Across the loop end (4 beats) the latent moves on smoothly instead of jumping back to key 0.
    before = _decode(player._control_messages(origin + 4.0 - 1e-4))
    after = _decode(player._control_messages(origin + 4.0 + 1e-4))
    z = lambda d: np.array([d[f"/breakgan/kick/z{i}"][0] for i in range(4)])
    assert np.abs(z(before) - z(after)).max() < 1e-2
    assert np.abs(z(after) - keyframes(16, 5, opts.keyframe_seed)[0][:4]).max() > 1e-2


def test_looped_latent_equals_the_path_of_the_unrolled_pattern():
    """Loop 4 of the live loop gives the same latent as the trajectory over 5 copies of the pattern."""
    tl = timeline_from_onsets(onsets_data(bars=1))
    vt = VirtualTime()
    clock = InternalClock(120, now=vt.now, origin=vt.t)
    opts = LiveOptions(latent_dims=6, latent_size=12, keys=5, parts=("hihat_closed",))
    player = Player(tl, clock, lambda d: None, opts, sleep=vt.sleep, log=lambda m: None)
    player._start()
    origin = player._segment.origin
    on = tl.onsets("hihat_closed")
    unrolled = np.concatenate([on + [[k * tl.duration, 0.0]] for k in range(5)])
    keys = keyframes(12, 5, part_keyframe_seed(opts.keyframe_seed, "hihat_closed", 5))
    for beats in (16.01, 17.3, 19.99):
        got = _decode(player._control_messages(origin + beats))
        want = latent_path(unrolled, keys, np.array([beats * 0.5]), part_motion(opts.motion, "hihat_closed"))[0]
        assert np.allclose([got[f"/breakgan/hihat_closed/z{i}"][0] for i in range(6)], want[:6], atol=1e-4)


# ---- OSC in ---------------------------------------------------------------------------------------

def test_control_messages_are_validated():
    assert control_from_message("/breakgan/tempo", [128]) == Control("tempo", value=128.0)
    assert control_from_message("/breakgan/kick/mute", [1.0]) == Control("mute", "kick", True)
    assert control_from_message("/breakgan/snare/seed", [42]) == Control("seed", "snare", 42)
    assert control_from_message("/breakgan/regenerate", []) == Control("regenerate")
    assert control_from_message("/breakgan/play", [0]) is None  # a TouchDesigner button's release
    for kind in ("reseed", "keyframe_seed", "motion_seed", "pattern_seed"):
        assert control_from_message(f"/breakgan/{kind}", [7]) == Control(kind, value=7)
    assert control_from_message("/breakgan/reseed", [2**40]) == Control("reseed", value=2**40)  # an OSC int64
    assert control_from_message("/breakgan/kick/seed", [12.0]) == Control("seed", "kick", 12)
    for address, args in [("/breakgan/reseed", [-1]), ("/breakgan/motion_seed", [2.0**63]),
                          ("/breakgan/pattern_seed", [0.5]), ("/breakgan/keyframe_seed", [])]:
        with pytest.raises(ValueError, match="seed"):
            control_from_message(address, args)
    for address, args in [("/breakgan/tempo", ["fast"]), ("/breakgan/tempo", [True]),
                          ("/breakgan/tempo", [float("nan")]), ("/breakgan/tempo", [5000.0]),
                          ("/breakgan/tempo", []), ("/breakgan/cowbell/mute", [1]),
                          ("/breakgan/snare/seed", [1.5]), ("/breakgan/temperature", [0.0]),
                          ("/other", [1]), ("/breakgan/__import__", [1])]:
        with pytest.raises(ValueError):
            control_from_message(address, args)


def _msg(address, *args):
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(*a) if isinstance(a, tuple) else b.add_arg(a)
    return b.build().dgram


def fuzz_datagrams(seed=0, count=1500):
    rng = random.Random(seed)
    valid = [_msg("/breakgan/tempo", 140.0), _msg("/breakgan/kick/solo", 1), _msg("/breakgan/reseed", 3)]
    out = []
    for i in range(count):
        kind = i % 5
        if kind == 0:
            out.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300))))
        elif kind == 1:
            v = rng.choice(valid)
            out.append(v[: rng.randint(1, len(v) - 1)])  # truncated
        elif kind == 2:  # wrong types
            out.append(_msg(rng.choice(["/breakgan/tempo", "/breakgan/kick/mute", "/breakgan/snare/seed"]),
                            rng.choice(["x" * rng.randint(0, 40), b"\x01\x02", True, False, [1, 2], float("inf"), (1e40, "d"), (5, "h")])))
        elif kind == 3:  # unknown addresses, including ones that look like code
            out.append(_msg(rng.choice(["/breakgan/os.system", "/breakgan/kick/eval", "/x", "/breakgan//"]), 1.0))
        else:  # bundles: nested, lying about sizes, or with a bad timetag
            b = b"#bundle\x00" + bytes(rng.getrandbits(8) for _ in range(8))
            b += struct.pack(">i", rng.randint(-5, 10_000)) + rng.choice(valid)
            out.append(b + b"#bundle\x00" * rng.randint(0, 50))
    return out


def test_bundle_with_a_negative_element_size_is_rejected_not_looped_on():
    valid = _msg("/breakgan/tempo", 140.0)
    for size in (-4, 0, 3, 10_000):
        d = b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", size) + valid
        controls, problems = controls_from_datagram(d)
        assert controls == [] and problems
    nested = b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", len(valid)) + valid
    assert controls_from_datagram(nested)[0] == [Control("tempo", value=140.0)]


def test_fuzzed_datagrams_never_raise():
    for d in fuzz_datagrams(seed=3, count=3000):
        controls, problems = controls_from_datagram(d)
        for c in controls:  # only well-formed numbers in range get through (int64/double are numbers too)
            assert c.name in ("tempo", "solo", "reseed", "mute", "seed")
            assert c.name != "tempo" or 20 <= c.value <= 999
            assert c.name != "seed" or 0 <= c.value < 2**32


def test_listener_survives_fuzz_and_keeps_serving():
    logged = []
    listener = ControlListener(0, log=logged.append).start()
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert listener.host == "127.0.0.1"
        for i, d in enumerate(fuzz_datagrams()):
            out.sendto(d, ("127.0.0.1", listener.port))
            if i % 100 == 99:
                time.sleep(0.005)  # UDP drops what a full socket buffer cannot hold; pace like a client
        vt = VirtualTime()
        clock = InternalClock(120, now=vt.now, origin=vt.t)
        player = Player(timeline_from_onsets(onsets_data()), clock, lambda d: None, LiveOptions(latent_dims=0),
                        controls=listener.controls, sleep=vt.sleep, log=lambda m: None)
        player._start()
        deadline = time.monotonic() + 10
        seen = -1
        while time.monotonic() < deadline and listener.rejected != seen:
            seen = listener.rejected
            time.sleep(0.2)  # until the fuzz has all been read
        out.sendto(_msg("/breakgan/tempo", 133.0), ("127.0.0.1", listener.port))
        out.sendto(_msg("/breakgan/hihat_open/mute", 1), ("127.0.0.1", listener.port))
        while time.monotonic() < deadline and "hihat_open" not in player.state.muted:
            player._drain()
            time.sleep(0.01)
        assert listener.alive()
        assert "hihat_open" in player.state.muted
        assert clock.tempo() == 133.0
        assert listener.rejected > 500 and logged  # problems counted and logged (rate-limited)
    finally:
        out.close()
        listener.close()


def test_mute_solo_and_seed_change_what_is_sent():
    vt = VirtualTime()
    clock = InternalClock(120, now=vt.now, origin=vt.t)
    ctl: queue.Queue = queue.Queue()
    player = Player(timeline_from_onsets(onsets_data()), clock, lambda d: None,
                    LiveOptions(latent_dims=2, latent_size=8), controls=ctl, sleep=vt.sleep, log=lambda m: None)
    player._start()
    pos = player._segment.origin + 0.01  # just after the first kick + hat
    z_before = _decode(player._control_messages(pos))["/breakgan/kick/z0"]
    ctl.put(Control("solo", "snare", True))
    ctl.put(Control("seed", "kick", 99))
    player._drain()
    got = _decode(player._control_messages(pos))
    assert got["/breakgan/kick/env"] == [0.0] and got["/breakgan/hihat_closed/env"] == [0.0]
    assert got["/breakgan/kick/z0"] != z_before
    ctl.put(Control("solo", "snare", False))
    ctl.put(Control("mute", "hihat_closed", True))
    player._drain()
    got = _decode(player._control_messages(pos))
    assert got["/breakgan/kick/env"][0] > 0 and got["/breakgan/hihat_closed/env"] == [0.0]


def test_a_burst_of_seed_controls_costs_one_rebuild_and_ends_where_the_last_one_says(monkeypatch):
    from breakgan.live import player as P

    burst = [Control("reseed", value=i) for i in range(1000)]
    mixed = [Control("pattern_seed", value=1), Control("temperature", value=0.5), Control("regenerate"),
             Control("pattern_seed", value=2), Control("mute", "kick", True), Control("stop"),
             Control("mute", "kick", False), Control("pattern_seed", value=3)]
    assert P.coalesce(burst) == [Control("reseed", value=999)]
    # the regenerate reads seed 1 and temperature 0.5, so both stay; stop is kept; the rest collapse
    assert P.coalesce(mixed) == [Control("pattern_seed", value=1), Control("temperature", value=0.5),
                                 Control("regenerate"), Control("stop"), Control("mute", "kick", False),
                                 Control("pattern_seed", value=3)]

    vt = VirtualTime()
    clock = InternalClock(120, now=vt.now, origin=vt.t)
    ctl: queue.Queue = queue.Queue()
    player = Player(timeline_from_onsets(onsets_data()), clock, lambda d: None,
                    LiveOptions(latent_dims=2, latent_size=8), controls=ctl, sleep=vt.sleep, log=lambda m: None)
    builds = []
    monkeypatch.setattr(P, "part_keys", lambda *a, **kw: builds.append(kw) or part_keys(*a, **kw))
    for c in burst:
        ctl.put(c)
    player._drain()
    assert builds == [{"keyframe_seed": 999}] and player.state.pattern_seed == 999
    assert all(np.array_equal(player.keys[p], k) for p, k in
               part_keys(player.opt.parts, 8, player.opt.keys, keyframe_seed=999).items())


def test_regenerated_pattern_starts_on_the_next_bar():
    calls = []

    def fake_generate(**kw):
        calls.append(kw)
        return onsets_data(tempo=kw["tempo"], bars=kw["bars"], kick=(), snare=(0, 2, 4, 6, 8, 10, 12, 14),
                           hat_every=0)

    vt = VirtualTime()
    clock = InternalClock(120, now=vt.now, origin=vt.t + 0.1)
    ctl: queue.Queue = queue.Queue()
    sent = []
    player = Player(timeline_from_onsets(onsets_data(hat_every=0)), clock, lambda d: sent.append(d),
                    LiveOptions(parts=("kick", "snare"), latent_dims=0, bars=6), controls=ctl,
                    regenerator=Regenerator(fake_generate), sleep=vt.sleep, log=lambda m: None)
    play_through_regenerate(player, ctl)  # asked for in bar 1 (beats 4..8)
    assert calls and calls[0]["bars"] == 2 and calls[0]["seed_pattern"].startswith("kick: x.......x.......; snare: ....x.......x...")
    assert calls[0]["humanize"] == 0.0  # live's default: quantized, as before --humanize existed
    bars_seen = {}
    bar = None
    for dgrams in sent:
        for d in dgrams:
            b = OscBundle(d)
            for i in range(b.num_contents):
                m = b.content(i)
                if m.address == "/breakgan/bar":
                    bar = m.params[0]
                elif m.address.endswith("/onset") and m.params[0] > 0:
                    bars_seen.setdefault(bar, []).append(m.address.split("/")[2])
    # Old pattern (2 kicks, 2 snares a bar) through bar 1; from bar 2 on, 8 snares and no kick.
    assert sorted(bars_seen[1]) == ["kick", "kick", "snare", "snare"]
    assert bars_seen[2] == ["snare"] * 8 and bars_seen[5] == ["snare"] * 8


def _onsets_after(sent, clock, beat):
    """part -> [(beat, value)] of the onsets (value > 0) in bundles timetagged at or after `beat`."""
    out: dict = {}
    for dgrams in sent:
        for d in dgrams:
            b = OscBundle(d)
            t = struct.unpack(">Q", d[8:16])[0] / 2**32 - 2208988800 - clock.unix_offset
            at = clock.beat_at(t)
            for i in range(b.num_contents):
                m = b.content(i)
                if m.address.endswith("/onset") and m.params[0] > 0 and at >= beat - 1e-6:
                    out.setdefault(m.address.split("/")[2], []).append((at, m.params[0]))
    return out


@pytest.mark.parametrize("amount", [0.0, 0.8])
def test_regenerated_onsets_carry_the_humanized_velocities_and_timing(amount):
    """live --humanize reaches the real generator: with an amount, the regenerated pattern's onsets (from
    bar 2 on) vary in velocity and sit off the 16th grid; with 0 they are the quantized pattern as before
    (the same onsets.json as a generation without the option, one velocity per part, on the grid)."""
    from breakgan.drums import generate_onsets

    calls = []

    def generate(**kw):
        calls.append((kw, generate_onsets(**kw)))
        return calls[-1][1]

    vt = VirtualTime()
    clock = InternalClock(120, now=vt.now, origin=vt.t + 0.1)
    ctl: queue.Queue = queue.Queue()
    sent = []
    parts = ("kick", "snare", "hihat_closed")
    player = Player(timeline_from_onsets(onsets_data()), clock, sent.append,
                    LiveOptions(parts=parts, latent_dims=0, bars=4, humanize=amount), controls=ctl,
                    regenerator=Regenerator(generate), sleep=vt.sleep, log=lambda m: None)
    play_through_regenerate(player, ctl, timeout_s=120.0)
    assert player._segment.origin == 8.0 and len(calls) == 1
    kw, data = calls[0]
    assert kw["humanize"] == amount
    onsets = _onsets_after(sent, clock, 8.0)
    assert sum(len(v) for v in onsets.values()) >= 8
    values = {p: {round(v, 6) for _, v in hits} for p, hits in onsets.items()}
    off_grid = [abs(b * 4 - round(b * 4)) / 4 for hits in onsets.values() for b, _ in hits]
    if amount == 0:
        assert data == generate_onsets(**{k: v for k, v in kw.items() if k != "humanize"})
        assert all(len(v) == 1 for v in values.values()), values
        assert max(off_grid) < 1e-4
    else:
        assert any(len(v) >= 3 for v in values.values()), values
        assert np.mean(np.array(off_grid) > 0.002) > 0.5  # most hits > 1 ms off the grid (0.002 beat)


def test_stop_sends_zeros_and_play_restarts_on_a_bar():
    vt = VirtualTime()
    clock = InternalClock(120, now=vt.now, origin=vt.t)
    ctl: queue.Queue = queue.Queue()
    sent = []
    player = Player(timeline_from_onsets(onsets_data()), clock, sent.append, LiveOptions(latent_dims=0),
                    controls=ctl, sleep=vt.sleep, log=lambda m: None)
    player._zeroed = False
    player._start()
    for _ in range(20):
        player.step()
    ctl.put(Control("stop"))
    player.step()
    zero = [OscBundle(d).content(i) for d in sent[-1] for i in range(OscBundle(d).num_contents)]
    assert {m.address: m.params for m in zero}["/breakgan/kick/env"] == [0.0]
    n = len(sent)
    for _ in range(5):
        player.step()
    assert len(sent) == n  # nothing while stopped
    ctl.put(Control("play"))
    player.step()
    assert player._segment.origin % 4 == 0 and player._segment.origin > 0


def test_regenerate_without_a_generator_is_logged_not_fatal():
    vt = VirtualTime()
    clock = InternalClock(120, now=vt.now, origin=vt.t)
    ctl: queue.Queue = queue.Queue()
    player = Player(timeline_from_onsets(onsets_data()), clock, lambda d: None, LiveOptions(latent_dims=0),
                    controls=ctl, regenerator=Regenerator(None), sleep=vt.sleep, log=lambda m: None)
    player._start()
    ctl.put(Control("regenerate"))
    player._drain()
    assert player._swap is None and player.state.playing


def test_ctrl_c_sends_zeroed_onsets_and_envelopes():
    vt = VirtualTime()
    calls = {"n": 0}

    def sleep(d):
        calls["n"] += 1
        if calls["n"] == 50:
            raise KeyboardInterrupt  # Ctrl-C lands while the scheduler sleeps
        vt.sleep(d)

    clock = InternalClock(120, now=vt.now, origin=vt.t)
    sent = []
    player = Player(timeline_from_onsets(onsets_data()), clock, sent.append, LiveOptions(latent_dims=0),
                    sleep=sleep, log=lambda m: None)
    with pytest.raises(KeyboardInterrupt):
        player.run()
    assert len(sent) > 40
    last = OscBundle(sent[-1][0])
    values = {last.content(i).address: last.content(i).params for i in range(last.num_contents)}
    assert last.timestamp == 0  # immediately
    assert all(values[f"/breakgan/{p}/env"] == [0.0] and values[f"/breakgan/{p}/onset"] == [0.0] for p in PARTS)
    assert values["/breakgan/playing"] == [0]


def test_stop_with_lookahead_tags_zeros_after_what_was_already_sent():
    vt = VirtualTime()
    clock = InternalClock(120, now=vt.now, origin=vt.t)
    ctl: queue.Queue = queue.Queue()
    sent = []
    player = Player(timeline_from_onsets(onsets_data()), clock, sent.append,
                    LiveOptions(latent_dims=0, lookahead_s=0.25), controls=ctl, sleep=vt.sleep, log=lambda m: None)
    player._start()
    for _ in range(30):
        player.step()
    ctl.put(Control("stop"))
    player.step()
    tags = [OscBundle(d[0]).timestamp for d in sent]
    assert tags[-1] >= max(tags[:-1]) > clock.now() + clock.unix_offset + 0.2


def test_an_unknown_address_of_any_length_is_named_in_a_short_warning():
    with pytest.raises(ValueError, match=r"unknown address '/breakgan/aaa") as e:
        control_from_message("/breakgan/" + "a" * 60_000, [1])
    assert len(str(e.value)) < 120
