"""The live engine: clock + pattern -> one timetagged OSC bundle per tick, controls applied between ticks.

Ticks are the union of the control grid (start + k / rate, absolute, in clock seconds) and the pattern's
events (onsets, beats, bars, loop starts, at the clock's time of their beat position). Each tick's
bundle is built before waiting, then sent at its deadline (minus the lookahead), so lateness is only
the scheduler's wake-up error and never accumulates.
"""

from __future__ import annotations

import math
import queue
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from breakgan.console import info, warn
from breakgan.live import osc_out
from breakgan.live.clock import Clock
from breakgan.live.osc_in import Control, RateLimitedLog
from breakgan.live.pattern import EPS, EventGroup, Pattern, Segment, next_group
from breakgan.live.scheduler import DEFAULT_SPIN_S, Lateness, ordinary_priority, wait_until
from breakgan.parts import PARTS
from breakgan.render.keys import part_keys
from breakgan.seeds import SEED_LIMIT
from breakgan.timeline import Timeline, envelope, timeline_from_onsets
from breakgan.trajectory import Motion, keyframes, latent_path, part_motion, phase

# A control tick this close to an event (s) goes out in the event's bundle, at the event's time: one
# bundle instead of two back to back (the second would be built late).
MERGE_S = 0.001
SKIP_AFTER_S = 0.05
FRAME_BATCH_S = 0.02
# Controls that set one value outright: a later one of the same name and part undoes an earlier one.
SETTERS = {"tempo", "mute", "solo", "seed", "reseed", "keyframe_seed", "motion_seed", "pattern_seed", "temperature"}


def coalesce(controls: list[Control]) -> list[Control]:
    """The controls queued since the last tick, without the setters a later one of the same name and part
    overrides before anything reads them (a regenerate reads the pattern seed and temperature). A burst
    of 1000 /reseed messages then rebuilds the keyframes once, not 1000 times on the player's thread."""
    kept: list[Control] = []
    later: set[tuple[str, str | None]] = set()
    for c in reversed(controls):
        if c.name in SETTERS:
            if (c.name, c.part) in later:
                continue
            later.add((c.name, c.part))
        elif c.name == "regenerate":
            later.clear()
        kept.append(c)
    return kept[::-1]


@dataclass(frozen=True)
class LiveOptions:
    """What `breakgan live` sends and how.

    rate: control rate in Hz (envelopes, latents, phase, tempo); lookahead_s: send this many seconds
    before each tick's time (its timetag stays the tick time); 0 = immediate mode (send at the time).
    latent_dims: first N latent components as /z0.. messages; latent_vector: whole vector in one message.
    keys / keyframe_seed: keyframes per part (part i: seeds keyframe_seed+i*keys onwards, unless the
    player is given favourites); motion.seed: the motion seed (pulse, drift); pattern_seed: DrumsRNN's
    seed for the first /breakgan/regenerate (each regenerate then adds 1). bars: stop after N bars
    (None = loop forever). humanize: the groove model's amount (0..1) for regenerated patterns, as
    `drums --humanize` (0 = quantized: on the grid, new hits at the seed's mean velocity per part).
    """
    rate: float = 60.0
    lookahead_s: float = 0.0
    parts: tuple[str, ...] = PARTS
    latent_dims: int = 8
    latent_vector: bool = False
    latent_size: int = 512
    keys: int = 8
    keyframe_seed: int = 0
    pattern_seed: int = 0
    motion: Motion = Motion()
    bars: int | None = None
    lead_s: float = 0.1
    spin_s: float = DEFAULT_SPIN_S
    temperature: float = 1.0
    humanize: float = 0.0


@dataclass
class LiveState:
    """What OSC control can change; only the player thread touches it."""
    playing: bool = True
    muted: set[str] = field(default_factory=set)
    solo: set[str] = field(default_factory=set)
    temperature: float = 1.0
    pattern_seed: int = 0  # DrumsRNN's seed for the next /breakgan/regenerate

    def audible(self, part: str) -> bool:
        if part in self.muted:
            return False
        return not self.solo or part in self.solo


