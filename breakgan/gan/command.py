"""`breakgan train`: parse and validate the options, then call `breakgan.gan.training.train`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from breakgan.errors import BreakganError


def train(
    dataset: Path = typer.Argument(..., help="Dataset folder from `breakgan ingest` (packed arrays + manifest)."),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder (default: runs/DATASET_NAME)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run's latest checkpoint: networks, EMA, "
                                "optimizers, AMP scaler, augmentation, images shown and RNG. Options come from the "
                                "run, except --kimg, --snapshot-kimg, --keep, --device, --amp, --compile, "
                                "--metric-images, --grid, --deterministic."),
    resolution: Optional[int] = typer.Option(None, help="Final resolution in px, a power of two "
                                             "(default: the dataset's frame size)."),
    kimg: Optional[float] = typer.Option(None, help="Train until this many thousand images "
                                         "(default: through one stable phase at the final resolution)."),
    stable_kimg: float = typer.Option(600.0, help="Thousand images per stable phase (paper: 600)."),
    fade_kimg: float = typer.Option(600.0, help="Thousand images per fade-in phase (paper: 600)."),
    batch: str = typer.Option("auto", help="Global batch: 'auto' (paper table on CPU; fitted to GPU memory on "
                              "CUDA), one number, or 'RES:N,...' overriding the paper's table."),
    lr: float = typer.Option(0.001, help="Adam learning rate (betas 0, 0.99)."),
    latent_size: int = typer.Option(512, help="Length of the latent vector z."),
    fmap_base: int = typer.Option(8192, help="Channels at level k (4*2^k px) are fmap_base >> (k+1), kept "
                                  "between --fmap-min and --fmap-max."),
    fmap_max: int = typer.Option(512, help="Most channels in any layer (paper: 512)."),
    fmap_min: int = typer.Option(1, help="Fewest channels in any layer."),
    loss: str = typer.Option("wgan-gp", help="'wgan-gp' (gradient penalty + drift, the paper's) or 'logistic' "
                             "(non-saturating + R1)."),
    gp_lambda: float = typer.Option(10.0, help="WGAN-GP penalty weight."),
    r1_gamma: float = typer.Option(10.0, help="R1 penalty weight for --loss logistic."),
    ema_kimg: float = typer.Option(10.0, help="Half-life of the generator's moving average, thousand images."),
    augment: str = typer.Option("auto", help="Discriminator augmentation (DiffAugment: colour, translation, "
                                "cutout; never leaks into outputs): 'auto' (adaptive below 30k frames), 'ada' "
                                "(adaptive), 'off', or a fixed probability."),
    mirror: bool = typer.Option(False, "--mirror", help="Random left-right flips of real frames (mirrors "
                                "asymmetric moves too)."),
    conditional: bool = typer.Option(False, "--conditional", help="Condition on the dataset's labels (clip "
                                     "names) with a projection discriminator."),
    seed: int = typer.Option(0, help="Seed for weights, latents, data order and augmentation."),
    snapshot_kimg: float = typer.Option(20.0, help="Write a fakes grid, a checkpoint and the SWD metric every "
                                        "this many thousand images."),
    keep: int = typer.Option(3, help="Older checkpoints kept besides the newest."),
    grid: int = typer.Option(64, help="Images in reals.png and fakes*.png."),
    metric_images: int = typer.Option(512, help="Images per set for SWD at snapshots (0 = off)."),
    device: str = typer.Option("auto", help="'auto' (CUDA if available), 'cpu' or 'cuda'. Under torchrun each "
                               "process takes cuda:LOCAL_RANK."),
    amp: str = typer.Option("auto", help="Mixed precision: auto (CUDA: bf16 if supported, else fp16; CPU: off), "
                            "bf16 (also on CPU, fast with AMX), fp16 (CUDA), off."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the generator's blocks."),
    deterministic: bool = typer.Option(False, "--deterministic", help="Deterministic kernels (slower on CUDA)."),
):
    """Train a Progressive Growing GAN (4 px -> target) on a dataset; multi-GPU with torchrun.

    Examples: `breakgan train datasets/dance --out runs/dance`;
    `breakgan train datasets/dance --out runs/dance --resume`;
    `torchrun --nproc_per_node=4 -m breakgan.cli train datasets/dance --out runs/dance`.
    """
    from breakgan.gan.training import TrainOptions, train as run_training

    if keep < 0 or grid < 1 or metric_images < 0 or snapshot_kimg <= 0:
        raise BreakganError("--keep, --metric-images must be >= 0, --grid >= 1, --snapshot-kimg > 0")
    opts = TrainOptions(
        resolution=resolution, latent_size=latent_size, fmap_base=fmap_base, fmap_max=fmap_max,
        fmap_min=fmap_min, kimg=kimg, stable_kimg=stable_kimg, fade_kimg=fade_kimg, batch=batch, lr=lr,
        loss=loss, gp_lambda=gp_lambda, r1_gamma=r1_gamma, ema_kimg=ema_kimg, augment=augment, mirror=mirror,
        conditional=conditional, seed=seed, snapshot_kimg=snapshot_kimg, keep=keep, grid=grid,
        metric_images=metric_images, device=device, amp=amp, compile=compile, deterministic=deterministic)
    run_dir = out if out is not None else Path("runs") / Path(dataset).resolve().name
    run_training(dataset, run_dir, opts, resume=resume)
