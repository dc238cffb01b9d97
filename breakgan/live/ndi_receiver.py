"""An NDI receiver for checking what `live --ndi` sends: find sources by name without mDNS, record frames.

Used by the NDI tests and `benchmarks/live.py`, and by `NdiSink.visible` for the `--ndi-ips` check, so
that finding "MACHINE (breakgan kick)" on given IPs is written once. Each source gets its own plain
receive thread, which keeps every frame with its timecode (a FrameSync would resample to its own clock).
"""

from __future__ import annotations

import threading
import time
from typing import Iterable


def listed_name(ndi_name: str) -> str:
    """'MACHINE (breakgan kick)' -> 'breakgan kick': the name part NDI lists a source under."""
    return ndi_name.rsplit("(", 1)[-1].rstrip(")")


def find_sources(ndi, names: Iterable[str], ips: Iterable[str], timeout_s: float) -> dict:
    """{name: source} for those of `names` a finder looking at `ips` lists within timeout_s."""
    want = set(names)
    create = ndi.FindCreate()
    create.extra_ips = ",".join(ips)
    finder = ndi.find_create_v2(create)
    found: dict = {}
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(found) < len(want):
            ndi.find_wait_for_sources(finder, 200)
            for src in ndi.find_get_current_sources(finder):
                name = listed_name(src.ndi_name)
                if name in want:
                    found[name] = src
    finally:
        ndi.find_destroy(finder)
    return found


def record_frames(names: list[str], conn, *, ips: tuple[str, ...] = ("127.0.0.1",), pixels: bool = False,
                  find_timeout_s: float = 60.0) -> None:
    """Child-process entry: find `names`, connect, send the sorted found names over `conn`, record every
    video frame until `conn` says stop, then send back rows of (name, timecode s, capture Unix s) plus
    (xres, yres, RGB array) when `pixels`."""
    import NDIlib as ndi
    import numpy as np

    ndi.initialize()
    found = find_sources(ndi, names, ips, find_timeout_s)
    receivers = {}
    for name, src in found.items():
        rc = ndi.RecvCreateV3()
        rc.color_format = ndi.RECV_COLOR_FORMAT_RGBX_RGBA
        rc.bandwidth = ndi.RECV_BANDWIDTH_HIGHEST
        receivers[name] = ndi.recv_create_v3(rc)
        ndi.recv_connect(receivers[name], src)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(ndi.recv_get_no_connections(r) for r in receivers.values()):
        time.sleep(0.02)
    conn.send(sorted(found))
    rows, stop = [], threading.Event()

    def pump(name, r):
        while not stop.is_set():
            kind, v, _, _ = ndi.recv_capture_v2(r, 100)
            if kind == ndi.FRAME_TYPE_VIDEO:
                row = (name, v.timecode / 1e7, time.time())
                if pixels:
                    row += (v.xres, v.yres, np.array(v.data[:, :, :3]))
                rows.append(row)
                ndi.recv_free_video_v2(r, v)

    threads = [threading.Thread(target=pump, args=item, daemon=True) for item in receivers.items()]
    for t in threads:
        t.start()
    conn.recv()  # stop
    stop.set()
    for t in threads:
        t.join(2)
    conn.send(rows)
