"""A stride-1 convolution whose second derivative takes the fast weight-gradient kernel.

The gradient penalties (WGAN-GP, R1) differentiate D's input gradient, so every D convolution is
differentiated twice. PyTorch's generic double backward of a convolution computes the weight term as a
convolution of the batch-transposed input with the batch-transposed output gradient: a 16x16 "kernel" over
16 "channels" for a 512-channel layer at 16 px, which oneDNN runs at under half the speed of its
weight-gradient primitive (measured on CPU, one thread: 298 ms against 132 ms for 16 x 512 x 16 x 16,
3x3). Here the input gradient is its own autograd function, whose backward asks
`aten.convolution_backward` for that weight term directly: the same sums in another order (equal up to
float rounding). The first derivative is the one fused `convolution_backward` call autograd makes for
`F.conv2d`.

Inside `penalty_pass()` (D's forward pass for a gradient penalty, whose scores are used only through
their gradient with respect to the input), the differentiable backward of a convolution (the one that
builds the input gradient's graph) gives that input gradient alone: the engine never asks for the weight's
there, but a custom function cannot see what the engine asks. The penalty's own backward still reaches
these convolutions (through the minibatch-stddev layer) and gets every gradient.
"""

from __future__ import annotations

import contextlib
import contextvars

import torch
import torch.nn.functional as F

_PENALTY_PASS = contextvars.ContextVar("breakgan_penalty_pass", default=False)


@contextlib.contextmanager
def penalty_pass():
    """Convolutions run inside build the graph of their input gradient only (see the module's text)."""
    token = _PENALTY_PASS.set(True)
    try:
        yield
    finally:
        _PENALTY_PASS.reset(token)


def _backward(grad_out, x, w, padding: int, mask: list[bool], bias: bool = False):
    return torch.ops.aten.convolution_backward(grad_out, x, w, [w.shape[0]] if bias else None, [1, 1],
                                               [padding, padding], [1, 1], False, [0, 0], 1, mask)


class _InputGrad(torch.autograd.Function):
    """d(conv)/dx applied to grad_out; bilinear in (grad_out, w)."""

    @staticmethod
    def forward(ctx, grad_out, w, x, padding):
        ctx.save_for_backward(grad_out, w)
        ctx.padding = padding
        return _backward(grad_out, x, w, padding, [True, False, False])[0]

    @staticmethod
    def backward(ctx, gg):
        grad_out, w = ctx.saved_tensors
        p = ctx.padding
        d_out = F.conv2d(gg, w, None, 1, p) if ctx.needs_input_grad[0] else None
        d_w = _backward(grad_out, gg, w, p, [False, True, False])[1] if ctx.needs_input_grad[1] else None
        return d_out, d_w, None, None


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, padding, input_only):
        ctx.save_for_backward(x, w)
        ctx.padding, ctx.has_bias, ctx.input_only = padding, b is not None, input_only
        return F.conv2d(x, w, b, 1, padding)

    @staticmethod
    def backward(ctx, grad_out):
        x, w = ctx.saved_tensors
        p = ctx.padding
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if not torch.is_grad_enabled():  # a first derivative: one fused call, as autograd makes for F.conv2d
            return (*_backward(grad_out, x, w, p, [need_x, need_w, need_b], ctx.has_bias), None, None)
        d_x = _InputGrad.apply(grad_out, w, x, p) if need_x else None
        if ctx.input_only:  # the penalty's input gradient: the engine wants nothing else here
            return d_x, None, None, None, None
        # Any other differentiable backward: PyTorch's own formula for the weight's term.
        d_w = _backward(grad_out, x, w, p, [False, True, False])[1] if need_w else None
        d_b = grad_out.sum((0, 2, 3)) if need_b else None
        return d_x, d_w, d_b, None, None


def conv2d(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, padding: int) -> torch.Tensor:
    """F.conv2d(x, w, b, stride 1, padding), with the fast second derivative when gradients are recorded."""
    if not torch.is_grad_enabled() or not (x.requires_grad or w.requires_grad or (b is not None and b.requires_grad)):
        return F.conv2d(x, w, b, 1, padding)
    dev = x.device.type
    if torch.is_autocast_enabled(dev):
        # Cast here as autocast would inside F.conv2d, so the saved tensors match the gradients' dtype.
        dt = torch.get_autocast_dtype(dev)
        x, w = x.to(dt), w.to(dt)
        b = b.to(dt) if b is not None else None
    return _Conv.apply(x, w, b, padding, _PENALTY_PASS.get())


__all__ = ["conv2d", "penalty_pass"]
