"""`breakgan render` on the command line, with a real (tiny, untrained) PGGAN checkpoint."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from breakgan.cli import main
from breakgan.media import probe

sys.path.insert(0, str(Path(__file__).parent))
from test_render import write_drums  # noqa: E402
from test_timeline import drum_audio  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder holding one checkpoint of a 16 px generator with a 32-long latent."""
    from breakgan.gan.checkpoint import prefixed, write_checkpoint
    from breakgan.gan.networks import Generator, NetConfig

    torch.manual_seed(0)
    cfg = NetConfig(resolution=16, latent_size=32, fmap_base=64, fmap_max=16)
    G = Generator(cfg)
    run = tmp_path_factory.mktemp("runs") / "tiny"
    write_checkpoint(run, 1000, prefixed(G.state_dict(), "G_ema."),
                     {"net": cfg.to_dict(), "level": cfg.levels - 1, "alpha": 1.0, "kimg": 1.0, "labels": []})
    return run


def cli(*args):
    with pytest.raises(SystemExit) as e:
        main(["render", *map(str, args)])
    return e.value.code


def test_render_command_with_drums_folder(tmp_path, run_dir, capsys):
    drums = write_drums(tmp_path / "drums" / "cand-01").parent
    out = tmp_path / "renders" / "cli"
    code = cli("--run", run_dir, "--drums", drums, "--out", out, "--size", "128x72", "--fps", "12",
               "--seeds", "kick=3,snare=7:9", "--pulse", "0.3", "--drift", "0.1", "--batch", "5")
    assert code == 0, capsys.readouterr().err
    info = probe(out / "render.mp4")
    assert (info.width, info.height) == (128, 72) and info.has_audio
    record = json.loads((out / "breakgan.json").read_text())
    assert record["frames"] == 48 and record["generator"]["resolution"] == 16
    assert record["options"]["seeds"] == {"kick": [3], "snare": [7, 9]}
    assert record["inputs"]["generator"]["path"].endswith(".safetensors")


def test_render_command_with_audio(tmp_path, run_dir, capsys):
    song = tmp_path / "song.wav"
    drum_audio(song, seconds=3.0)
    out = tmp_path / "song"
    assert cli("--run", run_dir, "--audio", song, "--out", out, "--layout", "solo", "--part", "kick",
               "--preview") == 0, capsys.readouterr().err
    info = probe(out / "render.mp4")
    assert info.has_audio and info.width == 320 and info.duration == pytest.approx(3.0, abs=0.1)


def test_render_command_errors_are_one_line(tmp_path, run_dir, capsys):
    drums = write_drums(tmp_path / "drums")
    cases = [
        (["--run", tmp_path / "missing", "--drums", drums], "missing: no such run folder or checkpoint"),
        (["--run", run_dir, "--drums", tmp_path], "no onsets.json"),
        (["--run", run_dir, "--drums", drums, "--layout", "mosaic"], "--layout must be one of"),
        (["--run", run_dir, "--drums", drums, "--size", "100x75"], "--size 100x75"),
        (["--run", run_dir, "--drums", drums, "--seeds", "cowbell=1"], "--seeds"),
    ]
    for args, message in cases:
        assert cli(*args, "--out", tmp_path / "o") == 1
        err = capsys.readouterr().err.strip()
        assert message in err and err.startswith("error:") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_checkpoint_with_wrong_latent_favourites(tmp_path, run_dir, capsys):
    drums = write_drums(tmp_path / "drums")
    np.save(tmp_path / "fav.npy", np.zeros((2, 8), np.float32))
    assert cli("--run", run_dir, "--drums", drums, "--favourites", tmp_path / "fav.npy", "--out", tmp_path / "o") == 1
    assert "fav.npy: favourites latents have shape (2, 8), expected (K, 32)" in capsys.readouterr().err
