"""`breakgan studio`: the API (TestClient), its files as render reads them, traversal attempts, and the
whole page in headless Chromium (Playwright) ending in a preview render that plays in the page."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from badinput import run_cli

pytest.importorskip("fastapi", reason="the studio extra is not installed: pip install 'breakgan[studio]'")
from fastapi.testclient import TestClient  # noqa: E402

from breakgan.errors import BreakganError  # noqa: E402
from breakgan.studio.app import create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO_G = ROOT / "assets" / "demo" / "generator.safetensors"
CHROMIUM = os.environ.get("BREAKGAN_CHROMIUM", "/usr/bin/chromium")


def _png(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _file_png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> Path:
    """The 64 px demo generator, copied so the studio folder beside it is private to these tests."""
    folder = tmp_path_factory.mktemp("gen")
    shutil.copy(DEMO_G, folder / "generator.safetensors")
    return folder / "generator.safetensors"


@pytest.fixture(scope="module")
def loaded(gen):
    from breakgan.gan import load_generator

    return load_generator(gen, device="cpu")


@pytest.fixture(scope="module")
def drums(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("drums") / "d"
    r = run_cli(["drums", "--seed", ROOT / "assets/seeds/breakbeat.mid", "--bars", "1", "--out", out])
    assert r.code == 0, r.err
    return out


def _sample(gen: Path, seeds: str, out: Path, truncation: float | None = None) -> dict[int, np.ndarray]:
    """`breakgan sample` as a user runs it -> seed -> image."""
    argv = ["sample", gen, "--seeds", seeds, "--out", out, "--device", "cpu"]
    if truncation is not None:
        argv += ["--truncation", str(truncation)]
    r = run_cli(argv)
    assert r.code == 0, r.err
    from breakgan.gan.sampling import parse_seeds, seed_file

    return {s: _file_png(out / seed_file(s)) for s in parse_seeds(seeds)}


def _client(gen, loaded, tmp_path, drums=None) -> TestClient:
    app = create_app(gen, tmp_path / "studio", drums=drums, renders=tmp_path / "renders", device="cpu",
                     generator=loaded)
    return TestClient(app)


def _wait_while(client, url: str, status: dict, state: str, timeout: float = 120.0) -> dict:
    """Poll GET url while the job's state is `state` (at most timeout s); -> the last status."""
    deadline = time.time() + timeout
    while status["state"] == state and time.time() < deadline:
        time.sleep(0.2)
        status = client.get(url).json()
    return status


# --- 1. sampling ----------------------------------------------------------------------------------
@pytest.mark.parametrize("truncation", [None, 0.7])
def test_batch_images_are_breakgan_sample_images(gen, loaded, tmp_path, truncation):
    client = _client(gen, loaded, tmp_path)
    body = {"count": 4, "start": 40} | ({} if truncation is None else {"truncation": truncation})
    r = client.post("/api/batch", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["seeds"] == [40, 41, 42, 43]
    expected = _sample(gen, "40-43", tmp_path / "sample", truncation)
    for seed, url in zip(r.json()["seeds"], r.json()["urls"]):
        got = client.get(url)
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        np.testing.assert_array_equal(_png(got.content), expected[seed])
    # truncation changes the picture (the slider does something)
    other = client.get("/img/seed/40.png" + ("?t=0.3" if truncation is None else ""))
    assert np.abs(_png(other.content).astype(int) - expected[40]).mean() > 1.0


def test_endless_batches_continue_and_survive_restart(gen, loaded, tmp_path):
    client = _client(gen, loaded, tmp_path)
    first = client.post("/api/batch", json={"count": 16}).json()["seeds"]
    second = client.post("/api/batch", json={"count": 16}).json()["seeds"]
    assert first == list(range(16)) and second == list(range(16, 32))
    again = _client(gen, loaded, tmp_path).post("/api/batch", json={"count": 2}).json()["seeds"]
    assert again == [32, 33]


# --- 2. favourites --------------------------------------------------------------------------------
def test_favourites_files_are_what_render_reads_and_survive_restart(gen, loaded, tmp_path):
    from breakgan.gan.sampling import latent_for_seed
    from breakgan.render.keys import read_favourites
    from breakgan.trajectory import keyframes_from_seeds

    D = loaded[1]["latent_size"]
    client = _client(gen, loaded, tmp_path)
    assert client.post("/api/favourites/looks/add", json={"seed": 3}).status_code == 200
    client.post("/api/favourites/looks/add", json={"seed": 9, "truncation": 0.7})
    client.post("/api/favourites/looks/add", json={"seed": 5})
    client.post("/api/favourites/looks/remove", json={"seed": 5})
    items = client.post("/api/favourites/looks/add", json={"seed": 11}).json()["items"]
    assert [i["seed"] for i in items] == [3, 9, 11]
    undone = client.post("/api/undo").json()
    assert [i["seed"] for i in undone["items"]] == [3, 9]

    folder = tmp_path / "studio" / "favourites"
    assert json.loads((folder / "looks.json").read_text()) == {"seeds": [3, 9]}
    # the seed file: render's seed rule (untruncated); the .npy: exactly the latents the page showed
    np.testing.assert_array_equal(read_favourites(folder / "looks.json", D), keyframes_from_seeds([3, 9], D))
    exact = np.stack([latent_for_seed(3, D).numpy(), latent_for_seed(9, D, 0.7).numpy()])
    np.testing.assert_array_equal(read_favourites(folder / "looks.npy", D), exact)

    restarted = _client(gen, loaded, tmp_path)
    assert restarted.get("/api/info").json()["lists"] == ["looks"]
    assert restarted.get("/api/favourites/looks").json()["items"] == [
        {"seed": 3, "truncation": None}, {"seed": 9, "truncation": 0.7}]


def test_undo_of_a_new_list_removes_it(gen, loaded, tmp_path):
    client = _client(gen, loaded, tmp_path)
    client.post("/api/favourites/once/add", json={"seed": 1})
    assert client.post("/api/undo").json()["lists"] == []
    assert not (tmp_path / "studio" / "favourites" / "once.json").exists()
    assert client.post("/api/undo").json()["name"] is None


# --- 3. morph preview -----------------------------------------------------------------------------
def test_morph_frames_follow_renders_attack_and_release(gen, loaded, tmp_path):
    """The preview's latents are render's latent path for one hit at t=0 from key A to key B."""
    from breakgan.studio.latents import morph_path, morph_times
    from breakgan.trajectory import Motion, latent_path

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 32)).astype(np.float32)
    for attack, release in [(60, 400), (0, 100), (200, 0)]:
        times = morph_times(attack, release, 30)
        assert times[0] == 0 and times[-1] == pytest.approx((attack + release) / 1000)
        ref = latent_path(np.array([[0.0, 1.0]]), np.stack([a, b]), times,
                          Motion(attack_ms=attack, release_ms=release))
        np.testing.assert_allclose(morph_path(a, b, attack, release, 30), ref, rtol=1e-5, atol=1e-5)

    client = _client(gen, loaded, tmp_path)
    r = client.post("/api/morph", json={"a": {"seed": 3}, "b": {"seed": 9}, "attack_ms": 60, "release_ms": 400})
    assert r.status_code == 200, r.text
    m = r.json()
    assert len(m["forward"]) == len(m["back"]) == len(morph_times(60, 400, 30)) == 15
    import base64

    first = _png(base64.b64decode(m["forward"][0].split(",")[1]))
    last = _png(base64.b64decode(m["forward"][-1].split(",")[1]))
    np.testing.assert_array_equal(first, _png(client.get("/img/seed/3.png").content))
    np.testing.assert_array_equal(last, _png(client.get("/img/seed/9.png").content))
    for value in ("Infinity", "NaN", "-1", "1e999"):
        bad = client.post("/api/morph", content='{"a": {"seed": 3}, "b": {"seed": 9}, "attack_ms": %s}' % value,
                          headers={"content-type": "application/json"})
        assert bad.status_code == 400, value
    bad = client.post("/api/morph", content='{"a": {"seed": 3, "truncation": NaN}, "b": {"seed": 9}}',
                      headers={"content-type": "application/json"})
    assert bad.status_code == 400


