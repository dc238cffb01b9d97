"""Checks every reader of a model file applies to the tensors it loaded."""

from __future__ import annotations

import os

import torch

from breakgan.errors import BreakganError


def check_finite(tensors: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """NaN or infinite weights give black frames, silent stems or librosa errors far from the cause: refuse
    them where the file is read, naming it."""
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise BreakganError(f"{path}: tensor {name[:80]} holds NaN or infinite weights")
