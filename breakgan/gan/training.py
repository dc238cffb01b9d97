"""The PGGAN training loop: options, one step of D and G, snapshots, checkpoints, exact resume.

Everything a step does is a function of the checkpointed state: the networks, both optimizers, the AMP
scalers, the augmentation state and the image count. Random numbers come from a generator seeded per
(seed, rank, step), and the data order is a pure function of (seed, position) (see data.py), so a run
stopped at any step boundary and resumed continues bit for bit (on CPU) as if never stopped.
"""

from __future__ import annotations

import copy
import math
import signal
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from breakgan.console import info, progress, warn
from breakgan.errors import BreakganError
from breakgan.gan import checkpoint as ckpt
from breakgan.gan import distributed as ddp
from breakgan.gan.augment import AugmentState, augment
from breakgan.gan.data import BatchLoader, PackedDataset, open_dataset
from breakgan.gan.networks import Discriminator, Generator, NetConfig
from breakgan.gan.sampling import write_png
from breakgan.gan.schedule import PAPER_BATCH, Phase, parse_batch_table, schedule, total_kimg
from breakgan.stage import make_record, write_json_atomic, write_record

AUGMENT_AUTO_LIMIT = 30_000  # datasets smaller than this get adaptive augmentation by default

# Options that may change when resuming; every other option comes from the run being resumed.
RUNTIME_OPTIONS = ("kimg", "snapshot_kimg", "keep", "device", "amp", "compile", "metric_images", "grid",
                   "deterministic")


@dataclass
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
    loss: str = "wgan-gp"           # 'wgan-gp' (with drift) or 'logistic' (non-saturating + R1)
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
    batch_table: dict | None = None  # resolved per-resolution global batch (filled in at start)

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["batch_table"] is not None:
            d["batch_table"] = {str(k): v for k, v in d["batch_table"].items()}
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TrainOptions":
        names = {f.name for f in fields(cls)}
        opts = cls(**{k: v for k, v in data.items() if k in names})
        if opts.batch_table is not None:
            opts.batch_table = {int(k): int(v) for k, v in opts.batch_table.items()}
        return opts

    def validate(self) -> None:
        if self.loss not in ("wgan-gp", "logistic"):
            raise BreakganError(f"--loss must be 'wgan-gp' or 'logistic', got {self.loss!r}")
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise BreakganError(f"--amp must be auto, bf16, fp16 or off, got {self.amp!r}")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise BreakganError(f"--device must be auto, cpu or cuda[:N], got {self.device!r}")
        if self.augment not in ("auto", "ada", "off"):
            try:
                p = float(self.augment)
            except ValueError:
                raise BreakganError(f"--augment must be auto, ada, off or a probability, got {self.augment!r}") from None
            if not 0 <= p <= 1:
                raise BreakganError(f"--augment probability must be in 0..1, got {p}")
        if self.resolution is not None and (self.resolution < 4 or self.resolution > 1024
                                            or self.resolution & (self.resolution - 1)):
            raise BreakganError(f"--resolution must be a power of two in 4..1024, got {self.resolution}")
        if self.stable_kimg <= 0 or self.fade_kimg < 0:
            raise BreakganError("--stable-kimg must be > 0 and --fade-kimg >= 0")
        if self.latent_size < 1 or self.fmap_max < 1:
            raise BreakganError("--latent-size and --fmap-max must be positive")
        if self.batch != "auto":
            try:
                parse_batch_table(self.batch)
            except ValueError:
                raise BreakganError(f"--batch must be auto, a number or 'RES:N,...', got {self.batch!r}") from None


def pick_device(name: str, env: ddp.DistEnv) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            built = "without CUDA" if torch.version.cuda is None else f"with CUDA {torch.version.cuda}, but no GPU is visible"
            raise BreakganError(f"--device {name}: CUDA is not available (this PyTorch {torch.__version__} was built {built})")
        dev = torch.device(f"cuda:{env.local_rank}" if env.enabled else name)
        torch.cuda.set_device(dev)
        return dev
    return torch.device("cpu")


