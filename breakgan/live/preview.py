"""Live preview of each part's GAN frames while `breakgan live` plays (stretch feature).

The generator runs in its own process, so its forward passes never hold the GIL of the process that
keeps OSC on time. The player hands it each part's current latent at the preview rate (latest wins,
nothing queues up); it renders one tile per part and serves the result as Motion-JPEG over HTTP on
127.0.0.1: open http://127.0.0.1:PORT/ in a browser, or point anything that reads an MJPEG URL at
/stream (a single frame is at /frame.jpg).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import queue
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from breakgan.errors import BreakganError

TILE_MIN = 192  # px: small generators are scaled up so the preview is readable


def tile_grid(images: np.ndarray, names: list[str], tile: int) -> np.ndarray:
    """Images (P, 3, R, R) in [-1, 1] -> one HxWx3 uint8 grid (BGR, for JPEG) with each part's name."""
    import cv2

    count = images.shape[0]
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    grid = np.zeros((rows * tile, cols * tile, 3), np.uint8)
    rgb = ((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).round().astype(np.uint8).transpose(0, 2, 3, 1)
    for i in range(count):
        img = cv2.resize(rgb[i][:, :, ::-1], (tile, tile), interpolation=cv2.INTER_LINEAR)
        cv2.putText(img, names[i], (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        r, c = divmod(i, cols)
        grid[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = img
    return grid


class _Frames:
    """The latest JPEG, and a condition the stream handlers wait on."""

    def __init__(self):
        self.jpeg = b""
        self.count = 0
        self.cond = threading.Condition()

    def publish(self, jpeg: bytes) -> None:
        with self.cond:
            self.jpeg, self.count = jpeg, self.count + 1
            self.cond.notify_all()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A viewer that closes its tab mid-frame is normal: no traceback on live's console for it."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def _handler(frames: _Frames):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # no access log on the console
            pass

        def do_GET(self):
            if self.path == "/frame.jpg":
                with frames.cond:
                    frames.cond.wait_for(lambda: frames.count > 0, timeout=5)
                    data = frames.jpeg
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            elif self.path == "/stream":
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                seen = 0
                try:
                    while True:
                        with frames.cond:
                            frames.cond.wait_for(lambda: frames.count > seen, timeout=5)
                            data, seen = frames.jpeg, frames.count
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(data)).encode() + b"\r\n\r\n" + data + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    return
            elif self.path == "/":
                page = b"<html><body style='margin:0;background:#000'><img src='/stream'></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
            else:
                self.send_error(404)

        def _read_only(self):
            self.send_error(405)  # http.server's default for a method it lacks is 501, a server fault

        do_POST = do_PUT = do_DELETE = do_PATCH = _read_only

    return Handler


def _serve(generator: str, device: str, host: str, port: int, latents: mp.Queue, conn) -> None:
    """Child process: load G, serve HTTP, render the newest latents as they come."""
    import cv2
    import torch

    from breakgan.gan import load_generator
    from breakgan.live.scheduler import ordinary_priority

    ordinary_priority()
    torch.set_num_threads(1)
    try:
        from breakgan.device import resolve_device

        device = resolve_device(device, "--preview-device")
        G, info = load_generator(generator, device)
        frames = _Frames()
        server = _Server((host, port), _handler(frames))
    except Exception as e:  # tell the parent in one line instead of dying silently
        conn.send(("error", str(e)))
        return
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn.send(("ok", server.server_address[1], int(info["latent_size"])))
    tile = max(TILE_MIN, int(info["resolution"]))
    while True:
        item = latents.get()
        try:  # only the newest matters
            while True:
                item = latents.get_nowait()
        except queue.Empty:
            pass
        if item is None:
            break
        names, z = item
        with torch.no_grad():
            imgs = G(torch.from_numpy(z).to(device)).float().cpu().numpy()
        ok, jpeg = cv2.imencode(".jpg", tile_grid(imgs, names, tile), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            frames.publish(jpeg.tobytes())
    server.shutdown()


class Preview:
    """The preview process; `show(names, z)` hands it the latents of the parts (drops if busy)."""

    def __init__(self, generator: str | Path, *, port: int = 8090, host: str = "127.0.0.1", device: str = "cpu",
                 fps: float = 25.0):
        from breakgan.device import check_device_name

        check_device_name(device, "--preview-device")  # before a process starts; the child resolves it
        ctx = mp.get_context("spawn")
        self._latents: mp.Queue = ctx.Queue(maxsize=2)
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(str(generator), device, host, int(port), self._latents, child),
                                 name="breakgan-preview", daemon=True)
        self._proc.start()
        if not parent.poll(120):
            self.close()
            raise BreakganError(f"{generator}: the preview process did not start")
        reply = parent.recv()
        if reply[0] != "ok":
            self._proc.join(5)
            raise BreakganError(f"--preview: {reply[1]}")
        self.port, self.latent_size = reply[1], reply[2]
        self.url = f"http://{host}:{self.port}/"
        self.period = 1.0 / fps
        self._last = -math.inf

    def due(self, t: float) -> bool:
        """True when a new frame is due at time t (s, any monotonic clock)."""
        return t - self._last >= self.period

    def show(self, names: list[str], z: np.ndarray, t: float) -> None:
        self._last = t
        try:
            self._latents.put_nowait((names, np.ascontiguousarray(z, np.float32)))
        except queue.Full:
            pass  # the generator is behind: skip this frame rather than queue stale ones

    def close(self) -> None:
        try:
            self._latents.put_nowait(None)
        except (queue.Full, ValueError, OSError):
            pass
        self._proc.join(3)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(2)
