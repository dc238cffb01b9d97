"""The transcription network: log-mel frames -> per-head onset probability and velocity per 10 ms frame.

Two 3x3 convolutions (pooling frequency only, so time resolution stays one frame), then six dilated
temporal convolutions with residual connections: a receptive field of +-128 frames (1.3 s). Inference
runs it on windows overlapping by more than that (see infer.py): memory stays flat on any length and
the result equals a whole-signal pass. Weights: safetensors with a JSON metadata
entry (feature settings, normalisation, per-head thresholds); never pickle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from breakgan.errors import BreakganError
from breakgan.transcribe import features as F
from breakgan.transcribe.rescore import HIGH_RATES, RescoreEnsemble, RescoreNet, high_rate, logit_of_mean_probability
from breakgan.weights import check_finite

# Output heads; the three toms share one head, as they are rare in training data (output.tom_groups splits
# its hits into tom_low/mid/high by pitch; HEAD_TO_PART's tom_mid is the part when there are no pitches).
HEADS: tuple[str, ...] = ("kick", "snare", "hihat_closed", "hihat_open", "toms", "crash", "ride")
PART_TO_HEAD = {"kick": 0, "snare": 1, "hihat_closed": 2, "hihat_open": 3, "tom_low": 4, "tom_mid": 4,
                "tom_high": 4, "crash": 5, "ride": 6}
HEAD_TO_PART = {"kick": "kick", "snare": "snare", "hihat_closed": "hihat_closed", "hihat_open": "hihat_open",
                "toms": "tom_mid", "crash": "crash", "ride": "ride"}
SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "drums" / "transcribe.safetensors"
MAX_MODEL_BYTES = 16 * 2**20


DILATIONS = (1, 2, 4, 8, 16, 32)  # temporal convolutions: +-(2 + 2 * 63) frames of context, ~1.3 s each way


class TranscribeNet(nn.Module):
    def __init__(self, n_mels: int = F.N_MELS, channels: int = 16, hidden: int = 96, n_heads: int = len(HEADS)):
        super().__init__()
        c = channels
        # frequency is pooled early (64 -> 16 -> 4 bands) so the convs stay cheap on a shared CPU
        self.conv = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d((1, 4)),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU(), nn.MaxPool2d((1, 4)))
        self.proj = nn.Linear(2 * c * (n_mels // 16), hidden)
        # dilated temporal convolutions rather than a GRU: parallel over time (4x faster to train on CPU)
        # and a finite receptive field, so windowed streaming gives exactly the whole-signal result
        self.tcn = nn.ModuleList(nn.Conv1d(hidden, hidden, 3, padding=d, dilation=d) for d in DILATIONS)
        self.drop = nn.Dropout(0.1)
        self.onset = nn.Conv1d(hidden, n_heads, 1)
        self.velocity = nn.Conv1d(hidden, n_heads, 1)
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("std", torch.ones(n_mels))
        self.rescorers = nn.ModuleDict()  # head -> rescore.RescoreNet, filled by load_model from the metadata

    @staticmethod
    def context_frames() -> int:
        return 2 + 2 * sum(DILATIONS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (batch, frames, n_mels) log-mel -> onset logits, velocity (0..1), each (batch, frames, heads)."""
        x = (x - self.mean) / self.std
        h = self.conv(x.unsqueeze(1))                     # (b, c, t, m/16)
        h = h.permute(0, 2, 1, 3).flatten(2)              # (b, t, c*m/16)
        h = torch.relu(self.proj(h)).transpose(1, 2)      # (b, hidden, t)
        for layer in self.tcn:
            h = h + self.drop(torch.relu(layer(h)))
        return self.onset(h).transpose(1, 2), torch.sigmoid(self.velocity(h)).transpose(1, 2)


