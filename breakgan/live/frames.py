"""Live GAN frames: latents at frame times (from the player) -> a generator worker -> video sinks.

The player evaluates every part's latent on a frame grid (playback start + k / fps, clock time) with
the function that gives the OSC latents, and hands the frames over ahead of time: a frame for clock
time T is sent at T - lookahead (as the OSC bundles are) and carries T as its timestamp, so it has to
be generated before then. The worker runs in its own process (forward passes never hold the player's
GIL): one frame at a time, all parts in one batch (CUDA with float16 autocast when present), then the
layout; a sender thread sends each finished frame at its time. A frame that cannot be finished by
its send time is dropped, never sent late; drops are counted and shown.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from breakgan.errors import BreakganError
from breakgan.render.layout import LAYOUTS, Layout, Tile, compose, make_layout

COMPOSITE = "breakgan"  # the stream name of the composited source
STREAM_KINDS = ("parts", "tiles", "blend", "solo", "pip")
WORKER_NICE = 5  # the generator worker's niceness (Unix)
LATE_SHARE = 0.5  # a frame later than this share of a frame period is dropped (the next one is nearer)

# Slots of the shared statistics array (worker writes, player reads).
EST, RECEIVED, GENERATED, SENT, BEHIND, LATE, GEN_S, EPOCH, SEND_S, MEAN = range(10)


@dataclass(frozen=True)
class StreamPlan:
    """What the worker produces from one batch of part images.

    parts: the generator batch, in order; part_streams: one stream per part at part_size (w, h);
    layout: the composite stream's layout (None = no composite); main: the part whose envelope
    drives `blend`.
    """
    parts: tuple[str, ...]
    part_streams: bool
    part_size: tuple[int, int]
    layout: Layout | None = None
    main: str | None = None

    @property
    def streams(self) -> list[str]:
        return (list(self.parts) if self.part_streams else []) + ([COMPOSITE] if self.layout else [])

    def sizes(self) -> dict[tuple[int, int], list[int]]:
        """Tile size -> the batch indices of the parts needed at that size."""
        need: dict[tuple[int, int], set[int]] = {}
        if self.part_streams:
            need[self.part_size] = set(range(len(self.parts)))
        if self.layout:
            for t in self.layout.tiles:
                need.setdefault((t.w, t.h), set()).add(self.parts.index(t.name))
        return {size: sorted(idx) for size, idx in need.items()}


def plan_streams(parts: tuple[str, ...], kinds: str, size: tuple[int, int], main: str | None = None) -> StreamPlan:
    """--ndi-layout 'parts', 'tiles', 'parts,blend', ... -> a StreamPlan (or a BreakganError).

    parts: a source per part; tiles / solo / pip: render's layouts, without footage; blend: `main`
    (default: the first part) mixed over the next part by main's envelope, as render's blend mixes
    a part over footage."""
    items = [k.strip() for k in str(kinds).split(",") if k.strip()]
    bad = [k for k in items if k not in STREAM_KINDS]
    if not items or bad:
        raise BreakganError(f"--ndi-layout must be a comma-separated choice of {', '.join(STREAM_KINDS)}, "
                            f"got {str(kinds)[:60]!r}")
    composites = [k for k in items if k != "parts"]
    if len(composites) > 1:
        raise BreakganError(f"--ndi-layout: one composite at most ({', '.join(composites)} given)")
    if main is not None and main not in parts:
        raise BreakganError(f"--ndi-part {main} is not among the parts sent ({', '.join(parts)})")
    w, h = size
    layout = None
    if composites:
        kind = composites[0]
        first = main or parts[0]
        if kind == "blend":
            if len(parts) < 2:
                raise BreakganError("--ndi-layout blend mixes one part over another: select two parts or more")
            base = parts[(parts.index(first) + 1) % len(parts)]
            layout = Layout("blend", w, h, (Tile(base, 0, 0, w, h), Tile(first, 0, 0, w, h)))
        else:
            assert kind in LAYOUTS
            layout = make_layout(kind, parts, w, h, footage=False, part=first)
    return StreamPlan(tuple(parts), "parts" in items, (w, h), layout, main or parts[0])


class FrameRenderer:
    """Latents (P, D) of one frame -> {stream: (H, W, 4) uint8 RGBX}: G on the batch of parts, tiles
    resized on G's device (render's to_tiles), the composite by render's layout code."""

    def __init__(self, G, plan: StreamPlan, device, amp: bool | None = None):
        import torch

        self.G, self.plan, self.device = G, plan, torch.device(device)
        self.amp = (self.device.type == "cuda") if amp is None else amp
        self._sizes = plan.sizes()

    def render(self, z: np.ndarray, alpha: float = 1.0) -> dict[str, np.ndarray]:
        import torch

        from breakgan.render.frames import to_tiles

        plan = self.plan
        zt = torch.from_numpy(np.ascontiguousarray(z, np.float32)).to(self.device, non_blocking=True)
        with torch.inference_mode():
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                images = self.G(zt)
            tiles: dict[tuple[int, int], dict[int, np.ndarray]] = {}
            for size, idx in self._sizes.items():
                sel = images if len(idx) == len(plan.parts) else images[torch.as_tensor(idx, device=images.device)]
                rgb = to_tiles(sel, size)
                opaque = torch.full((*rgb.shape[:3], 1), 255, dtype=torch.uint8, device=rgb.device)
                rgbx = torch.cat([rgb, opaque], dim=-1).cpu().numpy()
                tiles[size] = {i: rgbx[j] for j, i in enumerate(idx)}
        out = {}
        if plan.part_streams:
            for i, p in enumerate(plan.parts):
                out[p] = tiles[plan.part_size][i]
        if plan.layout:
            lay = plan.layout
            imgs = {t.name: tiles[(t.w, t.h)][plan.parts.index(t.name)][:, :, :3] for t in lay.tiles}
            frame = np.empty((lay.height, lay.width, 4), np.uint8)
            frame[:, :, 3] = 255
            frame[:, :, :3] = compose(lay, imgs, alpha)
            out[COMPOSITE] = frame
        return out

    def warm_up(self, latent_size: int, passes: int = 2) -> float:
        """Seconds of the last of `passes` renders (the first pays for allocation and autotuning)."""
        z = np.random.default_rng(0).standard_normal((len(self.plan.parts), latent_size)).astype(np.float32)
        took = 0.0
        for _ in range(passes):
            t = time.perf_counter()
            self.render(z)
            took = time.perf_counter() - t
        return took


