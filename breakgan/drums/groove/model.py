"""The humanize model: a small bidirectional GRU over the 16th grid of a window of bars.

Input per step: which of the 9 parts are hit, the position in the bar (one-hot of 16), the tempo and,
in models trained with it, the whole pattern's profile (how often each part hits at each of the 16
positions, over all its bars); output per step and part: velocity (0..127, as a fraction) and timing offset (fraction of a 16th step,
within +-0.5). Only outputs at hits mean anything. Stored as safetensors weights with the architecture
and the training figures as JSON metadata in the same file (no pickle anywhere).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from breakgan.drums.encoding import NUM_PARTS
from breakgan.errors import BreakganError
from breakgan.weights import check_finite

WINDOW_BARS = 2
STEPS_PER_BAR = 16
POSITIONS = 16
MAX_OFFSET = 0.45  # predicted offsets stay inside +-0.45 steps, so hits of one part never swap order
SHIPPED = Path(__file__).resolve().parents[3] / "assets" / "drums" / "groove.safetensors"
MAX_MODEL_BYTES = 24 * 2**20
MAX_MEMBERS = 64
MAX_HIDDEN, MAX_LAYERS, MAX_WINDOW_BARS = 1024, 8, 64  # a network's shape, as a file may record it and
# training may ask for it
PREDICT_BATCH = 256  # windows per forward pass


PROFILE_SIZE = POSITIONS * NUM_PARTS


def tempo_feature(bpm) -> torch.Tensor:
    return (torch.as_tensor(bpm, dtype=torch.float32) - 100.0) / 40.0


def bar_hits(hits: np.ndarray) -> np.ndarray:
    """(steps, 9) hits -> (bars, 16 * 9) float32 0/1, position-major; the end padded with rests."""
    hits = np.asarray(hits) > 0
    bars = max(1, -(-len(hits) // STEPS_PER_BAR))
    padded = np.zeros((bars * STEPS_PER_BAR, NUM_PARTS), np.float32)
    padded[:len(hits)] = hits
    return padded.reshape(bars, STEPS_PER_BAR * NUM_PARTS)


def pattern_profile(hits: np.ndarray) -> np.ndarray:
    """(steps, 9) hits -> (144,) float32: the fraction of bars in which each part hits at each position.

    A window sees a few bars; the profile tells it what the whole pattern is (a swung ride pattern, a
    busy ghost-note funk groove, a straight rock beat), which is most of what predicts its feel."""
    return bar_hits(hits).mean(0)


class GrooveNet(nn.Module):
    def __init__(self, hidden: int = 64, layers: int = 2, window_bars: int = WINDOW_BARS,
                 profile: bool = False):
        super().__init__()
        self.hidden, self.layers, self.window_bars, self.profile = hidden, layers, window_bars, profile
        self.gru = nn.GRU(NUM_PARTS + POSITIONS + 1 + (PROFILE_SIZE if profile else 0), hidden,
                          num_layers=layers, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, 2 * NUM_PARTS)

    @property
    def arch(self) -> tuple[int, int]:
        return self.hidden, self.layers

    def forward(self, hits: torch.Tensor, tempo: torch.Tensor,
                profile: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """hits (B, T, 9) float 0/1, tempo (B,) BPM, profile (B, 144) for models trained with it ->
        velocity (B, T, 9) in 0..1, offset (B, T, 9) steps."""
        B, T, _ = hits.shape
        pos = torch.nn.functional.one_hot(torch.arange(T) % POSITIONS, POSITIONS).float()
        xs = [hits, pos.expand(B, T, POSITIONS), tempo_feature(tempo)[:, None, None].expand(B, T, 1)]
        if self.profile:
            xs.append(profile[:, None, :].expand(B, T, PROFILE_SIZE))
        y = self.head(self.gru(torch.cat(xs, 2))[0])
        return torch.sigmoid(y[..., :NUM_PARTS]), MAX_OFFSET * torch.tanh(y[..., NUM_PARTS:])


class GrooveEnsemble(nn.Module):
    """Members trained from different seeds, possibly of different widths or depths; one window length.

    Timing offsets are mostly noise around a small learnable part, and each member fits some of that
    noise differently: the mean of a few members is measurably closer than any one (model card). Members
    of one architecture are averaged first, then the architectures count equally: networks of different
    widths err more differently than seeds of one width (held-out eighth: 4 + 4 members of 64 and 96 units
    11.4% / 11.6% alone, 12.4% together at 1:1, 12.25% at 1:0.5, 12.35% at 1:2; a third group of 3-layer
    members 12.7% at 1:1:1, no weighting better; a fourth of 4-layer members 13.1%)."""

    def __init__(self, members: list[GrooveNet]):
        super().__init__()
        first = members[0]
        if any((m.window_bars, m.profile) != (first.window_bars, first.profile) for m in members):
            raise ValueError("ensemble members must share one window length and one input (profile or not)")
        self.members = nn.ModuleList(members)
        self.window_bars, self.profile = first.window_bars, first.profile
        groups: dict[tuple[int, int], list[int]] = {}
        for i, m in enumerate(members):
            groups.setdefault(m.arch, []).append(i)
        self.groups = list(groups.values())

    @property
    def archs(self) -> list[tuple[int, int]]:
        """(hidden, layers) per member, in order."""
        return [m.arch for m in self.members]

    def forward(self, hits, tempo, profile=None):
        outs = [m(hits, tempo, profile) for m in self.members]
        return tuple(torch.stack([torch.stack([outs[i][k] for i in g]).mean(0) for g in self.groups]).mean(0)
                     for k in (0, 1))


def windows(hits: np.ndarray, window_bars: int = WINDOW_BARS) -> tuple[np.ndarray, int]:
    """(steps, 9) -> ((n, window, 9) windows starting at every bar, bars); the end is padded with rests."""
    bars = max(window_bars, -(-len(hits) // STEPS_PER_BAR))
    padded = np.zeros((bars * STEPS_PER_BAR, hits.shape[1]), np.float32)
    padded[:len(hits)] = hits
    n = bars - window_bars + 1
    w = STEPS_PER_BAR * window_bars
    return np.stack([padded[b * STEPS_PER_BAR:b * STEPS_PER_BAR + w] for b in range(n)]), bars


@torch.inference_mode()
def predict(net: GrooveNet | GrooveEnsemble, hits: np.ndarray, tempo: float) -> tuple[np.ndarray, np.ndarray]:
    """(steps, 9) hits -> ((steps, 9) velocity 1..127 float, (steps, 9) offset in steps); each bar is the
    mean of the predictions of the windows holding it."""
    steps = len(hits)
    if steps == 0:
        return np.zeros((0, NUM_PARTS)), np.zeros((0, NUM_PARTS))
    win, bars = windows(np.asarray(hits) > 0, net.window_bars)
    prof = torch.from_numpy(pattern_profile(hits))[None]

    def run(w: np.ndarray):
        return net(torch.from_numpy(w), torch.full((len(w),), float(tempo)), prof.expand(len(w), -1))

    chunks = [run(win[i:i + PREDICT_BATCH]) for i in range(0, len(win), PREDICT_BATCH)]  # bounded memory
    vel, off = torch.cat([c[0] for c in chunks]), torch.cat([c[1] for c in chunks])
    acc_v = np.zeros((bars * STEPS_PER_BAR, NUM_PARTS))
    acc_o = np.zeros_like(acc_v)
    n = np.zeros((bars * STEPS_PER_BAR, 1))
    w = STEPS_PER_BAR * net.window_bars
    for b in range(len(win)):
        sl = slice(b * STEPS_PER_BAR, b * STEPS_PER_BAR + w)
        acc_v[sl] += vel[b].numpy()
        acc_o[sl] += off[b].numpy()
        n[sl] += 1
    return np.clip(acc_v / n * 127.0, 1.0, 127.0)[:steps], (acc_o / n)[:steps]


def save(net: GrooveNet | GrooveEnsemble, path: Path, meta: dict) -> None:
    from safetensors.torch import save_file

    if isinstance(net, GrooveNet):
        net = GrooveEnsemble([net])
    members = len(net.members)
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in net.state_dict().items()}
    hidden, layers = ([a[k] for a in net.archs] for k in (0, 1))
    one = len(set(net.archs)) == 1  # files of one architecture keep the plain numbers older readers expect
    save_file(tensors, str(path), metadata={"breakgan": json.dumps(
        {**meta, "kind": "groove", "hidden": hidden[0] if one else hidden, "layers": layers[0] if one else layers,
         "window_bars": net.window_bars, "profile": net.profile, "members": members})})  # the net's own facts win


def parameter_count(hidden: int, layers: int, profile: bool) -> int:
    """Weights of one GrooveNet, from its architecture alone (a file's record is checked against its tensors
    before a network is built, so a forged record cannot make `load` allocate gigabytes)."""
    inputs = NUM_PARTS + POSITIONS + 1 + (PROFILE_SIZE if profile else 0)
    gru = sum(2 * 3 * hidden * ((inputs if i == 0 else 2 * hidden) + hidden + 2) for i in range(layers))
    return gru + (2 * hidden + 1) * 2 * NUM_PARTS


def load(path: Path | None = None) -> tuple[GrooveEnsemble, dict]:
    """A humanize model file (default: the shipped one), checked as it is read."""
    from safetensors import safe_open

    path = Path(path) if path is not None else SHIPPED
    where = str(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise BreakganError(f"{where}: cannot read the groove model ({e.strerror})") from None
    if size > MAX_MODEL_BYTES:
        raise BreakganError(f"{where}: groove model larger than {MAX_MODEL_BYTES // 2**20} MB")
    try:
        with safe_open(where, "pt") as f:
            meta = json.loads((f.metadata() or {}).get("breakgan", "{}"))
            tensors = {k: f.get_tensor(k).float() for k in f.keys()}
        wb, members = int(meta.get("window_bars", WINDOW_BARS)), int(meta.get("members", 1))
        hidden, layers = ([int(x) for x in v] if isinstance(v, list) else [int(v)] * members
                          for v in (meta["hidden"], meta["layers"]))
        if meta.get("kind") != "groove" or not (1 <= wb <= MAX_WINDOW_BARS and 1 <= members <= MAX_MEMBERS
                                                and len(hidden) == len(layers) == members
                                                and all(1 <= h <= MAX_HIDDEN for h in hidden)
                                                and all(1 <= n <= MAX_LAYERS for n in layers)):
            raise ValueError("not a groove model")
        profile = bool(meta.get("profile", False))
        expected = sum(parameter_count(h, n, profile) for h, n in zip(hidden, layers))
        if expected != sum(t.numel() for t in tensors.values()):  # checked before anything is built
            raise ValueError("the architecture does not match the weights")
        net = GrooveEnsemble([GrooveNet(h, n, wb, profile=profile) for h, n in zip(hidden, layers)])
        if "members" not in meta:  # a one-model file from before ensembles
            tensors = {f"members.0.{k}": v for k, v in tensors.items()}
        net.load_state_dict(tensors)
    except Exception as e:  # noqa: BLE001 - any failure to parse means the file is not a groove model
        raise BreakganError(f"{where}: not a breakgan groove model ({type(e).__name__})") from None
    check_finite(tensors, where)
    net.eval()
    return net, meta
