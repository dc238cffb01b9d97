"""DrumsRNN weights as safetensors with their JSON config in the file's metadata (nothing unpickled).

A training checkpoint is one file too (`TRAIN_STATE`): the weights, the Adam state packed as named
tensors + JSON by `breakgan.gan.checkpoint.optimizer_tensors`, the step and the options, written to a
temporary name, fsynced and renamed, so a crash never leaves a state mixed from two steps.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from breakgan.errors import BreakganError
from breakgan.stage import atomic_file
from breakgan.weights import check_finite

MODEL_FILE = "model.safetensors"
TRAIN_STATE = "checkpoint.safetensors"  # model, Adam state, step and options in one atomic file
TRAIN_STATE_FORMAT = "breakgan-drums-train-state"
LEGACY_STATE = ("train_state.safetensors", "train_state.json")  # earlier versions: three files written one by one
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


FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}


def load_model(path: str | os.PathLike | None = None, device: str = "cpu"):
    """-> (DrumsRNN in eval mode, float32, info dict). BreakganError (one line naming the file) unless it
    is a breakgan drums model whose config is in bounds and whose tensors fit it and are finite.

    The config and the tensor shapes in the header are checked before any tensor is read or the model
    is built, so a hostile config cannot make us allocate more than the file itself holds.
    """
    import torch
    from safetensors import SafetensorError, safe_open

    from breakgan.drums.model import DrumsRNN
    from breakgan.drums.options import check_config

    p = resolve_model_path(path)
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise BreakganError(f"{p}: not a breakgan drums model")
            config = check_config(json.loads(meta["config"]), str(p))
            info = json.loads(meta.get("info", "{}"))
            if not isinstance(info, dict):
                raise BreakganError(f"{p}: the model info must be a JSON object")
            with torch.device("meta"):  # shapes only, no memory
                expected = {k: tuple(v.shape) for k, v in DrumsRNN(config).state_dict().items()}
            found = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
            _check_shapes(p, expected, found)
            tensors = {k: f.get_tensor(k) for k in expected}
    except BreakganError:
        raise
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RecursionError) as e:
        raise BreakganError(f"{p}: unreadable drums model ({_first_line(e)})") from None
    check_finite(tensors, p)
    model = DrumsRNN(config)
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    info = {**info, "path": str(p)}
    return model.to(device).eval(), info


def _check_shapes(p: Path, expected: dict[str, tuple], found: dict[str, tuple]) -> None:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        what = f"missing tensor {missing[0]}" if missing else f"unexpected tensor {extra[0]}"
        raise BreakganError(f"{p}: weights do not fit the model config ({what})")
    for k, shape in expected.items():
        got, dtype = found[k]
        if got != shape:
            raise BreakganError(f"{p}: tensor {k} has shape {list(got)}, the config needs {list(shape)}")
        if dtype not in FLOAT_DTYPES:
            raise BreakganError(f"{p}: tensor {k} is {dtype}, expected floating point weights")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def save_train_state(folder: str | os.PathLike, model, optimizer, step: int, meta: dict) -> Path:
    """Write MODEL_DIR/checkpoint.safetensors in one atomic rename; drop the legacy three-file state."""
    from safetensors.torch import save as st_save

    from breakgan.gan.checkpoint import optimizer_tensors
    from breakgan.stage import write_bytes_atomic

    folder = Path(folder)
    opt_tensors, opt_meta = optimizer_tensors(optimizer, "opt.")
    tensors = {**{f"model.{k}": v for k, v in model.state_dict().items()}, **opt_tensors}
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    body = {"step": int(step), "config": model.config.to_json(), "optimizer": opt_meta, **meta}
    data = st_save(tensors, metadata={"format": TRAIN_STATE_FORMAT, "breakgan": json.dumps(body)})
    path = folder / TRAIN_STATE
    try:
        write_bytes_atomic(path, data, fsync=True)
    except OSError as e:
        raise BreakganError(f"{path}: cannot write checkpoint ({e.strerror or e})") from None
    for name in LEGACY_STATE:  # superseded by the file just written (both are this command's own)
        (folder / name).unlink(missing_ok=True)
    return path


def has_train_state(folder: str | os.PathLike) -> bool:
    folder = Path(folder)
    return (folder / TRAIN_STATE).is_file() or (folder / LEGACY_STATE[1]).is_file()


def load_train_state(folder: str | os.PathLike, model, optimizer) -> int:
    """Restore weights and Adam state into `model` / `optimizer` (built from the same options); -> step."""
    from breakgan.drums.options import check_config
    from breakgan.gan.checkpoint import load_optimizer, load_state_checked, sub_state

    folder = Path(folder)
    path = folder / TRAIN_STATE
    if not path.is_file():
        return _load_legacy_state(folder, model, optimizer)
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
            if raw.get("format") != TRAIN_STATE_FORMAT:
                raise BreakganError(f"{path}: not a breakgan drums training checkpoint")
            body = json.loads(raw["breakgan"])
            if not isinstance(body, dict):
                raise BreakganError(f"{path}: checkpoint metadata is not a JSON object")
            config = check_config(body.get("config"), str(path))
            if config != model.config:
                raise BreakganError(f"{path}: the checkpoint's model ({config}) differs from the options "
                                    f"({model.config}); use --restart or the same options")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        load_state_checked(model, sub_state(tensors, "model."), path, "model")
        load_optimizer(optimizer, tensors, body["optimizer"], "opt.")
        step = body["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise BreakganError(f"{path}: step {step!r} is not a whole number")
        return step
    except BreakganError:
        raise
    except Exception as e:  # noqa: BLE001 - safetensors, JSON and torch each raise their own types
        raise BreakganError(f"{path}: cannot resume, training state unreadable ({_first_line(e)})") from None


def _load_legacy_state(folder: Path, model, optimizer) -> int:
    """The three-file state of earlier versions (train_state.json + .safetensors + model.safetensors)."""
    import torch
    from safetensors.torch import load_file

    try:
        state = json.loads((folder / LEGACY_STATE[1]).read_text())
        loaded, _ = load_model(folder / MODEL_FILE)
        if loaded.config != model.config:
            raise BreakganError(f"{folder}: the checkpoint's model ({loaded.config}) differs from the options "
                                f"({model.config}); use --restart or the same options")
        model.load_state_dict(loaded.state_dict())
        tensors = load_file(str(folder / LEGACY_STATE[0]))
        params = list(model.parameters())
        for i, adam_step in state["adam_steps"]:
            optimizer.state[params[i]] = {"step": torch.tensor(float(adam_step)),
                                          "exp_avg": tensors[f"{i}.exp_avg"].to(params[i].device),
                                          "exp_avg_sq": tensors[f"{i}.exp_avg_sq"].to(params[i].device)}
        return int(state["step"])
    except BreakganError:
        raise
    except Exception as e:  # noqa: BLE001 - JSON, safetensors and a malformed state each fail differently
        raise BreakganError(f"{folder}: cannot resume, training state unreadable ({_first_line(e)})") from None
