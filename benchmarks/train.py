"""Training speed on CPU: breakgan's PGGAN step vs PyPI `pro-gan-pth` 3.4, same architecture and batch.

Both run the paper's networks at the same depth, widths (512 channels up to 32 px; pro-gan-pth fixes
them), latent size 512 and batch 16, with WGAN-GP + drift, Adam (0, 0.99) and a generator EMA, in the
stable phase at the final resolution. For pro-gan-pth we time its own `optimize_discriminator` +
`optimize_generator` + `update_average`; for breakgan one `Trainer.train_step` (which also reads the
batch from the memory-mapped packed arrays). Single steps alternate; the ratio uses this process's CPU
time (median per step), which other processes on a shared machine barely disturb; the wall-time ratio
(median of pairwise ratios) is printed beside it, and the range of the pairwise CPU-time ratios. With
2 threads on a shared machine, OpenMP threads spin while waiting for a descheduled peer and that spin counts
as CPU time, so `--threads 1` gives steadier ratios (use many pairs either way: they swing by +-15%).

Each size also prints the work per step (matrix products and convolutions, forward and backward, by torch's
FLOP formulas) and each side's GFLOP per CPU-second: the work ratio is what doing less work alone gives, and
the rest of the speed ratio is kernel speed.

Setup: `pip install pro-gan-pth==3.4 --no-deps` (the `bench` extra names it, but its pins - torch 1.10 -
cannot be resolved, hence --no-deps). Two shims are applied here
only: pro-gan-pth's transposed conv calls `_ConvTransposeNd._output_padding` without the newer
`num_spatial_dims` argument, and it imports torchvision only to save image grids (stubbed).

    python benchmarks/train.py                 # 16 and 32 px
    python benchmarks/train.py --resolutions 16 --pairs 10 --bf16
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def import_pro_gan():
    """pro_gan_pytorch with the two shims (torchvision stub, _output_padding signature)."""
    if "torchvision" not in sys.modules:
        tv = types.ModuleType("torchvision")
        tv.utils = types.ModuleType("torchvision.utils")
        tv.utils.save_image = lambda *a, **k: None
        tv.transforms = types.ModuleType("torchvision.transforms")
        for name in ("Compose", "RandomHorizontalFlip", "Resize", "ToTensor"):
            setattr(tv.transforms, name, lambda *a, **k: None)
        sys.modules.update({"torchvision": tv, "torchvision.utils": tv.utils, "torchvision.transforms": tv.transforms})
    from torch.nn.modules.conv import _ConvTransposeNd

    try:
        import pro_gan_pytorch.custom_layers as layers
    except ImportError:
        raise SystemExit("baseline missing: pip install pro-gan-pth==3.4 --no-deps") from None
    from pro_gan_pytorch.gan import ProGAN
    from pro_gan_pytorch.losses import WganGP
    from pro_gan_pytorch.networks import Discriminator, Generator

    def _output_padding(self, input, output_size, stride, padding, kernel_size, num_spatial_dims=2, dilation=None):
        return _ConvTransposeNd._output_padding(self, input, output_size, stride, padding, kernel_size,
                                                num_spatial_dims, dilation)

    layers.EqualizedConvTranspose2d._output_padding = _output_padding
    return ProGAN, WganGP, Generator, Discriminator, layers.update_average


def make_pro_gan(res: int, batch: int):
    import contextlib
    import io
    import math

    ProGAN, WganGP, Generator, Discriminator, update_average = import_pro_gan()
    torch.manual_seed(0)
    depth = int(math.log2(res))
    with contextlib.redirect_stdout(io.StringIO()):  # it prints both networks
        gan = ProGAN(Generator(depth=depth, latent_size=512), Discriminator(depth=depth, latent_size=512))
    loss = WganGP()
    g_opt = torch.optim.Adam(gan.gen.parameters(), lr=0.001, betas=(0.0, 0.99), eps=1e-8)
    d_opt = torch.optim.Adam(gan.dis.parameters(), lr=0.001, betas=(0.0, 0.99), eps=1e-8)
    reals = torch.rand(batch, 3, res, res) * 2 - 1

    def step():
        noise = torch.randn(batch, 512)
        gan.optimize_discriminator(loss, d_opt, noise, reals, depth, 1.0)
        gan.optimize_generator(loss, g_opt, noise, reals, depth, 1.0)  # one noise for both, as its train()
        update_average(gan.gen_shadow, gan.gen, beta=0.999)

    return step


def make_breakgan(res: int, batch: int, folder: Path, amp: str = "off"):
    from gan_helpers import make_dataset

    from breakgan.gan.data import BatchLoader
    from breakgan.gan.training import StopRequest, Trainer, TrainOptions

    ds = make_dataset(folder / f"ds{res}", count=64, size=res)
    opts = TrainOptions(resolution=res, latent_size=512, fmap_base=8192, fmap_max=512, batch=str(batch),
                        stable_kimg=0.001, fade_kimg=0.001, augment="off", device="cpu", metric_images=0, amp=amp)
    trainer = Trainer(ds, folder / f"run{res}{amp}", opts)
    trainer.state.images_shown = 10**6  # well past the last fade: stable at the final resolution
    assert trainer.phase().resolution == res and not trainer.phase().fading
    loader = BatchLoader(trainer.data, seed=0, device=trainer.device)
    stop = StopRequest()

    def step():
        trainer.train_step(loader, stop)

    return step


def step_gflop(step) -> float:
    """Matrix-product and convolution work of one step (forward and backward), by torch's own FLOP formulas.

    A bare dispatch mode rather than `FlopCounterMode`, whose module hooks refuse `autograd.grad` (both
    gradient penalties take one)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += formula(*args, **(kwargs or {}), out_val=out)
            return out

    with Count() as count:
        step()
    return count.total / 1e9


