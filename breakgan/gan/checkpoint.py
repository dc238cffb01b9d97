"""Checkpoints and exported generators: safetensors for tensors, JSON (in the file's metadata) for the rest.

Nothing here unpickles: optimizer states are flattened into named tensors plus JSON, RNG states are
uint8 tensors. Files are written to a temporary name, fsynced and renamed, so a crash, kill -9 or a
full disk never leaves a half checkpoint where the run's `latest` pointer can see it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from breakgan.errors import BreakganError
from breakgan.gan.networks import Generator, NetConfig
from breakgan.jsonfile import parse_json, read_json
from breakgan.paths import confined
from breakgan.stage import write_json_atomic
from breakgan.stage import write_bytes_atomic as _write_bytes_atomic
from breakgan.weights import check_finite

CHECKPOINT_FORMAT = "breakgan-checkpoint"
GENERATOR_FORMAT = "breakgan-generator"
CHECKPOINT_DIR = "checkpoints"
LATEST = "latest.json"
MAX_POINTER_BYTES = 64 * 1024  # latest.json is a few dozen bytes
# Sane ranges for the numbers that size the network, checked before anything is built: a file asking
# for a 2**40-wide layer is refused instead of allocated. (PGGAN at 1024 px uses 512 / 8192 / 512.)
NET_LIMITS = {"resolution": (4, 1024), "latent_size": (1, 2048), "fmap_base": (1, 1 << 16),
              "fmap_max": (1, 2048), "fmap_min": (1, 2048), "num_classes": (0, 4096), "mbstd_group": (1, 256)}
MAX_LABELS, MAX_LABEL_CHARS = 4096, 200


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
        try:
            previous = latest_checkpoint(run, required=False)
        except BreakganError:
            previous = None
        kept = f"; the previous checkpoint {previous} is kept" if previous else ""
        raise BreakganError(f"{path}: cannot write checkpoint ({e.strerror or e}){kept}") from None
    old = sorted(folder.glob("ckpt-*.safetensors"))
    for stale in old[:-keep] if keep > 0 else []:
        if stale != path:
            stale.unlink(missing_ok=True)
    return path


def latest_checkpoint(run: Path, required: bool = True) -> Path | None:
    """The checkpoint RUN/checkpoints/latest.json names, else (no latest.json) the newest ckpt-*.safetensors.

    latest.json's `file` must name a file inside RUN/checkpoints (after following symlinks): a
    pointer elsewhere (`../../etc/passwd`, an absolute path) is refused with one line.
    """
    folder = Path(run) / CHECKPOINT_DIR
    pointer = folder / LATEST
    if pointer.exists() or pointer.is_symlink():
        return _follow_pointer(pointer, folder)
    found = sorted(folder.glob("ckpt-*.safetensors"))
    if found:
        return found[-1]
    if required:
        raise BreakganError(f"{run}: no checkpoint found in {folder}")
    return None


def _follow_pointer(pointer: Path, folder: Path) -> Path:
    data = read_json(pointer, "a checkpoint pointer; delete it to use the newest checkpoint",
                     max_bytes=MAX_POINTER_BYTES)
    name = data.get("file") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise BreakganError(f"{pointer}: expected {{\"file\": \"ckpt-....safetensors\"}}")
    target = confined(folder, name, pointer, "'file'")
    if not target.is_file():
        raise BreakganError(f"{pointer}: names {name[:80]!r}, which is not a file in {folder}")
    return target


def read_checkpoint(path: Path, prefixes: tuple[str, ...] | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors (only those under `prefixes`, if given) and the JSON metadata (a dict) of a breakgan file."""
    path = Path(path)
    if not path.is_file():
        raise BreakganError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
            if raw.get("format") not in (CHECKPOINT_FORMAT, GENERATOR_FORMAT):
                raise BreakganError(f"{path}: not a breakgan checkpoint or generator file")
            meta = _metadata(raw.get("breakgan"), path)
            tensors = {k: f.get_tensor(k) for k in f.keys()
                       if prefixes is None or k.startswith(prefixes)}
    except BreakganError:
        raise
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise BreakganError(f"{path}: not a readable breakgan checkpoint ({str(e)[:200]})") from None
    return tensors, meta


