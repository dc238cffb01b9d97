"""The PGGAN training loop: one step of D and G, snapshots, checkpoints, exact resume.

Options are checked and filled in by `options.resolve_options`, the state a step changes lives in
`state.TrainState`, the losses in `losses.py`; this module runs the steps. Everything a step does is a
function of the checkpointed state: the networks, both optimizers, the AMP scalers, the augmentation
state and the image count. Random numbers come from a generator seeded per (seed, rank, step), and the
data order is a pure function of (seed, position) (see data.py), so a run stopped at any step boundary
and resumed continues bit for bit (on CPU) as if never stopped.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from breakgan.console import info, warn
from breakgan.device import resolve_device, training_memory_format
from breakgan.errors import BreakganError
from breakgan.gan import checkpoint as ckpt
from breakgan.gan import distributed as ddp
from breakgan.gan.augment import augment
from breakgan.gan.conv import penalty_pass
from breakgan.gan.data import BatchLoader, PackedDataset, open_dataset
from breakgan.gan.evaluate import swd_against_dataset
from breakgan.gan.losses import make_loss
from breakgan.gan.networks import NetConfig
from breakgan.gan.options import RUNTIME_OPTIONS, ResolvedRun, TrainOptions, resolve_options  # noqa: F401
from breakgan.gan.report import Report
from breakgan.gan.sampling import generate_images, image_grid, write_png
from breakgan.gan.schedule import PAPER_BATCH, Phase, schedule
from breakgan.gan.state import TrainState, amp_dtype
from breakgan.stage import claim_out, make_record, write_json_atomic, write_record

MIN_METRIC_RESOLUTION = 16  # SWD at snapshots from this resolution up, on stable phases only


def step_generator(seed: int, rank: int, step: int, device: torch.device) -> torch.Generator:
    """The one random stream of a training step: a pure function of (seed, rank, step)."""
    state = np.random.SeedSequence([seed, rank, step]).generate_state(2, dtype=np.uint32)
    return torch.Generator(device=device).manual_seed((int(state[0]) << 31) ^ int(state[1]))


def grid_latents(opts: TrainOptions, n: int) -> torch.Tensor:
    return torch.randn(n, opts.latent_size, generator=torch.Generator().manual_seed(opts.seed + 1_000_003))


def write_grid(path: Path, images: np.ndarray, size: int) -> None:
    """uint8 (N, 3, r, r) -> a near-square PNG grid, cells upscaled (nearest) to `size` px; atomic."""
    scale = max(1, size // images.shape[2])
    write_png(path, image_grid(images.transpose(0, 2, 3, 1).repeat(scale, 1).repeat(scale, 2)))


def fade_reals(x: torch.Tensor, phase: Phase) -> torch.Tensor:
    """During a fade-in, blend reals with their 2x-blurred version like G's output (PGGAN)."""
    if not phase.fading or phase.level == 0:
        return x
    low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="nearest")
    return torch.lerp(low, x, phase.alpha)