def zero_messages(parts: tuple[str, ...]) -> list[bytes]:
    """Onsets and envelopes of every part at 0 (sent on stop and exit so nothing is left stuck)."""
    msgs = [osc_out.osc_message(osc_out.address("playing"), 0)]
    for p in parts:
        msgs.append(osc_out.osc_message(osc_out.part_address(p, "onset"), 0.0))
        msgs.append(osc_out.osc_message(osc_out.part_address(p, "env"), 0.0))
    return msgs


class Regenerator:
    """Runs a pattern generator in a background thread; the finished Timeline waits in `results`."""

    def __init__(self, generate: Callable[..., dict] | None):
        self._generate = generate
        self.results: queue.Queue[Timeline] = queue.Queue()
        self._thread: threading.Thread | None = None

    @staticmethod
    def default(model: str | None = None) -> "Regenerator":
        """breakgan.drums.generate_onsets with a DrumsRNN model file (None = the shipped model)."""
        try:
            from breakgan.drums import generate_onsets
        except ImportError:
            return Regenerator(None)
        return Regenerator(lambda **kw: generate_onsets(model=model, **kw))

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, *, bars: int, tempo: float, temperature: float, random_seed: int,
              seed_pattern: str | None, humanize: float = 0.0) -> bool:
        if self._generate is None:
            warn("regenerate ignored: breakgan.drums.generate_onsets is not available in this install")
            return False
        if self.busy():
            warn("regenerate ignored: a pattern is already being generated")
            return False
        kwargs = dict(seed_pattern=seed_pattern, bars=bars, tempo=tempo, temperature=temperature,
                      random_seed=random_seed, humanize=humanize)
        self._thread = threading.Thread(target=self._work, args=(kwargs,), name="breakgan-regenerate",
                                        daemon=True)
        self._thread.start()
        return True

    def _work(self, kwargs: dict) -> None:
        ordinary_priority()  # a thread started by a --realtime player must not hog the CPU at RT priority
        try:
            data = self._generate(**kwargs)
            self.results.put(timeline_from_onsets(data))
        except Exception as e:  # a failed generation must not stop the show
            warn(f"regenerate failed: {type(e).__name__}: {e}")


def seed_text(timeline: Timeline, bars: int = 1) -> str:
    """The first `bars` of a timeline as a drums text grid ('kick: x...x...; snare: ....x...'), 16th steps.

    Regeneration is primed with one bar of the playing pattern, so DrumsRNN continues in its style
    (a primer as long as the output would just give the same pattern back).
    """
    tempo = timeline.tempo or 120.0
    step_s = 60.0 / tempo / 4
    steps = 4 * timeline.beats_per_bar * bars
    lines = []
    for p in PARTS:
        grid = ["."] * steps
        for t, v in timeline.onsets(p):
            i = int(round(t / step_s))
            if 0 <= i < steps:
                grid[i] = "X" if v * 127 >= 115 else ("o" if v * 127 <= 70 else "x")
        if "." != "".join(set(grid)):
            lines.append(f"{p}: {''.join(grid)}")
    return "; ".join(lines) or "kick: x"


