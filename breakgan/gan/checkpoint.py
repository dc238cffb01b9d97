"""Checkpoints and exported generators: safetensors for tensors, JSON (in the file's metadata) for the rest.

Nothing here unpickles: optimizer states are flattened into named tensors plus JSON, RNG states are
uint8 tensors. Files are written to a temporary name, fsynced and renamed, so a crash, kill -9 or a
full disk never leaves a half checkpoint where the run's `latest` pointer can see it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from breakgan.errors import BreakganError
from breakgan.gan.networks import Generator, NetConfig
from breakgan.stage import write_json_atomic
from breakgan.stage import write_bytes_atomic as _write_bytes_atomic

CHECKPOINT_FORMAT = "breakgan-checkpoint"
GENERATOR_FORMAT = "breakgan-generator"
CHECKPOINT_DIR = "checkpoints"
LATEST = "latest.json"


def checkpoint_name(images_shown: int) -> str:
    return f"ckpt-{images_shown:010d}.safetensors"


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Checkpoint bytes: temp name, fsync, rename (see stage.atomic_file)."""
    _write_bytes_atomic(path, data, fsync=True)


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def write_checkpoint(run: Path, images_shown: int, tensors: dict[str, torch.Tensor], meta: dict,
                     keep: int = 3) -> Path:
    """Write one checkpoint into RUN/checkpoints/, point `latest.json` at it, keep the newest `keep`."""
    folder = Path(run) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_name(images_shown)
    meta = {"format": CHECKPOINT_FORMAT, **meta}
    try:
        for stale in folder.glob(".ckpt-*.tmp"):  # left by a kill -9 mid-write
            stale.unlink(missing_ok=True)
        data = st_save(_contiguous(tensors), metadata={"format": CHECKPOINT_FORMAT, "breakgan": json.dumps(meta)})
        write_bytes_atomic(path, data)
        write_json_atomic(folder / LATEST, {"file": path.name, "images_shown": images_shown,
                                            "kimg": images_shown / 1000})
    except OSError as e:
        previous = latest_checkpoint(run, required=False)
        kept = f"; the previous checkpoint {previous} is kept" if previous else ""
        raise BreakganError(f"{path}: cannot write checkpoint ({e.strerror or e}){kept}") from None
    old = sorted(folder.glob("ckpt-*.safetensors"))
    for stale in old[:-keep] if keep > 0 else []:
        if stale != path:
            stale.unlink(missing_ok=True)
    return path


def latest_checkpoint(run: Path, required: bool = True) -> Path | None:
    """The checkpoint RUN/checkpoints/latest.json names, else the newest ckpt-*.safetensors."""
    folder = Path(run) / CHECKPOINT_DIR
    pointer = folder / LATEST
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        path = folder / json.loads(pointer.read_text())["file"]
        if path.is_file():
            return path
    found = sorted(folder.glob("ckpt-*.safetensors"))
    if found:
        return found[-1]
    if required:
        raise BreakganError(f"{run}: no checkpoint found in {folder}")
    return None


def read_checkpoint(path: Path, prefixes: tuple[str, ...] | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors (only those under `prefixes`, if given) and the JSON metadata of a breakgan file."""
    path = Path(path)
    if not path.is_file():
        raise BreakganError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
            if raw.get("format") not in (CHECKPOINT_FORMAT, GENERATOR_FORMAT):
                raise BreakganError(f"{path}: not a breakgan checkpoint or generator file")
            meta = json.loads(raw["breakgan"])
            tensors = {k: f.get_tensor(k) for k in f.keys()
                       if prefixes is None or k.startswith(prefixes)}
    except BreakganError:
        raise
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise BreakganError(f"{path}: not a readable breakgan checkpoint ({e})") from None
    return tensors, meta


def resolve(path: Path) -> Path:
    """A run folder -> its latest checkpoint; a file stays itself."""
    path = Path(path)
    if path.is_dir():
        return latest_checkpoint(path)
    if not path.exists():
        raise BreakganError(f"{path}: no such run folder or checkpoint")
    return path


def sub_state(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    n = len(prefix)
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix)}


def prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in state.items()}


def load_state_checked(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """load_state_dict that reports an architecture mismatch as a one-line user error."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or extra or wrong:
        detail = (f"missing {missing[:2]}" if missing else f"unexpected {extra[:2]}" if extra
                  else f"shape of {wrong[0]} is {tuple(state[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}")
        raise BreakganError(f"{path}: {what} does not match the architecture ({detail})")
    module.load_state_dict(state)


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten an optimizer state_dict into named tensors + a JSON-able dict (no pickle)."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict, prefix: str) -> None:
    state: dict[int, dict] = {}
    for name, value in sub_state(tensors, prefix).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    for name, value in meta.get("scalars", {}).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    # Saved tensors are contiguous; give each state tensor its parameter's layout (e.g. channels_last)
    # because fused optimizers walk parameter and state memory in lockstep.
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p, {})
            for key, value in st.items():
                if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                    st[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def _generator_from(tensors: dict, meta: dict, path: Path, prefix: str, device) -> tuple[Generator, dict]:
    try:
        config = NetConfig.from_dict(meta["net"])
    except (KeyError, TypeError, ValueError) as e:
        raise BreakganError(f"{path}: checkpoint has no valid network config ({e})") from None
    G = Generator(config)
    load_state_checked(G, sub_state(tensors, prefix), path, "generator")
    G.level = int(meta.get("level", config.levels - 1))
    G.alpha = float(meta.get("alpha", 1.0))
    G.clamp = True
    G.eval().requires_grad_(False)
    G.to(device)
    info = {
        "latent_size": config.latent_size,
        "resolution": G.resolution,
        "num_classes": config.num_classes,
        "labels": list(meta.get("labels", [])),
        "kimg": float(meta.get("kimg", 0.0)),
        "alpha": G.alpha,
        "net": config.to_dict(),
        "path": str(path),
    }
    return G, info


def load_generator(path, device="cpu") -> tuple[Generator, dict]:
    """The EMA generator of a run folder, a checkpoint, or an exported generator file (eval mode)."""
    path = resolve(Path(path))
    tensors, meta = read_checkpoint(path)
    prefix = "G_ema." if meta.get("format") == CHECKPOINT_FORMAT else ""
    if prefix and not any(k.startswith(prefix) for k in tensors):
        raise BreakganError(f"{path}: checkpoint holds no EMA generator")
    return _generator_from(tensors, meta, path, prefix, device)


def export_generator(path, out_file) -> Path:
    """Write only the EMA generator (+ its config) as a small .safetensors that load_generator accepts."""
    src = resolve(Path(path))
    G, info = load_generator(src)
    out = Path(out_file)
    meta = {"format": GENERATOR_FORMAT, "net": info["net"], "level": G.level, "alpha": G.alpha,
            "kimg": info["kimg"], "labels": info["labels"], "source": str(src)}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        data = st_save(_contiguous(G.state_dict()),
                       metadata={"format": GENERATOR_FORMAT, "breakgan": json.dumps(meta)})
        write_bytes_atomic(out, data)
    except OSError as e:
        raise BreakganError(f"{out}: cannot write generator ({e.strerror or e})") from None
    return out
