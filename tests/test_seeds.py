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
    opts = LiveOptions(latent_size=LATENT, keys=KEYS, keyframe_seed=0, parts=("kick", "snare"), latent_dims=0)
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


# ---- live's three seeds and --favourites, against render ------------------------------------------

RENDER_FPS = 10
MOTION = ["--pulse", "0.3", "--drift", "0.2", "--pulse-ms", "120", "--drift-period", "3"]


def _render_latents(generator, drums, out, monkeypatch, *args) -> tuple[dict[str, np.ndarray], dict]:
    """`breakgan render` through the CLI (tiles of kick and snare): part -> (frames, D) latents G was given,
    and the keyframes render chose."""
    real_load, real_keys = render_video_module._load_generator, render_video_module.part_keys
    seen, keys = [], {}

    def load(*a, **kw):
        G, info = real_load(*a, **kw)

        def recording_G(z):
            seen.append(z.detach().cpu().numpy().copy())
            return G(z)
        return recording_G, info

    def recording_keys(*a, **kw):
        keys.update(real_keys(*a, **kw))
        return keys

    monkeypatch.setattr(render_video_module, "_load_generator", load)
    monkeypatch.setattr(render_video_module, "part_keys", recording_keys)
    res = run_cli(["render", "--run", generator, "--drums", drums, "--layout", "tiles", "--parts", "kick,snare",
                   "--size", f"{2 * RES}x{RES}", "--fps", RENDER_FPS, "--keys", KEYS, "--batch", 4, "--device", "cpu",
                   "--out", out, *args])
    assert res.code == 0, res.err
    z = np.concatenate(seen)  # item = frame * parts + part
    assert len(z) == 2 * 2 * RENDER_FPS
    return {"kick": z[0::2], "snare": z[1::2]}, keys


def _live_player(generator, drums, monkeypatch, *args):
    """`breakgan live` through the CLI, stopped before it plays: the Player it built (its keys, motion)."""
    import signal

    from breakgan.live.player import Player

    built = []

    def no_play(self, max_seconds=None):
        built.append(self)
        return {"bundles": 0, "onset_lateness": {}}

    monkeypatch.setattr(Player, "run", no_play)
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # live's SIGTERM handler must not outlive the test
    res = run_cli(["live", "--drums", drums, "--generator", generator, "--parts", "kick,snare", "--keys", KEYS,
                   "--latent-vector", "--latent-dims", 0, "--port", 9, *args])
    assert res.code == 0, res.err
    return built[0]


def _live_latents(player, times) -> dict[str, np.ndarray]:
    """The /breakgan/<part>/latent live sends at each clock time t after its pattern starts (120 bpm)."""
    from pythonosc.osc_message import OscMessage

    player._start()
    out = {"kick": [], "snare": []}
    for t in times:
        msgs = {m.address: m.params for m in map(OscMessage, player._control_messages(player._segment.origin + 2 * t))}
        for part in out:
            out[part].append(msgs[f"/breakgan/{part}/latent"])
    return {p: np.asarray(v, np.float32) for p, v in out.items()}


def test_live_keyframe_and_motion_seeds_give_renders_latents(generator, drums, tmp_path, monkeypatch):
    """live --keyframe-seed 7 --motion-seed 11 at time t sends the latent render --keyframe-seed 7
    --motion-seed 11 gives G at the frame showing t (pulse and drift on, so the motion seed shows)."""
    times = render_video_module.frame_times(2 * RENDER_FPS, RENDER_FPS)  # frame k shows time (k + 0.5) / fps
    want, _ = _render_latents(generator, drums, tmp_path / "r", monkeypatch,
                              "--keyframe-seed", 7, "--motion-seed", 11, *MOTION)
    player = _live_player(generator, drums, monkeypatch, "--keyframe-seed", 7, "--motion-seed", 11,
                          "--pattern-seed", 5, *MOTION)
    assert player.state.pattern_seed == 5
    got = _live_latents(player, times)
    for part in ("kick", "snare"):
        np.testing.assert_allclose(got[part], want[part], atol=1e-5)
    # another motion seed moves differently over the same keyframes (so the check above can fail)
    other = _live_latents(_live_player(generator, drums, monkeypatch, "--keyframe-seed", 7, "--motion-seed", 12,
                                       *MOTION), times)
    assert np.abs(other["kick"] - want["kick"]).max() > 1e-2
    # --seed N is the shorthand for all three; a seed given on its own wins
    short = _live_player(generator, drums, monkeypatch, "--seed", 7, "--motion-seed", 11, *MOTION)
    assert short.state.pattern_seed == 7
    np.testing.assert_allclose(_live_latents(short, times)["snare"], want["snare"], atol=1e-5)


