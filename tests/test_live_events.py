"""The live event walk (loop markers, bars, hits, the --bars end) against an independent unrolling.

Regressions of issue 11: `/breakgan/loop` went out only at the first loop start when the pattern's
length came out of onsets.json a hair over a whole beat count (seconds rounded to 1 us: a 4-bar loop at
110 bpm is 16.0000005 beats); `--bars 2` also sent the hits on the downbeat after the last bar when
their rounded time fell a hair before it.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from pythonosc.osc_bundle import OscBundle

from breakgan.live.clock import InternalClock
from breakgan.live.pattern import EPS, Pattern, Segment, next_group, snap_beats
from breakgan.live.player import LiveOptions, Player
from breakgan.parts import PARTS
from breakgan.timeline import timeline_from_onsets

from test_live import VirtualTime

TOL = 1e-4  # beats: the reference's tolerance, far above rounding, far below a 16th (0.25)


def onsets_json(tempo, bars, hits, beats_per_bar=4, duration_beats=None):
    """An onsets.json dict the way the drums command writes it: seconds rounded to 1 us.
    hits: {part: [(beat, velocity 0..127), ...]}."""
    spb = 60.0 / tempo
    length = bars * beats_per_bar if duration_beats is None else duration_beats
    parts = {p: [] for p in PARTS}
    for p, hs in hits.items():
        parts[p] = [{"time": round(b * spb, 6), "step": int(round(b * 4)), "velocity": v} for b, v in hs]
    return {"tempo": float(tempo), "steps_per_quarter": 4, "beats_per_bar": beats_per_bar, "bars": bars,
            "duration": round(length * spb, 6), "audio": "mix.wav", "parts": parts}


def walk(seg, bpb, end):
    """Every group from the segment origin until the end group (which is returned last)."""
    cursor, groups = seg.origin - 1e-6, []
    for _ in range(100_000):
        g = next_group(seg, cursor, bpb, None, end)
        groups.append(g)
        if g.end:
            return groups
        assert g.position > cursor
        cursor = g.position
    raise AssertionError("the walk never reached the end")


def expected(data, origin, bars):
    """What should be sent, from the JSON's seconds alone (no Pattern): loop starts, bar lines and hits
    (part, beat position), each before the end, every loop a copy of the first."""
    tempo, bpb = data["tempo"], data["beats_per_bar"]
    length = data["duration"] * tempo / 60.0
    end = origin + bars * bpb
    loops, hits = [], []
    n = 0
    while origin + n * length < end - TOL:
        loops.append((n, origin + n * length))
        for p, evs in data["parts"].items():
            for e in evs:
                b = e["time"] * tempo / 60.0
                if b < length - TOL:  # a hit at the loop end belongs to the next loop
                    pos = origin + n * length + b
                    if pos < end - TOL:
                        hits.append((p, pos))
        n += 1
    bar_lines = [(k, float(k * bpb)) for k in range(int(origin // bpb), int(end // bpb))]
    return loops, bar_lines, sorted(hits, key=lambda h: (h[1], PARTS.index(h[0]))), end


def check_walk(data, bars, origin=0.0):
    pat = Pattern.from_timeline(timeline_from_onsets(data))
    bpb = pat.beats_per_bar
    loops, bar_lines, hits, end = expected(data, origin, bars)
    groups = walk(Segment(pat, origin), bpb, end)
    assert groups[-1].end and groups[-1].position == end
    got_loops = [(g.loop, g.position) for g in groups if g.loop is not None]
    got_bars = [(g.bar, g.position) for g in groups if g.bar is not None]
    got_hits = [(p, g.position) for g in groups for p, _ in g.onsets]
    assert [n for n, _ in got_loops] == [n for n, _ in loops]
    assert np.allclose([x for _, x in got_loops], [x for _, x in loops], atol=TOL)
    assert got_bars == bar_lines
    assert [p for p, _ in got_hits] == [p for p, _ in hits]
    assert np.allclose([x for _, x in got_hits], [x for _, x in hits], atol=TOL)
    # One group per position: a loop start on a bar line is one bundle with the bar, not two.
    positions = [g.position for g in groups]
    assert all(b - a > EPS for a, b in zip(positions, positions[1:]))
    return groups


# ---- generated patterns (the issue's repro) ------------------------------------------------------

@pytest.fixture(scope="module")
def generated():
    """Patterns from the shipped DrumsRNN at tempos whose 4-bar length rounds up, down and exactly."""
    from breakgan.drums import generate_onsets

    seed = "kick: x.....x...x.....; snare: ....x..x.x..x.xx; hihat_closed: x.x.x.x.x.x.x.xx"
    return {(tempo, rs): generate_onsets(seed_pattern=seed, bars=4, tempo=tempo, random_seed=rs)
            for tempo in (110, 95, 100) for rs in (5, 6)}


def test_generated_patterns_send_every_loop_marker_and_no_hit_past_the_end(generated):
    for (tempo, rs), data in generated.items():
        assert data["duration"] == round(16 * 60 / tempo, 6)
        for bars in (8, 2, 5, 12):
            groups = check_walk(data, bars)
            assert [g.loop for g in groups if g.loop is not None] == list(range(math.ceil(bars / 4)))
        # A Link session starts the pattern on an arbitrary (large) bar line; nothing changes.
        check_walk(data, 8, origin=4.0 * 250_001)


def test_the_issue_repro_on_the_player(generated):
    """`live --drums D --tempo 120 --bars 8` on a 110 bpm pattern: /loop 0 and 1 (bars 0 and 4); with
    --bars 2 the kick count equals the hits of the pattern's first two bars."""
    data = generated[(110, 5)]
    kick_first_two_bars = sum(1 for e in data["parts"]["kick"] if e["time"] * 110 / 60 < 8 - TOL)
    for bars, loops, kicks in ((8, [0, 1], None), (2, [0], kick_first_two_bars)):
        sent = run_player(data, bars)
        assert [v for a, v in sent if a == "/breakgan/loop"] == loops
        assert [v for a, v in sent if a == "/breakgan/bar"] == list(range(bars))
        hits = [v for a, v in sent if a == "/breakgan/kick/hits"]
        if kicks is not None:
            assert hits == list(range(1, kicks + 1))


