"""Where live's generated frames go: one small sink per video transport, behind one interface.

A sink publishes named streams: one per drum part ("kick", "snare", ...) and/or one composite
("breakgan"). `send(stream, rgbx, t_unix)` takes an (H, W, 4) uint8 RGBX frame and the clock time it is
meant to be shown at, in Unix seconds (the timebase of the OSC timetags).

- NDI (`pip install 'breakgan[ndi]'`: ndi-python, whose wheels bundle the NDI runtime): one NDI source
  per stream, named "breakgan <stream>", the time carried as the frame's NDI timecode (100 ns units).
  cyndilib was tried first; its senders cannot set a frame's timecode from Python, so frames could
  not carry their clock time.
- Spout (Windows, `breakgan[spout]`, SpoutGL) and Syphon (macOS, `breakgan[syphon]`, syphon-python):
  written against those packages' APIs (SpoutGL's SpoutSender.sendImage; syphon-python's
  SyphonMetalServer), neither tested here (no Windows or macOS machine). They carry no timestamp:
  both transports show the latest texture.

The NDI runtime is proprietary and is not part of breakgan (see README, "NDI").
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Protocol

import numpy as np

from breakgan.errors import BreakganError

TRANSPORTS = ("ndi", "spout", "syphon")
NDI_PREFIX = "breakgan"
MAX_IPS = 32


class Sink(Protocol):
    def send(self, stream: str, rgbx: np.ndarray, t_unix: float) -> None: ...
    def close(self) -> None: ...


def source_name(stream: str) -> str:
    """The name receivers list: 'breakgan kick', or 'breakgan' for the composite stream."""
    return NDI_PREFIX if stream == NDI_PREFIX else f"{NDI_PREFIX} {stream}"


def parse_ips(text: str | None) -> tuple[str, ...]:
    """'127.0.0.1,10.0.0.5' -> a tuple of IP addresses (v4 or v6), or a BreakganError naming --ndi-ips."""
    if text is None:
        return ()
    items = [s.strip() for s in str(text).split(",") if s.strip()]
    if not items or len(items) > MAX_IPS:
        raise BreakganError(f"--ndi-ips must list 1..{MAX_IPS} IP addresses separated by commas, got {str(text)[:60]!r}")
    for s in items:
        try:
            ipaddress.ip_address(s)
        except ValueError:
            raise BreakganError(f"--ndi-ips: {s[:60]!r} is not an IP address") from None
    return tuple(items)


def ndi_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("NDIlib") is not None


def _import_ndi():
    try:
        import NDIlib as ndi  # ndi-python
    except ImportError as e:
        raise BreakganError("--ndi needs the ndi-python package (it bundles the NDI runtime): "
                            "pip install 'breakgan[ndi]'") from e
    return ndi


class NdiSink:
    """One NDI sender per stream. The frame rate is advertised to receivers; frames are not clocked
    by the SDK (the caller sends each at its own time)."""

    def __init__(self, streams: list[str], fps: float):
        from fractions import Fraction

        ndi = self._ndi = _import_ndi()
        if not ndi.initialize():
            raise BreakganError("--ndi: the NDI runtime did not start (this CPU may not be supported)")
        rate = Fraction(float(fps)).limit_denominator(1001)
        self._senders, self._frames = {}, {}
        try:
            for s in streams:
                create = ndi.SendCreate()
                create.ndi_name = source_name(s)
                create.clock_video = False  # we pace sends ourselves; a clocked send would block
                sender = ndi.send_create(create)
                if sender is None:
                    raise BreakganError(f"--ndi: could not create the NDI source {source_name(s)!r}")
                self._senders[s] = sender
                frame = ndi.VideoFrameV2()
                frame.FourCC = ndi.FOURCC_VIDEO_TYPE_RGBX
                frame.frame_rate_N, frame.frame_rate_D = rate.numerator, rate.denominator
                self._frames[s] = frame
        except BaseException:
            self.close()
            raise

    def send(self, stream: str, rgbx: np.ndarray, t_unix: float) -> None:
        frame = self._frames[stream]
        frame.data = rgbx  # (H, W, 4) uint8, contiguous; sets xres, yres and the line stride
        frame.timecode = int(round(t_unix * 1e7))
        self._ndi.send_send_video_v2(self._senders[stream], frame)

    def connections(self, stream: str) -> int:
        return int(self._ndi.send_get_no_connections(self._senders[stream], 0))

    def visible(self, ips: tuple[str, ...], timeout_s: float = 3.0) -> set[str]:
        """Which of this sink's sources an NDI finder looking at `ips` lists within timeout_s (a check
        for machines without mDNS: a receiver there needs these IPs in its own NDI settings)."""
        from breakgan.live.ndi_receiver import find_sources

        want = {source_name(s): s for s in self._senders}
        return {want[name] for name in find_sources(self._ndi, want, ips, timeout_s)}

    def close(self) -> None:
        for sender in getattr(self, "_senders", {}).values():
            self._ndi.send_destroy(sender)
        self._senders = {}
        # ndi.destroy() is left out on purpose: the runtime is shared by the whole process.


class SpoutSink:  # pragma: no cover - Windows only; not run by the tests (no Windows machine here)
    """One Spout sender per stream (SpoutGL's SpoutSender.sendImage; SpoutGL creates its OpenGL context)."""

    def __init__(self, streams: list[str], fps: float):
        try:
            import SpoutGL
        except ImportError as e:
            raise BreakganError("--spout needs SpoutGL on Windows: pip install 'breakgan[spout]'") from e
        self._gl_rgba = 0x1908  # GL_RGBA
        self._senders = {}
        for s in streams:
            sender = SpoutGL.SpoutSender()
            sender.setSenderName(source_name(s))
            self._senders[s] = sender

    def send(self, stream: str, rgbx: np.ndarray, t_unix: float) -> None:
        h, w = rgbx.shape[:2]
        sender = self._senders[stream]
        sender.sendImage(rgbx, w, h, self._gl_rgba, False, 0)
        sender.setFrameSync(source_name(stream))

    def close(self) -> None:
        for sender in self._senders.values():
            sender.releaseSender()
        self._senders = {}


class SyphonSink:  # pragma: no cover - macOS only; not run by the tests (no Mac here)
    """One Syphon Metal server per stream (syphon-python), each frame copied into a Metal texture."""

    def __init__(self, streams: list[str], fps: float):
        try:
            import syphon
            from syphon.utils.numpy import copy_image_to_mtl_texture
            from syphon.utils.raw import create_mtl_texture
        except ImportError as e:
            raise BreakganError("--syphon needs syphon-python on macOS: pip install 'breakgan[syphon]'") from e
        self._copy, self._create = copy_image_to_mtl_texture, create_mtl_texture
        self._servers = {s: syphon.SyphonMetalServer(source_name(s)) for s in streams}
        self._textures: dict = {}

    def send(self, stream: str, rgbx: np.ndarray, t_unix: float) -> None:
        server = self._servers[stream]
        h, w = rgbx.shape[:2]
        tex = self._textures.get(stream)
        if tex is None or (tex.width(), tex.height()) != (w, h):
            tex = self._textures[stream] = self._create(server.device, w, h)
        self._copy(rgbx, tex)
        server.publish_frame_texture(tex)

    def close(self) -> None:
        for server in self._servers.values():
            server.stop()
        self._servers = {}


def check_transport(name: str) -> str:
    if name not in TRANSPORTS:
        raise BreakganError(f"unknown frame transport {name!r} (one of {', '.join(TRANSPORTS)})")
    if name == "spout" and sys.platform != "win32":
        raise BreakganError("--spout: Spout exists on Windows only (use --ndi)")
    if name == "syphon" and sys.platform != "darwin":
        raise BreakganError("--syphon: Syphon exists on macOS only (use --ndi)")
    return name


def make_sink(transport: str, streams: list[str], fps: float) -> Sink:
    cls = {"ndi": NdiSink, "spout": SpoutSink, "syphon": SyphonSink}[check_transport(transport)]
    return cls(streams, fps)
