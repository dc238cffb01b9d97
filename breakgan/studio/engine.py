"""The generator behind one worker thread: latents for seeds, images as PNG bytes, a bounded cache.

Every forward pass runs on the single worker thread (torch releases the GIL while it computes, so
the web server keeps answering). Images are generated one latent per forward pass, as `breakgan
sample` does by default, so a seed's image is the same bytes-for-pixels as `sample --seeds S`.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from breakgan.gan.sampling import generate_images
from breakgan.seeds import latent_for_seed

CACHE_BYTES = 256 << 20


def png_bytes(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG file contents."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), "RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class Engine:
    """A loaded generator (G, info) and the one thread that runs it."""

    def __init__(self, generator, device: str = "auto", cache_bytes: int = CACHE_BYTES):
        from breakgan.device import resolve_device
        from breakgan.gan import load_generator

        self.device = resolve_device(device)
        if isinstance(generator, (str, Path)):
            self.G, self.info = load_generator(generator, device=self.device)
        else:
            self.G, self.info = generator
        self.latent_size = int(self.info["latent_size"])
        self.resolution = int(self.info["resolution"])
        n = int(self.info.get("num_classes") or 0)
        names = [str(x) for x in self.info.get("labels") or []]
        # a conditional generator's class names (its numbers where it has none); [] when unconditional
        self.classes = (names if len(names) == n else [str(k) for k in range(n)]) if n > 0 else []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-generator")
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._cache_size = 0
        self._cache_limit = cache_bytes
        self._lock = threading.Lock()

    # --- called from any thread -------------------------------------------------------------
    def submit(self, fn, *args, **kwargs) -> Future:
        return self._pool.submit(fn, *args, **kwargs)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def cached(self, key: tuple) -> bytes | None:
        with self._lock:
            data = self._cache.get(key)
            if data is not None:
                self._cache.move_to_end(key)
            return data

    def _remember(self, key: tuple, data: bytes) -> None:
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = data
            self._cache_size += len(data)
            while self._cache_size > self._cache_limit and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_size -= len(old)

    def latent(self, seed: int, truncation: float | None = None) -> np.ndarray:
        """The keyframe latent (D,) float32 of a seed: the rule `sample`, `render --seeds` and live share."""
        return np.asarray(latent_for_seed(seed, self.latent_size, truncation), np.float32)

    # --- run on the worker thread ------------------------------------------------------------
    def images(self, latents: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) for latents (N, D), one per forward pass."""
        import torch

        z = torch.from_numpy(np.ascontiguousarray(latents, np.float32))
        return generate_images(self.G, z, batch_size=1, device=self.device)

    def seed_pngs(self, seeds: list[int], truncation: float | None) -> list[bytes]:
        """PNG bytes of each seed's image; generated once, then served from the cache."""
        keys = [("seed", int(s), truncation) for s in seeds]
        out = [self.cached(k) for k in keys]
        todo = [i for i, d in enumerate(out) if d is None]
        if todo:
            z = np.stack([self.latent(seeds[i], truncation) for i in todo])
            for i, img in zip(todo, self.images(z)):
                out[i] = png_bytes(img)
                self._remember(keys[i], out[i])
        return out

    def latent_pngs(self, latents: np.ndarray) -> list[bytes]:
        return [png_bytes(img) for img in self.images(latents)]

    def class_pngs(self, latent: np.ndarray, a: int, b: int, fractions: np.ndarray) -> list[bytes]:
        """One latent under class weights moving from class a to class b: the label embedding is
        interpolated (G mixes embeddings for float labels), fraction 0 is exactly class a, 1 class b."""
        import torch

        from breakgan.studio.latents import class_weights

        w = torch.from_numpy(class_weights(a, b, fractions, len(self.classes)))
        z = torch.from_numpy(np.repeat(np.asarray(latent, np.float32)[None, :], len(w), axis=0))
        return [png_bytes(img) for img in generate_images(self.G, z, labels=w, batch_size=1, device=self.device)]