def _tiny_conditional(classes=("ann", "bo", "cy")):
    import torch

    from breakgan.gan.networks import Generator, NetConfig

    torch.manual_seed(3)
    G = Generator(NetConfig(resolution=16, latent_size=16, fmap_base=64, fmap_max=16, num_classes=len(classes))).eval()
    G.clamp = True
    return G, {"latent_size": 16, "resolution": 16, "num_classes": len(classes), "labels": list(classes)}


def test_class_morph_moves_one_latent_from_class_a_to_class_b(gen, loaded, tmp_path):
    """Conditional generators: frame 0 is G(z, class A), the last frame G(z, class B), same latent."""
    import base64

    import torch

    from breakgan.gan.sampling import generate_images
    from breakgan.seeds import latent_for_seed

    G, info = _tiny_conditional()
    client = TestClient(create_app(tmp_path / "g", tmp_path / "studio", device="cpu", generator=(G, info)))
    assert client.get("/api/info").json()["classes"] == ["ann", "bo", "cy"]
    r = client.post("/api/morph/class", json={"seed": {"seed": 4}, "a": 0, "b": 2})
    assert r.status_code == 200, r.text
    m = r.json()
    frames = [_png(base64.b64decode(u.split(",")[1])) for u in m["forward"] + m["back"]]
    z = torch.from_numpy(np.asarray(latent_for_seed(4, 16), np.float32).reshape(1, -1))
    want_a, want_b = (generate_images(G, z, labels=torch.tensor([k]))[0] for k in (0, 2))
    assert np.abs(want_a.astype(int) - want_b).mean() > 1.0  # the classes look different
    n = len(m["forward"])
    np.testing.assert_array_equal(frames[0], want_a)
    np.testing.assert_array_equal(frames[n - 1], want_b)
    np.testing.assert_array_equal(frames[n], want_b)  # and back
    np.testing.assert_array_equal(frames[-1], want_a)
    middle = frames[n // 2].astype(int)
    assert np.abs(middle - want_a).mean() > 0.5 and np.abs(middle - want_b).mean() > 0.5
    for body in [{"seed": {"seed": 4}, "a": 0, "b": 3}, {"seed": {"seed": 4}, "a": -1, "b": 1},
                 {"seed": {"seed": -4}, "a": 0, "b": 1}, {"seed": {"seed": 4}, "a": "x", "b": 1}]:
        assert client.post("/api/morph/class", json=body).status_code == 400, body
    # an unconditional generator has no classes: none offered, the request refused
    plain = _client(gen, loaded, tmp_path / "plain")
    assert plain.get("/api/info").json()["classes"] == []
    r = plain.post("/api/morph/class", json={"seed": {"seed": 4}, "a": 0, "b": 1})
    assert r.status_code == 400 and "not conditional" in r.json()["error"]


# --- 4. blend -------------------------------------------------------------------------------------
def test_blend_is_saved_as_latents_render_reads(gen, loaded, tmp_path):
    from breakgan.gan.sampling import latent_for_seed
    from breakgan.render.keys import read_favourites
    from breakgan.studio.latents import blend_latents

    D = loaded[1]["latent_size"]
    client = _client(gen, loaded, tmp_path)
    body = {"items": [{"seed": 3}, {"seed": 9}, {"seed": 12}], "weights": [0.5, 0.25, 0.25], "name": "mix-1"}
    r = client.post("/api/blends", json=body)
    assert r.status_code == 200, r.text
    z = np.stack([latent_for_seed(s, D).numpy() for s in (3, 9, 12)])
    want = blend_latents(z, [0.5, 0.25, 0.25])
    np.testing.assert_array_equal(np.load(tmp_path / "studio" / "blends" / "mix-1.npy"), want[None])
    np.testing.assert_array_equal(read_favourites(tmp_path / "studio" / "blends.npy", D), want[None])
    # a one-hot blend is that favourite (up to float rounding of the rescale)
    np.testing.assert_allclose(blend_latents(z, [0, 1, 0]), z[1], rtol=1e-6)
    np.testing.assert_allclose(blend_latents(z, [1e308] * 3), blend_latents(z, [1, 1, 1]), rtol=1e-6)  # no overflow
    # the norm is kept: a blend is as long as the keys it mixes, not shorter
    assert np.linalg.norm(want) == pytest.approx(np.linalg.norm(z, axis=1) @ [0.5, 0.25, 0.25], rel=1e-5)
    assert client.get("/img/blend/mix-1.png").status_code == 200
    for bad in ({**body, "weights": [0, 0, 0]}, {**body, "weights": [-1, 1, 1]}, {**body, "items": body["items"][:1],
                "weights": [1]}, {**body, "name": "../x"}, {**body, "weights": [1, 1]}):
        assert client.post("/api/blends", json=bad).status_code == 400


# --- 5. parts -------------------------------------------------------------------------------------
def test_part_keyframes_file_is_what_render_reads(gen, loaded, tmp_path):
    from breakgan.render.keys import part_keys, read_favourites
    from breakgan.trajectory import keyframes_from_seeds

    D = loaded[1]["latent_size"]
    client = _client(gen, loaded, tmp_path)
    client.put("/api/parts/kick", json={"seeds": [3, 9]})
    client.put("/api/parts/snare", json={"seeds": [12]})
    client.put("/api/parts/crash", json={"seeds": [1]})
    assert client.put("/api/parts/crash", json={"seeds": []}).json()["assigned"] == {"kick": [3, 9], "snare": [12]}
    fav = read_favourites(tmp_path / "studio" / "parts.json", D)
    keys = part_keys(("kick", "snare"), D, favourites=fav)
    np.testing.assert_array_equal(keys["kick"], keyframes_from_seeds([3, 9], D))
    np.testing.assert_array_equal(keys["snare"], keyframes_from_seeds([12], D))
    assert client.put("/api/parts/cowbell", json={"seeds": [1]}).status_code == 404
    assert client.put("/api/parts/kick", json={"seeds": [-1]}).status_code == 400


# --- 6. drums and security ------------------------------------------------------------------------
def test_drums_candidates_are_served_by_number(gen, loaded, tmp_path, drums):
    client = _client(gen, loaded, tmp_path, drums)
    info = client.get("/api/info").json()["drums"]
    assert [c["name"] for c in info] == ["cand-01"] and "kick" in info[0]["parts"]
    mix = client.get("/drums/1/mix.wav")
    assert mix.status_code == 200 and mix.content == (drums / "cand-01" / "mix.wav").read_bytes()
    assert client.get("/drums/1/stems/kick.wav").content == (drums / "cand-01" / "stems" / "kick.wav").read_bytes()
    assert client.get("/drums/1/pianoroll.png").status_code == 200
    assert client.get("/drums/2/mix.wav").status_code == 404


@pytest.fixture(scope="module")
def drums2(tmp_path_factory) -> Path:
    """2 bars, the first the seed's: a regeneration has a bar to redo."""
    out = tmp_path_factory.mktemp("drums2") / "d"
    r = run_cli(["drums", "--seed", ROOT / "assets/seeds/breakbeat.mid", "--bars", "2", "--seed-bars", "1",
                 "--out", out])
    assert r.code == 0, r.err
    return out


def test_regenerate_drums_at_a_temperature_makes_a_new_current_folder(gen, loaded, tmp_path, drums2):
    from breakgan.stage import read_record

    before = {p: p.read_bytes() for p in drums2.rglob("*") if p.is_file()}
    client = _client(gen, loaded, tmp_path, drums2)
    for body in ['{"temperature": -0.1, "seed": 1}', '{"temperature": 2.5, "seed": 1}', '{"temperature": NaN, "seed": 1}',
                 '{"temperature": Infinity, "seed": 1}', '{"temperature": 1, "seed": -1}',
                 '{"temperature": 1, "seed": 9223372036854775808}', '{"temperature": 1, "seed": "x"}',
                 '{"temperature": "1", "seed": 1.5}', '{"temperature": 1, "seed": 1, "candidate": 5}', '{"seed": 1}']:
        r = client.post("/api/drums/regenerate", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"], (body, r.text)
    assert client.get("/api/drums/regenerate").json()["state"] == "idle"
    assert _client(gen, loaded, tmp_path / "other").post(
        "/api/drums/regenerate", json={"temperature": 1, "seed": 1}).status_code == 400

    status = client.post("/api/drums/regenerate", json={"temperature": 0.8, "seed": 7}).json()
    assert status["state"] == "running" and status["folder"] == "drums-t080-s7"
    busy = client.post("/api/drums/regenerate", json={"temperature": 0.8, "seed": 7})
    assert busy.status_code == 400 and "already" in busy.json()["error"]
    status = _wait_while(client, "/api/drums/regenerate", status, "running")
    assert status["state"] == "done", status
    assert status["done"] == status["total"] == 1  # drums' own progress bar, read while it ran
    new = tmp_path / "renders" / "drums-t080-s7"
    assert (new / "cand-01" / "onsets.json").is_file()
    old_rec, rec = read_record(drums2), read_record(new)
    assert rec["options"]["temperature"] == 0.8 and rec["options"]["random_seed"] == 7
    assert rec["bars"] == old_rec["bars"] == 2 and rec["options"]["seed_bars"] == 1
    assert rec["inputs"]["seed"]["hash"] == old_rec["inputs"]["seed"]["hash"]  # the same seed MIDI
    info = client.get("/api/info").json()
    assert info["drums_folder"] == "drums-t080-s7" and [c["name"] for c in info["drums"]] == ["cand-01"]
    assert client.get("/drums/1/mix.wav").content == (new / "cand-01" / "mix.wav").read_bytes()
    assert {p: p.read_bytes() for p in drums2.rglob("*") if p.is_file()} == before  # the original untouched
    # the same values again: a new folder beside it, never the old one
    assert client.app.state.regenerations.fresh_folder(0.8, 7).name == "drums-t080-s7-2"


def test_regenerate_without_a_recorded_seed_continues_the_candidates_pattern(drums, tmp_path):
    from breakgan.studio.drums import Drums
    from breakgan.studio.drums_job import regenerate_args

    copy = tmp_path / "d"
    shutil.copytree(drums, copy)
    args = regenerate_args(Drums(copy), 1, 0.5, 3)
    assert args[args.index("--seed") + 1] == str((ROOT / "assets/seeds/breakbeat.mid").resolve())
    record = json.loads((copy / "breakgan.json").read_text())
    record["inputs"]["seed"]["hash"] = "sha256:" + "0" * 64  # the seed file changed since: not that seed
    (copy / "breakgan.json").write_text(json.dumps(record))
    args = regenerate_args(Drums(copy), 1, 0.5, 3)
    assert args[args.index("--seed") + 1] == str((copy / "cand-01" / "pattern.mid").resolve())
    assert args[args.index("--seed-bars") + 1] == "1" and args[args.index("--bars") + 1] == "1"
    assert args[args.index("--temperature") + 1] == "0.5" and args[args.index("--random-seed") + 1] == "3"
    record["options"]["seed_pattern"] = "kick: x...x...; snare: ....x..."
    (copy / "breakgan.json").write_text(json.dumps(record))
    assert "--seed-pattern=kick: x...x...; snare: ....x..." in regenerate_args(Drums(copy), 1, 0.5, 3)
    with pytest.raises(BreakganError, match="candidate 2"):
        regenerate_args(Drums(copy), 2, 0.5, 3)


TRAVERSALS = [
    "/drums/1/../../../etc/passwd", "/drums/1/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/drums/1/stems/..%2f..%2fSECRET.wav",
    "/drums/1/stems/%252e%252e%252fSECRET.wav", "/drums/..%2f..%2f/mix.wav", "/drums/1/stems/..\\..\\SECRET.wav",
    "/drums/1/stems/%5c..%5cSECRET.wav", "/drums//etc/passwd/mix.wav", "/drums/1/%2Fetc%2Fpasswd",
    "/static/..%2f..%2f..%2fcli.py", "/static/%2e%2e/app.py", "/static//etc/passwd", "/static/..\\app.py",
    "/renders/..%2f..%2fSECRET/render.mp4", "/renders/take-001/..%2f..%2fSECRET", "/renders/%2e%2e/render.mp4",
    "/img/seed/..%2f..%2fSECRET.png", "/img/seed/-1.png", "/img/blend/..%2fSECRET.png", "/img/blend/%2e%2e.png",
    "/api/favourites/..%2f..%2fSECRET", "/api/favourites/%252e%252e%252fSECRET", "/api/render/..%2fSECRET",
    "/api/favourites/C:%5cSECRET",
]


def test_traversal_is_refused_and_nothing_outside_is_read(gen, loaded, tmp_path, drums):
    """Every encoded form of ../, absolute paths and backslashes: 400/404, and no file outside is opened."""
    from badinput import snapshot

    secret = tmp_path / "SECRET.wav"
    secret.write_bytes(b"RIFF-secret")
    (tmp_path / "SECRET").mkdir()
    (tmp_path / "SECRET" / "render.mp4").write_bytes(b"secret-video")
    # a link inside the drums folder pointing out of it is refused too
    link = drums / "cand-01" / "stems" / "ride.wav"
    saved = link.read_bytes()
    link.unlink()
    link.symlink_to(secret)
    client = _client(gen, loaded, tmp_path, drums)
    opened: list[str] = []
    watching = [False]

    def audit(event, args):
        if watching[0] and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.fsdecode(args[0]))

    sys.addaudithook(audit)  # cannot be removed; `watching` turns it off after the test
    try:
        before = snapshot(tmp_path, drums, skip=[tmp_path / "studio"])
        watching[0] = True
        for url in TRAVERSALS + ["/drums/1/stems/ride.wav", f"/drums/1/stems/{secret}", "/static/" + str(secret)]:
            r = client.get(url)
            assert r.status_code in (400, 404), (url, r.status_code)
            assert b"secret" not in r.content, url
        for name in ["..", "../x", "..%2fx", "/etc/x", "a/b", "a\\b", "C:x", ".hidden", "x" * 41, "ok\n"]:
            in_url = quote(name, safe="/%.\\:")
            for method, url, body in [("POST", f"/api/favourites/{in_url}/add", {"seed": 1}),
                                      ("PUT", f"/api/favourites/{in_url}", {"items": []}),
                                      ("POST", "/api/blends", {"items": [{"seed": 1}, {"seed": 2}],
                                                               "weights": [1, 1], "name": name}),
                                      ("POST", "/api/render", {"source": "list", "list": name})]:
                r = client.request(method, url, json=body)
                assert r.status_code in (400, 404, 405), (method, url, body, r.status_code)
        watching[0] = False
        assert snapshot(tmp_path, drums, skip=[tmp_path / "studio"]) == before
        made = [p for p in (tmp_path / "studio").rglob("*") if p.is_file() and p.name != "studio.json"]
        assert not made, made
    finally:
        watching[0] = False
        link.unlink()
        link.write_bytes(saved)
    assert not [p for p in opened if "SECRET" in p or p.startswith("/etc")], opened


def test_host_other_than_localhost_warns(monkeypatch, gen):
    import uvicorn

    ran = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: ran.append(self.config.host))
    r = run_cli(["studio", gen, "--host", "0.0.0.0", "--port", "0", "--device", "cpu"])
    assert r.code == 0, r.err
    assert ran == ["0.0.0.0"] and "reachable from other machines" in r.err
    r = run_cli(["studio", gen, "--port", "0", "--device", "cpu"])
    assert ran[-1] == "127.0.0.1" and "warning" not in r.err


