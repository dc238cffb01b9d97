"""`breakgan train`: parse the options, then call `breakgan.gan.training.train`.

Defaults come from `TrainOptions` (`_D` below) and every check is in `options.resolve_options`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from breakgan.gan.options import TrainOptions

_D = TrainOptions()  # the defaults, shown in --help

def train(
    dataset: Path = typer.Argument(..., help="Dataset folder from `breakgan ingest` (packed arrays + manifest)."),
    out: Path = typer.Option(None, "--out", "-o", help="Run folder (default: runs/DATASET_NAME)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run's latest checkpoint: networks, EMA, "
                                "optimizers, AMP scaler, augmentation, images shown and RNG. Options come from the "
                                "run, except --kimg, --snapshot-kimg, --keep, --device, --amp, --compile, "
                                "--metric-images, --grid, --deterministic."),
    resolution: Optional[int] = typer.Option(_D.resolution, help="Final resolution in px, a power of two "
                                             "(default: the dataset's frame size)."),
    kimg: Optional[float] = typer.Option(_D.kimg, help="Train until this many thousand images "
                                         "(default: through one stable phase at the final resolution)."),
    stable_kimg: float = typer.Option(_D.stable_kimg, help="Thousand images per stable phase (paper: 600)."),
    fade_kimg: float = typer.Option(_D.fade_kimg, help="Thousand images per fade-in phase (paper: 600)."),
    batch: str = typer.Option(_D.batch, help="Global batch: 'auto' (paper table on CPU; fitted to GPU memory on "
                              "CUDA), one number, or 'RES:N,...' overriding the paper's table."),
    lr: float = typer.Option(_D.lr, help="Adam learning rate (betas 0, 0.99)."),
    latent_size: int = typer.Option(_D.latent_size, help="Length of the latent vector z."),
    fmap_base: int = typer.Option(_D.fmap_base, help="Channels at level k (4*2^k px) are fmap_base >> (k+1), kept "
                                  "between --fmap-min and --fmap-max."),
    fmap_max: int = typer.Option(_D.fmap_max, help="Most channels in any layer (paper: 512)."),
    fmap_min: int = typer.Option(_D.fmap_min, help="Fewest channels in any layer."),
    loss: str = typer.Option(_D.loss, help="'wgan-gp' (gradient penalty + drift, the paper's) or 'logistic' "
                             "(non-saturating + R1)."),
    gp_lambda: float = typer.Option(_D.gp_lambda, help="WGAN-GP penalty weight."),
    r1_gamma: float = typer.Option(_D.r1_gamma, help="R1 penalty weight for --loss logistic."),
    ema_kimg: float = typer.Option(_D.ema_kimg, help="Half-life of the generator's moving average, thousand images."),
    augment: str = typer.Option(_D.augment, help="Discriminator augmentation (DiffAugment: colour, translation, "
                                "cutout; never leaks into outputs): 'auto' (adaptive below 30k frames), 'ada' "
                                "(adaptive), 'off', or a fixed probability."),
    mirror: bool = typer.Option(_D.mirror, "--mirror", help="Random left-right flips of real frames (mirrors "
                                "asymmetric moves too)."),
    conditional: bool = typer.Option(_D.conditional, "--conditional", help="Condition on the dataset's labels (clip "
                                     "names) with a projection discriminator."),
    seed: int = typer.Option(_D.seed, help="Seed for weights, latents, data order and augmentation."),
    snapshot_kimg: float = typer.Option(_D.snapshot_kimg, help="Write a fakes grid, a checkpoint and the SWD metric every "
                                        "this many thousand images."),
    keep: int = typer.Option(_D.keep, help="Older checkpoints kept besides the newest."),
    grid: int = typer.Option(_D.grid, help="Images in reals.png and fakes*.png."),
    metric_images: int = typer.Option(_D.metric_images, help="Images per set for SWD at snapshots (0 = off)."),
    device: str = typer.Option(_D.device, help="'auto' (CUDA if available), 'cpu' or 'cuda'. Under torchrun each "
                               "process takes cuda:LOCAL_RANK."),
    amp: str = typer.Option(_D.amp, help="Mixed precision: auto (CUDA: bf16 if supported, else fp16; CPU: off), "
                            "bf16 (also on CPU, fast with AMX), fp16 (CUDA), off."),
    compile: bool = typer.Option(_D.compile, "--compile", help="torch.compile the generator's blocks."),
    deterministic: bool = typer.Option(_D.deterministic, "--deterministic", help="Deterministic kernels (slower on CUDA)."),
):
    """Train a Progressive Growing GAN (4 px -> target) on a dataset; multi-GPU with torchrun.

    Examples: `breakgan train datasets/dance --out runs/dance`;
    `breakgan train datasets/dance --out runs/dance --resume`;
    `torchrun --nproc_per_node=4 -m breakgan.cli train datasets/dance --out runs/dance`.
    """
    from dataclasses import fields

    from breakgan.gan.training import train as run_training

    given = locals()
    opts = TrainOptions(**{f.name: given[f.name] for f in fields(TrainOptions) if f.name in given})
    run_dir = out if out is not None else Path("runs") / Path(dataset).resolve().name
    summary = run_training(dataset, run_dir, opts, resume=resume)
    if summary["status"] == "interrupted":
        raise typer.Exit(130)  # saved and resumable; the trainer said how to continue