def test_reseed_changes_keyframes_and_motion_as_live_seed_does(generator, drums, monkeypatch):
    from breakgan.live.osc_in import Control

    times = np.array([0.2, 0.6, 0.9, 1.4])
    player = _live_player(generator, drums, monkeypatch, "--seed", 0, *MOTION)
    before = _live_latents(player, times)
    player.apply(Control("reseed", value=21))  # OSC /breakgan/reseed 21
    fresh = _live_player(generator, drums, monkeypatch, "--seed", 21, *MOTION)
    np.testing.assert_allclose(_live_latents(player, times)["kick"], _live_latents(fresh, times)["kick"], atol=1e-6)
    assert player.state.pattern_seed == 21 and player.motion.seed == 21
    assert np.abs(_live_latents(player, times)["kick"] - before["kick"]).max() > 1e-2
    # /breakgan/motion_seed M: the motion only (the keyframes stay those of keyframe seed 21)
    keys = {p: k.copy() for p, k in player.keys.items()}
    player.apply(Control("motion_seed", value=4))
    moved = _live_latents(player, times)
    assert all(np.array_equal(player.keys[p], keys[p]) for p in keys) and player.motion.seed == 4
    assert np.abs(moved["kick"] - _live_latents(fresh, times)["kick"]).max() > 1e-2
    player.apply(Control("keyframe_seed", value=3))
    assert np.array_equal(player.keys["snare"], part_keys(("snare",), LATENT, KEYS, keyframe_seed=3)["snare"])
    assert player.motion.seed == 4 and player.state.pattern_seed == 21


@pytest.mark.parametrize("kind", ["parts", "npy", "text"])
def test_live_favourites_give_renders_keyframes(generator, drums, tmp_path, monkeypatch, kind):
    """The same --favourites file gives live and render the same keyframes (the studio's parts.json, a
    .npy of latents, a seeds text file); parts the file does not name follow --keyframe-seed in both."""
    fav = {"parts": tmp_path / "parts.json", "npy": tmp_path / "fav.npy", "text": tmp_path / "fav.txt"}[kind]
    if kind == "parts":
        fav.write_text(json.dumps({"kick": [3, 40, 9]}))
    elif kind == "npy":
        np.save(fav, np.random.default_rng(0).standard_normal((3, LATENT)).astype(np.float32))
    else:
        fav.write_text("5, 6  # kept in the studio\n70\n")
    want, render_keys = _render_latents(generator, drums, tmp_path / "r", monkeypatch, "--favourites", fav,
                                        "--keyframe-seed", 2)
    player = _live_player(generator, drums, monkeypatch, "--favourites", fav, "--keyframe-seed", 2)
    for part in ("kick", "snare"):
        assert np.array_equal(player.keys[part], render_keys[part])
    if kind == "parts":
        assert np.array_equal(player.keys["kick"], keyframes_from_seeds([3, 40, 9], LATENT))
        assert np.array_equal(player.keys["snare"], keyframes(LATENT, KEYS, part_keyframe_seed(2, "snare", KEYS)))
    np.testing.assert_allclose(_live_latents(player, render_video_module.frame_times(20, RENDER_FPS)[[0, 15]])["kick"],
                               want["kick"][[0, 15]], atol=1e-5)


@pytest.mark.parametrize("option", ["--keyframe-seed", "--motion-seed", "--pattern-seed", "--seed"])
@pytest.mark.parametrize("value", ["-1", str(2**63)])
def test_live_seed_out_of_range_names_the_option(drums, option, value):
    from badinput import expect_clean_error

    expect_clean_error(["live", "--drums", drums, option, value, "--bars", "1"], names=option, watch=[drums])


def test_live_bad_favourites_are_one_line_naming_the_file(generator, drums, tmp_path):
    from badinput import expect_clean_error

    bad = tmp_path / "bad.json"
    bad.write_text('{"cowbell": [1]}')
    expect_clean_error(["live", "--drums", drums, "--generator", generator, "--favourites", bad, "--bars", "1"],
                       names=str(bad), watch=[tmp_path, drums])
    expect_clean_error(["live", "--drums", drums, "--favourites", tmp_path / "none.json", "--bars", "1"],
                       names="none.json: no such favourites file", watch=[tmp_path, drums])
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros((2, LATENT + 1), np.float32))
    expect_clean_error(["live", "--drums", drums, "--generator", generator, "--favourites", wide, "--bars", "1"],
                       names=str(wide), watch=[tmp_path, drums])
