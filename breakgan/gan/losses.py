"""The GAN losses: WGAN-GP with drift (the PGGAN paper's) and non-saturating logistic with R1.

A loss gets D's scores and the (augmented) inputs that produced them; its penalty asks for D's
scores on inputs of its choice through `critic(x)` and for the gradient of those scores with
respect to the inputs through `input_grad(scores, x)` (the trainer handles AMP scaling there).
`LOSSES` maps the `--loss` name to its class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

Critic = Callable[[torch.Tensor], torch.Tensor]
InputGrad = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class WganGp:
    """Wasserstein loss + gradient penalty on real/fake mixes (Gulrajani et al.) + drift on real scores."""

    gp_lambda: float = 10.0
    drift: float = 0.001

    @classmethod
    def from_options(cls, opts) -> "WganGp":
        return cls(gp_lambda=opts.gp_lambda, drift=opts.drift)

    def discriminator(self, s_real, s_fake, reals, fakes, critic: Critic, input_grad: InputGrad,
                      gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, penalty) for D's step."""
        loss = s_fake.mean() - s_real.mean() + self.drift * s_real.square().mean()
        eps = torch.rand((len(reals), 1, 1, 1), generator=gen, device=reals.device, dtype=reals.dtype)
        mixed = torch.lerp(fakes.detach(), reals.detach(), eps).requires_grad_(True)
        grad = input_grad(critic(mixed), mixed)
        penalty = (grad.flatten(1).norm(dim=1) - 1).square().mean()
        return loss + self.gp_lambda * penalty, penalty

    def generator(self, scores: torch.Tensor) -> torch.Tensor:
        return -scores.mean()


@dataclass(frozen=True)
class LogisticR1:
    """Non-saturating logistic loss + R1 penalty on reals (Mescheder et al.)."""

    r1_gamma: float = 10.0

    @classmethod
    def from_options(cls, opts) -> "LogisticR1":
        return cls(r1_gamma=opts.r1_gamma)

    def discriminator(self, s_real, s_fake, reals, fakes, critic: Critic, input_grad: InputGrad,
                      gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        loss = F.softplus(s_fake).mean() + F.softplus(-s_real).mean()
        r = reals.detach().requires_grad_(True)
        grad = input_grad(critic(r), r)
        penalty = grad.square().flatten(1).sum(dim=1).mean()
        return loss + 0.5 * self.r1_gamma * penalty, penalty

    def generator(self, scores: torch.Tensor) -> torch.Tensor:
        return F.softplus(-scores).mean()


LOSSES = {"wgan-gp": WganGp, "logistic": LogisticR1}


def make_loss(opts):
    """The loss `opts.loss` names, with its weights from `opts`."""
    return LOSSES[opts.loss].from_options(opts)