def test_bad_studio_arguments_are_one_line_errors(tmp_path):
    from badinput import expect_clean_error

    expect_clean_error(["studio", tmp_path / "missing"], names="missing")
    expect_clean_error(["studio", DEMO_G, "--drums", tmp_path / "nodrums"], names="--drums")
    expect_clean_error(["studio", DEMO_G, "--host", "no.such.host.invalid"], names="--host")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        expect_clean_error(["studio", DEMO_G, "--port", str(busy.getsockname()[1])], names="--port")


def test_bad_drums_or_renders_stop_the_studio_before_it_serves(monkeypatch, tmp_path, gen, drums):
    import uvicorn

    from badinput import expect_clean_error

    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: served.append(self.config.port))

    def refused(argv, names, why):
        res = expect_clean_error(["studio", gen, "--port", "0", "--device", "cpu", *argv], names=names,
                                 watch=[tmp_path, drums])
        assert why in res.err and served == []

    two = tmp_path / "two"  # every candidate is read, not only the first
    shutil.copytree(drums, two)
    shutil.copytree(two / "cand-01", two / "cand-02")
    (two / "cand-02" / "onsets.json").write_text('{"parts": ')
    refused(["--drums", two], str(two / "cand-02" / "onsets.json"), "not valid JSON")
    data = json.loads((drums / "cand-01" / "onsets.json").read_text())
    (two / "cand-02" / "onsets.json").write_text(json.dumps({**data, "parts": {}}))
    refused(["--drums", two], str(two / "cand-02" / "onsets.json"), "no onsets in any part")
    (two / "cand-02" / "onsets.json").write_text(json.dumps({**data, "tempo": 0}))
    refused(["--drums", two], str(two / "cand-02" / "onsets.json"), "tempo 0")

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    refused(["--drums", drums, "--renders", a_file], "--renders", "not a folder")
    refused(["--drums", drums, "--renders", a_file / "sub"], "--renders", "cannot write")
    refused(["--drums", drums, "--renders", "/proc/breakgan-renders"], "--renders", "cannot write")

    fresh = tmp_path / "new" / "renders"  # made on the first render; checking it leaves nothing behind
    r = run_cli(["studio", gen, "--port", "0", "--device", "cpu", "--drums", drums, "--renders", fresh])
    assert r.code == 0, r.err
    assert len(served) == 1 and not (tmp_path / "new").exists()


