"""`breakgan live` options checked at start, before a bundle is sent: --drums-model (the loader `drums
--model` uses, so a bad file is one line before playing, not a warning at the first regenerate) and
--latent-dims (at most the latent size)."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from badinput import expect_clean_error, run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO_G = ROOT / "assets" / "demo" / "generator.safetensors"  # latent size 128
ONSETS = {"tempo": 120.0, "beats_per_bar": 4, "bars": 1, "duration": 2.0,
          "parts": {"kick": [{"time": 0.0, "velocity": 100}, {"time": 1.0, "velocity": 90}],
                    "snare": [{"time": 0.5, "velocity": 110}]}}


@pytest.fixture
def sink():
    """A UDP socket that receives what `live` sends (read only by the tests that look at it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 2**20)
    s.bind(("127.0.0.1", 0))
    yield s
    s.close()


@pytest.fixture
def drums(tmp_path) -> Path:
    cand = tmp_path / "drums" / "cand-01"
    cand.mkdir(parents=True)
    (cand / "onsets.json").write_text(json.dumps(ONSETS))
    return tmp_path / "drums"


def live_argv(drums: Path, sink, *extra) -> list:
    return ["live", "--drums", drums, "--port", sink.getsockname()[1], "--bars", "1", "--tempo", "400",
            "--spin-ms", "0", *extra]


def received(sock) -> bytes:
    sock.setblocking(False)
    data = []
    while True:
        try:
            data.append(sock.recv(65536))
        except BlockingIOError:
            return b"".join(data)


def nothing_sent(sock) -> bool:
    return received(sock) == b""


# ---- --drums-model ------------------------------------------------------------------------------------

def _small_model_tensors():
    import torch

    from breakgan.drums.model import DrumsConfig, DrumsRNN

    config = DrumsConfig(layers=(8, 8), attn_length=4)
    m = DrumsRNN(config)
    m.reset_parameters(torch.Generator().manual_seed(0))
    return config, {k: v.detach().clone() for k, v in m.state_dict().items()}


def _model_file(path: Path, change: str | None = None) -> Path:
    """A small valid drums model, or one with `change`: nan (a NaN weight), shape (a config its tensors do not fit)."""
    from safetensors.torch import save_file

    from breakgan.drums.checkpoint import FORMAT

    config, tensors = _small_model_tensors()
    cfg = config.to_json()
    if change == "nan":
        tensors["attn_k"][0, 0] = float("nan")
    elif change == "shape":
        cfg = {**cfg, "layers": [16, 16]}
    save_file(tensors, str(path), metadata={"format": FORMAT, "config": json.dumps(cfg), "info": "{}"})
    return path


@pytest.mark.parametrize("case", ["missing", "garbage", "empty", "nan", "shape", "not a drums model"])
def test_bad_drums_model_stops_live_before_playing(tmp_path, drums, sink, case):
    path = tmp_path / "m.safetensors"
    if case == "garbage":
        path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    elif case == "empty":
        path.write_bytes(b"")
    elif case in ("nan", "shape"):
        _model_file(path, case)
    elif case == "not a drums model":
        path = ROOT / "assets" / "drums" / "groove.safetensors"
    res = expect_clean_error(live_argv(drums, sink, "--drums-model", path), names=str(path), watch=[tmp_path])
    assert "bundles sent" not in res.err
    assert nothing_sent(sink)
    if case == "nan":
        assert "attn_k" in res.err


def test_a_good_drums_model_is_loaded_at_start_and_kept_for_regenerate(tmp_path, drums, sink):
    from breakgan.drums.run import _runtime, runtime_model

    path = _model_file(tmp_path / "m.safetensors")
    _runtime.cache_clear()
    res = run_cli(live_argv(drums, sink, "--drums-model", path))
    assert res.code == 0, res.err
    assert b"/breakgan/kick/onset" in received(sink)
    # loaded once, at start; what /breakgan/regenerate asks for is then the cached model
    assert _runtime.cache_info().misses == 1
    runtime_model(path)
    assert _runtime.cache_info().misses == 1 and _runtime.cache_info().hits == 1


# ---- --latent-dims --------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, size", [
    (["--latent-dims", "100000"], 512),                                     # the default --latent-size
    (["--latent-dims", "9", "--latent-size", "8"], 8),
    (["--latent-dims", "129", "--generator", DEMO_G], 128),                  # the generator's, not --latent-size
    (["--latent-dims", "129", "--generator", DEMO_G, "--latent-size", "4096"], 128),
])
def test_latent_dims_beyond_the_latent_size_is_one_line(tmp_path, drums, sink, extra, size):
    res = expect_clean_error(live_argv(drums, sink, *extra), names="--latent-dims", watch=[tmp_path])
    assert f"latent size {size}" in res.err
    assert nothing_sent(sink)


def test_negative_latent_dims_is_one_line(tmp_path, drums, sink):
    expect_clean_error(live_argv(drums, sink, "--latent-dims", "-1"), names="--latent-dims", watch=[tmp_path])
    assert nothing_sent(sink)


@pytest.mark.parametrize("extra, last", [
    (["--latent-dims", "512"], 511),                     # all of it is allowed
    (["--latent-size", "4"], 3),                         # the default 8 shrinks to a smaller latent
    (["--latent-dims", "0"], None),                      # none
])
def test_latent_dims_up_to_the_latent_size_are_sent(drums, sink, extra, last):
    res = run_cli(live_argv(drums, sink, "--parts", "kick", *extra))
    assert res.code == 0, res.err
    data = received(sink)
    if last is None:
        assert b"/breakgan/kick/z0\x00" not in data
    else:
        assert f"/breakgan/kick/z{last}\x00".encode() in data
        assert f"/breakgan/kick/z{last + 1}\x00".encode() not in data
