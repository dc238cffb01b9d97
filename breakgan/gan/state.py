"""Everything a training step reads and changes, and its round trip through a checkpoint.

The networks (G, D and G's moving average), both optimizers, the AMP scalers, the augmentation state,
the image count and the step count. A state written by `to_checkpoint` and read by `from_checkpoint`
continues bit for bit (on CPU): that is what makes resume exact.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from breakgan.device import training_memory_format
from breakgan.errors import BreakganError
from breakgan.gan import checkpoint as ckpt
from breakgan.gan.augment import AugmentState
from breakgan.gan.networks import Discriminator, Generator, NetConfig
from breakgan.gan.options import ResolvedRun

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, None: None}


def amp_dtype(run: ResolvedRun):
    return _AMP_DTYPES[run.amp]


@dataclass
class TrainState:
    G: Generator
    D: Discriminator
    G_ema: Generator
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    scaler_G: torch.amp.GradScaler
    scaler_D: torch.amp.GradScaler
    aug: AugmentState
    images_shown: int = 0
    step: int = 0
    elapsed: float = 0.0            # seconds spent in training steps, over all sessions

    @classmethod
    def create(cls, run: ResolvedRun, device: torch.device) -> "TrainState":
        """A new run's state: weights from the run's seed (identical on every rank)."""
        opts = run.options
        config = NetConfig(**run.net)
        torch.manual_seed(opts.seed)
        G = Generator(config).to(device)
        D = Discriminator(config).to(device)
        layout = training_memory_format(device)
        G.to(memory_format=layout)
        D.to(memory_format=layout)
        G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        if opts.compile:
            # Only G's blocks: D needs double backward for its penalty, which torch.compile does not support.
            for block in list(G.blocks)[1:]:
                block.compile()
        adam = dict(lr=opts.lr, betas=(0.0, 0.99), eps=1e-8, fused=True)  # fused: one kernel per step
        fp16 = amp_dtype(run) is torch.float16
        if run.augment_adaptive:
            aug = AugmentState(adaptive=True, target=opts.augment_target)
        else:
            aug = AugmentState(p=run.augment_p)
        return cls(G=G, D=D, G_ema=G_ema,
                   opt_G=torch.optim.Adam(G.parameters(), **adam), opt_D=torch.optim.Adam(D.parameters(), **adam),
                   scaler_G=torch.amp.GradScaler("cuda", enabled=fp16),
                   scaler_D=torch.amp.GradScaler("cuda", enabled=fp16), aug=aug)

    @classmethod
    def from_checkpoint(cls, path: Path, run: ResolvedRun, device: torch.device) -> tuple["TrainState", dict]:
        """The state saved in `path` (and the checkpoint's metadata), for the run it belongs to."""
        tensors, meta = ckpt.read_checkpoint(path)
        if NetConfig.from_dict(meta["net"]) != NetConfig(**run.net):
            raise BreakganError(f"{path}: checkpoint architecture {meta['net']} differs from this run's {run.net}")
        state = cls.create(run, device)
        ckpt.load_state_checked(state.G, ckpt.sub_state(tensors, "G."), path, "generator")
        ckpt.load_state_checked(state.D, ckpt.sub_state(tensors, "D."), path, "discriminator")
        ckpt.load_state_checked(state.G_ema, ckpt.sub_state(tensors, "G_ema."), path, "EMA generator")
        ckpt.load_optimizer(state.opt_G, tensors, meta["opt_G"], "opt_G.")
        ckpt.load_optimizer(state.opt_D, tensors, meta["opt_D"], "opt_D.")
        if meta.get("scaler_G") and state.scaler_G.is_enabled():
            state.scaler_G.load_state_dict(meta["scaler_G"])
            state.scaler_D.load_state_dict(meta["scaler_D"])
        torch.set_rng_state(tensors["rng.torch_cpu"])
        if device.type == "cuda" and "rng.torch_cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.torch_cuda"], device)
        state.aug = AugmentState.from_dict(meta["augment"])
        state.images_shown = int(meta["images_shown"])
        state.step = int(meta["step"])
        state.elapsed = float(meta.get("elapsed_s", 0.0))
        return state, meta

    def to_checkpoint(self, device: torch.device) -> tuple[dict, dict]:
        """(tensors, metadata) of this state; the trainer adds the run's own metadata."""
        tensors = {}
        tensors.update(ckpt.prefixed(self.G.state_dict(), "G."))
        tensors.update(ckpt.prefixed(self.D.state_dict(), "D."))
        tensors.update(ckpt.prefixed(self.G_ema.state_dict(), "G_ema."))
        tg, mg = ckpt.optimizer_tensors(self.opt_G, "opt_G.")
        td, md = ckpt.optimizer_tensors(self.opt_D, "opt_D.")
        tensors.update(tg)
        tensors.update(td)
        tensors["rng.torch_cpu"] = torch.get_rng_state()
        if device.type == "cuda":
            tensors["rng.torch_cuda"] = torch.cuda.get_rng_state(device)
        meta = {"images_shown": self.images_shown, "step": self.step, "kimg": self.images_shown / 1000,
                "augment": self.aug.to_dict(), "opt_G": mg, "opt_D": md,
                "scaler_G": self.scaler_G.state_dict(), "scaler_D": self.scaler_D.state_dict(),
                "elapsed_s": self.elapsed}
        return tensors, meta

    def networks(self) -> tuple[torch.nn.Module, ...]:
        return self.G, self.D, self.G_ema

    def weights_finite(self) -> bool:
        return all(torch.isfinite(p).all() for m in self.networks() for p in m.parameters())
