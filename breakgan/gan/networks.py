"""PGGAN generator and discriminator (Karras et al. 2018) as plain nn.Modules.

This module imports nothing from the application: networks take tensors and sizes, and data, logging
and files stay outside. Both networks hold every resolution level up front (level 0 = 4x4, level k =
4*2^k) and take the current `level` and fade `alpha` per call, so growing never rebuilds a module or an
optimizer, which keeps checkpoints and resume simple.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from breakgan.gan.conv import conv2d


@dataclass(frozen=True)
class NetConfig:
    """Architecture of both networks; stored in every checkpoint to rebuild them."""

    resolution: int = 256      # final output size in pixels, a power of two in 4..1024
    latent_size: int = 512     # length of z
    fmap_base: int = 8192      # channels at level k: clip(fmap_base >> (k + 1), fmap_min, fmap_max)
    fmap_max: int = 512
    fmap_min: int = 1
    num_classes: int = 0       # 0 = unconditional; else G embeds labels, D uses a projection head
    mbstd_group: int = 4       # minibatch standard deviation group size

    def __post_init__(self):
        r = self.resolution
        if r < 4 or r > 1024 or r & (r - 1):
            raise ValueError(f"resolution must be a power of two in 4..1024, got {r}")

    @property
    def levels(self) -> int:
        """Number of resolution levels: 4 px is level 0, `resolution` is level levels-1."""
        return int(math.log2(self.resolution)) - 1

    def width(self, level: int) -> int:
        return int(min(max(self.fmap_base >> (level + 1), self.fmap_min), self.fmap_max))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NetConfig":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def resolution_of(level: int) -> int:
    return 4 << level


def level_of(resolution: int) -> int:
    return int(math.log2(resolution)) - 2


class EqualizedLinear(nn.Module):
    """Linear layer with weights ~N(0,1) scaled at run time by He's constant (equalized LR)."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias)


