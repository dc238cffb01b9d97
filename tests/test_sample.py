"""`breakgan sample` / `breakgan metrics`: seeds, latents, grids, slerp strips, determinism, bad inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from breakgan.cli import main
from breakgan.errors import BreakganError
from breakgan.gan import export_generator, load_generator
from breakgan.gan.checkpoint import write_checkpoint
from breakgan.gan.networks import Generator, NetConfig
from breakgan.gan.sampling import (generate_images, image_grid, latent_for_seed, parse_seeds, slerp_latents,
                                   to_uint8, write_samples)
from breakgan.trajectory import keyframes_from_seeds


class TinyG(torch.nn.Module):
    """A stand-in generator: z (B, L) -> (B, 3, R, R) in [-1, 1]."""

    def __init__(self, latent_size: int = 8, res: int = 8):
        super().__init__()
        torch.manual_seed(0)
        self.res = res
        self.fc = torch.nn.Linear(latent_size, 3 * res * res)

    def forward(self, z, labels=None):
        return torch.tanh(self.fc(z)).view(len(z), 3, self.res, self.res)


def make_run(folder: Path, *, resolution: int = 16, num_classes: int = 0, labels=()) -> Path:
    """A run folder holding one checkpoint of a tiny, randomly initialised PGGAN generator."""
    torch.manual_seed(1)
    config = NetConfig(resolution=resolution, latent_size=16, fmap_base=64, fmap_max=16, num_classes=num_classes)
    G = Generator(config)
    tensors = {f"G_ema.{k}": v for k, v in G.state_dict().items()}
    write_checkpoint(folder, 2000, tensors, {"net": config.to_dict(), "level": config.levels - 1, "alpha": 1.0,
                                             "kimg": 2.0, "labels": list(labels)})
    return folder


def make_dataset(folder: Path, resolution: int = 16, n: int = 160) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:resolution, 0:resolution] / resolution
    imgs = np.empty((n, 3, resolution, resolution), np.uint8)
    for i in range(n):
        fx, fy = rng.uniform(-2, 2, 2)
        wave = np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 2 * np.pi))
        imgs[i] = np.clip(128 + 90 * wave[None] * rng.uniform(0.3, 1, (3, 1, 1)), 0, 255)
    (folder / "packed").mkdir(parents=True)
    np.save(folder / "packed" / f"{resolution}.npy", imgs)
    np.save(folder / "packed" / "labels.npy", np.arange(n, dtype=np.int64) % 2)
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("run") / "run")


def cli(*args: str) -> int:
    try:
        main([*map(str, args)])
    except SystemExit as e:
        return e.code or 0
    return 0


# --- seeds and latents -------------------------------------------------------------------------

def test_parse_seeds():
    assert parse_seeds("0-15") == list(range(16))
    assert parse_seeds("3,7,9-11") == [3, 7, 9, 10, 11]
    assert parse_seeds(" 2 , 4 - 5 ") == [2, 4, 5]
    assert parse_seeds("8") == [8]


@pytest.mark.parametrize("text, message", [
    ("", "give seeds"), ("a", "'a' is not a seed"), ("5-3", "ends before it starts"), ("-1", "is not a seed"),
    ("1,,2", "'' is not a seed"), ("0-100000", "more than"), ("1.5", "is not a seed"),
])
def test_parse_seeds_errors_are_clear(text, message):
    with pytest.raises(BreakganError, match=message) as err:
        parse_seeds(text)
    assert "--seeds" in str(err.value)


def test_latent_for_seed_is_the_trajectory_keyframe_rule():
    z = latent_for_seed(7, 32)
    assert z.dtype == torch.float32 and z.shape == (32,)
    np.testing.assert_array_equal(z.numpy(), keyframes_from_seeds([7], 32)[0])
    assert torch.equal(latent_for_seed(7, 32), z)
    assert not torch.equal(latent_for_seed(8, 32), z)


def test_truncation_bounds_the_latent_deterministically():
    z = latent_for_seed(3, 512, truncation=1.0)
    assert z.abs().max() <= 1.0
    assert torch.equal(z, latent_for_seed(3, 512, truncation=1.0))
    full = latent_for_seed(3, 512)
    inside = full.abs() <= 1.0
    assert torch.equal(z[inside], full[inside])  # only the outliers are redrawn
    with pytest.raises(BreakganError, match="truncation"):
        latent_for_seed(3, 8, truncation=0)


def test_slerp_latents_runs_between_the_ends():
    a, b = latent_for_seed(0, 64), latent_for_seed(5, 64)
    path = slerp_latents(a, b, 6)
    assert path.shape == (6, 64)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    # slerp keeps the norm near the ends' norms; a straight line would dip in the middle
    assert path[3].norm() > 0.9 * min(a.norm(), b.norm())
    with pytest.raises(BreakganError, match="steps"):
        slerp_latents(a, b, 1)


# --- images ------------------------------------------------------------------------------------

def test_to_uint8_maps_the_range():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    assert to_uint8(x)[0, 0, :, 0].tolist() == [0, 128, 255, 255]


def test_image_grid_layout():
    imgs = np.stack([np.full((4, 4, 3), 10 * (i + 1), np.uint8) for i in range(5)])
    grid = image_grid(imgs)
    assert grid.shape == (8, 12, 3)
    assert grid[0, 4, 0] == 20 and grid[4, 0, 0] == 40 and grid[4, 8, 0] == 0  # last cell empty
    assert image_grid(imgs, cols=5, pad=2).shape == (4, 5 * 4 + 4 * 2, 3)


def test_generate_images_is_deterministic_and_independent_of_other_seeds():
    G = TinyG()
    z = torch.stack([latent_for_seed(s, 8) for s in range(6)])
    a = generate_images(G, z)
    assert a.shape == (6, 8, 8, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, generate_images(G, z))
    np.testing.assert_array_equal(a[4:5], generate_images(G, z[4:5]))
    assert generate_images(G, z, nchw=True).shape == (6, 3, 8, 8)


def test_write_samples_files(tmp_path):
    written = write_samples(TinyG(), 8, [0, 1, 2], tmp_path / "out", grid=True, interp=[0, 2, 1], steps=5)
    names = sorted(p.name for p in written)
    assert names == ["grid.png", "interp-0000-0002.png", "interp-0002-0001.png",
                     "seed0000.png", "seed0001.png", "seed0002.png"]
    strip = np.asarray(Image.open(tmp_path / "out" / "interp-0000-0002.png"))
    assert strip.shape == (8, 5 * 8, 3)
    seed0 = np.asarray(Image.open(tmp_path / "out" / "seed0000.png"))
    seed2 = np.asarray(Image.open(tmp_path / "out" / "seed0002.png"))
    # the strip starts at seed 0's image and ends at seed 2's (slerp end points, +-1 for rounding)
    assert np.abs(strip[:, :8].astype(int) - seed0).max() <= 1
    assert np.abs(strip[:, -8:].astype(int) - seed2).max() <= 1
    assert not list((tmp_path / "out").glob(".*.tmp"))  # no temp files left behind


# --- the commands, through load_generator --------------------------------------------------------

def test_sample_same_seed_same_bytes_across_processes(run, tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / f"s{i}"
        res = subprocess.run([sys.executable, "-m", "breakgan.cli", "sample", str(run), "--seeds", "0-3",
                              "--grid", "--out", str(out)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        outs.append(out)
    for name in ["seed0000.png", "seed0003.png", "grid.png"]:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    img = np.asarray(Image.open(outs[0] / "seed0000.png"))
    assert img.shape == (16, 16, 3) and img.std() > 0
    assert (outs[0] / "seed0000.png").read_bytes() != (outs[0] / "seed0001.png").read_bytes()
    # a seed drawn alone gives the same bytes as drawn among others
    assert cli("sample", run, "--seeds", "3", "--out", tmp_path / "alone") == 0
    assert (tmp_path / "alone" / "seed0003.png").read_bytes() == (outs[0] / "seed0003.png").read_bytes()


def test_exported_generator_gives_the_same_images(run, tmp_path):
    exported = export_generator(run, tmp_path / "g.safetensors")
    G, info = load_generator(exported)
    assert info["resolution"] == 16 and info["latent_size"] == 16
    assert cli("sample", exported, "--seeds", "1,5", "--interp", "1,5", "--steps", "3", "--out", tmp_path / "e") == 0
    assert cli("sample", run, "--seeds", "1,5", "--out", tmp_path / "r") == 0
    for name in ["seed0001.png", "seed0005.png"]:
        assert (tmp_path / "e" / name).read_bytes() == (tmp_path / "r" / name).read_bytes()
    assert np.asarray(Image.open(tmp_path / "e" / "interp-0001-0005.png")).shape == (16, 48, 3)


def test_bad_checkpoint_and_options_are_one_line_errors(run, tmp_path, capsys):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    assert cli("sample", junk, "--out", tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(junk) in err and "Traceback" not in err
    assert cli("sample", tmp_path / "missing", "--out", tmp_path / "o") == 1
    assert str(tmp_path / "missing") in capsys.readouterr().err
    assert cli("sample", run, "--seeds", "9-2", "--out", tmp_path / "o") == 1
    assert "ends before it starts" in capsys.readouterr().err
    assert cli("sample", run, "--interp", "4", "--out", tmp_path / "o") == 1
    assert "at least two seeds" in capsys.readouterr().err
    assert cli("sample", run, "--label", "kick", "--out", tmp_path / "o") == 1
    assert "unconditional" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_conditional_generator_takes_a_label_name(tmp_path):
    run = make_run(tmp_path / "cond", num_classes=2, labels=["hiphop", "house"])
    assert cli("sample", run, "--seeds", "0", "--label", "house", "--out", tmp_path / "h") == 0
    assert cli("sample", run, "--seeds", "0", "--label", "1", "--out", tmp_path / "i") == 0
    assert cli("sample", run, "--seeds", "0", "--out", tmp_path / "any") == 0
    house = (tmp_path / "h" / "seed0000.png").read_bytes()
    assert house == (tmp_path / "i" / "seed0000.png").read_bytes()
    assert house != (tmp_path / "any" / "seed0000.png").read_bytes()
    assert cli("sample", run, "--label", "salsa", "--out", tmp_path / "x") == 1


def test_metrics_prints_swd_per_level_and_the_floor(run, tmp_path, capsys):
    dataset = make_dataset(tmp_path / "ds")
    out = tmp_path / "m.json"
    assert cli("metrics", run, "--dataset", dataset, "--num", "80", "--floor", "--json", out) == 0
    printed = capsys.readouterr().out
    assert "16 px" in printed and "real vs real" in printed
    data = json.loads(out.read_text())
    assert data["num"] == 80 and data["num_floor"] == 80 and data["resolution"] == 16
    assert set(data["fake"]) == {"16", "mean"}
    # an untrained generator is far from the data; two real halves are close
    assert data["fake"]["mean"] > 2 * data["floor"]["mean"] > 0
    # same seed, same numbers
    assert cli("metrics", run, "--dataset", dataset, "--num", "80", "--json", tmp_path / "m2.json") == 0
    assert json.loads((tmp_path / "m2.json").read_text())["fake"] == data["fake"]
    # run in-process (as the pipeline and tests do), it must leave autograd as it found it
    import torch

    assert torch.is_grad_enabled()


def test_metrics_json_makes_its_folders(run, tmp_path):
    dataset = make_dataset(tmp_path / "ds", n=8)
    out = tmp_path / "new" / "sub" / "m.json"
    assert cli("metrics", run, "--dataset", dataset, "--num", "4", "--json", out) == 0
    assert json.loads(out.read_text())["stage"] == "metrics"


def test_metrics_bad_dataset_names_the_file(run, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("metrics", run, "--dataset", empty) == 1
    err = capsys.readouterr().err
    assert str(empty / "packed" / "16.npy") in err and "missing" in err
    assert cli("metrics", run, "--dataset", tmp_path / "nope") == 1
    assert "no such dataset folder" in capsys.readouterr().err


def test_metrics_on_a_4px_checkpoint_is_a_clear_error(tmp_path, capsys):
    run = make_run(tmp_path / "early", resolution=4)
    dataset = make_dataset(tmp_path / "ds", resolution=4, n=8)
    assert cli("metrics", run, "--dataset", dataset) == 1
    assert "smaller than SWD's 7x7 patches" in capsys.readouterr().err
