"""Data-parallel helpers for torchrun: process group setup, gradient averaging, weight checks.

Gradients are averaged with one flat all-reduce per network after each backward, as StyleGAN3 does,
instead of wrapping the networks in DistributedDataParallel as stylegan2-ada-pytorch does (it needs a
custom convolution that skips weight gradients to take R1's double backward under DDP's reducer hooks).
The flat all-reduce takes the gradient penalty's double backward as is, and progressive growing leaving
some parameters unused in a step needs no `find_unused_parameters`. Every rank takes the same code path, so the set of parameters with gradients
matches across ranks.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def env_from_torchrun() -> DistEnv:
    """Rank and world size from the variables torchrun sets (a single process otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv()
    return DistEnv(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(env: DistEnv, device: torch.device) -> None:
    if env.enabled and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def shutdown(env: DistEnv) -> None:
    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()


def average_gradients(module: torch.nn.Module, env: DistEnv) -> None:
    """Replace each parameter's gradient with its mean over ranks (one flat all-reduce)."""
    if not env.enabled:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= env.world
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def broadcast_module(module: torch.nn.Module, env: DistEnv) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not env.enabled:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def all_sum(values: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.enabled:
        dist.all_reduce(values)
    return values


def weights_digest(*modules: torch.nn.Module) -> str:
    """sha256 over all parameters (bitwise): equal on every rank when data parallelism is correct."""
    h = hashlib.sha256()
    for m in modules:
        for name, t in m.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


def gather_digests(digest: str, env: DistEnv, device: torch.device) -> list[str]:
    """Every rank's hex digest (sha256), gathered as raw bytes."""
    if not env.enabled:
        return [digest]
    mine = torch.tensor(list(bytes.fromhex(digest)), dtype=torch.uint8, device=device)
    out = [torch.empty_like(mine) for _ in range(env.world)]
    dist.all_gather(out, mine)
    return [bytes(t.cpu().tolist()).hex() for t in out]