class EqualizedConv2d(nn.Module):
    """'Same'-padded convolution with equalized learning rate. `second_order`: differentiated twice in
    training (D's, through the gradient penalty), so it takes `conv.conv2d`'s faster second derivative."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, gain: float = math.sqrt(2),
                 second_order: bool = False):
        super().__init__()
        self.second_order = second_order
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel * kernel)
        self.padding = kernel // 2

    def scaled(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, weight) with the scale on one of them: conv(x, w * s) == conv(x * s, w), so scale whichever
        tensor is smaller (weights at low resolution, small activations otherwise); equal up to float rounding."""
        if x.numel() < self.weight.numel():
            return x * self.scale, self.weight
        return x, self.weight * self.scale

    def forward(self, x):
        x, w = self.scaled(x)
        if self.second_order:
            return conv2d(x, w, self.bias, self.padding)
        return F.conv2d(x, w, self.bias, padding=self.padding)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each pixel's feature vector to unit average square (dim 1)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU in place: every caller passes a fresh layer output that nothing else reads (a conv or
    linear backward needs its inputs, not its output), so this saves one activation-sized tensor per layer
    and pass; autograd keeps the result for the backward, as the out-of-place op keeps its input."""
    return F.leaky_relu_(x, 0.2)


def minibatch_stddev(x: torch.Tensor, group: int, chunks: int = 1) -> torch.Tensor:
    """Append the average standard deviation over groups of samples as one more feature map.

    `chunks` > 1 treats the batch as that many independent batches (stats never mix across them), so
    real and fake images can share one forward pass and still get exactly the per-batch statistic.
    """
    b, c, h, w = x.shape
    n = b // chunks
    g = min(group, n)
    if n % g:
        g = 1 if n < group else math.gcd(n, g)
    y = x.reshape(chunks, g, n // g, c, h, w).float()
    y = (y - y.mean(dim=1, keepdim=True)).square().mean(dim=1)
    y = (y + 1e-8).sqrt().mean(dim=(2, 3, 4))  # (chunks, n // g)
    y = y.reshape(chunks, 1, n // g, 1, 1, 1).expand(chunks, g, n // g, 1, h, w).reshape(b, 1, h, w)
    return torch.cat([x, y.to(x.dtype)], dim=1)


def upsample_kernels(w: torch.Tensor) -> list[torch.Tensor]:
    """A 3x3 kernel (cout, cin, 3, 3) applied after 2x nearest upsampling, as the four 2x2 kernels that
    give the output pixels (2i+a, 2j+b) straight from the input, for (a, b) = (0,0), (0,1), (1,0), (1,1).
    Output row 2i reads input rows i-1 (tap 0) and i (taps 1+2); row 2i+1 reads i (taps 0+1) and i+1
    (tap 2); columns alike."""
    rows = (torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2),
            torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2))
    return [torch.stack([r[..., 0], r[..., 1] + r[..., 2]], 3) if b == 0 else
            torch.stack([r[..., 0] + r[..., 1], r[..., 2]], 3) for r in rows for b in (0, 1)]


# Where the fused form is faster, measured per layer on CPU (one thread; forward / forward + backward, against the
# plain form). It pays once a layer has work to do: below about 30M multiply-adds of the plain form (150M in
# channels-last, where the plain form is faster) its four calls cost more than they save (0.6-0.95x, e.g. 64
# channels at 8 px, batch 3). With 512 channels: input 4 px 0.8x / 0.7x, 8 px 1.4x / 1.3x, 16-64 px 1.7-2.4x /
# 1.3-1.8x; narrow layers at 32-128 px 1.1-2.6x forward. In training, 128 input channels at 128 px lose in the
# backward (0.75x channels-last: its strided writes dominate).
FUSED_UPSAMPLE_MIN = 8
FUSED_UPSAMPLE_MIN_MACS = 30e6
FUSED_UPSAMPLE_MIN_MACS_CHANNELS_LAST = 150e6
FUSED_UPSAMPLE_MIN_CHANNELS_TRAINING = 256


def _channels_last(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def fused_upsample_pays(x: torch.Tensor, conv: "EqualizedConv2d") -> bool:
    """Whether `upsample_conv` should take the fused form for this input and layer (measured rules above)."""
    b, cin, h, w = x.shape
    if h < FUSED_UPSAMPLE_MIN or w < FUSED_UPSAMPLE_MIN or conv.weight.shape[-1] != 3:
        return False
    min_macs = FUSED_UPSAMPLE_MIN_MACS_CHANNELS_LAST if _channels_last(x) else FUSED_UPSAMPLE_MIN_MACS
    if b * cin * conv.weight.shape[0] * 4 * h * w * 9 < min_macs:
        return False
    training = torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad)
    return not training or cin >= FUSED_UPSAMPLE_MIN_CHANNELS_TRAINING


def upsample_conv(x: torch.Tensor, conv: "EqualizedConv2d", fused: bool | None = None) -> torch.Tensor:
    """conv(2x nearest upsample of x), 3x3 'same' conv. The fused form never builds the upsampled tensor: four
    2x2 convolutions on x, one per output phase, interleaved. The same sums in another order (equal up to
    float rounding), at 4/9 of the multiply-adds; NVIDIA's PGGAN and StyleGAN fuse the same way
    (`upscale2d_conv2d`). `fused` None: where it is faster (`fused_upsample_pays`)."""
    if not (fused_upsample_pays(x, conv) if fused is None else fused):
        return conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
    b, _, h, w = x.shape
    xs, weight = conv.scaled(x)
    xp = F.pad(xs, (1, 1, 1, 1))
    fmt = torch.channels_last if _channels_last(x) else torch.contiguous_format
    y = None
    for (a, c), k in zip(((0, 0), (0, 1), (1, 0), (1, 1)), upsample_kernels(weight)):
        phase = F.conv2d(xp[:, :, a:a + h + 1, c:c + w + 1], k, conv.bias)
        if y is None:  # the dtype conv2d gives (autocast's, under AMP)
            y = torch.empty(b, phase.shape[1], 2 * h, 2 * w, dtype=phase.dtype, device=x.device, memory_format=fmt)
        y[:, :, a::2, c::2] = phase
    return y


class GBlock(nn.Module):
    """2x nearest upsample, then two 3x3 convs, each followed by leaky ReLU and pixel norm."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0 = EqualizedConv2d(cin, cout, 3)
        self.conv1 = EqualizedConv2d(cout, cout, 3)

    def forward(self, x):
        x = pixel_norm(lrelu(upsample_conv(x, self.conv0)))
        return pixel_norm(lrelu(self.conv1(x)))


