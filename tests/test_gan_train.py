"""`breakgan train`: schedule, networks, a tiny run through two resolution transitions, exact resume,
Ctrl-C, NaN, disk full, bad input, load/export of generators, and 2-process data parallelism (gloo)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from breakgan.errors import BreakganError
from breakgan.gan import checkpoint as ckpt
from breakgan.gan import export_generator, load_generator
from breakgan.gan.augment import AugmentState, augment
from breakgan.gan.data import BatchLoader, open_dataset
from breakgan.gan import networks
from breakgan.gan.networks import Discriminator, Generator, NetConfig, minibatch_stddev
from breakgan.gan.schedule import PAPER_BATCH, parse_batch_table, schedule, total_kimg
from breakgan.gan.training import TrainOptions, train

sys.path.insert(0, str(Path(__file__).parent))
from gan_helpers import TINY, make_dataset  # noqa: E402

torch.set_num_threads(1)

# 16 px target: 4 px stable, fade to 8, stable 8, fade to 16, stable 16 -> two transitions in 0.4 kimg.
FAST = dict(TINY, stable_kimg=0.064, fade_kimg=0.064, batch="8", snapshot_kimg=0.096, metric_images=16,
            grid=8, device="cpu")


def opts(**kw) -> TrainOptions:
    return TrainOptions(**{**FAST, **kw})


@pytest.fixture
def dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "ds")


# ---- pure parts -----------------------------------------------------------------------------------

def test_schedule_is_a_pure_function_of_images_shown():
    kw = dict(resolution=16, stable_kimg=1, fade_kimg=2)
    assert schedule(0, **kw).resolution == 4 and schedule(999, **kw).alpha == 1.0
    p = schedule(1000 + 500, **kw)  # a quarter into the fade to 8 px
    assert (p.resolution, p.alpha, p.fading, p.name) == (8, 0.25, True, "fade 8px")
    assert schedule(1000 + 2000, **kw).alpha == 1.0 and schedule(3999, **kw).resolution == 8
    assert schedule(4000 + 1000, **kw).resolution == 16 and schedule(4000 + 1000, **kw).alpha == 0.5
    assert schedule(10**9, **kw).resolution == 16 and schedule(10**9, **kw).alpha == 1.0
    assert schedule(0, **kw).batch == PAPER_BATCH[4] == 128
    assert schedule(0, resolution=256, batch={4: 7}).batch == 7
    assert total_kimg(16, 1, 2) == 1 + 2 * 3
    assert parse_batch_table("32")[256] == 32 and parse_batch_table("256:4")[256] == 4
    assert parse_batch_table("256:4")[4] == 128


def test_resolve_options_is_pure_and_checks_every_option():
    from dataclasses import FrozenInstanceError

    from breakgan.gan.options import resolve_options

    asked = opts(kimg=None, batch="auto", device="cpu")
    run = resolve_options(asked, frame_size=16, frame_count=48, label_count=2)
    assert asked.resolution is None and asked.kimg is None and asked.batch_table is None  # not changed
    assert run.options.resolution == 16 and run.options.kimg == total_kimg(16, 0.064, 0.064)
    assert run.options.batch_table == PAPER_BATCH and not run.fit_batch and run.amp is None
    assert run.augment_adaptive and run.net["num_classes"] == 0
    with pytest.raises(FrozenInstanceError):
        run.options.lr = 1.0
    assert resolve_options(asked, frame_size=16, frame_count=48, label_count=2, device_type="cuda").fit_batch
    # resuming: the stored run's options win, except the runtime ones
    stored = {**run.options.to_dict(), "lr": 0.5, "keep": 9}
    resumed = resolve_options(opts(lr=0.1, keep=1, kimg=2.0), frame_size=16, frame_count=48, label_count=2,
                              stored=stored)
    assert (resumed.options.lr, resumed.options.keep, resumed.options.kimg) == (0.5, 1, 2.0)
    for bad, name in ((dict(lr=float("nan")), "--lr"), (dict(stable_kimg=float("inf")), "--stable-kimg"),
                      (dict(loss="hinge"), "--loss"), (dict(keep=-1), "--keep"), (dict(device="gpu"), "--device"),
                      (dict(augment="1.5"), "--augment"), (dict(resolution=24), "--resolution")):
        with pytest.raises(BreakganError, match=name):
            resolve_options(opts(**bad), frame_size=16, frame_count=48, label_count=2)
    with pytest.raises(BreakganError, match="frames are 16px, smaller than the target resolution 32px"):
        resolve_options(opts(resolution=32), frame_size=16, frame_count=48, label_count=2)


def test_cli_defaults_are_the_dataclass_defaults():
    import inspect

    from breakgan.gan.command import train as command

    defaults = TrainOptions()
    for name, param in inspect.signature(command).parameters.items():
        if hasattr(defaults, name):
            assert param.default.default == getattr(defaults, name), name


def test_fade_in_starts_from_the_previous_resolution():
    cfg = NetConfig(resolution=16, **{k: TINY[k] for k in ("latent_size", "fmap_base", "fmap_max", "fmap_min")})
    torch.manual_seed(0)
    G, D = Generator(cfg), Discriminator(cfg)
    z = torch.randn(4, 16)
    low = G(z, level=1, alpha=1.0)
    faded = G(z, level=2, alpha=0.0)
    assert faded.shape == (4, 3, 16, 16)
    assert torch.allclose(faded, torch.nn.functional.interpolate(low, scale_factor=2.0), atol=1e-6)
    img = torch.randn(4, 3, 16, 16)
    assert torch.allclose(D(img, level=2, alpha=0.0), D(torch.nn.functional.avg_pool2d(img, 2), level=1), atol=1e-5)


def test_minibatch_stddev_chunks_keep_batches_apart():
    a, b = torch.randn(8, 5, 4, 4), torch.randn(8, 5, 4, 4) * 3
    joint = minibatch_stddev(torch.cat([a, b]), group=4, chunks=2)
    assert torch.allclose(joint, torch.cat([minibatch_stddev(a, 4), minibatch_stddev(b, 4)]))
    assert not torch.allclose(minibatch_stddev(torch.cat([a, b]), 4)[:, -1], joint[:, -1])


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 3), cin=st.sampled_from([1, 3, 8, 256]), cout=st.integers(1, 9),
       size=st.sampled_from([1, 2, 4, 8, 12, 16]), channels_last=st.booleans(), seed=st.integers(0, 2**16))
def test_fused_upsample_conv_equals_upsample_then_conv(batch, cin, cout, size, channels_last, seed):
    # The generator computes conv(2x nearest upsample) as four 2x2 convolutions where that is faster; values
    # and both gradients must be the plain form's up to float rounding, at every size and memory format.
    torch.manual_seed(seed)
    conv = networks.EqualizedConv2d(cin, cout, 3)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(batch, cin, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    plain = networks.upsample_conv(x, conv, fused=False)
    g_plain = torch.autograd.grad(plain.square().sum(), [x, conv.weight, conv.bias])
    fused = networks.upsample_conv(x, conv, fused=True)
    g_fused = torch.autograd.grad(fused.square().sum(), [x, conv.weight, conv.bias])
    assert fused.shape == plain.shape == (batch, cout, 2 * size, 2 * size)
    assert torch.allclose(fused, plain, rtol=1e-4, atol=1e-4)
    for a, b in zip(g_fused, g_plain):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-3 * float(b.abs().max()))


@pytest.mark.parametrize("loss", ["wgan-gp", "logistic"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_penalty_gradients_with_the_fast_conv_double_backward_equal_pytorchs(monkeypatch, loss, channels_last):
    # D's convolutions take their own second derivative (gan/conv.py); a whole D step of each loss (scores,
    # penalty through the input gradient, minibatch stddev included) must give every parameter the gradient
    # plain F.conv2d gives, in float64 where rounding cannot hide a wrong term.
    from breakgan.gan import conv
    from breakgan.gan.losses import LOSSES

    torch.manual_seed(3)
    D = Discriminator(NetConfig(resolution=16, fmap_base=256, fmap_max=32)).double()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    D.to(memory_format=fmt)
    reals, fakes = (torch.randn(8, 3, 16, 16, dtype=torch.double).contiguous(memory_format=fmt) for _ in range(2))

    def d_step(fast: bool):
        if not fast:
            monkeypatch.setattr(networks, "conv2d", lambda x, w, b, p: torch.nn.functional.conv2d(x, w, b, 1, p))
        D.zero_grad(set_to_none=True)
        scores = D(torch.cat([reals, fakes]), chunks=2)

        def critic(x):
            with conv.penalty_pass():
                return D(x, level=2)

        def input_grad(out, x):
            return torch.autograd.grad(out.sum(), x, create_graph=True)[0]

        total, penalty = LOSSES[loss]().discriminator(scores[:8], scores[8:], reals, fakes, critic, input_grad,
                                                      torch.Generator().manual_seed(0))
        total.backward()
        monkeypatch.undo()
        return penalty.item(), [p.grad for p in D.parameters()]

    p_fast, g_fast = d_step(True)
    p_plain, g_plain = d_step(False)
    assert p_fast == pytest.approx(p_plain, rel=1e-12) and p_plain > 0
    assert sum(g is not None for g in g_plain) >= 8
    for a, b in zip(g_fast, g_plain):
        assert (a is None) == (b is None)
        if b is not None:
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-12 * float(b.abs().max()))


def test_fused_upsample_conv_is_used_where_it_is_faster():
    big, small = networks.EqualizedConv2d(256, 256, 3), networks.EqualizedConv2d(128, 128, 3)
    pays = networks.fused_upsample_pays
    with torch.no_grad():
        assert pays(torch.randn(4, 256, 8, 8), big)             # inference with work to do
        assert not pays(torch.randn(4, 256, 4, 4), big)         # 4 px: slower
        assert not pays(torch.randn(1, 8, 8, 8), networks.EqualizedConv2d(8, 8, 3))  # too little work
        assert pays(torch.randn(4, 128, 16, 16), small)         # inference: any width
    assert pays(torch.randn(4, 256, 8, 8), big)                 # training, 256 channels
    assert not pays(torch.randn(4, 128, 16, 16), small)         # training, 128 channels: backward slower
    x = torch.randn(2, 256, 8, 8)
    assert torch.equal(networks.upsample_conv(x, big), networks.upsample_conv(x, big, fused=True))


def test_augmentation_is_seeded_differentiable_and_off_at_zero():
    x = torch.randn(6, 3, 16, 16, requires_grad=True)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert augment(x, 0.0, g()) is x
    y1, y2 = augment(x, 1.0, g()), augment(x, 1.0, g())
    assert torch.equal(y1, y2) and not torch.equal(y1, x)
    y1.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    state = AugmentState(adaptive=True)
    for step in range(4):
        state.accumulate(8.0, 8.0)  # D is sure about every real: raise p
        state.adjust(step, batch=8)
    assert state.p > 0 and state.sign_count == 0


def test_data_order_is_sharded_and_resumable(dataset):
    data = open_dataset(dataset, 16)
    r0 = BatchLoader(data, seed=1, rank=0, world=2)
    r1 = BatchLoader(data, seed=1, rank=1, world=2)
    a, b = r0.indices(16, 16), r1.indices(16, 16)
    assert len(a) == len(b) == 8 and not set(a) & set(b)
    from breakgan.gan.data import epoch_permutation

    # across the 48-frame epoch boundary: the tail of epoch 0, then the head of epoch 1
    crossing = np.concatenate([r0.indices(40, 16), r1.indices(40, 16)])
    expect = np.concatenate([epoch_permutation(1, 0, 48)[40:], epoch_permutation(1, 1, 48)[:8]])
    assert np.array_equal(crossing, expect)
    assert np.array_equal(BatchLoader(data, seed=1, rank=0, world=2).indices(16, 16), a)
    images, labels = r0.get(8, 0, 16)
    assert images.shape == (8, 3, 8, 8) and images.dtype == torch.uint8 and labels is None
    r0.close(), r1.close()


# ---- training runs --------------------------------------------------------------------------------

def test_tiny_run_grows_through_two_transitions_and_loads(dataset, tmp_path):
    run = tmp_path / "run"
    summary = train(dataset, run, opts(kimg=0.32))
    assert summary["kimg"] >= 0.32
    for name in ("reals.png", "fakes000000.png", "options.json", "breakgan.json"):
        assert (run / name).is_file(), name
    assert list(run.glob("events.out.tfevents.*"))
    record = json.loads((run / "breakgan.json").read_text())
    assert record["stage"] == "train" and record["status"] == "done" and record["resolution"] == 16
    assert record["swd"]["16"] >= 0 and record["swd"]["kimg"] > 0  # the metric ran at a 16 px snapshot
    # `breakgan metrics` on the checkpoint the figure was recorded for reproduces it exactly
    from breakgan.cli import main

    recorded = record["swd"]
    with pytest.raises(SystemExit) as done:
        main(["metrics", str(run / "checkpoints" / recorded["checkpoint"]), "--dataset", str(dataset),
              "--num", str(recorded["num"]), "--seed", str(recorded["seed"]), "--device", "cpu",
              "--json", str(tmp_path / "swd.json")])
    assert done.value.code in (0, None)
    again = json.loads((tmp_path / "swd.json").read_text())["fake"]
    assert recorded["num"] == FAST["metric_images"] and set(again) == {"16", "mean"}
    assert {k: recorded[k] for k in again} == again
    assert json.loads((run / "options.json").read_text())["latent_size"] == 16
    ckpts = sorted((run / "checkpoints").glob("ckpt-*.safetensors"))
    assert 1 <= len(ckpts) <= FAST.get("keep", 3) + 1
    assert (run / "checkpoints" / "latest.json").is_file()

    G, info = load_generator(run)
    assert info["resolution"] == 16 and info["latent_size"] == 16 and info["num_classes"] == 0
    assert info["kimg"] == pytest.approx(summary["kimg"])
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = G(z)
    assert out.shape == (3, 3, 16, 16) and out.min() >= -1 and out.max() <= 1
    assert out.std() > 0.01  # it draws something, not a constant

    small = export_generator(run, tmp_path / "g.safetensors")
    assert small.stat().st_size < min(p.stat().st_size for p in ckpts) / 3
    G2, info2 = load_generator(small)
    with torch.no_grad():
        assert torch.equal(G2(z), out)
    assert info2["resolution"] == 16


def _tensors(path: Path) -> dict:
    tensors, _ = ckpt.read_checkpoint(path)
    return tensors


def test_ctrl_c_then_resume_equals_an_uninterrupted_run(dataset, tmp_path):
    # Adaptive augmentation, a fade and a resolution change all happen across the interruption.
    kw = dict(kimg=0.24, augment="ada", augment_target=-1.0, snapshot_kimg=0.1)  # target -1: p keeps rising
    ref = train(dataset, tmp_path / "a", opts(**kw))

    def interrupt(trainer):
        if trainer.state.step == 9:
            signal.raise_signal(signal.SIGINT)  # a real Ctrl-C, caught at the next step boundary

    summary = train(dataset, tmp_path / "b", opts(**kw), on_step=interrupt)
    assert summary["status"] == "interrupted" and 9 <= summary["steps"] < ref["steps"]
    stopped = ckpt.latest_checkpoint(tmp_path / "b")
    assert summary["checkpoint"] == stopped
    _, meta = ckpt.read_checkpoint(stopped)
    assert 0 < meta["images_shown"] < ref["kimg"] * 1000 and meta["augment"]["p"] > 0
    assert json.loads((tmp_path / "b" / "breakgan.json").read_text())["status"] == "interrupted"

    resumed = train(dataset, tmp_path / "b", opts(**kw), resume=True)
    assert resumed["steps"] == ref["steps"]
    a, b = _tensors(ref["checkpoint"]), _tensors(resumed["checkpoint"])
    assert set(a) == set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key  # G, D, EMA, both Adam states: bit-identical
    assert resumed["weights_sha256"] == ref["weights_sha256"]


def test_nan_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(dataset, tmp_path):
    run = tmp_path / "run"

    def poison(trainer):
        if trainer.state.step == 14:  # after the first snapshot (at 0.096 kimg = step 12)
            with torch.no_grad():
                trainer.state.D.dense1.bias.fill_(float("nan"))

    with pytest.raises(BreakganError, match=r"loss became NaN at kimg .*last good checkpoint: .*ckpt-"):
        train(dataset, run, opts(kimg=0.32), on_step=poison)
    latest = ckpt.latest_checkpoint(run)
    tensors, meta = ckpt.read_checkpoint(latest)
    assert meta["step"] == 12 and all(torch.isfinite(t).all() for k, t in tensors.items() if not k.startswith("rng"))
    G, _ = load_generator(run)
    assert torch.isfinite(G(torch.randn(2, 16))).all()


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(dataset, tmp_path, monkeypatch):
    run = tmp_path / "run"
    real_write = ckpt.write_bytes_atomic
    calls = []

    def full_disk(path, data):
        calls.append(path)
        if len(calls) == 2:  # the second checkpoint: write part of it, then the disk is full
            with open(path.with_name(f".{path.name}.x.tmp"), "wb") as f:
                f.write(data[:100])
            os.unlink(path.with_name(f".{path.name}.x.tmp"))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(path, data)

    monkeypatch.setattr(ckpt, "write_bytes_atomic", full_disk)
    with pytest.raises(BreakganError, match=r"cannot write checkpoint \(No space left on device\); "
                                            r"the previous checkpoint .*ckpt-0000000096.safetensors is kept"):
        train(dataset, run, opts(kimg=0.32))
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")] == []
    G, info = load_generator(run)
    assert info["kimg"] == pytest.approx(0.096)


def test_conditional_logistic_mirror_bf16_run(dataset, tmp_path):
    run = tmp_path / "run"
    # also bf16 autocast on CPU (--amp bf16), the path CUDA takes by default
    train(dataset, run, opts(kimg=0.08, conditional=True, loss="logistic", mirror=True, augment="0.5",
                             snapshot_kimg=1, amp="bf16"))
    G, info = load_generator(run)
    assert info["num_classes"] == 2 and info["labels"] == ["a", "b"]
    z = torch.randn(2, 16)
    with torch.no_grad():
        a, b = G(z, torch.tensor([0, 0])), G(z, torch.tensor([1, 1]))
    assert a.shape == (2, 3, 8, 8) and not torch.equal(a, b)
    assert G(z).shape == (2, 3, 8, 8)  # labels=None works for conditional generators too


# ---- bad input ------------------------------------------------------------------------------------

def test_bad_datasets_give_one_line_errors(tmp_path):
    with pytest.raises(BreakganError, match="nope: no such dataset folder"):
        train(tmp_path / "nope", tmp_path / "r", opts())
    empty = make_dataset(tmp_path / "empty", count=4)
    rec = json.loads((empty / "breakgan.json").read_text())
    (empty / "breakgan.json").write_text(json.dumps({**rec, "count": 0}))
    with pytest.raises(BreakganError, match="dataset is empty"):
        train(empty, tmp_path / "r", opts())
    small = make_dataset(tmp_path / "small", count=4, size=8)
    with pytest.raises(BreakganError, match=r"frames are 8px, smaller than the target resolution 16px"):
        train(small, tmp_path / "r", opts(resolution=16))
    (small / "packed" / "8.npy").unlink()
    with pytest.raises(BreakganError, match=r"8\.npy: packed array missing"):
        train(small, tmp_path / "r", opts())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_is_a_clear_cli_error(dataset, tmp_path, capsys):
    from breakgan.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(dataset), "--out", str(tmp_path / "r"), "--device", "cuda"])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert "error: --device cuda: CUDA is not available" in err and "Traceback" not in err


def test_loading_rejects_foreign_and_mismatched_files(dataset, tmp_path):
    with pytest.raises(BreakganError, match="no such run folder or checkpoint"):
        load_generator(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(BreakganError, match="junk.safetensors: not a readable breakgan checkpoint"):
        load_generator(junk)
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(BreakganError, match="plain.safetensors: not a breakgan checkpoint"):
        load_generator(plain)
    # a generator file whose config says latent 32 while its tensors are latent 16
    run = tmp_path / "run"
    train(dataset, run, opts(kimg=0.016, snapshot_kimg=1))
    good = export_generator(run, tmp_path / "g.safetensors")
    tensors, meta = ckpt.read_checkpoint(good)
    meta["net"]["latent_size"] = 32
    from safetensors.torch import save

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(save(tensors, metadata={"format": ckpt.GENERATOR_FORMAT, "breakgan": json.dumps(meta)}))
    with pytest.raises(BreakganError, match="bad.safetensors: generator does not match the architecture"):
        load_generator(bad)
    # starting over an existing run without --resume is refused
    with pytest.raises(BreakganError, match="already holds a training run; pass --resume"):
        train(dataset, run, opts(kimg=0.016))


def test_checkpoints_load_without_unpickling(dataset, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(dataset, run, opts(kimg=0.016, snapshot_kimg=1))
    import pickle

    def refuse(*a, **k):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    G, info = load_generator(run)
    assert info["resolution"] == 4
    train(dataset, run, opts(kimg=0.032, snapshot_kimg=1), resume=True)


# ---- two processes --------------------------------------------------------------------------------

@pytest.mark.slow
def test_torchrun_two_cpu_processes_hold_identical_weights(dataset, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "breakgan.cli", "train", str(dataset), "--out", str(run), "--device", "cpu",
           "--latent-size", "16", "--fmap-base", "64", "--fmap-max", "32", "--fmap-min", "8",
           "--stable-kimg", "0.032", "--fade-kimg", "0.032", "--kimg", "0.08", "--batch", "8",
           "--snapshot-kimg", "1", "--metric-images", "0", "--grid", "4"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((run / "breakgan.json").read_text())
    assert record["world"] == 2 and record["status"] == "done"
    digests = record["weights_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]
    _, meta = ckpt.read_checkpoint(ckpt.latest_checkpoint(run))
    assert meta["world"] == 2 and meta["images_shown"] == 80 and meta["step"] == 10  # 8 per step, 4 per rank
    G, info = load_generator(run)
    assert info["resolution"] == 8


# ---- end to end -----------------------------------------------------------------------------------

def test_ingest_then_train_from_the_command_line(make_clip, tmp_path):
    from breakgan.cli import main

    clip = make_clip("moves.mp4", "testsrc2=size=160x120:rate=25", 2.0)
    ds, run = tmp_path / "ds", tmp_path / "run"
    with pytest.raises(SystemExit) as done:
        main(["ingest", str(clip), "--out", str(ds), "--size", "16", "--fps", "10", "--dup-distance", "-1",
              "--min-sharpness", "0", "--still-motion", "0"])
    assert done.value.code in (0, None)
    with pytest.raises(SystemExit) as done:
        main(["train", str(ds), "--out", str(run), "--device", "cpu", "--latent-size", "16", "--fmap-base", "64",
              "--fmap-max", "32", "--fmap-min", "8", "--stable-kimg", "0.016", "--fade-kimg", "0.016",
              "--kimg", "0.08", "--batch", "8", "--snapshot-kimg", "1", "--metric-images", "8", "--grid", "4"])
    assert done.value.code in (0, None)
    G, info = load_generator(run)
    assert info["resolution"] == 16 and info["labels"] == ["moves"]
    assert G(torch.randn(2, 16)).shape == (2, 3, 16, 16)