def timed(step, iters: int) -> float:
    t = time.perf_counter()
    for _ in range(iters):
        step()
    return time.perf_counter() - t


def timed_cpu(step) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of one step; CPU time barely moves with other load."""
    w, c = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - w, time.process_time() - c


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resolutions", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--pairs", type=int, default=6, help="timed (baseline step, breakgan step) pairs per size")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--bf16", action="store_true", help="also time breakgan with --amp bf16 (not in the ratio: "
                    "the baseline runs float32)")
    args = ap.parse_args(argv)
    if args.pairs < 1 or args.batch < 1 or args.threads < 0:
        ap.error("--pairs and --batch must be at least 1, --threads at least 0")
    if any(r < 8 or r & (r - 1) for r in args.resolutions):
        ap.error("--resolutions: powers of two from 8 (pro-gan-pth's depth is log2 of the size)")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, latent 512, "
          f"widths 512, WGAN-GP + EMA, float32; medians over {args.pairs} alternating step pairs")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for res in args.resolutions:
            ours, theirs = make_breakgan(res, args.batch, Path(tmp)), make_pro_gan(res, args.batch)
            ours(), theirs()  # warm up
            work_ours, work_theirs = step_gflop(ours), step_gflop(theirs)
            # Alternate single steps so load from other processes falls on both; pairwise ratios are robust
            # to that load drifting over the run.
            t_ours, t_theirs = [], []
            for _ in range(args.pairs):
                t_theirs.append(timed_cpu(theirs))
                t_ours.append(timed_cpu(ours))
            wall_o, cpu_o = np.array(t_ours).T
            wall_t, cpu_t = np.array(t_theirs).T
            ratio = float(np.median(cpu_t) / np.median(cpu_o))
            wall_ratio = float(np.median(wall_t / wall_o))
            pair_cpu = cpu_t / cpu_o  # per-pair ratios: their spread shows how far to trust the median
            ips_ours, ips_theirs = args.batch / np.median(wall_o), args.batch / np.median(wall_t)
            ratios.append(ratio)
            print(f"{res:>4} px  breakgan {ips_ours:7.2f} img/s   pro-gan-pth 3.4 {ips_theirs:7.2f} img/s (wall)   "
                  f"ratio {ratio:.2f}x by CPU time, {wall_ratio:.2f}x by wall time "
                  f"(pairs by CPU time {pair_cpu.min():.2f}-{pair_cpu.max():.2f}x)")
            # What doing less work alone would give, at equal kernel speed: the rest of the ratio is kernel speed.
            print(f"{res:>4} px  work per step: breakgan {work_ours:.0f} GFLOP, pro-gan-pth {work_theirs:.0f} GFLOP "
                  f"({work_theirs / work_ours:.2f}x less work); breakgan runs at {work_ours / np.median(cpu_o):.0f} "
                  f"GFLOP per CPU-second, pro-gan-pth at {work_theirs / np.median(cpu_t):.0f}")
            if args.bf16:
                bf = make_breakgan(res, args.batch, Path(tmp), amp="bf16")
                bf()
                t_bf = float(np.median([timed(bf, 1) for _ in range(max(2, args.pairs // 2))]))
                print(f"{res:>4} px  breakgan --amp bf16 {args.batch / t_bf:7.2f} img/s "
                      f"({args.batch / t_bf / ips_theirs:.2f}x the float32 baseline; not in the ratio)")
    print(f"ratio (geometric mean): {float(np.exp(np.mean(np.log(ratios)))):.2f}x  (target >= 1.3)")


if __name__ == "__main__":
    main()