class Generator(nn.Module):
    """z (B, latent_size) [+ labels (B,)] -> images (B, 3, R, R), R = 4 * 2^level.

    `level` and `alpha` default to the attributes of the same name, which the trainer keeps at the
    current schedule position, so a loaded generator renders at the resolution it was trained to.
    """

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        self.level = config.levels - 1
        self.alpha = 1.0
        self.clamp = False  # clamp to [-1, 1]; set for inference by load_generator
        L, c0 = config.latent_size, config.width(0)
        cin = L
        if config.num_classes:
            self.embed = nn.Parameter(torch.randn(config.num_classes, L))
            cin = 2 * L
        self.dense = EqualizedLinear(cin, c0 * 16, gain=math.sqrt(2) / 4)
        self.conv = EqualizedConv2d(c0, c0, 3)
        self.blocks = nn.ModuleList(
            [nn.Identity()] + [GBlock(config.width(k - 1), config.width(k)) for k in range(1, config.levels)]
        )
        self.to_rgb = nn.ModuleList([EqualizedConv2d(config.width(k), 3, 1, gain=1.0)
                                     for k in range(config.levels)])

    def forward(self, z, labels=None, level: int | None = None, alpha: float | None = None):
        level = self.level if level is None else level
        alpha = self.alpha if alpha is None else alpha
        x = pixel_norm(z)
        if self.config.num_classes:
            # Without labels, the average class embedding: a deterministic "any class" sample.
            # Float labels (B, num_classes) are class weights: a mix of embeddings (the studio's class morph).
            if labels is not None and labels.is_floating_point():
                e = labels.to(self.embed.dtype) @ self.embed
            else:
                e = self.embed[labels] if labels is not None else self.embed.mean(0, keepdim=True).expand(len(z), -1)
            x = torch.cat([x, pixel_norm(e.to(x.dtype))], dim=1)
        x = self.dense(x).view(len(z), -1, 4, 4)
        x = pixel_norm(lrelu(x))
        x = pixel_norm(lrelu(self.conv(x)))
        for k in range(1, level):
            x = self.blocks[k](x)
        if level == 0:
            out = self.to_rgb[0](x)
        else:
            out = self.to_rgb[level](self.blocks[level](x))
            if alpha < 1.0:
                old = F.interpolate(self.to_rgb[level - 1](x), scale_factor=2.0, mode="nearest")
                out = torch.lerp(old, out, alpha)
        return out.clamp(-1, 1) if self.clamp else out

    @property
    def resolution(self) -> int:
        return resolution_of(self.level)


class DBlock(nn.Module):
    """Two 3x3 convs with leaky ReLU, then 2x average pooling."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0 = EqualizedConv2d(cin, cin, 3, second_order=True)
        self.conv1 = EqualizedConv2d(cin, cout, 3, second_order=True)

    def forward(self, x):
        x = lrelu(self.conv0(x))
        x = lrelu(self.conv1(x))
        return F.avg_pool2d(x, 2)


class Discriminator(nn.Module):
    """images (B, 3, R, R) [+ labels (B,)] -> scores (B,); projection head when conditional."""

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config
        c0 = config.width(0)
        self.from_rgb = nn.ModuleList([EqualizedConv2d(3, config.width(k), 1, second_order=True)
                                       for k in range(config.levels)])
        self.blocks = nn.ModuleList(
            [nn.Identity()] + [DBlock(config.width(k), config.width(k - 1)) for k in range(1, config.levels)]
        )
        self.conv = EqualizedConv2d(c0 + 1, c0, 3, second_order=True)
        self.dense0 = EqualizedLinear(c0 * 16, c0)
        self.dense1 = EqualizedLinear(c0, 1, gain=1.0)
        if config.num_classes:
            self.embed = nn.Parameter(torch.randn(config.num_classes, c0) / math.sqrt(c0))

    def forward(self, img, labels=None, level: int | None = None, alpha: float = 1.0, chunks: int = 1):
        level = self.config.levels - 1 if level is None else level
        x = lrelu(self.from_rgb[level](img))
        if level > 0:
            x = self.blocks[level](x)
            if alpha < 1.0:
                old = lrelu(self.from_rgb[level - 1](F.avg_pool2d(img, 2)))
                x = torch.lerp(old, x, alpha)
            for k in range(level - 1, 0, -1):
                x = self.blocks[k](x)
        x = minibatch_stddev(x, self.config.mbstd_group, chunks)
        x = lrelu(self.conv(x))
        h = lrelu(self.dense0(x.flatten(1)))
        out = self.dense1(h).squeeze(1)
        if self.config.num_classes and labels is not None:
            out = out + (self.embed[labels].to(h.dtype) * h).sum(dim=1)
        return out
