"""Differentiable augmentation for the discriminator's inputs (DiffAugment: colour, translation, cutout).

Reals and fakes both pass through it before D, and G's gradients flow through it, so the augmentation
does not leak into generated images. Each sample is augmented with probability `p`; with `adaptive`
the probability follows ADA's rule: raise p when D is too sure about reals (E[sign D(real)] > target),
lower it otherwise. All randomness comes from the generator passed in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass
class AugmentState:
    """Everything the augmentation remembers between steps (saved in checkpoints)."""

    p: float = 0.0
    adaptive: bool = False
    target: float = 0.6          # ADA's r_t target
    speed_kimg: float = 100.0    # p can go 0 -> 1 in this many kimg
    interval: int = 4            # steps between adjustments
    sign_sum: float = 0.0
    sign_count: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AugmentState":
        return cls(**data)

    def accumulate(self, sign_sum: float, count: float) -> None:
        self.sign_sum += sign_sum
        self.sign_count += count

    def adjust(self, step: int, batch: int) -> None:
        """ADA rule, every `interval` steps: move p by a fixed rate towards keeping r_t at target."""
        if not self.adaptive or (step + 1) % self.interval or self.sign_count == 0:
            return
        rt = self.sign_sum / self.sign_count
        delta = batch * self.interval / (self.speed_kimg * 1000.0)
        self.p = min(1.0, max(0.0, self.p + (delta if rt > self.target else -delta)))
        self.sign_sum = self.sign_count = 0.0


def _rand(shape, x, gen):
    return torch.rand(shape, generator=gen, device=x.device, dtype=torch.float32).to(x.dtype)


def color(x, gen):
    b = x.shape[0]
    x = x + (_rand((b, 1, 1, 1), x, gen) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand((b, 1, 1, 1), x, gen) * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand((b, 1, 1, 1), x, gen) + 0.5) + mean  # contrast


def translation(x, gen, ratio: float = 0.125):
    """Shift each image by up to ratio*size pixels, filling with zeros (differentiable gathers)."""
    b, c, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (b, 1), generator=gen, device=x.device)
    dx = torch.randint(-sx, sx + 1, (b, 1), generator=gen, device=x.device)
    ys = torch.arange(h, device=x.device)[None] - dy
    xs = torch.arange(w, device=x.device)[None] - dx
    vy = ((ys >= 0) & (ys < h)).to(x.dtype)
    vx = ((xs >= 0) & (xs < w)).to(x.dtype)
    x = x.gather(2, ys.clamp(0, h - 1)[:, None, :, None].expand(b, c, h, w))
    x = x.gather(3, xs.clamp(0, w - 1)[:, None, None, :].expand(b, c, h, w))
    return x * (vy[:, None, :, None] * vx[:, None, None, :])


def cutout(x, gen, ratio: float = 0.5):
    """Zero one square of ratio*size at a random position per image."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1), generator=gen, device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1), generator=gen, device=x.device)
    ys = torch.arange(h, device=x.device)[None] - cy + ch // 2
    xs = torch.arange(w, device=x.device)[None] - cx + cw // 2
    iny = (ys >= 0) & (ys < ch)
    inx = (xs >= 0) & (xs < cw)
    keep = ~(iny[:, :, None] & inx[:, None, :])
    return x * keep[:, None].to(x.dtype)


def augment(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Augment each image of x (B, C, H, W) with probability p; p == 0 returns x untouched."""
    if p <= 0:
        return x
    chosen = torch.rand((x.shape[0], 1, 1, 1), generator=gen, device=x.device) < p
    y = cutout(translation(color(x, gen), gen), gen)
    return torch.where(chosen, y, x)
