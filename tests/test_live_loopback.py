"""breakgan live against a real python-osc UDP server on loopback: addresses, types, counts, order, timetags."""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import numpy as np
import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage
from pythonosc.osc_server import BlockingOSCUDPServer
from typer.testing import CliRunner

from breakgan.cli import app
from breakgan.live.clock import InternalClock
from breakgan.live.osc_out import MAX_DATAGRAM, OscSender
from breakgan.live.player import LiveOptions, Player
from breakgan.parts import PARTS
from breakgan.timeline import timeline_from_onsets

from test_live import onsets_data

CLEAN = re.compile(r"^/breakgan(/[a-z0-9_]+)+$")


class Recorder(Dispatcher):
    """A python-osc dispatcher that keeps every packet: arrival time (Unix s), size, timed messages."""

    def __init__(self):
        super().__init__(strict_timing=False)  # record arrivals; don't sleep until each timetag
        self.packets = []
        self.set_default_handler(lambda *a: None)

    def call_handlers_for_packet(self, data, client_address):
        # OscPacket replaces past timetags with 'now' and sorts by time: read the bundle itself.
        if OscBundle.dgram_is_bundle(data):
            b = OscBundle(data)
            msgs = [(b.timestamp, b.content(i)) for i in range(b.num_contents)]
        else:
            msgs = [(0, OscMessage(data))]
        self.packets.append((time.time(), len(data), msgs))
        return super().call_handlers_for_packet(data, client_address)

    def messages(self):
        """(timetag, address, params) in arrival order; timetag 0 = immediately."""
        return [(t, m.address, m.params) for _, _, msgs in self.packets for t, m in msgs]


@pytest.fixture
def receiver():
    rec = Recorder()
    server = BlockingOSCUDPServer(("127.0.0.1", 0), rec)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)  # no loss while a test spins
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    rec.port = server.server_address[1]
    yield rec
    server.shutdown()
    server.server_close()


def settle(rec, seconds=0.3, limit=10.0):
    """Wait until every datagram `play` sent has arrived (loopback, with a 4 MB receive buffer), or, for a
    sender this file does not count, until none has arrived for `seconds`: on a busy machine the server
    thread lags, and a quiet spell alone can end too early."""
    deadline = time.monotonic() + limit
    want = getattr(rec, "sent", None)
    if want is not None:
        while len(rec.packets) < want and time.monotonic() < deadline:
            time.sleep(0.02)
    count = -1
    while count != len(rec.packets) and time.monotonic() < deadline:
        count = len(rec.packets)
        time.sleep(seconds)
    return rec.messages()


def play(rec, data, **opts):
    clock = InternalClock(opts.pop("tempo"))
    sender = OscSender("127.0.0.1", rec.port)
    rec.sent = 0

    def send(dgrams):
        rec.sent += len(dgrams)
        sender.send(dgrams)

    player = Player(timeline_from_onsets(data), clock, send, LiveOptions(**opts), log=lambda m: None)
    stats = player.run()
    sender.close()
    rec.sent -= sender.errors
    return clock, stats