class Player:
    """Plays a pattern on a clock and sends OSC bundles through `send(dgrams)`.

    `now`/`sleep` default to the clock's time and time.sleep; tests pass a virtual pair.
    """

    def __init__(self, timeline: Timeline, clock: Clock, send: Callable[[list[bytes]], None],
                 options: LiveOptions = LiveOptions(), *, controls: queue.Queue | None = None,
                 regenerator: Regenerator | None = None, sleep: Callable[[float], None] = time.sleep,
                 log: Callable[[str], None] | None = None, preview=None, frames=None, favourites=None):
        """favourites: keyframes read by `breakgan.render.keys.read_favourites` (a shared (K, D) array or
        part -> (K, D)); they take the place of keyframe-seeded keys as in `render --favourites`."""
        self.opt = options
        self.preview = preview  # optional live.preview.Preview: gets every part's latent at its own rate
        self.frames = frames  # optional live.frames.LiveFrames: every part's latent on its frame grid
        self._frame_k = 0  # the next frame (of the grid start + k / fps) to hand to `frames`
        self.clock = clock
        self.send = send
        self.sleep = sleep
        self.log = log or RateLimitedLog(emit=info, prefix="live: ")  # a fader sending 60 values a second must not flood
        self.controls = controls
        self.regenerator = regenerator or Regenerator(None)
        self.pattern = Pattern.from_timeline(timeline, clock.tempo())
        self.state = LiveState(temperature=options.temperature, pattern_seed=options.pattern_seed)
        # render's rule (render.keys.part_keys): the same keyframes for the same seed or favourites file
        self.keys = part_keys(options.parts, options.latent_size, options.keys,
                              keyframe_seed=options.keyframe_seed, favourites=favourites)
        self._set_motion_seed(options.motion.seed)
        self.lateness = Lateness()         # all bundles: sent minus scheduled send time (s)
        self.onset_lateness = Lateness()   # bundles that carry onsets
        self.bundles_sent = 0
        self._segment: Segment | None = None
        self._previous: Segment | None = None  # the segment before the last swap (plays until its bar line)
        self._swap: tuple[float, Pattern] | None = None
        self._cache: dict = {}
        self._prepared: tuple[int, list[bytes]] | None = None  # (control tick k, its messages)
        self._build_s = 0.003  # how long a control tick takes to build (s), measured as we go
        self._addr = {p: {leaf: osc_out.part_address(p, leaf) for leaf in
                          ("onset", "hits", "env", "latent", *[f"z{i}" for i in range(options.latent_dims)])}
                      for p in PARTS}
        self._hits = {p: 0 for p in PARTS}  # onsets sent per part: a counter that changes on every hit
        self._to_reset: set[str] = set()  # parts whose onset channel goes back to 0 on the next tick
        self._last_t: float | None = None  # time (clock s) of the last bundle sent

    # ---- values -------------------------------------------------------------------------------

    def _loop_onsets(self, part: str, loop: int, seg: Segment | None = None) -> np.ndarray:
        """Two loops of the part's onsets, with the keyframe phase carried in from before them as one
        completed synthetic onset far in the past (phase only matters modulo the key count)."""
        seg = seg or self._segment
        key = (id(seg), part, loop)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        p = seg.pattern
        on = p.two_loops(part, loop)
        carry = seg.carry[part] + max(loop - 1, 0) * self.opt.motion.step * p.velocity_sum[part]
        carry = math.fmod(carry, self.opt.keys)
        if self.opt.motion.step and carry > 1e-9:
            start = max(loop - 1, 0) * p.duration
            on = np.concatenate([[[start - 1e4, carry / self.opt.motion.step]], on])
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = on
        return on

    def _segment_at(self, position: float) -> Segment:
        """The segment playing at `position`: a scheduled pattern swap applies from its bar line, and the
        old pattern plays until that bar line even once the event walk has installed the swap (it does
        so at the last event before it)."""
        if self._swap is not None and position >= self._swap[0] - EPS:
            return self._swap[1]
        if self._previous is not None and position < self._segment.origin - EPS:
            return self._previous
        return self._segment

    def _set_motion_seed(self, seed: int) -> None:
        """Every part's motion (pulse and drift directions) from motion seed `seed`, as render derives it."""
        self.motion = replace(self.opt.motion, seed=int(seed))
        self.motions = {p: part_motion(self.motion, p) for p in PARTS}

    def _part_latent(self, part: str, on: np.ndarray, song_t: np.ndarray) -> np.ndarray:
        """The part's latent at song time(s) song_t: the one rule OSC latents and frames share."""
        return latent_path(on, self.keys[part], song_t, self.motions[part])[0]

    def _frame_values(self, position: float) -> tuple[np.ndarray, float]:
        """Every sent part's latent (P, D) at `position`, and the envelope of the plan's main part
        (what `blend` mixes by)."""
        seg = self._segment_at(position)
        loop = seg.loop_at(position)
        song_t = np.array([seg.song_time(position)])
        zs = [self._part_latent(p, self._loop_onsets(p, loop, seg), song_t) for p in self.opt.parts]
        main = self.frames.cfg.plan.main
        alpha = 1.0
        if main in self.opt.parts:
            m = self.opt.motion
            alpha = (float(envelope(self._loop_onsets(main, loop, seg), song_t, m.attack_ms / 1000.0,
                                    m.release_ms / 1000.0)[0]) if self.state.audible(main) else 0.0)
        return np.stack(zs), alpha

    def _frame_horizon(self) -> float:
        """How long before its send time a frame is handed over at the latest: the worker's horizon,
        until the next tick, and one more."""
        return self.frames.horizon() + 2.0 / self.opt.rate

    def _next_frame_push(self) -> float:
        """Clock time at which the next frame must be handed over (inf: no frames, or none left)."""
        fr = self.frames
        if fr is None or not self.state.playing or self._segment is None:
            return math.inf
        t = self._t0 + self._frame_k / fr.fps
        if math.isfinite(self._end) and t >= self.clock.time_at_beat(self._end) - 1e-9:
            return math.inf
        return t - self.opt.lookahead_s - self._frame_horizon()

    def _push_frames(self) -> None:
        """Hand the worker every frame whose send time (frame time - lookahead) is within its horizon,
        with the latents of that frame's clock time; frames already past are skipped and counted."""
        fr = self.frames
        if fr is None or not self.state.playing or self._segment is None:
            return
        now = self.clock.now()
        to_perf = time.perf_counter() - now  # clock seconds -> the worker's perf_counter seconds
        horizon = self._frame_horizon() + FRAME_BATCH_S  # a batch per wake-up: ~50 wake-ups a second at most
        t_end = self.clock.time_at_beat(self._end) if math.isfinite(self._end) else math.inf
        stride = fr.stride()
        while True:
            t = self._t0 + self._frame_k / fr.fps
            t_send = t - self.opt.lookahead_s
            if t >= t_end - 1e-9 or t_send > now + horizon:
                break
            self._frame_k += 1
            if t_send < now or (self._frame_k - 1) % stride:
                fr.skipped += 1
                continue
            z, alpha = self._frame_values(self.clock.beat_at(t))
            fr.push(self._frame_k - 1, t_send + to_perf, t + self.clock.unix_offset, z, alpha)
        fr.report(self.log)

    def _control_messages(self, position: float) -> list[bytes]:
        seg, opt = self._segment_at(position), self.opt
        loop = seg.loop_at(position)
        song_t = np.array([seg.song_time(position)])
        attack_s = opt.motion.attack_ms / 1000.0
        release_s = opt.motion.release_ms / 1000.0
        m = osc_out.osc_message
        bpb = self.pattern.beats_per_bar
        looptime = seg.pattern.seconds(seg.local(position) - loop * seg.pattern.length)
        msgs = [m(osc_out.address("tempo"), self.clock.tempo()),
                m(osc_out.address("phase"), (position % bpb) / bpb),
                m(osc_out.address("looptime"), looptime),
                m(osc_out.address("playing"), 1)]
        t_now = self.clock.now()
        frame = self.preview is not None and self.preview.due(t_now)
        zs = []
        for part in opt.parts:
            on = self._loop_onsets(part, loop, seg)
            env = envelope(on, song_t, attack_s, release_s)[0] if self.state.audible(part) else 0.0
            msgs.append(m(self._addr[part]["env"], float(env)))
            if opt.latent_dims or opt.latent_vector or frame:
                z = self._part_latent(part, on, song_t)
                zs.append(z)
                if opt.latent_vector:
                    msgs.append(osc_out.osc_floats(self._addr[part]["latent"], z))
                for i, v in enumerate(z[:opt.latent_dims].tolist()):
                    msgs.append(m(self._addr[part][f"z{i}"], v))
        if frame and zs:
            self.preview.show(list(opt.parts), np.stack(zs), t_now)
        return msgs

    def _event_messages(self, group: EventGroup) -> list[bytes]:
        m = osc_out.osc_message
        msgs = []
        if group.loop is not None:
            msgs.append(m(osc_out.address("loop"), group.loop))
        if group.bar is not None:
            msgs.append(m(osc_out.address("bar"), group.bar))
        if group.beat is not None:
            msgs.append(m(osc_out.address("beat"), group.beat))
        for part, vel in group.onsets:
            if part in self.opt.parts and self.state.audible(part):
                self._hits[part] += 1
                msgs.append(m(self._addr[part]["onset"], vel))
                msgs.append(m(self._addr[part]["hits"], self._hits[part]))
        return msgs

    def _resets(self) -> list[bytes]:
        """Onset channels of the last hits back to 0, so two equal hits in a row still read as two
        pulses in a CHOP (the `hits` counter changes on every hit as well)."""
        msgs = [osc_out.osc_message(self._addr[p]["onset"], 0.0) for p in PARTS if p in self._to_reset]
        self._to_reset.clear()
        return msgs

    # ---- control ------------------------------------------------------------------------------

    def apply(self, c: Control) -> None:
        """Apply one control (from the OSC listener) between ticks."""
        s = self.state
        self._prepared = None  # a prepared control tick may no longer be right
        if c.name == "tempo":
            self.clock.set_tempo(float(c.value))
        elif c.name == "play":
            if not s.playing:
                s.playing = True
                self._start()
                self._link_playing(True)
        elif c.name == "stop":
            if s.playing:
                s.playing = False
                self.send(self._zero_dgrams())
                if self.frames is not None:
                    self.frames.clear()
                self._link_playing(False)
        elif c.name in ("mute", "solo"):
            target = s.muted if c.name == "mute" else s.solo
            (target.add if c.value else target.discard)(c.part)
        elif c.name == "seed":
            if c.part in self.keys:
                self.keys[c.part] = keyframes(self.opt.latent_size, self.opt.keys, int(c.value))
        elif c.name in ("reseed", "keyframe_seed", "motion_seed", "pattern_seed"):
            # /reseed N: the three seeds `live --seed N` starts with; /<kind>_seed N: that one only
            if c.name in ("reseed", "keyframe_seed"):
                self.keys = part_keys(self.opt.parts, self.opt.latent_size, self.opt.keys,
                                      keyframe_seed=int(c.value))
            if c.name in ("reseed", "motion_seed"):
                self._set_motion_seed(int(c.value))
            if c.name in ("reseed", "pattern_seed"):
                s.pattern_seed = int(c.value)
        elif c.name == "temperature":
            s.temperature = float(c.value)
        elif c.name == "regenerate":
            tl = self._segment.pattern.timeline if self._segment else self.pattern.timeline
            bars = max(1, round(self.pattern.length / self.pattern.beats_per_bar))
            self.regenerator.start(bars=bars, tempo=self.pattern.tempo, temperature=s.temperature,
                                   random_seed=s.pattern_seed, seed_pattern=seed_text(tl),
                                   humanize=self.opt.humanize)
            s.pattern_seed = (s.pattern_seed + 1) % SEED_LIMIT  # the next regenerate gives a different pattern
        self.log(f"control: {c.name}" + (f" {c.part}" if c.part else "") +
                 ("" if c.value is None else f" = {c.value}"))

    def _link_playing(self, playing: bool) -> None:
        # Link peers with start/stop sync (TouchDesigner's Link CHOP, Live) follow play/stop.
        if hasattr(self.clock, "set_playing"):
            self.clock.set_playing(playing)

    def _drain(self) -> None:
        if self.controls is not None:
            queued = []
            while True:
                try:
                    queued.append(self.controls.get_nowait())
                except queue.Empty:
                    break
            for c in coalesce(queued):
                try:
                    self.apply(c)
                except Exception as e:  # a control that cannot apply is logged, never fatal
                    warn(f"control {c.name} ignored: {e}")
        try:
            tl = self.regenerator.results.get_nowait()
        except queue.Empty:
            return
        try:
            new = Pattern.from_timeline(tl, self.pattern.tempo)
        except Exception as e:
            warn(f"regenerated pattern ignored: {e}")
            return
        if self._segment is not None:
            bpb = self.pattern.beats_per_bar
            after = self._cursor
            if self.frames is not None:  # frames already handed over keep the pattern they were made with
                after = max(after, self.clock.beat_at(self._t0 + self._frame_k / self.frames.fps))
            swap_at = float((math.floor((after + EPS) / bpb) + 1) * bpb)  # the next bar line
            self._swap = (swap_at, self._next_segment(swap_at, new))
            self.log(f"new pattern ready: starts at bar {swap_at // bpb:g}")

    def _next_segment(self, swap_at: float, new: Pattern) -> Segment:
        """The segment of `new` from swap_at, each part's keyframe phase carried over from the old one."""
        seg = self._segment
        loop = seg.loop_at(swap_at)
        carry = {}
        for part in PARTS:
            ph = phase(self._loop_onsets(part, loop), np.array([seg.song_time(swap_at)]), self.opt.motion)[0]
            carry[part] = float(math.fmod(ph, self.opt.keys))
        return Segment(new, swap_at, carry)

    def _install_swap(self) -> None:
        self._previous = self._segment
        self._segment = self._swap[1]
        self.pattern = self._segment.pattern
        self._swap = None
        self._prepared = None
        self._cache.clear()

    # ---- the loop -----------------------------------------------------------------------------

    def _start(self) -> None:
        """(Re)start the pattern on the next bar line at least lead_s from now."""
        bpb = self.pattern.beats_per_bar
        lead = self.opt.lead_s if self.frames is None else max(self.opt.lead_s, self.frames.horizon())
        origin = self.clock.start_beat(self.clock.now() + lead + self.opt.lookahead_s, bpb)
        self._segment = Segment(self.pattern, float(origin))
        self._previous = None
        self._cursor = origin - 1e-6
        self._end = origin + self.opt.bars * bpb if self.opt.bars else math.inf
        self._t0 = self.clock.time_at_beat(origin)
        self._k = 0
        self._prepared = None
        self._cache.clear()
        if self.frames is not None:
            self.frames.clear()
            self._frame_k = 0
            self._push_frames()

    def _zero_dgrams(self) -> list[bytes]:
        """The zeroed values, sent now: 'immediately', or with --lookahead timetagged after the last
        bundle already sent, so a receiver that schedules by timetag applies them last."""
        if self.opt.lookahead_s <= 0 or self._last_t is None:
            return osc_out.bundle_dgrams(zero_messages(self.opt.parts), None)
        t = max(self._last_t, self.clock.now())
        return osc_out.bundle_dgrams(zero_messages(self.opt.parts), t + self.clock.unix_offset)

    def _send_bundle(self, t: float, msgs: list[bytes], has_onsets: bool) -> None:
        dgrams = osc_out.bundle_dgrams(msgs, t + self.clock.unix_offset)
        due = t - self.opt.lookahead_s
        # Frames due to be handed over before this bundle's time are handed over on time, not after it.
        # Their horizon has slack, so a plain sleep does (no spinning), and one wake-up hands over a batch.
        while (t_push := self._next_frame_push()) < due - 0.002:
            wait_until(t_push, self.clock.now, self.sleep, 0.0)
            self._push_frames()
        woke = wait_until(due, self.clock.now, self.sleep, self.opt.spin_s)
        self.send(dgrams)
        self._last_t = t
        late = woke - due
        self.lateness.add(late)
        if has_onsets:
            self.onset_lateness.add(late)
        self.bundles_sent += 1
        self._push_frames()  # in the slack after a send, not before one

    def _prepare_control(self, t_ctrl: float) -> None:
        if self._prepared is None or self._prepared[0] != self._k:
            started = time.perf_counter()
            msgs = self._control_messages(self.clock.beat_at(t_ctrl))
            # A slowly decaying maximum of the build time decides how much slack is "enough".
            self._build_s = max(time.perf_counter() - started, 0.95 * self._build_s)
            self._prepared = (self._k, msgs)

    def _take_control(self) -> list[bytes]:
        msgs = self._prepared[1]
        self._prepared = None
        self._k += 1
        return msgs

    def step(self) -> bool:
        """Build and send the next bundle (or idle while stopped). False when --bars are done."""
        self._drain()
        if not self.state.playing:
            self.sleep(0.02)
            return True
        group = next_group(self._segment, self._cursor, self.pattern.beats_per_bar,
                           self._swap[0] if self._swap else None, self._end)
        if group.swap:
            self._install_swap()
            group = next_group(self._segment, self._cursor, self.pattern.beats_per_bar, None, self._end)
        at_end = group.end
        t_event = self.clock.time_at_beat(group.position)
        t_ctrl = self._t0 + self._k / self.opt.rate
        now = self.clock.now()
        if t_ctrl < now - SKIP_AFTER_S:
            # Fell far behind (machine stalled): skip the control ticks that are long past; a tick
            # only a little late still goes out (its values are right for its timetag).
            self._k = max(self._k, math.ceil((now - self._t0) * self.opt.rate))
            t_ctrl = self._t0 + self._k / self.opt.rate
        if at_end and t_event <= t_ctrl + MERGE_S:
            self._send_bundle(t_event, zero_messages(self.opt.parts), False)
            self._zeroed = True
            return False
        if t_ctrl <= t_event + MERGE_S or t_event - now > 2 * self._build_s + 0.002:
            # Build the next control tick (the costly bundle) now if it is due next, or while there
            # is time to spare before the next event; events themselves are cheap to build.
            self._prepare_control(t_ctrl)
        msgs: list[bytes] = []
        has_onsets = False
        if t_event <= t_ctrl + MERGE_S:
            t = t_event
            merged = abs(t_ctrl - t_event) <= MERGE_S
            if merged:
                msgs += self._resets()  # before this tick's own onsets
            msgs += self._event_messages(group)
            has_onsets = bool(group.onsets)
            self._cursor = group.position
            if merged:
                msgs += self._take_control()
            self._to_reset.update(p for p, _ in group.onsets if p in self.opt.parts and self.state.audible(p))
        else:
            t = t_ctrl
            msgs += self._resets()
            msgs += self._take_control()
        if msgs:
            self._send_bundle(t, msgs, has_onsets)
        return True

    def run(self, max_seconds: float | None = None) -> dict:
        """Play until --bars are done, Ctrl-C, or max_seconds; always ends by sending zeroed values."""
        old_switch = sys.getswitchinterval()
        sys.setswitchinterval(0.001)  # background threads (listener, regenerate) yield the GIL sooner
        self._zeroed = False
        self._start()
        stop_at = self.clock.now() + max_seconds if max_seconds else math.inf
        try:
            while self.clock.now() < stop_at and self.step():
                pass
        finally:
            if not self._zeroed:
                self.send(self._zero_dgrams())
            sys.setswitchinterval(old_switch)
        out = {"bundles": self.bundles_sent, "lateness": self.lateness.summary(),
               "onset_lateness": self.onset_lateness.summary()}
        if self.frames is not None:
            out["frames"] = self.frames.stats()
        return out