# --- 7. render, outside the browser ---------------------------------------------------------------
def test_render_with_saved_parts_file_shows_the_sampled_keyframes(gen, loaded, tmp_path, drums):
    """`render --favourites parts.json` draws each part's keyframes as `sample` draws those seeds: exactly
    through render's key loader, and in the MP4 a part shows its first keyframe until its first hit."""
    import torch

    from breakgan.gan.sampling import generate_images
    from breakgan.media import read_frames
    from breakgan.render.keys import part_keys, read_favourites
    from breakgan.render.layout import make_layout
    from breakgan.timeline import frame_times, timeline_from_drums

    client = _client(gen, loaded, tmp_path, drums)
    client.put("/api/parts/kick", json={"seeds": [21, 22]})
    client.put("/api/parts/snare", json={"seeds": [23, 24]})
    parts_file = tmp_path / "studio" / "parts.json"
    sampled = _sample(gen, "21-24,99", tmp_path / "sample")

    D = loaded[1]["latent_size"]
    keys = part_keys(("kick", "snare"), D, favourites=read_favourites(parts_file, D))
    drawn = generate_images(loaded[0], torch.from_numpy(np.concatenate([keys["kick"], keys["snare"]])))
    for img, seed in zip(drawn, [21, 22, 23, 24]):
        np.testing.assert_array_equal(img, sampled[seed])

    out = tmp_path / "r"
    r = run_cli(["render", "--run", gen, "--drums", drums, "--favourites", parts_file, "--parts", "kick,snare",
                 "--size", "128x64", "--fps", "10", "--device", "cpu", "--out", out])
    assert r.code == 0, r.err
    frames = read_frames(out / "render.mp4", 128, 64)
    frame = next(iter(frames)).astype(int)
    frames.close()
    t0 = frame_times(1, 10)[0]
    timeline = timeline_from_drums(drums, None)
    lay = make_layout("tiles", ("kick", "snare"), 128, 64, footage=False)
    waiting = [p for p in ("kick", "snare") if timeline.onsets(p)[0, 0] > t0]
    assert waiting, "the test drums should leave a part without a hit in the first frame"
    for part in waiting:
        t = lay.tile(part)
        tile = frame[t.y:t.y + t.h, t.x:t.x + t.w]
        err = {s: np.abs(tile - img).mean() for s, img in sampled.items()}
        first = {"kick": 21, "snare": 23}[part]
        # H.264 in between: close to its first keyframe, clearly closer than to any other seed
        assert err[first] < 6 and all(err[first] < 0.6 * e for s, e in err.items() if s != first), (part, err)


