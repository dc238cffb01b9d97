"""Training options: what the user asks for (`TrainOptions`) and what a run does (`ResolvedRun`).

`resolve_options` is the one place options are checked and filled in (final resolution, length,
batch table, augmentation, precision, network shape, resumed options). It is pure: it reads only
its arguments, so it can be tested without a dataset, a GPU or a run folder. Importing this module
is cheap (no torch), so the CLI takes its defaults from `TrainOptions` itself.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from breakgan.device import check_device_name
from breakgan.errors import BreakganError

AUGMENT_AUTO_LIMIT = 30_000  # datasets smaller than this get adaptive augmentation by default

# Options that may change when resuming; every other option comes from the run being resumed.
RUNTIME_OPTIONS = ("kimg", "snapshot_kimg", "keep", "device", "amp", "compile", "metric_images", "grid",
                   "deterministic")

AMP_MODES = ("auto", "bf16", "fp16", "off")
MAX_KIMG = 1e6
MAX_BATCH = 65536


@dataclass(frozen=True)
class TrainOptions:
    """All options of a run (written to options.json and into every checkpoint)."""

    resolution: int | None = None   # final resolution; None = the dataset's frame size
    latent_size: int = 512
    fmap_base: int = 8192           # channels per level: clip(fmap_base >> (level + 1), fmap_min, fmap_max)
    fmap_max: int = 512
    fmap_min: int = 1
    kimg: float | None = None       # total thousands of images; None = through one stable phase at the end
    stable_kimg: float = 600.0
    fade_kimg: float = 600.0
    batch: str = "auto"             # 'auto', one number, or 'RES:N,...' over the paper's table (global batch)
    lr: float = 0.001
    loss: str = "wgan-gp"           # a name in losses.LOSSES: 'wgan-gp' (with drift) or 'logistic' (+ R1)
    gp_lambda: float = 10.0
    drift: float = 0.001
    r1_gamma: float = 10.0
    ema_kimg: float = 10.0          # half-life of the generator EMA in thousands of images
    augment: str = "auto"           # 'auto', 'ada', 'off', or a fixed probability in (0, 1]
    augment_target: float = 0.6
    mirror: bool = False
    conditional: bool = False
    seed: int = 0
    snapshot_kimg: float = 20.0     # grid + checkpoint (+ metric) interval
    keep: int = 3                   # checkpoints kept besides the newest
    grid: int = 64                  # images in reals.png / fakes*.png
    metric_images: int = 512        # images per set for SWD at snapshots; 0 = off
    device: str = "auto"
    amp: str = "auto"               # 'auto' (bf16 on CUDA when supported, else fp16), 'bf16', 'fp16', 'off'
    compile: bool = False
    deterministic: bool = False
    batch_table: dict | None = None  # resolved per-resolution global batch (filled in by resolve_options)

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["batch_table"] is not None:
            d["batch_table"] = {str(k): v for k, v in d["batch_table"].items()}
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TrainOptions":
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if values.get("batch_table") is not None:
            values["batch_table"] = {int(k): int(v) for k, v in values["batch_table"].items()}
        return cls(**values)


@dataclass(frozen=True)
class ResolvedRun:
    """Everything a run needs to know before its first step; never changed once made."""

    options: TrainOptions           # resolution and kimg filled in; batch_table too unless fit_batch
    net: dict                       # NetConfig fields (networks.NetConfig(**net))
    amp: str | None                 # 'bf16', 'fp16' or None (float32)
    fit_batch: bool                 # batch 'auto' on CUDA: fit the paper's table to GPU memory first
    augment_p: float                # initial augmentation probability of a new run
    augment_adaptive: bool
    resumed: bool
    notes: tuple[str, ...] = ()     # said once at the start (info)
    warnings: tuple[str, ...] = ()  # warned once at the start

    def with_batch_table(self, table: dict[int, int]) -> "ResolvedRun":
        return replace(self, options=replace(self.options, batch_table=dict(table)), fit_batch=False)


def _finite(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BreakganError(f"--{name.replace('_', '-')} must be a finite number, got {value!r}")


def check_options(o: TrainOptions) -> None:
    """Every check of an option's own value (resolve_options adds the dataset-dependent ones)."""
    from breakgan.gan.losses import LOSSES
    from breakgan.gan.schedule import parse_batch_table

    for f in dataclasses.fields(o):
        value = getattr(o, f.name)
        if f.type in ("float", "int", "float | None", "int | None") and value is not None:
            _finite(f.name, value)
    if o.loss not in LOSSES:
        raise BreakganError(f"--loss must be {' or '.join(repr(k) for k in LOSSES)}, got {o.loss!r}")
    if o.amp not in AMP_MODES:
        raise BreakganError(f"--amp must be auto, bf16, fp16 or off, got {o.amp!r}")
    check_device_name(o.device)
    if o.augment not in ("auto", "ada", "off"):
        try:
            p = float(o.augment)
        except ValueError:
            raise BreakganError(f"--augment must be auto, ada, off or a probability, got {o.augment!r}") from None
        if not 0 <= p <= 1:  # NaN fails this too
            raise BreakganError(f"--augment probability must be in 0..1, got {p}")
    if o.resolution is not None and (o.resolution < 4 or o.resolution > 1024 or o.resolution & (o.resolution - 1)):
        raise BreakganError(f"--resolution must be a power of two in 4..1024, got {o.resolution}")
    if o.stable_kimg <= 0 or o.fade_kimg < 0:
        raise BreakganError("--stable-kimg must be > 0 and --fade-kimg >= 0")
    if o.kimg is not None and o.kimg <= 0:
        raise BreakganError(f"--kimg must be > 0, got {o.kimg}")
    from breakgan.gan.checkpoint import NET_LIMITS  # the same bounds a generator file is held to
    from breakgan.seeds import check_seed

    check_seed(o.seed, "--seed")

    for name in ("latent_size", "fmap_base", "fmap_max", "fmap_min"):
        low, high = NET_LIMITS[name]
        if not low <= getattr(o, name) <= high:
            raise BreakganError(f"--{name.replace('_', '-')} must be in {low}..{high}, got {getattr(o, name)}")
    if o.fmap_min > o.fmap_max:
        raise BreakganError(f"--fmap-min ({o.fmap_min}) must not exceed --fmap-max ({o.fmap_max})")
    # Checked whatever --loss says: the unused weight is still written to options.json.
    for name in ("gp_lambda", "r1_gamma"):
        if getattr(o, name) < 0:
            raise BreakganError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(o, name)}")
    if max(o.stable_kimg, o.fade_kimg, o.kimg or 0, o.snapshot_kimg, o.ema_kimg) > MAX_KIMG:
        raise BreakganError(f"--kimg, --stable-kimg, --fade-kimg, --snapshot-kimg and --ema-kimg are at most "
                            f"{MAX_KIMG:g} (a billion images)")
    if o.grid > 1024 or o.metric_images > 1 << 20 or o.keep > 1_000_000:
        raise BreakganError("--grid is at most 1024, --metric-images at most 1048576, --keep at most 1000000")
    if o.lr <= 0 or o.ema_kimg < 0:
        raise BreakganError("--lr must be > 0 and --ema-kimg >= 0")
    if o.keep < 0 or o.grid < 1 or o.metric_images < 0 or o.snapshot_kimg <= 0:
        raise BreakganError("--keep, --metric-images must be >= 0, --grid >= 1, --snapshot-kimg > 0")
    if o.batch != "auto":
        try:
            table = parse_batch_table(o.batch)
        except ValueError:
            raise BreakganError(f"--batch must be auto, a number or 'RES:N,...', got {o.batch!r}") from None
        if any(not 1 <= n <= MAX_BATCH for n in table.values()):
            raise BreakganError(f"--batch sizes must be in 1..{MAX_BATCH}, got {o.batch!r}")


