"""Generated image streams: latent paths -> G in batches -> uint8 tiles, in a producer thread.

The producer evaluates the (pure) latent paths chunk by chunk, so nothing grows with the video's
length; a bounded queue hands finished batches to the compositor/encoder, which runs meanwhile.
Batches run across all parts at once (frame-major order), so frames complete in order.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from breakgan.trajectory import Motion, latent_path, part_motion

_DONE = object()


@dataclass
class PartStream:
    """What the producer needs for one part."""

    name: str
    onsets: np.ndarray  # (n, 2) [time_s, velocity]
    keys: np.ndarray  # (K, D) keyframes
    size: tuple[int, int]  # (width, height) of the part's tile, pixels
    label: int | None = None  # class index for conditional generators


def to_tiles(images, size: tuple[int, int]):
    """(B, 3, R, R) in [-1, 1] -> (B, h, w, 3) uint8 covering w x h (scaled, centre-cropped), same device."""
    import torch.nn.functional as F

    from breakgan.gan.sampling import quantize

    w, h = size
    R_h, R_w = images.shape[-2:]
    scale = max(w / R_w, h / R_h)
    sh, sw = max(h, round(R_h * scale)), max(w, round(R_w * scale))
    x = images.float()
    if (sh, sw) != (R_h, R_w):
        x = F.interpolate(x, size=(sh, sw), mode="bilinear", align_corners=False, antialias=scale < 1)
    top, left = (sh - h) // 2, (sw - w) // 2
    x = x[:, :, top:top + h, left:left + w]
    return quantize(x).permute(0, 2, 3, 1)


class GeneratedFrames:
    """Iterate per output frame a dict part -> (h, w, 3) uint8, generated in a background thread.

    G: any callable G(z) (or G(z, labels) when parts carry labels) -> (B, 3, R, R) in [-1, 1].
    times: (F,) frame times in seconds. batch: latents per forward pass.
    """

    def __init__(self, G: Callable, parts: list[PartStream], times: np.ndarray, motion: Motion, *,
                 batch: int = 16, device="cpu", amp: bool | None = None, queue_batches: int = 4):
        import torch

        self.G, self.parts, self.times, self.motion = G, parts, np.asarray(times, np.float64), motion
        self.batch = max(1, int(batch))
        self.device = torch.device(device)
        self.amp = (self.device.type == "cuda") if amp is None else amp
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, queue_batches))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._produce, name="breakgan-generate", daemon=True)
        self.motions = [part_motion(motion, p.name) for p in parts]
        self.conditional = any(p.label is not None for p in parts)
        self.forward_s = 0.0  # time spent in G + tile conversion (for the benchmark)
        self.resolution: int | None = None  # G's output size, seen on the first batch

    # -- producer -------------------------------------------------------------------------------
    def _latents(self, start: int, stop: int) -> np.ndarray:
        """Latents of flat items start..stop-1 (item = frame * P + part), evaluated for their frames only."""
        P = len(self.parts)
        idx = np.arange(start, stop)
        f, p = idx // P, idx % P
        f0, f1 = f[0], f[-1] + 1
        t = self.times[f0:f1]
        paths = [latent_path(ps.onsets, ps.keys, t, m) for ps, m in zip(self.parts, self.motions)]
        return np.stack([paths[pi][fi - f0] for fi, pi in zip(f, p)])

    def _forward(self, z: np.ndarray, part_idx: np.ndarray) -> list[np.ndarray]:
        import time

        import torch

        t0 = time.perf_counter()
        zt = torch.from_numpy(z).to(self.device, non_blocking=True)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            if self.conditional:
                labels = torch.tensor([self.parts[i].label or 0 for i in part_idx], device=self.device)
                images = self.G(zt, labels)
            else:
                images = self.G(zt)
        self.resolution = int(images.shape[-1])
        out: list[np.ndarray | None] = [None] * len(z)
        sizes: dict[tuple[int, int], list[int]] = {}
        for k, pi in enumerate(part_idx):
            sizes.setdefault(self.parts[pi].size, []).append(k)
        with torch.inference_mode():
            for size, ks in sizes.items():
                sel = images if len(ks) == len(z) else images[torch.as_tensor(ks, device=images.device)]
                tiles = to_tiles(sel, size).cpu().numpy()
                for j, k in enumerate(ks):
                    out[k] = tiles[j]
        self.forward_s += time.perf_counter() - t0
        return out

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            P = len(self.parts)
            total = len(self.times) * P
            for start in range(0, total, self.batch):
                if self.stop.is_set():
                    return
                stop = min(total, start + self.batch)
                z = self._latents(start, stop)
                tiles = self._forward(z, np.arange(start, stop) % P)
                if not self._put(tiles):
                    return
            self._put(_DONE)
        except BaseException as e:  # handed to the consumer, which re-raises it
            self._put(e)

    # -- consumer -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        names = [p.name for p in self.parts]
        P = len(names)
        self.thread.start()
        try:
            frame: dict[str, np.ndarray] = {}
            k = 0
            while True:
                item = self.queue.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                for tile in item:
                    frame[names[k % P]] = tile
                    k += 1
                    if k % P == 0:
                        yield frame
                        frame = {}
        finally:
            self.close()

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)