def run_player(data, bars, tempo=120.0):
    vt = VirtualTime()
    clock = InternalClock(tempo, now=vt.now, origin=vt.t)
    sent = []

    def send(dgrams):
        for d in dgrams:
            b = OscBundle(d)
            sent.extend((b.content(i).address, b.content(i).params[0]) for i in range(b.num_contents))

    Player(timeline_from_onsets(data), clock, send, LiveOptions(latent_dims=0, bars=bars),
           sleep=vt.sleep, log=lambda m: None).run()
    return sent


# ---- handcrafted edge cases ---------------------------------------------------------------------

K, S, H = "kick", "snare", "hihat_closed"
CASES = {
    # onsets on every loop boundary, written as the JSON rounds them
    "boundary_110": (110, 2, {K: [(0, 100), (4, 100)], S: [(7.75, 90)]}, None),
    # a hit at the loop end (time == duration) belongs to the next loop's start
    "hit_at_loop_end": (120, 1, {K: [(0, 100), (4, 100)], S: [(2, 90)]}, None),
    # no hit at the loop start: the marker still goes out with the bar line
    "no_hit_on_the_one": (93, 2, {S: [(1, 90), (5, 90)], H: [(7.5, 60)]}, None),
    # last hit a few ms before the loop end: played in its own loop, never merged into the next
    "last_hit_near_end": (140, 1, {K: [(0, 100), (3.99, 100)]}, None),
    # no hits at all: loops, bars and beats only
    "empty": (107, 1, {}, None),
    # a loop of 3 beats in 4/4 (an analysed song): loop starts fall between bar lines
    "odd_length": (121, 1, {K: [(0, 100), (1.5, 80)]}, 3.0),
    # a loop a hair over 2 bars that does not snap (not a rounding artefact): its own loop starts
    "long_loop": (120, 2, {K: [(0, 100)]}, 8.01),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("bars", [1, 2, 3, 7])
def test_handcrafted_patterns(name, bars):
    tempo, pbars, hits, dur = CASES[name]
    check_walk(onsets_json(tempo, pbars, hits, duration_beats=dur), bars)


def test_a_hit_exactly_on_the_end_is_not_sent_but_one_just_before_is():
    # 2-bar pattern at 110 bpm: the kick on beat 4 is stored at 2.181818 s = 3.9999997 beats.
    data = onsets_json(110, 2, {K: [(0, 100), (3.99, 100), (4, 100)]})
    assert data["parts"][K][2]["time"] * 110 / 60 < 4 - EPS
    groups = walk(Segment(Pattern.from_timeline(timeline_from_onsets(data)), 0.0), 4, 4.0)  # --bars 1
    sent = [(p, g.position) for g in groups for p, _ in g.onsets]
    assert [p for p, _ in sent] == [K, K] and abs(sent[1][1] - 3.99) < TOL
    assert groups[-1].end and groups[-1].position == 4.0 and not groups[-1].onsets


def test_snap_only_moves_rounding_artefacts():
    x = np.array([16.0000005, 7.9999996, 15.0000006, 8.01, 1 / 3, 2.5 + 3e-5])
    got = snap_beats(x)
    assert list(got[:3]) == [16.0, 8.0, 15.0]
    assert got[3] == 8.01 and got[4] == 1 / 3 and got[5] == 2.5 + 3e-5


# ---- property: any step pattern, any tempo, any bar count ---------------------------------------

@settings(max_examples=25, deadline=None)
@given(tempo=st.floats(40.0, 300.0), pbars=st.integers(1, 4), bars=st.integers(1, 9),
       steps=st.lists(st.tuples(st.sampled_from([K, S, H, "crash"]), st.integers(0, 63), st.integers(1, 127)),
                      max_size=24),
       origin_bar=st.sampled_from([0, 1, 37, 250_001]))
def test_any_rounded_step_pattern_walks_like_its_unrolling(tempo, pbars, bars, steps, origin_bar):
    hits: dict[str, list] = {}
    for part, step, vel in steps:
        if step < 16 * pbars:
            hits.setdefault(part, []).append((step / 4, vel))
    for part in hits:
        hits[part] = sorted(set(hits[part]), key=lambda h: h[0])
        # one hit per part and step (as the drums command writes them)
        hits[part] = [h for i, h in enumerate(hits[part]) if i == 0 or h[0] != hits[part][i - 1][0]]
    check_walk(onsets_json(round(tempo, 3), pbars, hits), bars, origin=4.0 * origin_bar)


def test_send_times_of_the_loop_markers_are_the_bar_times(generated):
    """On the player, /loop 1 of a 110 bpm pattern played at 120 bpm is timetagged at bar 4 (8 s)."""
    vt = VirtualTime()
    clock = InternalClock(120.0, now=vt.now, origin=vt.t)
    tags = []

    def send(dgrams):
        for d in dgrams:
            b = OscBundle(d)
            for i in range(b.num_contents):
                if b.content(i).address == "/breakgan/loop":
                    ntp = struct.unpack(">Q", d[8:16])[0]
                    tags.append(ntp / 2**32 - 2208988800 - clock.unix_offset)

    player = Player(timeline_from_onsets(generated[(110, 5)]), clock, send, LiveOptions(latent_dims=0, bars=8),
                    sleep=vt.sleep, log=lambda m: None)
    player.run()
    t0 = clock.time_at_beat(0)
    assert len(tags) == 2 and abs(tags[1] - tags[0] - 8.0) < 1e-6 and abs(tags[0] - t0) < 1e-6


def test_osc_values_keep_the_old_pattern_until_the_swap_bar_line():
    """After /regenerate the event walk installs the new pattern at its last event before the bar line;
    the envelopes and latents of the control ticks in between must still be the old pattern's (they
    used to jump to the new pattern's start: latents held, envelope tails cut to 0)."""
    from test_live import onsets_data, play_through_regenerate
    from test_live_frames import LATENT, osc_latents

    def run(regenerate):
        import queue as q

        from breakgan.live.player import Regenerator

        def fake_generate(**kw):
            return onsets_data(tempo=kw["tempo"], bars=kw["bars"], kick=(3,), snare=(6,), hat_every=0)

        vt = VirtualTime()
        clock = InternalClock(120, now=vt.now, origin=vt.t + 0.1)
        ctl: q.Queue = q.Queue()
        sent = []
        player = Player(timeline_from_onsets(onsets_data(hat_every=0)), clock, sent.append,
                        LiveOptions(parts=("kick", "snare"), latent_dims=0, latent_vector=True, latent_size=LATENT,
                                    bars=3), controls=ctl, regenerator=Regenerator(fake_generate),
                        sleep=vt.sleep, log=lambda m: None)
        play_through_regenerate(player, ctl, regenerate=regenerate)
        return osc_latents(sent, clock), clock, player

    old, clock_a, _ = run(False)
    new, clock_b, player = run(True)
    assert player._segment.origin == 8.0
    for part in ("kick", "snare"):
        ta, za = old[part]
        tb, zb = new[part]
        # same virtual clocks: tick k of both runs is at the same time; beats 7.0..8.0 = 3.5..4.0 s
        ra = (ta - ta[0] >= 3.5) & (ta - ta[0] < 4.0 - 1e-6)
        rb = (tb - tb[0] >= 3.5) & (tb - tb[0] < 4.0 - 1e-6)
        assert ra.sum() == rb.sum() >= 25
        assert np.allclose(za[ra], zb[rb], atol=1e-6)
        after_a = ta - ta[0] > 4.3
        after_b = tb - tb[0] > 4.3
        n = min(after_a.sum(), after_b.sum())  # (a tick merged into a hit's bundle takes the hit's timetag)
        assert not np.allclose(za[after_a][:n], zb[after_b][:n], atol=1e-3)  # the new pattern does play