def pick(pending: list[tuple], now: float, est_s: float) -> tuple[tuple | None, list[tuple]]:
    """The frame to generate next: the earliest pending one whose send time can still be met
    (t_send >= now + est_s); the ones before it cannot and are dropped. Items are (k, t_send, ...)
    sorted by k. Returns (chosen or None, dropped)."""
    for i, item in enumerate(pending):
        if item[1] >= now + est_s:
            return item, pending[:i]
    return None, list(pending)


def too_late(t_send: float, now: float, period_s: float) -> bool:
    """A finished frame past its send time by more than LATE_SHARE of a period is not sent."""
    return now > t_send + LATE_SHARE * period_s


@dataclass(frozen=True)
class FrameConfig:
    generator: str
    plan: StreamPlan
    fps: float
    transports: tuple[str, ...] = ("ndi",)
    device: str = "auto"
    ips: tuple[str, ...] = ()
    threads: int | None = None


def _sender(sinks, out: queue.Queue, stats, period_s: float) -> None:
    from breakgan.live.scheduler import wait_until

    while True:
        item = out.get()
        if item is None:
            return
        epoch, t_send, t_unix, frames = item
        if epoch != stats[EPOCH]:
            continue  # playback stopped or restarted since
        if too_late(t_send, time.perf_counter(), period_s):
            stats[LATE] += 1
            continue
        wait_until(t_send)
        t = time.perf_counter()
        for sink in sinks:
            for stream, img in frames.items():
                sink.send(stream, img, t_unix)
        stats[SEND_S] = max(time.perf_counter() - t, 0.98 * stats[SEND_S])
        stats[SENT] += 1


def _work(cfg: FrameConfig, inbox: mp.Queue, conn, stats) -> None:
    """Worker process: load G, open the sinks, render frames as they become due, until None arrives."""
    from breakgan.live.scheduler import ordinary_priority

    ordinary_priority()
    if hasattr(os, "nice"):
        # When the CPU is short, OSC timing wins: a frame can be dropped, a late hit cannot be undone.
        os.nice(WORKER_NICE)
    try:
        import torch

        from breakgan.device import resolve_device
        from breakgan.gan import load_generator
        from breakgan.live.sinks import make_sink

        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 2) - 1))  # a core for the player
        device = resolve_device(cfg.device, "--ndi-device")
        G, info = load_generator(cfg.generator, device)
        renderer = FrameRenderer(G, cfg.plan, device)
        warm = renderer.warm_up(int(info["latent_size"]))
        sinks = [make_sink(t, cfg.plan.streams, cfg.fps) for t in cfg.transports]
        visible = None
        if cfg.ips and "ndi" in cfg.transports:
            visible = sorted(sinks[list(cfg.transports).index("ndi")].visible(cfg.ips))
    except Exception as e:  # one line for the parent instead of a dead child
        conn.send(("error", str(e) if isinstance(e, BreakganError) else f"{type(e).__name__}: {e}"))
        return
    stats[EST] = 1.5 * warm
    stats[MEAN] = warm
    conn.send(("ok", int(info["latent_size"]), int(info["resolution"]), warm, str(device), visible))
    period = 1.0 / cfg.fps
    out: queue.Queue = queue.Queue(maxsize=64)
    sender = threading.Thread(target=_sender, args=(sinks, out, stats, period), name="breakgan-frames-send",
                              daemon=True)
    sender.start()
    pending: list[tuple] = []
    try:
        while True:
            items = []
            try:
                items.append(inbox.get(timeout=0.05) if not pending else inbox.get_nowait())
                while True:
                    items.append(inbox.get_nowait())
            except queue.Empty:
                pass
            if any(it is None for it in items):
                break
            for it in items:
                if it == "clear":
                    pending.clear()
                else:
                    stats[RECEIVED] += 1
                    pending.append(it)
            pending.sort(key=lambda it: it[0])
            chosen, dropped = pick(pending, time.perf_counter(), stats[EST])
            stats[BEHIND] += len(dropped)
            del pending[:len(dropped) + (chosen is not None)]
            if chosen is None:
                continue
            k, t_send, t_unix, epoch, z, alpha = chosen
            t = time.perf_counter()
            frames = renderer.render(z, alpha)
            took = time.perf_counter() - t
            stats[GEN_S] += took
            stats[GENERATED] += 1
            # A decaying maximum of render + send time, with a margin for a busy machine, decides which
            # frames can still be met (a frame started too late costs a whole render for nothing).
            stats[EST] = max(1.25 * (took + stats[SEND_S]) + 0.002, 0.98 * stats[EST])
            stats[MEAN] = 0.9 * stats[MEAN] + 0.1 * took
            out.put((epoch, t_send, t_unix, frames))
    finally:
        out.put(None)
        sender.join(5)
        for sink in sinks:
            sink.close()


