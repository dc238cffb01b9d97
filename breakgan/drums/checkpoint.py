"""DrumsRNN weights as safetensors with their JSON config in the file's metadata (nothing unpickled)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from breakgan.errors import BreakganError
from breakgan.stage import atomic_file

MODEL_FILE = "model.safetensors"
SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "assets" / "drums" / "drums_rnn.safetensors"
FORMAT = "breakgan-drums-rnn"


def save_model(path: str | os.PathLike, model, info: dict | None = None, dtype=None) -> Path:
    """Write the model's parameters (optionally cast, e.g. float16 to ship) atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: (v.detach().to(dtype) if dtype is not None else v.detach()).cpu().contiguous()
               for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(model.config.to_json()),
            "info": json.dumps(info or {})}
    with atomic_file(path, fsync=True) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def resolve_model_path(path: str | os.PathLike | None) -> Path:
    """None -> the shipped model; a folder -> its model.safetensors; a file -> itself."""
    if path is None:
        if not SHIPPED_MODEL.is_file():
            raise BreakganError(f"{SHIPPED_MODEL}: shipped drums model is missing (pass --model)")
        return SHIPPED_MODEL
    p = Path(path)
    if p.is_dir():
        p = p / MODEL_FILE
    if not p.is_file():
        raise BreakganError(f"{p}: drums model not found")
    return p


def load_model(path: str | os.PathLike | None = None, device: str = "cpu"):
    """-> (DrumsRNN in eval mode, float32, info dict). BreakganError if not a breakgan drums model."""
    import torch
    from safetensors import SafetensorError, safe_open

    from breakgan.drums.model import DrumsConfig, DrumsRNN

    p = resolve_model_path(path)
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise BreakganError(f"{p}: not a breakgan drums model")
            config = DrumsConfig.from_json(json.loads(meta["config"]))
            info = json.loads(meta.get("info", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise BreakganError(f"{p}: unreadable drums model ({e})") from None
    model = DrumsRNN(config)
    try:
        model.load_state_dict({k: v.float() for k, v in tensors.items()})
    except RuntimeError as e:
        raise BreakganError(f"{p}: weights do not fit the drums model ({str(e).splitlines()[0]})") from None
    info = {**info, "path": str(p)}
    return model.to(device).eval(), info
