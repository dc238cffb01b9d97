"""breakgan/device.py: the one --device resolver and its messages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from breakgan.device import check_device_name, resolve_device, training_memory_format
from breakgan.errors import BreakganError

sys.path.insert(0, str(Path(__file__).parent))
from badinput import expect_clean_error  # noqa: E402
from gan_helpers import make_dataset  # noqa: E402


def test_good_names_resolve():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for name in ("auto", "cpu", "cuda", "cuda:0", "cuda:12"):
        assert check_device_name(name) == name


@settings(max_examples=25, deadline=None)
@given(st.text(max_size=12).filter(lambda s: s not in ("auto", "cpu", "cuda")
                                   and not (s.startswith("cuda:") and s[5:].isdigit() and s[5:].isascii())))
def test_bad_names_are_one_clear_error(name):
    with pytest.raises(BreakganError, match=r"^--device must be auto, cpu, cuda or cuda:N, got "):
        resolve_device(name)


def test_the_option_name_is_the_callers():
    with pytest.raises(BreakganError, match=r"^--preview-device must be auto, cpu, cuda or cuda:N, got 'gpu'$"):
        resolve_device("gpu", option="--preview-device")


def test_cuda_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(BreakganError, match=rf"^--device {name}: CUDA is not available \(this PyTorch .* was "
                                                rf"built .*\); use --device cpu or auto$"):
            resolve_device(name)


def test_cuda_index_past_the_last_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(BreakganError, match=r"^--device cuda:2: no such GPU \(this machine has 2: cuda:0..cuda:1\)$"):
        resolve_device("cuda:2")


def test_commands_report_a_bad_device_in_one_line(tmp_path):
    dataset = make_dataset(tmp_path / "ds", count=4, size=8)
    expect_clean_error(["train", dataset, "--out", tmp_path / "run", "--device", "gpu"], names="--device",
                       watch=[dataset], out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    if not torch.cuda.is_available():
        res = expect_clean_error(["train", dataset, "--out", tmp_path / "run", "--device", "cuda:0"],
                                 names="--device cuda:0: CUDA is not available", watch=[dataset])
        assert "use --device cpu" in res.err


@pytest.mark.parametrize("capability, expected", [("AVX2", torch.contiguous_format), ("AVX512", torch.channels_last),
                                                  ("DEFAULT", torch.contiguous_format)])
def test_training_layout_follows_the_cpu_and_the_trainer_uses_it(monkeypatch, tmp_path, capability, expected):
    from breakgan.gan.training import Trainer, TrainOptions

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert training_memory_format(torch.device("cuda")) is torch.channels_last
    assert training_memory_format(torch.device("cpu")) is expected
    ds = make_dataset(tmp_path, count=8, size=8)
    trainer = Trainer(ds, tmp_path / "run", TrainOptions(resolution=8, latent_size=16, fmap_base=64, fmap_max=16,
                                                         device="cpu", metric_images=0))
    weight = trainer.state.D.blocks[1].conv0.weight
    assert weight.is_contiguous(memory_format=expected)
    assert weight.is_contiguous() == (expected is torch.contiguous_format)
    images = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    phase = trainer.phase()
    reals = trainer._reals(images, phase, torch.Generator().manual_seed(0))
    assert reals.is_contiguous(memory_format=expected)