def test_bundles_match_the_pattern(receiver):
    data = onsets_data(bars=2)  # 120 bpm pattern: kick 2, snare 2, hat 8 per bar
    bars = 4
    clock, stats = play(receiver, data, tempo=240.0, bars=bars, latent_dims=3, latent_size=32)
    msgs = settle(receiver)
    assert msgs, "nothing arrived"
    for tag, addr, params in msgs:
        assert CLEAN.match(addr), addr
        assert params and all(type(v) in (int, float) for v in params), (addr, params)

    # Timetags never go backwards, in arrival order (the last bundle is the immediate-mode zero).
    tags = [t for t, _, _ in msgs if t != 0]
    assert all(b >= a for a, b in zip(tags, tags[1:]))

    # Per bar: bar and beat counters, and each part's onsets as in the pattern.
    per_bar: dict[int, dict[str, int]] = {}
    bar = None
    onset_tags = {p: [] for p in PARTS}
    for tag, addr, params in msgs:
        if addr == "/breakgan/bar":
            bar = params[0]
        elif addr.endswith("/onset") and params[0] > 0:
            part = addr.split("/")[2]
            per_bar.setdefault(bar, {}).setdefault(part, 0)
            per_bar[bar][part] += 1
            onset_tags[part].append(tag)
    assert sorted(per_bar) == list(range(bars))
    for b in range(bars):
        assert per_bar[b] == {"kick": 2, "snare": 2, "hihat_closed": 8}
    beats = [params[0] for _, addr, params in msgs if addr == "/breakgan/beat"]
    assert beats == list(range(bars * 4))
    assert [p[0] for _, a, p in msgs if a == "/breakgan/loop"] == [0, 1]

    # Onset timetags are the pattern times (played at 2x: 240 over 120 bpm) from the first bar's tag.
    t0 = next(t for t, a, _ in msgs if a == "/breakgan/bar")
    want = np.concatenate([[e["time"] / 2 + k * 2.0 for e in data["parts"]["kick"]] for k in range(2)])
    assert np.allclose(np.array(onset_tags["kick"]) - t0, want, atol=1e-5)
    # And the velocity is MIDI velocity / 127.
    kick_vel = [p[0] for _, a, p in msgs if a == "/breakgan/kick/onset" and p[0] > 0]
    assert np.allclose(kick_vel, 100 / 127, atol=1e-6)

    # Every hit is a pulse: the onset channel goes back to 0 before the next hit, the counter counts.
    kick = [p[0] for _, a, p in msgs if a == "/breakgan/kick/onset"]
    assert all(b == 0.0 for a, b in zip(kick, kick[1:]) if a > 0)
    assert [p[0] for _, a, p in msgs if a == "/breakgan/hihat_closed/hits"] == list(range(1, bars * 8 + 1))

    # Control rate: envelope values on a 60-per-second grid for every part (4 bars at 240 bpm = 4 s). A
    # tick that is already past when a stalled machine gets back to it is skipped, never sent late or
    # twice, so the check is the grid itself, and a count that only a badly overloaded machine misses.
    env = [a for _, a, _ in msgs if a == "/breakgan/snare/env"]
    env_tags = np.array([t for t, a, _ in msgs if a == "/breakgan/snare/env" and t != 0]) - t0
    assert np.all(np.diff(env_tags) > 0)
    assert np.allclose(env_tags * 60, np.round(env_tags * 60), atol=1e-3)
    assert 0.5 * 4 * 60 <= len(env) <= 4 * 60 + 2
    assert len([a for _, a, _ in msgs if a == "/breakgan/ride/z2"]) == len(env) - 1  # not in the zero bundle

    # The show ends with every part's onset and envelope at zero.
    last = {a: p for _, a, p in msgs[-2 * len(PARTS) - 1:]}
    assert all(last[f"/breakgan/{p}/env"] == [0.0] and last[f"/breakgan/{p}/onset"] == [0.0] for p in PARTS)
    assert stats["onset_lateness"]["count"] == bars * 8


def test_lookahead_sends_early_with_future_timetags(receiver):
    play(receiver, onsets_data(bars=1), tempo=240.0, bars=1, latent_dims=0, lookahead_s=0.2, parts=("kick",))
    settle(receiver)
    early = [tag - arrived for arrived, _, ms in receiver.packets[:-1] for tag in {t for t, _ in ms} if tag]
    assert early and min(early) > 0.1  # 200 ms ahead, with room for a busy machine
    # The closing zeros are tagged no earlier than the last tick, so a scheduling receiver applies them last.
    tags = [t for _, _, ms in receiver.packets for t, _ in ms]
    assert tags[-1] >= max(tags[:-1])


def test_whole_latent_vectors_are_split_under_the_datagram_limit(receiver):
    play(receiver, onsets_data(bars=1), tempo=480.0, bars=1, latent_dims=0, latent_vector=True, latent_size=512)
    msgs = settle(receiver)
    assert max(size for _, size, _ in receiver.packets) < MAX_DATAGRAM
    latents = [(t, a, p) for t, a, p in msgs if a.endswith("/latent")]
    assert latents and all(len(p) == 512 for _, _, p in latents)
    # Every tick carries all nine parts' vectors under one timetag, whatever the number of datagrams.
    per_tag = {}
    for t, a, _ in latents:
        per_tag.setdefault(t, []).append(a.split("/")[2])
    assert all(sorted(v) == sorted(PARTS) for v in per_tag.values())


