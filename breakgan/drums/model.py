"""DrumsRNN (Magenta drum_kit): 3 LSTM layers wrapped by Magenta's 2016 AttentionCellWrapper.

Parameters keep TensorFlow's layout so a Magenta checkpoint maps one-to-one:
- LSTM layers as TF BasicLSTMCell: kernel [in + H, 4H], bias [4H], gates i, j, f, o; the forget bias
  of +1.0 is added at run time (not stored).
- linear layers as TF `_linear`: weight [in, out] (x @ W + b).
Attention (around the whole stack): x = [input; previous attention] @ W_in -> 3 LSTM layers ->
query = [c0, h0, c1, h1, c2, h2] -> scores v . tanh(stored @ W_k + query @ W_q) over the last 32
stored outputs -> attention = softmax-weighted sum -> output = [h_top; attention] @ W_o -> store it
(dropping the oldest) -> logits = output @ W_fc. All state starts at zero. Dropout (keep 0.5) is on
each LSTM layer's output, in training only.

This module imports nothing from the application: it takes tensors and sizes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

FORGET_BIAS = 1.0


@dataclass(frozen=True)
class DrumsConfig:
    input_size: int = 518
    num_classes: int = 512
    layers: tuple[int, ...] = (256, 256, 256)
    attn_length: int = 32
    dropout_keep: float = 0.5

    def to_json(self) -> dict:
        d = asdict(self)
        d["layers"] = list(self.layers)
        return d

    @property
    def attn_size(self) -> int:
        return self.layers[-1]

    @property
    def state_size(self) -> int:
        return 2 * sum(self.layers)


def lstm_step(gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """TF BasicLSTMCell update from pre-activation gates (i, j, f, o) and the previous cell state."""
    i, j, f, o = gates.chunk(4, dim=-1)
    c = c * torch.sigmoid(f + FORGET_BIAS) + torch.sigmoid(i) * torch.tanh(j)
    return c, torch.tanh(c) * torch.sigmoid(o)


class DrumsRNN(nn.Module):
    def __init__(self, config: DrumsConfig = DrumsConfig()):
        super().__init__()
        self.config = config
        cfg = config
        a = cfg.attn_size
        self.input_w = nn.Parameter(torch.empty(cfg.input_size + a, cfg.input_size))
        self.input_b = nn.Parameter(torch.zeros(cfg.input_size))
        self.kernels = nn.ParameterList()
        self.biases = nn.ParameterList()
        size_in = cfg.input_size
        for h in cfg.layers:
            self.kernels.append(nn.Parameter(torch.empty(size_in + h, 4 * h)))
            self.biases.append(nn.Parameter(torch.zeros(4 * h)))
            size_in = h
        self.attn_k = nn.Parameter(torch.empty(a, a))
        self.attn_v = nn.Parameter(torch.empty(a))
        self.attn_q_w = nn.Parameter(torch.empty(cfg.state_size, a))
        self.attn_q_b = nn.Parameter(torch.zeros(a))
        self.out_w = nn.Parameter(torch.empty(cfg.layers[-1] + a, a))
        self.out_b = nn.Parameter(torch.zeros(a))
        self.fc_w = nn.Parameter(torch.empty(a, cfg.num_classes))
        self.fc_b = nn.Parameter(torch.zeros(cfg.num_classes))
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """TF's defaults: Glorot-uniform matrices, zero biases."""
        for p in [self.input_w, *self.kernels, self.attn_k, self.attn_q_w, self.out_w, self.fc_w]:
            bound = (6.0 / (p.shape[0] + p.shape[1])) ** 0.5
            with torch.no_grad():
                p.uniform_(-bound, bound, generator=generator)
        with torch.no_grad():
            bound = (6.0 / (1 + self.attn_v.shape[0])) ** 0.5
            self.attn_v.uniform_(-bound, bound, generator=generator)

    def forward(self, labels: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits. labels (B, T) int64 input events, counters (T, 6) -> (B, T, 512).

        The linear input projection is folded into the first LSTM kernel (no nonlinearity between
        them), which is exact and saves a matmul per step; everything that does not depend on the
        previous step is computed for the whole sequence at once.
        """
        cfg = self.config
        B, T = labels.shape
        n_cls, a = cfg.num_classes, cfg.attn_size
        drop = self.training and cfg.dropout_keep < 1.0
        k1 = self.kernels[0]
        wx1, wh1 = k1[: cfg.input_size], k1[cfg.input_size:]
        w_event = self.input_w[:n_cls] @ wx1  # (512, 4H)
        w_counter = self.input_w[n_cls:cfg.input_size] @ wx1
        w_attn = self.input_w[cfg.input_size:] @ wx1
        static = (w_event[labels] + (counters @ w_counter)[None]
                  + (self.input_b @ wx1 + self.biases[0]))  # (B, T, 4H)
        w_rec1 = torch.cat([w_attn, wh1], 0)

        hs = [static.new_zeros(B, n) for n in cfg.layers]
        cs = [static.new_zeros(B, n) for n in cfg.layers]
        attn = static.new_zeros(B, a)
        stored = static.new_zeros(B, cfg.attn_length, a)
        keys = stored @ self.attn_k
        outputs = []
        for t in range(T):
            gates = static[:, t] + torch.cat([attn, hs[0]], 1) @ w_rec1
            cs[0], hs[0] = lstm_step(gates, cs[0])
            x = hs[0]
            for layer in range(1, len(cfg.layers)):
                if drop:
                    x = nn.functional.dropout(x, 1.0 - cfg.dropout_keep, True)
                gates = torch.cat([x, hs[layer]], 1) @ self.kernels[layer] + self.biases[layer]
                cs[layer], hs[layer] = lstm_step(gates, cs[layer])
                x = hs[layer]
            if drop:
                x = nn.functional.dropout(x, 1.0 - cfg.dropout_keep, True)
            query = torch.cat([s for pair in zip(cs, hs) for s in pair], 1) @ self.attn_q_w + self.attn_q_b
            scores = torch.tanh(keys + query[:, None]) @ self.attn_v  # (B, L)
            weights = torch.softmax(scores, 1)
            attn = (weights[:, :, None] * stored).sum(1)
            out = torch.cat([x, attn], 1) @ self.out_w + self.out_b
            stored = torch.cat([stored[:, 1:], out[:, None]], 1)
            keys = torch.cat([keys[:, 1:], (out @ self.attn_k)[:, None]], 1)
            outputs.append(out)
        return torch.stack(outputs, 1) @ self.fc_w + self.fc_b