# --- the page in a real browser -------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(gen, loaded, tmp_path, drums):
    import uvicorn

    app = create_app(gen, tmp_path / "studio", drums=drums, renders=tmp_path / "renders", device="cpu",
                     generator=loaded)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield f"http://127.0.0.1:{port}", tmp_path
    srv.should_exit = True
    thread.join(10)


def _browser(p):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set BREAKGAN_CHROMIUM)")
    return p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])


def requests_live_stopped(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url + "/api/live", timeout=10) as f:
        return json.loads(f.read())["state"] == "stopped"


@pytest.mark.slow
def test_page_in_chromium_from_batch_to_playing_preview_render(server, gen, loaded):
    pw = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    url, tmp_path = server
    errors: list[str] = []
    with pw.sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        # a batch of 16 with their seeds, images loaded
        assert page.locator("#grid .tile").count() >= 16
        assert page.locator("#grid .tile .seed").first.inner_text() == "0"
        assert page.evaluate("[...document.querySelectorAll('#grid img')].slice(0, 16)"
                             ".every(i => i.complete && i.naturalWidth === 64)")
        # click to enlarge
        page.locator("#grid .tile[data-seed='2'] img").click()
        assert page.locator("#lightbox").is_visible() and "seed 2" in page.inner_text("#lightbox-caption")
        page.locator("#lightbox").click()
        # favourite two
        page.locator("#grid .tile[data-seed='2'] .star").click()
        page.locator("#grid .tile[data-seed='5'] .star").click()
        page.wait_for_function("document.querySelectorAll('#favs .fav').length === 2")
        assert page.locator("#grid .tile[data-seed='5'] .star.on").count() == 1
        # select both: the morph preview animates
        page.locator("#favs .fav[data-seed='2']").click()
        page.locator("#favs .fav[data-seed='5']").click()
        page.wait_for_function("window.studio.morph && window.studio.morph.shown > 20", timeout=20_000)
        srcs = set()
        for _ in range(12):
            srcs.add(page.get_attribute("#morph-img", "src"))
            page.wait_for_timeout(60)
        assert len(srcs) >= 3, "morph image did not change"
        page.locator("#keep-pair").click()
        page.wait_for_function("window.studio.info.lists.includes('pair-2-5')")
        # blend the two, saved as latents
        page.wait_for_selector("#blend-img[src^='data:image/png']")
        page.fill("#blend-name", "half")
        page.locator("#save-blend").click()
        page.wait_for_selector("#blends .fav img")
        # keyframes for kick and snare
        page.locator(".part[data-part='kick'] .assign").click()
        page.locator("#favs .fav[data-seed='2']").click()  # unselect 2: snare gets 5 only
        page.locator(".part[data-part='snare'] .assign").click()
        page.wait_for_function("window.studio.assigned.snare && window.studio.assigned.snare.length === 1")
        # a preview render with those keyframes and the drums, then it plays in the page
        page.select_option("#render-source", "parts")
        page.locator("#render-btn").click()
        page.wait_for_function("window.studio.job && window.studio.job.state !== 'running'", timeout=120_000)
        job = page.evaluate("window.studio.job")
        assert job["state"] == "done", job
        page.wait_for_function("document.querySelector('#render-video').readyState >= 2", timeout=20_000)
        duration = page.evaluate("document.querySelector('#render-video').duration")
        assert duration > 0
        page.wait_for_function("document.querySelector('#render-video').currentTime > 0", timeout=20_000)
        # drums regenerated at temperature 0.6, pattern seed 3: the new folder becomes the candidates shown
        assert page.locator("#class-row").is_hidden()  # the demo generator is unconditional
        assert page.text_content("#drums-folder") == "d"
        page.evaluate("(() => { const r = document.querySelector('#regen-temp'); r.value = '0.6';"
                      " r.dispatchEvent(new Event('input')); })()")
        page.fill("#regen-seed", "3")
        page.locator("#regen-btn").click()
        page.wait_for_function("document.querySelector('#drums-folder').textContent === 'drums-t060-s3'",
                               timeout=90_000)
        assert page.locator("#drums .cand img[src='/drums/1/pianoroll.png']").count() == 1
        assert (tmp_path / "renders" / "drums-t060-s3" / "cand-01" / "onsets.json").is_file()
        # live with the same keyframes: start, running with its preview in the page (stopped below)
        page.fill("#live-port", str(_free_port()))
        page.select_option("#live-source", "parts")
        page.locator("#live-start").click()
        page.wait_for_selector("#live-status[data-state='running']", timeout=90_000)
        page.wait_for_function("document.querySelector('#live-preview').naturalWidth > 0", timeout=30_000)
        assert "OSC to 127.0.0.1:" in page.inner_text("#live-status")
        # select the pair again so the picture shows the morph and the blend at work
        page.locator("#favs .fav[data-seed='2']").click()
        page.wait_for_selector("#blend-img[src^='data:image/png']")
        page.wait_for_function("window.studio.morph && window.studio.morph.shown > 8", timeout=20_000)
        shot = tmp_path / "screenshot.png"
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("BREAKGAN_STUDIO_SCREENSHOT"):
            shutil.copy(shot, os.environ["BREAKGAN_STUDIO_SCREENSHOT"])
        page.locator("#live-stop").click()
        page.wait_for_selector("#live-status[data-state='stopped']", timeout=20_000)
        assert page.locator("#live-start").is_enabled()
        browser.close()
    assert not errors, errors
    assert requests_live_stopped(url)

    studio = tmp_path / "studio"
    assert json.loads((studio / "favourites" / "favourites.json").read_text()) == {"seeds": [2, 5]}
    assert json.loads((studio / "favourites" / "pair-2-5.json").read_text()) == {"seeds": [2, 5]}
    assert np.load(studio / "blends" / "half.npy").shape == (1, loaded[1]["latent_size"])
    assert json.loads((studio / "parts.json").read_text()) == {"kick": [2, 5], "snare": [5]}
    # outside the browser: the saved file, read as render reads it, draws the images `sample` draws
    from breakgan.gan.sampling import generate_images
    from breakgan.render.keys import part_keys, read_favourites
    import torch

    D = loaded[1]["latent_size"]
    keys = part_keys(("kick", "snare"), D, favourites=read_favourites(studio / "parts.json", D))
    sampled = _sample(gen, "2,5", tmp_path / "sample")
    drawn = generate_images(loaded[0], torch.from_numpy(np.concatenate([keys["kick"], keys["snare"]])))
    for img, seed in zip(drawn, [2, 5, 5]):
        np.testing.assert_array_equal(img, sampled[seed])