def configure_torch(device: torch.device, deterministic: bool) -> None:
    """Process-wide kernel choices: fast (TF32, autotuned) unless --deterministic."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cuda.matmul.allow_tf32 = not deterministic
        torch.backends.cudnn.allow_tf32 = not deterministic
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def checkpoint_to_resume(run_dir: Path, resume: bool) -> Path | None:
    """The output-folder rule for `train --out`: the checkpoint to continue from with --resume; without it a
    folder that already holds a run is refused (nothing of it is touched)."""
    latest = ckpt.latest_checkpoint(run_dir, required=False)
    if latest is not None and not resume:
        raise BreakganError(f"{run_dir}: already holds a training run; pass --resume to continue it "
                            f"or choose another --out")
    return latest


class StopRequest:
    """SIGINT/SIGTERM set a flag checked at step boundaries, so the saved state is a whole step."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signum, self._old.get(signum, signal.SIG_DFL))  # a second Ctrl-C stops at once

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Trainer:
    """One run: its resolved options (`run`), dataset, device and `state`; `run()` trains until kimg."""

    def __init__(self, dataset: Path, run: Path, opts: TrainOptions, *, resume: bool = False,
                 on_step: Callable[["Trainer"], None] | None = None):
        self.env = ddp.env_from_torchrun()
        self.run_dir = Path(run)
        self.dataset_dir = Path(dataset)
        self.on_step = on_step
        self.device = self._device(opts.device)
        self.layout = training_memory_format(self.device)  # the networks' layout (TrainState.create)
        ddp.init(self.env, self.device)
        self.resume_from = checkpoint_to_resume(self.run_dir, resume)
        if resume and self.resume_from is None:
            self._say(f"{self.run_dir}: no checkpoint to resume, starting a new run")
        stored = None
        if self.resume_from is not None:
            stored = ckpt.read_checkpoint(self.resume_from, prefixes=("__none__",))[1]["options"]
        self.data: PackedDataset = open_dataset(self.dataset_dir)
        resolved = resolve_options(
            opts, frame_size=self.data.size, frame_count=self.data.count, label_count=len(self.data.labels),
            device_type=self.device.type, stored=stored, dataset=str(self.dataset_dir),
            bf16_supported=self.device.type == "cuda" and torch.cuda.is_bf16_supported())
        self.data.array(resolved.options.resolution)  # fail now, not hours in
        for message in resolved.warnings:
            if self.env.main:
                warn(message)
        for message in resolved.notes:
            self._say(message)
        self.config = NetConfig(**resolved.net)
        self.amp = amp_dtype(resolved)
        self.loss = make_loss(resolved.options)
        configure_torch(self.device, resolved.options.deterministic)
        self.resolved = resolved
        if self.resume_from is not None:
            self.state, meta = TrainState.from_checkpoint(self.resume_from, resolved, self.device)
            if int(meta.get("world", 1)) != self.env.world:
                warn(f"{self.resume_from}: saved with {meta.get('world')} process(es), resuming with "
                     f"{self.env.world}: training continues but not bit-identically")
            self._say(f"resumed {self.resume_from} at kimg {self.state.images_shown / 1000:.1f}")
        else:
            self.state = TrainState.create(resolved, self.device)
            if resolved.fit_batch:
                self.resolved = resolved.with_batch_table(self._fit_batch_table())
        for m in self.state.networks():
            ddp.broadcast_module(m, self.env)
        self.last_checkpoint: Path | None = self.resume_from  # the newest good checkpoint of this run
        self.last_metric: dict | None = None

    @property
    def opts(self) -> TrainOptions:
        return self.resolved.options

    # ---- setup -------------------------------------------------------------------------------------
    def _device(self, name: str) -> torch.device:
        device = resolve_device(name)
        if device.type == "cuda":
            if self.env.enabled:
                device = torch.device(f"cuda:{self.env.local_rank}")  # torchrun: one GPU per process
            torch.cuda.set_device(device)
        return device

    def _say(self, message: str) -> None:
        if self.env.main:
            info(message)

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
                    self.state.G.zero_grad(set_to_none=True)
                    self.state.D.zero_grad(set_to_none=True)
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
    def save(self) -> Path | None:
        """Rank 0 writes a checkpoint of the state at this step boundary (refusing non-finite weights)."""
        if not self.env.main:
            return None
        if not self.state.weights_finite():
            raise BreakganError(f"{self.run_dir}: weights are not finite at kimg {self.state.images_shown / 1000:.1f}; "
                                f"not saving; last good checkpoint: {self.last_checkpoint or 'none'}")
        tensors, meta = self.state.to_checkpoint(self.device)
        phase = self.phase()
        meta.update({"net": self.config.to_dict(), "options": self.opts.to_dict(), "labels": self.data.labels,
                     "level": phase.level, "alpha": phase.alpha, "world": self.env.world,
                     "dataset": str(self.dataset_dir)})
        path = ckpt.write_checkpoint(self.run_dir, self.state.images_shown, tensors, meta, keep=self.opts.keep + 1)
        self.last_checkpoint = path
        return path

    # ---- one step ----------------------------------------------------------------------------------
    def phase(self) -> Phase:
        o = self.opts
        return schedule(self.state.images_shown, resolution=o.resolution, stable_kimg=o.stable_kimg,
                        fade_kimg=o.fade_kimg, batch=o.batch_table, lr=o.lr)

    def _autocast(self):
        if self.amp is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast(self.device.type, dtype=self.amp)

    def _reals(self, images: torch.Tensor, phase: Phase, gen: torch.Generator) -> torch.Tensor:
        x = images.float().div_(127.5).sub_(1.0).contiguous(memory_format=self.layout)
        x = fade_reals(x, phase)
        if self.opts.mirror:
            flip = torch.rand((len(x), 1, 1, 1), generator=gen, device=x.device) < 0.5
            x = torch.where(flip, x.flip(3), x)
        return x

    def _penalty_grad(self, scores: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        # With fp16 the penalty's gradient is taken on the scaled output, then unscaled (AMP recipe).
        scaler = self.state.scaler_D
        out = scaler.scale(scores.sum()) if scaler.is_enabled() else scores.sum()
        (grad,) = torch.autograd.grad(out, inputs, create_graph=True)
        if scaler.is_enabled():
            grad = grad / scaler.get_scale()
        return grad.float()

    def _fakes_for_step(self, labels, phase: Phase, gen, b: int) -> torch.Tensor:
        z = torch.randn(b, self.opts.latent_size, generator=gen, device=self.device)
        with self._autocast():
            return self.state.G(z, labels, phase.level, phase.alpha)

    def _d_loss(self, images, labels, phase: Phase, gen, p: float, fakes: torch.Tensor):
        D, level, alpha, b = self.state.D, phase.level, phase.alpha, len(images)
        fakes = fakes.float()  # reduced-precision G output; D's inputs (and the GP mix) stay float32
        with self._autocast():
            reals = self._reals(images, phase, gen)
            ra, fa = augment(reals, p, gen), augment(fakes, p, gen)
            both_labels = torch.cat([labels, labels]) if labels is not None else None
            # One D pass over reals and fakes; minibatch-stddev statistics stay per half (chunks=2).
            scores = D(torch.cat([ra, fa]), both_labels, level, alpha, chunks=2).float()
            s_real, s_fake = scores[:b], scores[b:]

            def critic(x):  # scores used only through their input gradient (the penalty)
                with penalty_pass():
                    return D(x, labels, level, alpha).float()

            loss, penalty = self.loss.discriminator(s_real, s_fake, ra, fa, critic, self._penalty_grad, gen)
        return loss, s_real.detach(), penalty.detach()

    def _g_loss(self, fakes, labels, phase: Phase, gen, p: float):
        with self._autocast():
            scores = self.state.D(augment(fakes, p, gen), labels, phase.level, phase.alpha).float()
            return self.loss.generator(scores)

    def train_step(self, loader: BatchLoader, stop: StopRequest) -> tuple[Phase, dict]:
        st = self.state
        phase = self.phase()
        world = self.env.world
        b = max(1, phase.batch // world)
        global_batch = b * world
        images, labels = loader.get(phase.resolution, st.images_shown, global_batch)
        gen = step_generator(self.opts.seed, self.env.rank, st.step, self.device)
        for opt in (st.opt_G, st.opt_D):
            for group in opt.param_groups:
                group["lr"] = phase.lr
        p = st.aug.p

        # One generator pass serves both steps: G's weights do not change during the D step, so the
        # G step reuses these fakes (same latents for D and G, as pro-gan-pth does) and its graph.
        fakes = self._fakes_for_step(labels, phase, gen, b)

        # Discriminator step.
        st.D.requires_grad_(True)
        loss_d, s_real, penalty = self._d_loss(images, labels, phase, gen, p, fakes.detach())
        st.opt_D.zero_grad(set_to_none=True)
        st.scaler_D.scale(loss_d).backward()
        ddp.average_gradients(st.D, self.env)
        st.scaler_D.step(st.opt_D)
        st.scaler_D.update()

        # Generator step (D frozen: no weight gradients wasted on it).
        st.D.requires_grad_(False)
        loss_g = self._g_loss(fakes, labels, phase, gen, p)
        st.opt_G.zero_grad(set_to_none=True)
        st.scaler_G.scale(loss_g).backward()
        ddp.average_gradients(st.G, self.env)
        st.scaler_G.step(st.opt_G)
        st.scaler_G.update()

        # EMA with a half-life of ema_kimg thousand images.
        beta = 0.5 ** (global_batch / max(self.opts.ema_kimg * 1000.0, 1e-8))
        with torch.no_grad():
            torch._foreach_lerp_(list(st.G_ema.parameters()), list(st.G.parameters()), 1.0 - beta)

        stats = torch.stack([loss_d.detach().float(), loss_g.detach().float(), penalty.float(),
                             torch.sign(s_real).sum().float(), torch.tensor(float(b), device=self.device),
                             torch.tensor(float(stop.requested), device=self.device)])
        stats = ddp.all_sum(stats, self.env).tolist()
        st.aug.accumulate(stats[3], stats[4])
        st.aug.adjust(st.step, global_batch)
        st.images_shown += global_batch
        st.step += 1
        st.G_ema.level, st.G_ema.alpha = self.phase().level, self.phase().alpha
        return phase, {"loss_d": stats[0] / world, "loss_g": stats[1] / world, "penalty": stats[2] / world,
                       "stop": stats[5] > 0, "batch": global_batch}

    # ---- snapshots ---------------------------------------------------------------------------------
    def snapshot(self, report: Report) -> None:
        """fakes grid, checkpoint, metric; rank 0 only (other ranks just wait at the next all-reduce)."""
        if not self.env.main:
            return
        phase = self.phase()
        n = self.opts.grid
        labels = torch.arange(n) % self.config.num_classes if self.config.num_classes else None
        with self._autocast():
            fakes = generate_images(self.state.G_ema, grid_latents(self.opts, n), labels=labels, batch_size=64,
                                    device=self.device, nchw=True)
        write_grid(self.run_dir / f"fakes{int(self.state.images_shown / 1000):06d}.png", fakes, self.opts.resolution)
        path = self.save()
        if self.opts.metric_images > 0 and phase.resolution >= MIN_METRIC_RESOLUTION and not phase.fading:
            self.last_metric = self._metric(path)
            report.scalar("metrics/swd_mean", self.last_metric["mean"], self.state.step)
        self._update_record("running")

    def _metric(self, checkpoint: Path) -> dict:
        """SWD of the checkpoint just written: `breakgan metrics CHECKPOINT --dataset DATASET --num
        metric_images --seed seed` computes the same figures (the same function on the same file)."""
        from breakgan.gan.checkpoint import load_generator

        # Building the generator draws initial weights from the global RNG: keep the run's RNG untouched.
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            G, g_info = load_generator(checkpoint, device=self.device)
            result = swd_against_dataset(G, g_info, self.dataset_dir, num=self.opts.metric_images,
                                         seed=self.opts.seed, device=self.device)
        return {"kimg": self.state.images_shown / 1000, "checkpoint": checkpoint.name, "num": result["num"],
                "seed": self.opts.seed, **{str(k): v for k, v in result["fake"].items()}}

    def _update_record(self, status: str, **extra) -> None:
        if not self.env.main:
            return
        latest = self.last_checkpoint
        record = make_record("train", self.opts.to_dict(), {"dataset": self.dataset_dir / "breakgan.json"},
                             status=status, kimg=self.state.images_shown / 1000, step=self.state.step,
                             resolution=self.phase().resolution, latest=latest.name if latest else None,
                             net=self.config.to_dict(), labels=self.data.labels, world=self.env.world,
                             swd=self.last_metric, **extra)
        write_record(self.run_dir, record)

    def _start_files(self) -> None:
        """Rank 0: the run folder, options.json, reals.png (once) and the record."""
        opts = self.opts
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._update_record("running")  # first, so a run killed at any point is still a run folder
        write_json_atomic(self.run_dir / "options.json", opts.to_dict())
        if not (self.run_dir / "reals.png").exists():
            n = min(opts.grid, self.data.count)
            idx = np.sort(np.random.default_rng([opts.seed, 3]).choice(self.data.count, n, replace=False))
            write_grid(self.run_dir / "reals.png", np.asarray(self.data.array(opts.resolution)[idx]), opts.resolution)

    # ---- the loop ----------------------------------------------------------------------------------
    def run(self) -> dict:
        """Train until kimg, or until Ctrl-C / SIGTERM (then saved, status 'interrupted'); a summary dict."""
        opts, env, st = self.opts, self.env, self.state
        total = int(round(opts.kimg * 1000))
        snap = max(1, int(round(opts.snapshot_kimg * 1000)))
        if env.main:
            self._start_files()
        loader = BatchLoader(self.data, seed=opts.seed, rank=env.rank, world=env.world, device=self.device,
                             conditional=bool(self.config.num_classes))
        status, digest = "done", None
        try:
            with StopRequest() as stop, Report(self.run_dir, main=env.main, total_kimg=opts.kimg, step=st.step,
                                               images_shown=st.images_shown, phase_name=self.phase().name) as report:
                while st.images_shown < total:
                    t0 = time.perf_counter()
                    phase, stats = self.train_step(loader, stop)
                    st.elapsed += time.perf_counter() - t0
                    self._check_finite(stats, phase)
                    report.step(step=st.step, images_shown=st.images_shown, phase=phase,
                                next_phase_name=self.phase().name, stats=stats, aug_p=st.aug.p,
                                last=st.images_shown >= total)
                    if self.on_step is not None:
                        self.on_step(self)
                    if stats["stop"]:
                        status = "interrupted"
                        break
                    crossed = (st.images_shown // snap) != ((st.images_shown - stats["batch"]) // snap)
                    if crossed and st.images_shown < total:
                        self.snapshot(report)
                if status == "interrupted":
                    self._stopped()
                else:
                    self.snapshot(report)
                    digest = self._check_ranks_agree()
        finally:
            loader.close()
            ddp.shutdown(env)
        return {"run": self.run_dir, "status": status, "kimg": st.images_shown / 1000, "steps": st.step,
                "checkpoint": self.last_checkpoint, "weights_sha256": digest}

    def _check_finite(self, stats: dict, phase: Phase) -> None:
        if math.isfinite(stats["loss_d"]) and math.isfinite(stats["loss_g"]):
            return
        bad = "NaN" if math.isnan(stats["loss_d"] + stats["loss_g"]) else "inf"
        raise BreakganError(
            f"{self.run_dir}: loss became {bad} at kimg {self.state.images_shown / 1000:.2f} ({phase.name}); "
            f"stopped without saving; last good checkpoint: {self.last_checkpoint or 'none'} "
            f"(resume with --resume, perhaps with a lower --lr)")

    def _stopped(self) -> None:
        path = self.save()
        if self.env.main:
            self._update_record("interrupted")
            info(f"stopped at kimg {self.state.images_shown / 1000:.2f}; saved {path}; "
                 f"continue with `breakgan train {self.dataset_dir} --out {self.run_dir} --resume`")

    def _check_ranks_agree(self) -> str:
        digest = ddp.weights_digest(*self.state.networks())
        digests = ddp.gather_digests(digest, self.env, self.device)
        if len(set(digests)) != 1:
            raise RuntimeError(f"ranks disagree on the weights: {digests}")
        if self.env.main:
            self._update_record("done", weights_sha256=digests)
        return digest


def train(dataset: Path, run: Path, opts: TrainOptions, *, resume: bool = False,
          on_step: Callable[[Trainer], None] | None = None) -> dict:
    """Train (or resume) a PGGAN on a dataset folder into a run folder.

    Returns a summary: run, status ('done', or 'interrupted' after Ctrl-C/SIGTERM, saved and resumable),
    kimg, steps, checkpoint (the newest), weights_sha256 (None when interrupted).
    """
    if not ddp.env_from_torchrun().main:  # rank 0 owns the folder; the others only compute
        return Trainer(dataset, run, opts, resume=resume, on_step=on_step).run()
    with claim_out(run, "train", inputs=[dataset]):
        return Trainer(dataset, run, opts, resume=resume, on_step=on_step).run()
