"""The one `--device` resolver: 'auto', 'cpu', 'cuda' or 'cuda:N' -> a torch.device, or one clear error.

Every command that takes `--device` (train, sample, metrics, render, live's preview, drums) calls
`resolve_device`, so a name means the same everywhere and a missing GPU reads the same everywhere.
"""

from __future__ import annotations

import re

from breakgan.errors import BreakganError

DEVICE_NAMES = "auto, cpu, cuda or cuda:N"
_NAME = re.compile(r"auto|cpu|cuda(:[0-9]{1,3})?")


def check_device_name(name: str, option: str = "--device") -> str:
    """The name itself, if it is one of auto, cpu, cuda, cuda:N (pure: no torch, no GPU query)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BreakganError(f"{option} must be {DEVICE_NAMES}, got {name!r}")
    return name


def resolve_device(name: str = "auto", option: str = "--device"):
    """'auto' -> CUDA when a GPU is visible, else CPU; 'cuda[:N]' must name a visible GPU."""
    import torch

    check_device_name(name, option)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        built = ("without CUDA" if torch.version.cuda is None
                 else f"with CUDA {torch.version.cuda}, but no GPU is visible")
        raise BreakganError(f"{option} {name}: CUDA is not available (this PyTorch {torch.__version__} was "
                            f"built {built}); use {option} cpu or auto")
    device = torch.device(name)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise BreakganError(f"{option} {name}: no such GPU (this machine has {count}: cuda:0..cuda:{count - 1})")
    return device


def training_memory_format(device):
    """The memory layout of training's convolutions on `device`.

    CUDA: channels_last (tensor cores). CPU with AVX-512: channels_last, as before (oneDNN's native layout
    there; not re-measured). Other CPUs (AVX2): torch's default NCHW, because oneDNN's channels-last backward
    kernels are the slower ones there: on a 2-core AMD EPYC with torch 2.13, 61-65 GFLOP/s against 76 for a
    512-channel 3x3 convolution at 32 px (one thread), and a whole 32 px training step took 7% longer
    (six ABBA pairs, 1.04-1.11x; no difference at 16 px)."""
    import torch

    if device.type == "cuda" or (device.type == "cpu" and torch.backends.cpu.get_cpu_capability() == "AVX512"):
        return torch.channels_last
    return torch.contiguous_format