# --- damaged files, odd names, a failing render -----------------------------------------------------
def test_damaged_studio_files_give_clean_errors(gen, loaded, tmp_path):
    from badinput import expect_clean_error

    client = _client(gen, loaded, tmp_path)
    studio = tmp_path / "studio"
    for content in ["{", '{"cowbell": [1]}', '{"kick": 3}', '{"kick": [-1]}', '{"kick": [1e30]}', '[1, 2]']:
        (studio / "parts.json").write_text(content)
        r = client.get("/api/info")
        assert r.status_code == 400 and "parts.json" in r.json()["error"], content
    (studio / "parts.json").unlink()
    for content in ['{"seeds": "abc"}', '{"seeds": [true]}', '{"seeds": [2.5]}', "[", '{"seeds": [-3]}']:
        (studio / "favourites" / "bad.json").write_text(content)
        r = client.get("/api/favourites/bad")
        assert r.status_code == 400 and "bad.json" in r.json()["error"], content
    # a damaged state file stops the command with one line, before any server starts
    studio_file = gen.parent / f"{gen.stem}-studio" / "studio.json"
    studio_file.parent.mkdir(exist_ok=True)
    studio_file.write_text("{not json")
    try:
        expect_clean_error(["studio", gen, "--port", "0"], names="studio.json")
    finally:
        studio_file.unlink()