def test_cli_streams_a_drums_folder(receiver, tmp_path):
    cand = tmp_path / "drums" / "cand-01"
    cand.mkdir(parents=True)
    (cand / "onsets.json").write_text(json.dumps(onsets_data(bars=1)))
    result = CliRunner().invoke(app, ["live", "--drums", str(tmp_path / "drums"), "--port", str(receiver.port),
                                      "--bars", "1", "--tempo", "480", "--parts", "kick,snare",
                                      "--latent-dims", "1"])
    assert result.exit_code == 0, result.output
    addrs = {a for _, a, _ in settle(receiver)}
    assert {"/breakgan/kick/onset", "/breakgan/snare/z0", "/breakgan/beat", "/breakgan/tempo"} <= addrs
    assert not any("hihat" in a for a in addrs)


def test_cli_names_a_missing_drums_folder(tmp_path):
    result = CliRunner().invoke(app, ["live", "--drums", str(tmp_path / "nope")])
    assert result.exit_code != 0
    assert "nope" in str(result.exception) or "nope" in result.output


def test_cli_takes_the_latent_size_from_a_generator(receiver, tmp_path):
    import torch

    from breakgan.gan.checkpoint import prefixed, write_checkpoint
    from breakgan.gan.networks import Generator, NetConfig

    torch.manual_seed(0)
    cfg = NetConfig(resolution=8, latent_size=24, fmap_base=32, fmap_max=16)
    run = tmp_path / "run"
    write_checkpoint(run, 1000, prefixed(Generator(cfg).state_dict(), "G_ema."),
                     {"net": cfg.to_dict(), "level": cfg.levels - 1, "alpha": 1.0, "kimg": 1.0, "labels": []})
    cand = tmp_path / "drums" / "cand-01"
    cand.mkdir(parents=True)
    (cand / "onsets.json").write_text(json.dumps(onsets_data(bars=1)))
    result = CliRunner().invoke(app, ["live", "--drums", str(cand), "--port", str(receiver.port), "--bars", "1",
                                      "--tempo", "480", "--parts", "kick", "--latent-dims", "0",
                                      "--latent-vector", "--generator", str(run)])
    assert result.exit_code == 0, result.output
    latents = [p for _, a, p in settle(receiver) if a == "/breakgan/kick/latent"]
    assert latents and all(len(p) == 24 for p in latents)


def test_cli_sends_every_loop_marker_of_a_drums_command_pattern(receiver, tmp_path):
    """Issue 11 repro through both commands: a 4-bar pattern at 110 bpm (its onsets.json length is
    16.0000005 beats) played for 8 bars sends /loop 0 and 1, on bars 0 and 4, and every bar line."""
    drums = tmp_path / "D"
    result = CliRunner().invoke(app, ["drums", "--seed-pattern", "kick: x.....x...x.....; snare: ....x.......x...",
                                      "--tempo", "110", "--bars", "4", "--random-seed", "5", "--out", str(drums)])
    assert result.exit_code == 0, result.output
    assert json.loads((drums / "cand-01" / "onsets.json").read_text())["duration"] == 8.727273
    result = CliRunner().invoke(app, ["live", "--drums", str(drums), "--port", str(receiver.port), "--tempo", "480",
                                      "--bars", "8", "--latent-dims", "0", "--parts", "kick"])
    assert result.exit_code == 0, result.output
    msgs = settle(receiver)
    loops = [(t, p[0]) for t, a, p in msgs if a == "/breakgan/loop"]
    bars = {p[0]: t for t, a, p in msgs if a == "/breakgan/bar"}
    assert [n for _, n in loops] == [0, 1]
    assert sorted(bars) == list(range(8))
    assert loops[0][0] == bars[0] and loops[1][0] == bars[4]  # same bundle timetag as the bar line