class TranscribeEnsemble(nn.Module):
    """Networks of one architecture whose onset probabilities and velocities are averaged: two networks
    trained on different data err on different hits, so the average is right more often than either
    (see the model card), at twice the (small) cost."""

    def __init__(self, members: list[TranscribeNet]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.rescorers = nn.ModuleDict()  # as TranscribeNet's: they judge the averaged activations

    @staticmethod
    def context_frames() -> int:
        return TranscribeNet.context_frames()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As TranscribeNet.forward; the logits are those of the mean probability."""
        outs = [m(x) for m in self.members]
        return logit_of_mean_probability([o for o, _ in outs]), torch.stack([v for _, v in outs]).mean(0)


def average(models: list[tuple[TranscribeNet, dict]]) -> tuple[TranscribeEnsemble, dict]:
    """One model from loaded (network, metadata) pairs of one architecture: the ensemble and its metadata
    (each member's training record kept; the first member's thresholds until new ones are chosen)."""
    nets = [n for m, _ in models for n in (m.members if isinstance(m, TranscribeEnsemble) else [m])]
    metas = [meta for _, meta in models]
    if len({json.dumps(m.get("arch"), sort_keys=True) for m in metas}) != 1:
        raise BreakganError("the models to average differ in architecture")
    records = [r for m in metas for r in (m["training"].get("members") or [m["training"]])]
    meta = {k: v for k, v in metas[0].items() if k not in ("dev_f", "tuning_f", "thresholds_from", "rescore")}
    meta.update(members=len(nets), parameters=sum(parameter_count(n) for n in nets),
                training={"groove_split": "train", "members": records, "seed": records[0].get("seed", 0),
                          "train_seconds": round(sum(r.get("train_seconds", 0) for r in records), 1)})
    return TranscribeEnsemble(nets).eval(), meta


def join_rescorers(models: list[tuple[nn.Module, dict]], head: str) -> tuple[nn.Module, dict]:
    """The first model with `head`'s rescorers of all `models` averaged (rescore.RescoreEnsemble). The
    models must share one network, since a rescorer judges that network's candidates; the threshold stays
    the first model's until benchmarks/transcribe_dev.py --write chooses one."""
    first, meta = models[0]
    own = {k: v for k, v in first.state_dict().items() if not k.startswith("rescorers.")}
    specs = [m.get("rescore", {}).get(head) for _, m in models]
    if any(s is None for s in specs):
        raise BreakganError(f"join rescorers: not every model has a {head} rescorer")
    if len({(s["hidden"], high_rate(s), s["candidate_threshold"]) for s in specs}) != 1:
        raise BreakganError(f"join rescorers: the {head} rescorers differ in shape or candidate threshold")
    for net, _ in models[1:]:
        other = net.state_dict()
        if any(k not in other or not torch.equal(v, other[k]) for k, v in own.items()):
            raise BreakganError("join rescorers: the models' networks differ")
    members = [r for net, _ in models for r in (net.rescorers[head].members
                                                if isinstance(net.rescorers[head], RescoreEnsemble)
                                                else [net.rescorers[head]])]
    records = [r for s in specs
               for r in (s.get("training", {}).get("members", []) if s.get("members", 1) > 1 else [s.get("training", {})])]
    first.rescorers[head] = RescoreEnsemble(members).eval()
    spec = {**specs[0], "members": len(members), "training": {"members": records}}
    return first, {**meta, "rescore": {**meta["rescore"], head: spec}}


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_model(model: TranscribeNet | TranscribeEnsemble, path: str | Path, meta: dict) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()
               if v.dtype.is_floating_point}
    save_file(tensors, str(path), metadata={"breakgan": json.dumps(meta, sort_keys=True)})
    return path


