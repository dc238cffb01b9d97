"""One seed, one latent, everywhere: `sample --seeds S`, `render --seeds kick=S` at a frame on key S, and live's
`/breakgan/kick/seed S` give the identical latent and the identical image (DESIGN.md "Seeds")."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from badinput import run_cli  # noqa: E402

import breakgan.render.video as render_video_module
from breakgan.gan import export_generator, load_generator
from breakgan.gan.checkpoint import prefixed, write_checkpoint
from breakgan.gan.networks import Generator, NetConfig
from breakgan.gan.sampling import latent_for_seed as sample_latent
from breakgan.parts import PARTS
from breakgan.render.frames import to_tiles
from breakgan.render.keys import part_keys
from breakgan.seeds import keyframe_cycle, latent_for_seed, part_keyframe_seed
from breakgan.timeline import timeline_from_drums
from breakgan.trajectory import keyframes, keyframes_from_seeds

torch.set_num_threads(1)
LATENT, RES, KEYS = 16, 16, 4
KICK_AT = 0.55  # s; attack + release (0.46 s) end before 1.1 s, from where the kick sits exactly on key 1


@pytest.fixture(scope="module")
def generator(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    cfg = NetConfig(resolution=RES, latent_size=LATENT, fmap_base=32, fmap_max=16)
    run = tmp_path_factory.mktemp("seeds") / "run"
    write_checkpoint(run, 1000, prefixed(Generator(cfg).state_dict(), "G_ema."),
                     {"net": cfg.to_dict(), "level": cfg.levels - 1, "alpha": 1.0, "kimg": 1.0, "labels": []})
    return export_generator(run, run.parent / "g.safetensors")


@pytest.fixture(scope="module")
def drums(tmp_path_factory) -> Path:
    """One kick at full velocity (127 -> 1.0, so one hit moves exactly one key), 2 s long, no audio."""
    folder = tmp_path_factory.mktemp("drums")
    parts = {p: [] for p in PARTS}
    parts["kick"] = [{"time": KICK_AT, "step": 0, "velocity": 127}]
    (folder / "onsets.json").write_text(json.dumps({"tempo": 120.0, "steps_per_quarter": 4, "beats_per_bar": 4,
                                                    "bars": 1, "duration": 2.0, "parts": parts}))
    return folder


@pytest.fixture(scope="module")
def sampled(generator, tmp_path_factory) -> dict[int, np.ndarray]:
    """`breakgan sample --seeds 3,4` through the CLI: seed -> the PNG's pixels."""
    out = tmp_path_factory.mktemp("sample") / "out"
    res = run_cli(["sample", generator, "--seeds", "3,4", "--out", out])
    assert res.code == 0, res.err
    return {s: np.asarray(Image.open(out / f"seed{s:04d}.png")) for s in (3, 4)}


def test_the_rule_is_torchs_cpu_generator_and_every_helper_uses_it():
    # torch.randn(4) after manual_seed(0) on the CPU: the same on every machine (pinned here)
    np.testing.assert_allclose(latent_for_seed(0, 4), [1.5410, -0.2934, -2.1788, 0.5684], atol=1e-4)
    for seed in (0, 7, 2**63 - 1):
        z = latent_for_seed(seed, 32)
        assert z.dtype == np.float32 and z.shape == (32,)
        assert np.array_equal(z, torch.randn(32, generator=torch.Generator().manual_seed(seed)).numpy())
        assert np.array_equal(sample_latent(seed, 32).numpy(), z)          # sample
        assert np.array_equal(keyframes_from_seeds([seed], 32)[0], z)      # render --seeds a:b, favourites
        assert np.array_equal(keyframes(32, 3, seed)[0], z)                # render --seeds kick=S, live /seed S
    cycle = keyframes(32, 3, 10)
    assert np.array_equal(cycle, np.stack([latent_for_seed(s, 32) for s in (10, 11, 12)]))
    assert np.array_equal(keyframe_cycle(2**63 - 1, 2, 8)[1], latent_for_seed(0, 8))  # wraps below 2**63


def test_default_part_seeds_are_blocks_and_render_matches_live_convention():
    keys = part_keys(PARTS, 8, KEYS, keyframe_seed=5)
    for i, part in enumerate(PARTS):
        assert part_keyframe_seed(5, part, KEYS) == 5 + i * KEYS
        assert np.array_equal(keys[part], keyframes_from_seeds(range(5 + i * KEYS, 5 + (i + 1) * KEYS), 8))


def test_render_frame_on_key_s_is_sample_of_seed_s(generator, drums, sampled, tmp_path, monkeypatch):
    """The real render_video with --seeds kick=3: the latent G receives and the tile composited at frame 0
    (before the kick) are sample's seed 3; after the kick settles, seed 4."""
    G, info = load_generator(generator)
    seen_z, tiles = [], []

    def recording_G(z):
        seen_z.append(z.detach().clone())
        return G(z)

    real_compose = render_video_module.compose

    def recording_compose(lay, images, *args, **kwargs):
        tiles.append(images["kick"].copy())
        return real_compose(lay, images, *args, **kwargs)

    monkeypatch.setattr(render_video_module, "compose", recording_compose)
    fps = 10
    render_video_module.render_video(tmp_path / "out", (recording_G, info), drums=drums, layout="solo", part="kick",
                                     size=(RES, RES), fps=fps, seeds={"kick": [3]}, keys_per_part=KEYS, batch=1,
                                     device="cpu", show_progress=False)
    assert (tmp_path / "out" / "render.mp4").is_file() and len(seen_z) == len(tiles) == 2 * fps
    late = 15  # t = 1.5 s
    assert torch.equal(seen_z[0][0], torch.from_numpy(latent_for_seed(3, LATENT)))
    assert torch.equal(seen_z[late][0], torch.from_numpy(latent_for_seed(4, LATENT)))
    assert np.array_equal(tiles[0], sampled[3])
    assert np.array_equal(tiles[late], sampled[4])
    assert not np.array_equal(sampled[3], sampled[4])


def test_live_seed_control_gives_samples_latent_and_image(generator, drums, sampled):
    from breakgan.live.clock import InternalClock
    from breakgan.live.osc_in import Control
    from breakgan.live.player import LiveOptions, Player

    G, _ = load_generator(generator)
    tl = timeline_from_drums(drums)
    opts = LiveOptions(latent_size=LATENT, keys=KEYS, seed=0, parts=("kick", "snare"), latent_dims=0)
    player = Player(tl, InternalClock(120), lambda dgrams: None, opts, log=lambda m: None)
    # before any control, `live --seed 0` shows what `render --keyframe-seed 0` shows
    render_keys = part_keys(("kick", "snare"), LATENT, KEYS, keyframe_seed=0)
    for part in ("kick", "snare"):
        assert np.array_equal(player.keys[part], render_keys[part])
    player.apply(Control("seed", "kick", 3))  # what OSC /breakgan/kick/seed 3 does
    assert np.array_equal(player.keys["kick"][0], latent_for_seed(3, LATENT))
    assert np.array_equal(player.keys["kick"], keyframes(LATENT, KEYS, 3))
    with torch.no_grad():
        image = to_tiles(G(torch.from_numpy(player.keys["kick"][:2])), (RES, RES)).numpy()
    assert np.array_equal(image[0], sampled[3]) and np.array_equal(image[1], sampled[4])
    player.apply(Control("reseed", value=10))  # /breakgan/reseed 10 = live --seed 10 = render --keyframe-seed 10
    assert np.array_equal(player.keys["snare"], part_keys(("snare",), LATENT, KEYS, keyframe_seed=10)["snare"])