class LiveFrames:
    """The player's side: starts the worker, hands it frame latents, reads its counters."""

    def __init__(self, cfg: FrameConfig, *, start_timeout_s: float = 180.0):
        ctx = mp.get_context("spawn")
        self.cfg = cfg
        self.fps = float(cfg.fps)
        self.period = 1.0 / self.fps
        self._inbox: mp.Queue = ctx.Queue()
        self._stats = ctx.Array("d", 10, lock=False)  # single writer per slot; readers tolerate a torn read
        self.epoch = 0
        self.skipped = 0  # frames the player did not hand over: already past (start-up, a stall) or strided
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_work, args=(cfg, self._inbox, child, self._stats),
                                 name="breakgan-frames", daemon=True)
        self._proc.start()
        if not parent.poll(start_timeout_s):
            self.close()
            raise BreakganError(f"{cfg.generator}: the frame worker did not start within {start_timeout_s:g} s")
        reply = parent.recv()
        if reply[0] != "ok":
            self._proc.join(5)
            raise BreakganError(reply[1])
        _, self.latent_size, self.resolution, self.warm_s, self.device, self.visible = reply
        self.streams = cfg.plan.streams
        self._last_report = (time.monotonic(), 0, 0)

    def horizon(self) -> float:
        """How far ahead of its send time a frame must be handed over: the worker's render + send
        estimate plus a frame of slack."""
        return float(self._stats[EST]) + self.period

    def stride(self) -> int:
        """Hand over every n-th frame of the grid: with a generator slower than the frame rate, most
        frames are dropped anyway, and computing their latents would only load the player. The worker
        still finds one it can make whenever it is free (candidates at most half a render apart)."""
        return max(1, int(0.5 * float(self._stats[MEAN]) * self.fps))

    def push(self, k: int, t_send: float, t_unix: float, z: np.ndarray, alpha: float) -> None:
        """Frame k, to be sent at t_send (time.perf_counter seconds) with timestamp t_unix."""
        self._inbox.put((k, t_send, t_unix, self.epoch, np.ascontiguousarray(z, np.float32), float(alpha)))

    def clear(self) -> None:
        """Forget every frame handed over so far (stop, restart)."""
        self.epoch += 1
        self._stats[EPOCH] = self.epoch
        self._inbox.put("clear")

    def stats(self) -> dict:
        s = self._stats
        gen = int(s[GENERATED])
        return {"sent": int(s[SENT]), "generated": gen, "dropped": int(s[BEHIND] + s[LATE]) + self.skipped,
                "behind": int(s[BEHIND]) + self.skipped, "late": int(s[LATE]),
                "generate_ms": 1e3 * s[GEN_S] / gen if gen else math.nan, "estimate_ms": 1e3 * s[EST]}

    def report(self, log, every_s: float = 5.0) -> None:
        """Every `every_s`, if frames were dropped since the last report, say how many and why."""
        t, sent0, dropped0 = self._last_report
        now = time.monotonic()
        if now - t < every_s:
            return
        st = self.stats()
        self._last_report = (now, st["sent"], st["dropped"])
        if st["dropped"] > dropped0:
            rate = (st["sent"] - sent0) / (now - t)
            log(f"frames: {st['dropped'] - dropped0} dropped in {now - t:.0f} s ({rate:.1f} of {self.fps:g} fps "
                f"sent; the generator takes {st['generate_ms']:.1f} ms per frame)")

    def close(self) -> dict:
        try:
            self._inbox.put(None)
        except (ValueError, OSError):
            pass
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(2)
        return self.stats()