def resolve_options(opts: TrainOptions, *, frame_size: int, frame_count: int, label_count: int,
                    device_type: str = "cpu", bf16_supported: bool = False, stored: dict | None = None,
                    dataset: str = "dataset") -> ResolvedRun:
    """The run `opts` asks for on a dataset of `frame_count` frames of `frame_size` px.

    `stored` is the options dict of the checkpoint being resumed: its options win, except the
    RUNTIME_OPTIONS, which come from `opts`. `device_type` is 'cpu' or 'cuda'; `bf16_supported`
    says whether that GPU runs bfloat16 (picks --amp auto's precision); `dataset` names the dataset
    in messages.
    """
    from breakgan.gan.schedule import PAPER_BATCH, parse_batch_table, total_kimg

    check_options(opts)
    resumed = stored is not None
    if resumed:
        base = TrainOptions.from_dict(stored)
        opts = replace(base, **{name: getattr(opts, name) for name in RUNTIME_OPTIONS})
        check_options(opts)
    resolution = opts.resolution if opts.resolution is not None else frame_size
    if resolution > frame_size:
        raise BreakganError(f"{dataset}: frames are {frame_size}px, smaller than the target resolution {resolution}px "
                            f"(re-ingest with --size {resolution} or train with --resolution {frame_size})")
    kimg = opts.kimg if opts.kimg is not None else total_kimg(resolution, opts.stable_kimg, opts.fade_kimg)
    table, fit = opts.batch_table, False
    if table is None:
        if opts.batch != "auto":
            table = parse_batch_table(opts.batch)
        elif device_type != "cuda":
            table = dict(PAPER_BATCH)
        else:
            fit = True
    opts = replace(opts, resolution=resolution, kimg=kimg, batch_table=table)

    if device_type != "cuda":
        # On CPU only when asked: bf16 pays off on CPUs with AMX/AVX512-BF16, and 'auto' stays exact.
        amp = "bf16" if opts.amp == "bf16" else None
    elif opts.amp == "off":
        amp = None
    else:
        amp = "bf16" if opts.amp == "bf16" or (opts.amp == "auto" and bf16_supported) else "fp16"

    notes, warnings = [], []
    adaptive, p = False, 0.0
    if opts.augment == "auto":
        adaptive = frame_count < AUGMENT_AUTO_LIMIT
        if not resumed:
            notes.append(f"augmentation: {f'adaptive (dataset of {frame_count} frames)' if adaptive else 'off'}")
    elif opts.augment == "ada":
        adaptive = True
    elif opts.augment != "off":
        p = float(opts.augment)
    if opts.conditional and label_count < 2:
        warnings.append(f"{dataset}: only {label_count} label(s); conditional training has nothing to tell apart")
    if opts.mirror and not resumed:
        warnings.append("--mirror flips frames left-right: asymmetric moves (a step to one side, a turn) get "
                        "mirrored twins and the GAN learns both")
    net = dict(resolution=resolution, latent_size=opts.latent_size, fmap_base=opts.fmap_base,
               fmap_max=opts.fmap_max, fmap_min=opts.fmap_min,
               num_classes=label_count if opts.conditional else 0)
    return ResolvedRun(options=opts, net=net, amp=amp, fit_batch=fit, augment_p=p, augment_adaptive=adaptive,
                       resumed=resumed, notes=tuple(notes), warnings=tuple(warnings))