def load_model(path: str | Path | None = None) -> tuple[TranscribeNet | TranscribeEnsemble, dict]:
    """The network (eval mode, CPU; an ensemble when the file holds several) and its metadata; a
    BreakganError naming the file if it is not one."""
    from safetensors import safe_open

    path = Path(path) if path is not None else SHIPPED
    if not path.is_file():
        raise BreakganError(f"{path}: transcription model not found")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise BreakganError(f"{path}: larger than {MAX_MODEL_BYTES // 2**20} MB; not a transcription model")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("breakgan", "null"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for damaged headers
        raise BreakganError(f"{path}: not a safetensors transcription model ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(meta, dict) or meta.get("kind") != "breakgan-transcribe":
        raise BreakganError(f"{path}: not a breakgan transcription model (no 'breakgan-transcribe' metadata)")
    arch = meta.get("arch", {})
    members = meta.get("members", 1)
    if not isinstance(members, int) or not 1 <= members <= 8:
        raise BreakganError(f"{path}: metadata 'members' must be a whole number 1..8")
    try:
        model = (TranscribeNet(**arch) if members == 1
                 else TranscribeEnsemble([TranscribeNet(**arch) for _ in range(members)]))
        model.rescorers.update({h: rescorer(spec) for h, spec in _rescore_specs(path, meta).items()})
        missing, unexpected = model.load_state_dict(tensors, strict=False)
    except (TypeError, RuntimeError) as e:
        raise BreakganError(f"{path}: weights do not fit the transcription network ({str(e).splitlines()[0][:120]})") from None
    if [m for m in missing if not m.endswith("num_batches_tracked")] or unexpected:
        raise BreakganError(f"{path}: weights do not fit the transcription network")
    check_finite(tensors, path)
    if meta.get("phases", 1) not in (1, 2):
        raise BreakganError(f"{path}: metadata 'phases' must be 1 or 2")
    thresholds = meta.get("thresholds")
    if (not isinstance(thresholds, list) or len(thresholds) != len(HEADS)
            or not all(isinstance(t, (int, float)) and 0 < t < 1 for t in thresholds)):
        raise BreakganError(f"{path}: metadata holds no valid per-head thresholds")
    model.eval()
    # oneDNN's convolutions and max-pools are several times faster channels-last on CPU (the same sums:
    # onsets equal to 1e-7); 4-D weights only, so the file's tensors are unchanged
    model.to(memory_format=torch.channels_last)
    return model, meta


def rescorer(spec: dict) -> RescoreNet | RescoreEnsemble:
    """An untrained rescorer of the shape `spec` (an entry of meta["rescore"]) describes."""
    net = lambda: RescoreNet(len(HEADS), spec["hidden"], bool(spec.get("high")))  # noqa: E731
    members = spec.get("members", 1)
    return net() if members == 1 else RescoreEnsemble([net() for _ in range(members)])


def _rescore_specs(path: Path, meta: dict) -> dict:
    """meta["rescore"]: head -> {"hidden", "candidate_threshold", "threshold", optional "high", "high_rate"
    (with "high") and "members" (an ensemble of that many rescorers)} (see rescore.py), checked."""
    specs = meta.get("rescore", {})
    ok = isinstance(specs, dict) and all(
        h in HEADS and isinstance(s, dict) and isinstance(s.get("hidden"), int) and 1 <= s["hidden"] <= 1024
        and all(isinstance(s.get(k), (int, float)) and 0 < s[k] < 1 for k in ("candidate_threshold", "threshold"))
        and isinstance(s.get("high", False), bool)
        and ("high_rate" not in s or (s.get("high") is True and s["high_rate"] in HIGH_RATES))
        and isinstance(s.get("members", 1), int) and 1 <= s.get("members", 1) <= 8
        for h, s in specs.items())
    if not ok:
        raise BreakganError(f"{path}: metadata 'rescore' must map heads to hidden, candidate_threshold, "
                            "threshold (and optionally high: true/false, high_rate: "
                            f"{' or '.join(map(str, HIGH_RATES))} with high, members: 1..8)")
    return specs


def thresholds_array(meta: dict) -> np.ndarray:
    return np.asarray(meta["thresholds"], np.float32)