def amp_dtype(opts: TrainOptions, device: torch.device):
    if device.type != "cuda":
        # On CPU only when asked: bf16 pays off on CPUs with AMX/AVX512-BF16, and 'auto' stays exact.
        return torch.bfloat16 if opts.amp == "bf16" else None
    if opts.amp == "off":
        return None
    if opts.amp == "bf16" or (opts.amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def step_generator(seed: int, rank: int, step: int, device: torch.device) -> torch.Generator:
    """The one random stream of a training step: a pure function of (seed, rank, step)."""
    state = np.random.SeedSequence([seed, rank, step]).generate_state(2, dtype=np.uint32)
    return torch.Generator(device=device).manual_seed((int(state[0]) << 31) ^ int(state[1]))


def grid_latents(opts: TrainOptions, n: int) -> torch.Tensor:
    return torch.randn(n, opts.latent_size, generator=torch.Generator().manual_seed(opts.seed + 1_000_003))


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def write_grid(path: Path, images: np.ndarray, size: int) -> None:
    """uint8 (N, 3, r, r) -> a near-square PNG grid, cells upscaled (nearest) to `size` px; atomic."""
    n = len(images)
    cols = max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / cols))
    r = images.shape[2]
    scale = max(1, size // r)
    cell = r * scale
    canvas = np.zeros((rows * cell, cols * cell, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        y, x = divmod(i, cols)
        tile = img.transpose(1, 2, 0).repeat(scale, 0).repeat(scale, 1)
        canvas[y * cell:(y + 1) * cell, x * cell:(x + 1) * cell] = tile
    write_png(path, canvas)


def fade_reals(x: torch.Tensor, phase: Phase) -> torch.Tensor:
    """During a fade-in, blend reals with their 2x-blurred version like G's output (PGGAN)."""
    if not phase.fading or phase.level == 0:
        return x
    low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="nearest")
    return torch.lerp(low, x, phase.alpha)


class StopRequest:
    """SIGINT/SIGTERM set a flag checked at step boundaries, so the saved state is a whole step."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signum, self._old.get(signum, signal.SIG_DFL))  # a second Ctrl-C stops at once

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Trainer:
    """Holds the state of one run; `run()` trains until `opts.kimg`."""

    def __init__(self, dataset: Path, run: Path, opts: TrainOptions, *, resume: bool = False,
                 on_step: Callable[["Trainer"], None] | None = None):
        self.env = ddp.env_from_torchrun()
        self.run_dir = Path(run)
        self.dataset_dir = Path(dataset)
        self.on_step = on_step
        opts.validate()
        self.device = pick_device(opts.device, self.env)
        ddp.init(self.env, self.device)
        self.resume_from = None
        if resume:
            self.resume_from = ckpt.latest_checkpoint(self.run_dir, required=False)
            if self.resume_from is None:
                self._say(f"{self.run_dir}: no checkpoint to resume, starting a new run")
            else:
                _, meta = ckpt.read_checkpoint(self.resume_from, prefixes=("__none__",))
                stored = TrainOptions.from_dict(meta["options"])
                for name in RUNTIME_OPTIONS:
                    setattr(stored, name, getattr(opts, name))
                opts = stored
        elif ckpt.latest_checkpoint(self.run_dir, required=False) is not None:
            raise BreakganError(f"{self.run_dir}: already holds a training run; pass --resume to continue it "
                                f"or choose another --out")
        self.opts = opts
        self.data: PackedDataset = open_dataset(self.dataset_dir, opts.resolution)
        if opts.resolution is None:
            opts.resolution = self.data.size
        if opts.kimg is None:
            opts.kimg = total_kimg(opts.resolution, opts.stable_kimg, opts.fade_kimg)
        if opts.conditional and len(self.data.labels) < 2:
            warn(f"{self.dataset_dir}: only {len(self.data.labels)} label(s); conditional training has nothing to tell apart")
        if opts.mirror and self.resume_from is None:
            warn("--mirror flips frames left-right: asymmetric moves (a step to one side, a turn) get mirrored "
                 "twins and the GAN learns both")
        self.config = NetConfig(resolution=opts.resolution, latent_size=opts.latent_size, fmap_base=opts.fmap_base,
                                fmap_max=opts.fmap_max, fmap_min=opts.fmap_min,
                                num_classes=len(self.data.labels) if opts.conditional else 0)
        self.amp = amp_dtype(opts, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = not opts.deterministic
            torch.backends.cuda.matmul.allow_tf32 = not opts.deterministic
            torch.backends.cudnn.allow_tf32 = not opts.deterministic
        if opts.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        self._build()
        if self.resume_from is not None:
            self._load(self.resume_from)
        else:
            self._fresh_state()
        for m in (self.G, self.D, self.G_ema):
            ddp.broadcast_module(m, self.env)

    # ---- setup -------------------------------------------------------------------------------------
    def _say(self, message: str) -> None:
        if self.env.main:
            info(message)

    def _build(self) -> None:
        torch.manual_seed(self.opts.seed)  # identical initial weights on every rank
        self.G = Generator(self.config).to(self.device)
        self.D = Discriminator(self.config).to(self.device)
        # channels_last: faster convolutions on CUDA (tensor cores) and with oneDNN on CPU
        self.G.to(memory_format=torch.channels_last)
        self.D.to(memory_format=torch.channels_last)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        extra = {"fused": True}  # one vectorised kernel per step, on CUDA and CPU alike
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=self.opts.lr, betas=(0.0, 0.99), eps=1e-8, **extra)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=self.opts.lr, betas=(0.0, 0.99), eps=1e-8, **extra)
        fp16 = self.amp is torch.float16
        self.scaler_G = torch.amp.GradScaler("cuda", enabled=fp16)
        self.scaler_D = torch.amp.GradScaler("cuda", enabled=fp16)
        if self.opts.compile:
            # Only G's blocks: D needs double backward for its penalty, which torch.compile does not support.
            for block in list(self.G.blocks)[1:]:
                block.compile()

    def _fresh_state(self) -> None:
        opts = self.opts
        if opts.batch_table is None:
            opts.batch_table = self._resolve_batch_table()
        if opts.augment == "auto":
            adaptive = self.data.count < AUGMENT_AUTO_LIMIT
            self.aug = AugmentState(adaptive=adaptive, target=opts.augment_target)
            self._say(f"augmentation: {'adaptive (dataset of ' + str(self.data.count) + ' frames)' if adaptive else 'off'}")
        elif opts.augment == "ada":
            self.aug = AugmentState(adaptive=True, target=opts.augment_target)
        elif opts.augment == "off":
            self.aug = AugmentState()
        else:
            self.aug = AugmentState(p=float(opts.augment))
        self.images_shown = 0
        self.step = 0
        self.elapsed = 0.0

    def _resolve_batch_table(self) -> dict[int, int]:
        opts = self.opts
        if opts.batch != "auto":
            return parse_batch_table(opts.batch)
        if self.device.type != "cuda":
            return dict(PAPER_BATCH)
        return self._fit_batch_table()

    def _fit_batch_table(self) -> dict[int, int]:
        """Per resolution, the paper's batch halved until a trial D+G step fits in GPU memory (and
        doubled, up to 4x, while it takes under a third of it)."""
        total = torch.cuda.get_device_properties(self.device).total_memory
        table = {}
        for level in range(self.config.levels):
            res = 4 << level
            base = max(1, PAPER_BATCH[res] // self.env.world)
            b, best = base, None
            while b >= 1:
                try:
                    torch.cuda.reset_peak_memory_stats(self.device)
                    self._trial_step(level, b)
                    peak = torch.cuda.max_memory_allocated(self.device)
                    best = b
                    if peak < total / 3 and b < 4 * base:
                        b *= 2
                        continue
                    break
                except torch.cuda.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    if best is not None:
                        break
                    b //= 2
                finally:
                    self.G.zero_grad(set_to_none=True)
                    self.D.zero_grad(set_to_none=True)
            if best is None:
                raise BreakganError(f"--batch auto: even a batch of 1 at {res}px does not fit in GPU memory; "
                                    f"lower --fmap-max")
            b = torch.tensor([best], device=self.device)
            if self.env.enabled:
                torch.distributed.all_reduce(b, op=torch.distributed.ReduceOp.MIN)
            table[res] = int(b.item()) * self.env.world
        torch.cuda.empty_cache()
        self._say("batch per resolution: " + ", ".join(f"{r}px {b}" for r, b in table.items()))
        return table

    def _trial_step(self, level: int, b: int) -> None:
        res = 4 << level
        phase = Phase(level, res, 0.5 if level else 1.0, b, self.opts.lr)
        reals = torch.randint(0, 255, (b, 3, res, res), dtype=torch.uint8, device=self.device)
        gen = step_generator(0, 0, 0, self.device)
        fakes = self._fakes_for_step(None, phase, gen, b)
        self._d_loss(reals, None, phase, gen, 0.0, fakes.detach())[0].backward()
        self._g_loss(fakes, None, phase, gen, 0.0).backward()

    # ---- checkpoints -------------------------------------------------------------------------------
    def _state_tensors(self) -> tuple[dict, dict]:
        tensors = {}
        tensors.update(ckpt.prefixed(self.G.state_dict(), "G."))
        tensors.update(ckpt.prefixed(self.D.state_dict(), "D."))
        tensors.update(ckpt.prefixed(self.G_ema.state_dict(), "G_ema."))
        tg, mg = ckpt.optimizer_tensors(self.opt_G, "opt_G.")
        td, md = ckpt.optimizer_tensors(self.opt_D, "opt_D.")
        tensors.update(tg)
        tensors.update(td)
        tensors["rng.torch_cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.torch_cuda"] = torch.cuda.get_rng_state(self.device)
        phase = self.phase()
        meta = {
            "net": self.config.to_dict(), "options": self.opts.to_dict(), "labels": self.data.labels,
            "images_shown": self.images_shown, "step": self.step, "kimg": self.images_shown / 1000,
            "level": phase.level, "alpha": phase.alpha, "augment": self.aug.to_dict(),
            "opt_G": mg, "opt_D": md, "scaler_G": self.scaler_G.state_dict(), "scaler_D": self.scaler_D.state_dict(),
            "world": self.env.world, "elapsed_s": self.elapsed, "dataset": str(self.dataset_dir),
        }
        return tensors, meta

    def save(self) -> Path | None:
        """Rank 0 writes a checkpoint of the state at this step boundary (refusing non-finite weights)."""
        if not self.env.main:
            return None
        for m in (self.G, self.D, self.G_ema):
            if not all(torch.isfinite(p).all() for p in m.parameters()):
                raise BreakganError(f"{self.run_dir}: weights are not finite at kimg {self.images_shown / 1000:.1f}; "
                                    f"not saving; last good checkpoint: {ckpt.latest_checkpoint(self.run_dir, False)}")
        tensors, meta = self._state_tensors()
        path = ckpt.write_checkpoint(self.run_dir, self.images_shown, tensors, meta, keep=self.opts.keep + 1)
        self.last_checkpoint = path
        return path

    def _load(self, path: Path) -> None:
        tensors, meta = ckpt.read_checkpoint(path)
        if NetConfig.from_dict(meta["net"]) != self.config:
            raise BreakganError(f"{path}: checkpoint architecture {meta['net']} differs from this run's {self.config.to_dict()}")
        ckpt.load_state_checked(self.G, ckpt.sub_state(tensors, "G."), path, "generator")
        ckpt.load_state_checked(self.D, ckpt.sub_state(tensors, "D."), path, "discriminator")
        ckpt.load_state_checked(self.G_ema, ckpt.sub_state(tensors, "G_ema."), path, "EMA generator")
        ckpt.load_optimizer(self.opt_G, tensors, meta["opt_G"], "opt_G.")
        ckpt.load_optimizer(self.opt_D, tensors, meta["opt_D"], "opt_D.")
        if meta.get("scaler_G") and self.scaler_G.is_enabled():
            self.scaler_G.load_state_dict(meta["scaler_G"])
            self.scaler_D.load_state_dict(meta["scaler_D"])
        torch.set_rng_state(tensors["rng.torch_cpu"])
        if self.device.type == "cuda" and "rng.torch_cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.torch_cuda"], self.device)
        self.aug = AugmentState.from_dict(meta["augment"])
        self.images_shown = int(meta["images_shown"])
        self.step = int(meta["step"])
        self.elapsed = float(meta.get("elapsed_s", 0.0))
        if int(meta.get("world", 1)) != self.env.world:
            warn(f"{path}: saved with {meta.get('world')} process(es), resuming with {self.env.world}: "
                 f"training continues but not bit-identically")
        self._say(f"resumed {path} at kimg {self.images_shown / 1000:.1f}")

    # ---- one step ----------------------------------------------------------------------------------
    def phase(self) -> Phase:
        o = self.opts
        return schedule(self.images_shown, resolution=o.resolution, stable_kimg=o.stable_kimg,
                        fade_kimg=o.fade_kimg, batch=o.batch_table, lr=o.lr)

    def _autocast(self):
        if self.amp is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast(self.device.type, dtype=self.amp)

    def _reals(self, images: torch.Tensor, phase: Phase, gen: torch.Generator) -> torch.Tensor:
        x = images.float().div_(127.5).sub_(1.0).contiguous(memory_format=torch.channels_last)
        x = fade_reals(x, phase)
        if self.opts.mirror:
            flip = torch.rand((len(x), 1, 1, 1), generator=gen, device=x.device) < 0.5
            x = torch.where(flip, x.flip(3), x)
        return x

    def _latents(self, b: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randn(b, self.opts.latent_size, generator=gen, device=self.device)

    def _penalty_grad(self, scores: torch.Tensor, inputs: torch.Tensor, scaler) -> torch.Tensor:
        # With fp16 the penalty's gradient is taken on the scaled output, then unscaled (AMP recipe).
        out = scaler.scale(scores.sum()) if scaler.is_enabled() else scores.sum()
        (grad,) = torch.autograd.grad(out, inputs, create_graph=True)
        if scaler.is_enabled():
            grad = grad / scaler.get_scale()
        return grad.float()

    def _fakes_for_step(self, labels, phase: Phase, gen, b: int) -> torch.Tensor:
        with self._autocast():
            return self.G(self._latents(b, gen), labels, phase.level, phase.alpha)

    def _d_loss(self, images, labels, phase: Phase, gen, p: float, fakes: torch.Tensor):
        level, alpha, b = phase.level, phase.alpha, len(images)
        fakes = fakes.float()  # reduced-precision G output; D's inputs (and the GP mix) stay float32
        with self._autocast():
            reals = self._reals(images, phase, gen)
            ra, fa = augment(reals, p, gen), augment(fakes, p, gen)
            both_labels = torch.cat([labels, labels]) if labels is not None else None
            # One D pass over reals and fakes; minibatch-stddev statistics stay per half (chunks=2).
            scores = self.D(torch.cat([ra, fa]), both_labels, level, alpha, chunks=2).float()
            s_real, s_fake = scores[:b], scores[b:]
            if self.opts.loss == "wgan-gp":
                loss = s_fake.mean() - s_real.mean() + self.opts.drift * s_real.square().mean()
                eps = torch.rand((b, 1, 1, 1), generator=gen, device=self.device, dtype=ra.dtype)
                mixed = torch.lerp(fa.detach(), ra.detach(), eps).requires_grad_(True)
                grad = self._penalty_grad(self.D(mixed, labels, level, alpha).float(), mixed, self.scaler_D)
                penalty = (grad.flatten(1).norm(dim=1) - 1).square().mean()
                loss = loss + self.opts.gp_lambda * penalty
            else:
                loss = F.softplus(s_fake).mean() + F.softplus(-s_real).mean()
                r = ra.detach().requires_grad_(True)
                grad = self._penalty_grad(self.D(r, labels, level, alpha).float(), r, self.scaler_D)
                penalty = grad.square().flatten(1).sum(dim=1).mean()
                loss = loss + 0.5 * self.opts.r1_gamma * penalty
        return loss, s_real.detach(), penalty.detach()

    def _g_loss(self, fakes, labels, phase: Phase, gen, p: float):
        with self._autocast():
            scores = self.D(augment(fakes, p, gen), labels, phase.level, phase.alpha).float()
            return -scores.mean() if self.opts.loss == "wgan-gp" else F.softplus(-scores).mean()

    def train_step(self, loader: BatchLoader, stop: StopRequest) -> tuple[Phase, dict]:
        phase = self.phase()
        world = self.env.world
        b = max(1, phase.batch // world)
        global_batch = b * world
        images, labels = loader.get(phase.resolution, self.images_shown, global_batch)
        gen = step_generator(self.opts.seed, self.env.rank, self.step, self.device)
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = phase.lr
        p = self.aug.p

        # One generator pass serves both steps: G's weights do not change during the D step, so the
        # G step reuses these fakes (same latents for D and G, as pro-gan-pth does) and its graph.
        fakes = self._fakes_for_step(labels, phase, gen, b)

        # Discriminator step.
        self.D.requires_grad_(True)
        loss_d, s_real, penalty = self._d_loss(images, labels, phase, gen, p, fakes.detach())
        self.opt_D.zero_grad(set_to_none=True)
        self.scaler_D.scale(loss_d).backward()
        ddp.average_gradients(self.D, self.env)
        self.scaler_D.step(self.opt_D)
        self.scaler_D.update()

        # Generator step (D frozen: no weight gradients wasted on it).
        self.D.requires_grad_(False)
        loss_g = self._g_loss(fakes, labels, phase, gen, p)
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler_G.scale(loss_g).backward()
        ddp.average_gradients(self.G, self.env)
        self.scaler_G.step(self.opt_G)
        self.scaler_G.update()

        # EMA with a half-life of ema_kimg thousand images.
        beta = 0.5 ** (global_batch / max(self.opts.ema_kimg * 1000.0, 1e-8))
        with torch.no_grad():
            torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1.0 - beta)

        stats = torch.stack([loss_d.detach().float(), loss_g.detach().float(), penalty.float(),
                             torch.sign(s_real).sum().float(), torch.tensor(float(b), device=self.device),
                             torch.tensor(float(stop.requested), device=self.device)])
        stats = ddp.all_sum(stats, self.env).tolist()
        self.aug.accumulate(stats[3], stats[4])
        self.aug.adjust(self.step, global_batch)
        self.images_shown += global_batch
        self.step += 1
        self.G_ema.level, self.G_ema.alpha = self.phase().level, self.phase().alpha
        return phase, {"loss_d": stats[0] / world, "loss_g": stats[1] / world, "penalty": stats[2] / world,
                       "stop": stats[5] > 0, "batch": global_batch}

    # ---- snapshots ---------------------------------------------------------------------------------
    def _fakes(self, n: int, level: int, alpha: float, z: torch.Tensor | None = None, seed: int = 0) -> np.ndarray:
        out = []
        if z is None:
            z = torch.randn(n, self.opts.latent_size, generator=torch.Generator().manual_seed(seed))
        labels = None
        if self.config.num_classes:
            labels = torch.arange(n) % self.config.num_classes
        with torch.no_grad(), self._autocast():
            for i in range(0, n, 64):
                lab = labels[i:i + 64].to(self.device) if labels is not None else None
                out.append(to_uint8(self.G_ema(z[i:i + 64].to(self.device), lab, level, alpha)))
        return np.concatenate(out)

    def snapshot(self, writer) -> dict:
        """fakes grid, checkpoint, metric; rank 0 only (other ranks just wait at the next all-reduce)."""
        if not self.env.main:
            return {}
        phase = self.phase()
        kimg = self.images_shown / 1000
        fakes = self._fakes(self.opts.grid, phase.level, phase.alpha, z=grid_latents(self.opts, self.opts.grid))
        write_grid(self.run_dir / f"fakes{int(kimg):06d}.png", fakes, self.opts.resolution)
        result = {}
        if self.opts.metric_images > 0 and phase.resolution >= 16 and not phase.fading:
            result = self._metric(phase)
            if result and writer is not None:
                writer.add_scalar("metrics/swd_mean", result["mean"], self.step)
        if result:
            self.last_metric = {"kimg": kimg, **{str(k): v for k, v in result.items()}}
        path = self.save()
        self._update_record("running")
        return {"checkpoint": path, "swd": result}

    def _metric(self, phase: Phase) -> dict:
        try:
            from breakgan.gan.swd import swd
        except ImportError:
            return {}
        n = min(self.opts.metric_images, self.data.count)
        idx = np.sort(np.random.default_rng([self.opts.seed, 7]).choice(self.data.count, n, replace=False))
        reals = np.asarray(self.data.array(phase.resolution)[idx])
        fakes = self._fakes(n, phase.level, 1.0, seed=self.opts.seed + 2_000_003)
        return swd(reals, fakes, seed=self.opts.seed, device=self.device)

    def _update_record(self, status: str, **extra) -> None:
        if not self.env.main:
            return
        latest = ckpt.latest_checkpoint(self.run_dir, required=False)
        record = make_record("train", self.opts.to_dict(), {"dataset": self.dataset_dir / "breakgan.json"},
                             status=status, kimg=self.images_shown / 1000, step=self.step,
                             resolution=self.phase().resolution, latest=str(latest.name) if latest else None,
                             net=self.config.to_dict(), labels=self.data.labels, world=self.env.world,
                             swd=getattr(self, "last_metric", None), **extra)
        write_record(self.run_dir, record)

    # ---- the loop ----------------------------------------------------------------------------------
    def run(self) -> dict:
        opts, env = self.opts, self.env
        total = int(round(opts.kimg * 1000))
        snap = max(1, int(round(opts.snapshot_kimg * 1000)))
        self.last_checkpoint = None
        writer = None
        if env.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.run_dir / "options.json", opts.to_dict())
            if not (self.run_dir / "reals.png").exists():
                n = min(opts.grid, self.data.count)
                idx = np.sort(np.random.default_rng([opts.seed, 3]).choice(self.data.count, n, replace=False))
                write_grid(self.run_dir / "reals.png", np.asarray(self.data.array(opts.resolution)[idx]), opts.resolution)
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=self.step if self.step else None)
            self._update_record("running")
        loader = BatchLoader(self.data, seed=opts.seed, rank=env.rank, world=env.world, device=self.device,
                             conditional=bool(self.config.num_classes))
        digest = None
        try:
            with StopRequest() as stop, self._progress() as bar:
                task = bar.add_task("train", total=opts.kimg, completed=self.images_shown / 1000,
                                    phase=self.phase().name, speed="")
                t_last, img_last = time.perf_counter(), self.images_shown
                while self.images_shown < total:
                    t0 = time.perf_counter()
                    phase, stats = self.train_step(loader, stop)
                    self.elapsed += time.perf_counter() - t0
                    if not (math.isfinite(stats["loss_d"]) and math.isfinite(stats["loss_g"])):
                        bad = "NaN" if math.isnan(stats["loss_d"] + stats["loss_g"]) else "inf"
                        last = ckpt.latest_checkpoint(self.run_dir, required=False)
                        raise BreakganError(
                            f"{self.run_dir}: loss became {bad} at kimg {self.images_shown / 1000:.2f} ({phase.name}); "
                            f"stopped without saving; last good checkpoint: {last or 'none'} "
                            f"(resume with --resume, perhaps with a lower --lr)")
                    now = time.perf_counter()
                    if env.main and (now - t_last > 2.0 or self.images_shown >= total):
                        ips = (self.images_shown - img_last) / max(now - t_last, 1e-9)
                        bar.update(task, completed=self.images_shown / 1000, phase=self.phase().name,
                                   speed=f"{ips:.0f} img/s  aug {self.aug.p:.2f}")
                        t_last, img_last = now, self.images_shown
                        if writer is not None:
                            self._log(writer, phase, stats, ips)
                    if self.on_step is not None:
                        self.on_step(self)
                    if stats["stop"]:
                        path = self.save()
                        if env.main:
                            self._update_record("interrupted")
                            info(f"stopped at kimg {self.images_shown / 1000:.2f}; saved {path}; "
                                 f"continue with `breakgan train {self.dataset_dir} --out {self.run_dir} --resume`")
                        raise KeyboardInterrupt
                    crossed = (self.images_shown // snap) != ((self.images_shown - stats["batch"]) // snap)
                    if crossed and self.images_shown < total:
                        self.snapshot(writer)
                self.snapshot(writer)
                digest = ddp.weights_digest(self.G, self.D, self.G_ema)
                digests = ddp.gather_digests(digest, env, self.device)
                if len(set(digests)) != 1:
                    raise RuntimeError(f"ranks disagree on the weights: {digests}")
                if env.main:
                    self._update_record("done", weights_sha256=digests)
        finally:
            loader.close()
            if writer is not None:
                writer.close()
            ddp.shutdown(env)
        return {"run": self.run_dir, "kimg": self.images_shown / 1000, "steps": self.step,
                "checkpoint": self.last_checkpoint, "weights_sha256": digest}

    def _progress(self):
        from rich.progress import TextColumn

        if not self.env.main:
            import contextlib

            class _Quiet:
                def add_task(self, *a, **k):
                    return 0

                def update(self, *a, **k):
                    pass

            return contextlib.nullcontext(_Quiet())
        return progress(TextColumn("kimg"), TextColumn("{task.fields[phase]}"), TextColumn("{task.fields[speed]}"))

    def _log(self, writer, phase: Phase, stats: dict, ips: float) -> None:
        s = self.step
        writer.add_scalar("loss/d", stats["loss_d"], s)
        writer.add_scalar("loss/g", stats["loss_g"], s)
        writer.add_scalar("loss/penalty", stats["penalty"], s)
        writer.add_scalar("schedule/resolution", phase.resolution, s)
        writer.add_scalar("schedule/alpha", phase.alpha, s)
        writer.add_scalar("schedule/kimg", self.images_shown / 1000, s)
        writer.add_scalar("schedule/batch", stats["batch"], s)
        writer.add_scalar("speed/img_per_s", ips, s)
        writer.add_scalar("augment/p", self.aug.p, s)


def train(dataset: Path, run: Path, opts: TrainOptions, *, resume: bool = False,
          on_step: Callable[[Trainer], None] | None = None) -> dict:
    """Train (or resume) a PGGAN on a dataset folder into a run folder; returns a summary dict."""
    return Trainer(dataset, run, opts, resume=resume, on_step=on_step).run()