@settings(max_examples=25, deadline=None)
@given(name=st.one_of(st.text(min_size=1, max_size=50),
                      st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", fullmatch=True),
                      st.sampled_from(["..", "../x", "..\\x", "/etc/passwd", "C:\\x", "%2e%2e", "a/../b", ".x"])))
def test_any_list_name_is_a_file_inside_the_studio_or_refused(gen, loaded, tmp_path_factory, name):
    from breakgan.studio.store import NAME_RE

    tmp = tmp_path_factory.mktemp("names")
    client = _client(gen, loaded, tmp)
    r = client.put("/api/favourites/" + quote(name, safe=""), json={"items": [{"seed": 1}]})
    files = sorted(p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file())
    if NAME_RE.fullmatch(name):
        assert r.status_code == 200
        assert (tmp / "studio" / "favourites" / f"{name}.json").is_file()
    else:
        assert r.status_code in (400, 404, 405), (name, r.status_code)
        assert files in ([], [Path("studio/studio.json")]), files


def test_a_failing_render_reports_its_error_line(tmp_path):
    from breakgan.studio.jobs import Renders

    takes = Renders(tmp_path / "renders")
    job = takes.start(["--run", str(tmp_path / "no-such-run"), "--audio", str(tmp_path / "none.wav")])
    deadline = time.time() + 60
    while job.state == "running" and time.time() < deadline:
        time.sleep(0.1)
    status = job.status()
    assert status["state"] == "failed" and status["error"].startswith("error:") and "no-such-run" in status["error"]
    assert status["video"] is None and takes.takes() == []


def test_default_run_is_the_newest_trained_run(tmp_path, gen):
    from breakgan.studio.command import default_run, studio_folder

    old = os.getcwd()
    try:
        os.chdir(tmp_path)
        with pytest.raises(BreakganError, match="RUN"):
            default_run()
        for name, age in [("a", 100), ("b", 0), ("empty", -50)]:
            ck = tmp_path / "runs" / name / "checkpoints"
            ck.mkdir(parents=True)
            if name != "empty":
                f = ck / "ckpt-000001.safetensors"
                shutil.copy(gen, f)
                os.utime(f, (time.time() - age, time.time() - age))
        assert default_run() == Path("runs/b")
        assert studio_folder(Path("runs/b")) == Path("runs/b/studio")
        assert studio_folder(gen) == gen.parent / "generator-studio"
    finally:
        os.chdir(old)


# --- 8. live --------------------------------------------------------------------------------------
def _osc_received(sock: socket.socket, seconds: float) -> list:
    """The OSC messages that arrive on `sock` within `seconds` (bundles opened)."""
    from breakgan.live.osc_in import osc_messages

    got, end = [], time.time() + seconds
    while time.time() < end:
        sock.settimeout(max(end - time.time(), 0.01))
        try:
            got += osc_messages(sock.recv(65536))
        except socket.timeout:
            break
    return got