def _metadata(text, path: Path) -> dict:
    if not isinstance(text, str):
        raise BreakganError(f"{path}: metadata has no 'breakgan' entry")
    meta = parse_json(text, path, "breakgan generator metadata")
    if not isinstance(meta, dict):
        raise BreakganError(f"{path}: metadata must be a JSON object, got a {type(meta).__name__}")
    return meta


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


def check_state(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """Names and shapes of `state` against a module's own state dict (which may live on the meta device)."""
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or extra or wrong:
        detail = (f"missing {missing[:2]}" if missing else f"unexpected {extra[:2]}" if extra
                  else f"shape of {wrong[0]} is {tuple(state[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}")
        raise BreakganError(f"{path}: {what} does not match the architecture ({detail})")


def load_state_checked(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """load_state_dict that reports an architecture mismatch as a one-line user error."""
    check_state(module.state_dict(), state, path, what)
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


def _whole(meta: dict, key: str, path: Path, lo: int, hi: int, default=None, where: str = "") -> int:
    value = meta.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BreakganError(f"{path}: metadata {where}{key} must be a whole number in {lo}..{hi}, "
                            f"got {str(value)[:40]!r}")
    return value


def _number(meta: dict, key: str, path: Path, lo: float, hi: float, default: float) -> float:
    value = meta.get(key, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not lo <= value <= hi:
        raise BreakganError(f"{path}: metadata {key} must be a finite number in {lo:g}..{hi:g}, "
                            f"got {str(value)[:40]!r}")
    return float(value)


def net_config(meta: dict, path: Path) -> NetConfig:
    """The generator's architecture from a file's metadata, every number inside NET_LIMITS."""
    net = meta.get("net")
    if not isinstance(net, dict):
        raise BreakganError(f"{path}: metadata has no network config ('net' object)")
    fields = NetConfig.__dataclass_fields__
    values = {k: _whole(net, k, path, lo, hi, fields[k].default, "net.") for k, (lo, hi) in NET_LIMITS.items()}
    r = values["resolution"]
    if r & (r - 1):
        raise BreakganError(f"{path}: metadata net.resolution must be a power of two in 4..1024, got {r}")
    if values["fmap_min"] > values["fmap_max"]:
        raise BreakganError(f"{path}: metadata net.fmap_min ({values['fmap_min']}) exceeds net.fmap_max "
                            f"({values['fmap_max']})")
    return NetConfig(**values)


def generator_info(meta: dict, path: Path) -> tuple[NetConfig, dict]:
    """Validate a generator's metadata once, where it is read: (config, its level/alpha/kimg/labels)."""
    config = net_config(meta, path)
    labels = meta.get("labels", [])
    if (not isinstance(labels, list) or len(labels) > MAX_LABELS
            or not all(isinstance(x, str) and len(x) <= MAX_LABEL_CHARS for x in labels)):
        raise BreakganError(f"{path}: metadata labels must be a list of at most {MAX_LABELS} names")
    return config, {
        "level": _whole(meta, "level", path, 0, config.levels - 1, config.levels - 1),
        "alpha": _number(meta, "alpha", path, 0.0, 1.0, 1.0),
        "kimg": _number(meta, "kimg", path, 0.0, 1e9, 0.0),
        "labels": list(labels),
    }


def _generator_from(tensors: dict, meta: dict, path: Path, prefix: str, device) -> tuple[Generator, dict]:
    config, extra = generator_info(meta, path)
    state = sub_state(tensors, prefix)
    with torch.device("meta"):  # shapes only: nothing is allocated until the file is known to match
        skeleton = Generator(config)
    check_state(skeleton.state_dict(), state, path, "generator")
    check_finite(state, path)
    G = Generator(config)
    G.load_state_dict(state)
    G.level = extra["level"]
    G.alpha = extra["alpha"]
    G.clamp = True
    G.eval().requires_grad_(False)
    G.to(device)
    info = {
        "latent_size": config.latent_size,
        "resolution": G.resolution,
        "num_classes": config.num_classes,
        "labels": extra["labels"],
        "kimg": extra["kimg"],
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
    from breakgan.stage import check_out_weights

    src = resolve(Path(path))
    out = check_out_weights(out_file, [GENERATOR_FORMAT], option="generator file", inputs=[src])
    G, info = load_generator(src)
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
