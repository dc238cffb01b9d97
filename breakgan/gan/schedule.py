"""The progressive-growing schedule as a pure function of images shown (like PGGAN's TrainingSchedule).

Level 0 (4 px) trains stable for `stable_kimg`; each later level fades in over `fade_kimg` then trains
stable for `stable_kimg`; the last level stays stable until training ends. Nothing here is hidden state,
so resuming only needs the image count.
"""

from __future__ import annotations

from dataclasses import dataclass

# Global batch per resolution, after the paper's minibatch table (16 GB GPUs).
PAPER_BATCH = {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4, 1024: 4}


@dataclass(frozen=True)
class Phase:
    level: int         # 0 = 4 px
    resolution: int    # pixels
    alpha: float       # fade-in weight of the newest level, 1.0 when stable
    batch: int         # global batch (all ranks together)
    lr: float          # Adam learning rate for both networks

    @property
    def fading(self) -> bool:
        return self.alpha < 1.0

    @property
    def name(self) -> str:
        return f"{'fade' if self.fading else 'stable'} {self.resolution}px"


def schedule(images_shown: int, *, resolution: int, stable_kimg: float = 600, fade_kimg: float = 600,
             batch: dict[int, int] | None = None, lr: float = 0.001) -> Phase:
    """Resolution, fade alpha, batch size and learning rate after `images_shown` training images."""
    from breakgan.gan.networks import level_of  # light import: networks only needs torch, already loaded

    batch = batch or PAPER_BATCH
    last = level_of(resolution)
    stable, fade = stable_kimg * 1000.0, fade_kimg * 1000.0
    t = float(images_shown)
    level, alpha = 0, 1.0
    if t >= stable and last > 0:
        period = fade + stable
        k, rest = divmod(t - stable, period) if period > 0 else (float(last), 0.0)
        level = int(k) + 1
        if level > last:
            level, alpha = last, 1.0
        elif rest < fade:
            alpha = rest / fade
    res = 4 << level
    return Phase(level=level, resolution=res, alpha=alpha, batch=int(batch.get(res, min(batch.values()))), lr=lr)


def total_kimg(resolution: int, stable_kimg: float = 600, fade_kimg: float = 600) -> float:
    """kimg at which the final resolution has finished one stable phase (the default run length)."""
    from breakgan.gan.networks import level_of

    return stable_kimg + level_of(resolution) * (fade_kimg + stable_kimg)


def parse_batch_table(text: str) -> dict[int, int]:
    """'16:64,32:32' -> {16: 64, 32: 32}, merged over the paper's table; a bare number applies to all."""
    text = text.strip()
    if text.isdigit():
        return {r: int(text) for r in PAPER_BATCH}
    table = dict(PAPER_BATCH)
    for item in filter(None, (s.strip() for s in text.split(","))):
        r, _, b = item.partition(":")
        table[int(r)] = int(b)
    return table