def test_live_plays_the_chosen_keyframes_and_stops(gen, loaded, tmp_path, drums):
    """Start `breakgan live` from the API with the per-part file: it sends OSC to the chosen port, its
    kick latents lie on the path between the kick's two chosen keyframes, its preview serves frames,
    one live at a time, and stop ends it (zeroed values sent); bad requests are 400s."""
    import urllib.request

    from breakgan.seeds import latent_for_seed

    client = _client(gen, loaded, tmp_path, drums)
    assert client.get("/api/live").json()["state"] == "stopped"
    r = client.post("/api/live", json={})
    assert r.status_code == 400 and "no part has keyframes" in r.json()["error"]
    client.put("/api/parts/kick", json={"seeds": [21, 22]})
    for body in [{"osc_port": 0}, {"osc_port": 70000}, {"osc_host": "--help"}, {"osc_host": "example.com"},
                 {"source": "cowbell"}, {"source": "list", "list": "../x"}, {"candidate": 0}, {"candidate": 99},
                 {"osc_port": "x"}]:
        r = client.post("/api/live", json=body)
        assert r.status_code == 400 and r.json()["error"], (body, r.text)
    assert client.get("/api/live").json()["state"] == "stopped"
    no_drums = _client(gen, loaded, tmp_path / "other")
    assert no_drums.post("/api/live", json={}).status_code == 400

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as osc:
        osc.bind(("127.0.0.1", 0))
        port = osc.getsockname()[1]
        status = client.post("/api/live", json={"osc_port": port}).json()
        try:
            assert status["state"] in ("starting", "running") and status["osc"] == f"127.0.0.1:{port}"
            assert f"--favourites {tmp_path / 'studio' / 'parts.json'} --parts kick" in status["command"]
            r = client.post("/api/live", json={"osc_port": port})
            assert r.status_code == 400 and "already running" in r.json()["error"]
            status = _wait_while(client, "/api/live", status, "starting")
            assert status["state"] == "running", status
            assert status["control_port"] and status["preview"].startswith("http://127.0.0.1:")
            msgs = _osc_received(osc, 2.0)
            with urllib.request.urlopen(status["preview"] + "frame.jpg", timeout=20) as f:
                assert f.read(3) == b"\xff\xd8\xff"  # a JPEG
        finally:
            stopped = client.post("/api/live/stop").json()
        assert stopped["state"] == "stopped" and not client.app.state.live.job.alive()
        after = _osc_received(osc, 0.5)
    addresses = {m.address for m in msgs}
    assert "/breakgan/kick/env" in addresses and not any(a.startswith("/breakgan/snare/") for a in addresses)
    # each kick latent (first 8 components) is a weighted sum of keyframes 21 and 22: a residual near 0
    z = np.array([[next(m for m in msgs[i:] if m.address == f"/breakgan/kick/z{d}").params[0] for d in range(8)]
                  for i, m in enumerate(msgs) if m.address == "/breakgan/kick/z0"])
    assert len(z) > 10
    D = loaded[1]["latent_size"]
    for seeds, small in [((21, 22), True), ((23, 24), False)]:
        basis = np.stack([latent_for_seed(s, D)[:8] for s in seeds], axis=1)
        coef = np.linalg.lstsq(basis, z.T, rcond=None)[0]
        residual = np.abs(basis @ coef - z.T).max()
        assert (residual < 1e-3) == small, (seeds, residual)
    assert [m.params for m in after if m.address == "/breakgan/playing"][-1:] == [[0]]  # zeroed on stop


def test_a_failing_live_reports_its_error_line(tmp_path):
    from breakgan.studio.live_job import Live

    live = Live()
    job = live.start(["--drums", str(tmp_path / "no-such-drums")], ("127.0.0.1", 9))
    deadline = time.time() + 60
    while job.alive() and time.time() < deadline:
        time.sleep(0.1)
    job._reader.join(5)
    status = live.status()
    assert status["state"] == "failed" and status["error"].startswith("error:") and "no-such-drums" in status["error"]
    assert status["preview"] is None
    second = live.start(["--drums", str(tmp_path / "again")], ("127.0.0.1", 9))  # the failed one is not running
    second.stop()
    assert not second.alive() and live.status()["state"] in ("stopped", "failed")  # stopped, unless it failed first


def test_a_bad_name_of_any_length_is_quoted_short():
    from breakgan.studio.store import check_name

    with pytest.raises(BreakganError, match=r"^blend name 'zzz") as e:
        check_name("z" * 1_000_000, "blend")
    assert len(str(e.value)) < 200


def test_a_request_body_over_the_limit_is_refused_before_it_is_read(gen, loaded, tmp_path):
    from breakgan.studio.app import MAX_BODY

    client = _client(gen, loaded, tmp_path)
    pad = "x" * (MAX_BODY + 1)
    r = client.post("/api/batch", content=json.dumps({"count": 1, "pad": pad}),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and "request body over" in r.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        yield b'{"count": 1, "pad": "'
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = client.post("/api/batch", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    r = client.post("/api/batch", json={"count": 1})  # an ordinary request still works
    assert r.status_code == 200 and len(r.json()["seeds"]) == 1


@pytest.mark.parametrize("url,body", [("/api/batch", {"count": 1, "truncation": True}),
                                      ("/api/batch", {"count": "2"}),
                                      ("/api/parts/kick", {"seeds": [True]})])
def test_booleans_and_strings_are_not_numbers(gen, loaded, tmp_path, url, body):
    client = _client(gen, loaded, tmp_path)
    r = (client.put if url.startswith("/api/parts") else client.post)(url, json=body)
    assert r.status_code == 400  # the studio answers every validation error with 400
