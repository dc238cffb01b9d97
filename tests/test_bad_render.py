"""Bad generator files, favourites and option values for `sample`, `render` and `live`: one line, never a
traceback, nothing touched (the contract of tests/badinput.py).

One tiny generator (8 px, latent 8) and one half-second drums folder are built once per session; each
case writes only its own broken copy.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save

sys.path.insert(0, str(Path(__file__).parent))
from badinput import expect_clean_error, run_cli  # noqa: E402
from test_render import write_drums  # noqa: E402

from breakgan.gan.checkpoint import GENERATOR_FORMAT, export_generator, prefixed, read_checkpoint, write_checkpoint
from breakgan.gan.networks import Generator, NetConfig

torch.set_num_threads(1)
PROPERTY = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Tiny:
    """The shared inputs: a run folder, its exported generator, a drums folder, a scratch folder."""

    def __init__(self, root: Path):
        torch.manual_seed(0)
        cfg = NetConfig(resolution=8, latent_size=8, fmap_base=16, fmap_max=8)
        self.root = root
        self.run = root / "inputs" / "run"
        write_checkpoint(self.run, 1000, prefixed(Generator(cfg).state_dict(), "G_ema."),
                         {"net": cfg.to_dict(), "level": cfg.levels - 1, "alpha": 1.0, "kimg": 1.0, "labels": []})
        self.generator = export_generator(self.run, root / "inputs" / "g.safetensors")
        self.tensors, self.meta = read_checkpoint(self.generator)
        self.drums = write_drums(root / "inputs" / "drums", onsets={"kick": [0.1, 0.3], "snare": [0.2]},
                                 duration=0.5)
        self.count = itertools.count()

    def scratch(self) -> Path:
        folder = self.root / f"case{next(self.count):04d}"
        folder.mkdir()
        return folder

    def generator_with(self, meta=None, *, raw: str | None = None, tensors=None, folder: Path | None = None) -> Path:
        """A copy of the generator with other metadata (a dict, or the raw 'breakgan' text) or tensors."""
        path = (folder or self.scratch()) / "g.safetensors"
        text = raw if raw is not None else json.dumps(meta if meta is not None else self.meta)
        path.write_bytes(st_save(tensors or self.tensors, metadata={"format": GENERATOR_FORMAT, "breakgan": text}))
        return path

    def render(self, folder: Path, *options, run=None) -> list[str]:
        return ["render", "--run", run or self.generator, "--drums", self.drums, "--out", folder / "out",
                "--size", "16x16", "--fps", "10", *map(str, options)]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Tiny:
    return Tiny(tmp_path_factory.mktemp("bad_render"))


def check(tiny: Tiny, argv, names, folder: Path):
    """The contract, watching the shared inputs and the case's own folder (so no --out appears)."""
    return expect_clean_error(argv, names=names, watch=[tiny.root / "inputs", folder])


def with_net(meta: dict, **net) -> dict:
    return {**meta, "net": {**meta["net"], **net}}


# ---- generator files: validated once in gan/checkpoint.py, for every command that reads one ---------

BAD_META = {
    "a JSON list": ("[1, 2]", "must be a JSON object"),
    "not JSON": ("{'net':", "not valid JSON"),
    "deeply nested": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "no net": ({"format": GENERATOR_FORMAT, "level": 1}, "network config"),
    "latent_size 2**40": ({"net": {"latent_size": 2**40}}, "net.latent_size"),
    "latent_size -5": ({"net": {"latent_size": -5}}, "net.latent_size"),
    "latent_size abc": ({"net": {"latent_size": "abc"}}, "net.latent_size"),
    "latent_size 8.0": ({"net": {"latent_size": 8.0}}, "net.latent_size"),
    "fmap_max 2**40": ({"net": {"fmap_max": 2**40}}, "net.fmap_max"),
    "fmap_base 2**40": ({"net": {"fmap_base": 2**40}}, "net.fmap_base"),
    "fmap_min above fmap_max": ({"net": {"fmap_min": 16}}, "net.fmap_min"),
    "resolution 12": ({"net": {"resolution": 12}}, "power of two"),
    "resolution 4096": ({"net": {"resolution": 4096}}, "net.resolution"),
    "num_classes true": ({"net": {"num_classes": True}}, "net.num_classes"),
    "alpha x": ({"alpha": "x"}, "alpha"),
    "alpha NaN": ({"alpha": math.nan}, "alpha"),
    "alpha 2": ({"alpha": 2}, "alpha"),
    "level 9": ({"level": 9}, "level"),
    "kimg inf": ({"kimg": math.inf}, "kimg"),
    "labels a string": ({"labels": "dance"}, "labels"),
    "latent_size 9 (in range, wrong for the tensors)": ({"net": {"latent_size": 9}}, "does not match the architecture"),
}


def _bad_meta(tiny: Tiny, case: str, folder: Path) -> tuple[Path, str]:
    spec, message = BAD_META[case]
    if isinstance(spec, str):
        return tiny.generator_with(raw=spec, folder=folder), message
    if "net" in spec:
        meta = with_net(tiny.meta, **spec["net"])
    elif "format" in spec:
        meta = spec
    else:
        meta = {**tiny.meta, **spec}
    return tiny.generator_with(meta, folder=folder), message


@pytest.mark.parametrize("case", list(BAD_META))
def test_bad_generator_metadata_sample_and_render(tiny, case):
    folder = tiny.scratch()
    path, message = _bad_meta(tiny, case, folder)
    for argv in (["sample", path, "--seeds", "0", "--out", folder / "out"], tiny.render(folder, run=path)):
        res = check(tiny, argv, str(path), folder)
        assert message in res.err, res.err


@pytest.mark.parametrize("case", ["a JSON list", "latent_size 2**40", "fmap_max 2**40", "alpha x"])
def test_bad_generator_metadata_live(tiny, case):
    folder = tiny.scratch()
    path, message = _bad_meta(tiny, case, folder)
    res = check(tiny, ["live", "--drums", tiny.drums, "--generator", path, "--bars", "1"], str(path), folder)
    assert message in res.err


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_weights_are_refused(tiny, value):
    folder = tiny.scratch()
    tensors = dict(tiny.tensors)
    name = sorted(k for k in tensors if tensors[k].is_floating_point())[0]
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = value
    path = tiny.generator_with(tensors=tensors, folder=folder)
    for argv in (["sample", path, "--out", folder / "out"], tiny.render(folder, run=path),
                 ["live", "--drums", tiny.drums, "--generator", path, "--bars", "1"]):
        res = check(tiny, argv, str(path), folder)
        assert "NaN or infinite weights" in res.err and name in res.err


def _run_copy(tiny: Tiny, folder: Path) -> Path:
    run = folder / "run"
    (run / "checkpoints").mkdir(parents=True)
    src = next((tiny.run / "checkpoints").glob("ckpt-*.safetensors"))
    (run / "checkpoints" / src.name).write_bytes(src.read_bytes())
    return run


@pytest.mark.parametrize("pointer", ["../../../../../../etc/passwd", "/etc/passwd", "..", "escape.safetensors",
                                     "missing.safetensors", 5, None, "not json"])
def test_latest_json_must_point_inside_the_checkpoints_folder(tiny, pointer):
    folder = tiny.scratch()
    run = _run_copy(tiny, folder)
    outside = folder / "elsewhere.safetensors"
    outside.write_bytes(next((run / "checkpoints").glob("ckpt-*")).read_bytes())  # a valid file, but outside
    (run / "checkpoints" / "escape.safetensors").symlink_to(outside)
    latest = run / "checkpoints" / "latest.json"
    latest.write_text("{not json" if pointer == "not json" else json.dumps({"file": pointer}))
    for argv in (["sample", run, "--out", folder / "out"], tiny.render(folder, run=run),
                 ["live", "--drums", tiny.drums, "--generator", run, "--bars", "1"]):
        check(tiny, argv, "latest.json", folder)


def test_a_run_folder_with_a_good_pointer_still_loads(tiny):
    folder = tiny.scratch()
    run = _run_copy(tiny, folder)
    name = next((run / "checkpoints").glob("ckpt-*")).name
    (run / "checkpoints" / "latest.json").write_text(json.dumps({"file": name}))
    res = run_cli(["sample", run, "--seeds", "0", "--out", folder / "out"])
    assert res.code == 0, res.err
    assert (folder / "out" / "seed0000.png").is_file()


# ---- render and sample options: limits documented in --help and README ----------------------------

RENDER_OPTIONS = [
    (("--size", "99998x99998"), "--size"), (("--size", "16x99998"), "--size"), (("--size", "8192x8192"), "--size"),
    (("--size", "17x16"), "--size"), (("--size", "16"), "--size"),
    (("--fps", "nan"), "--fps"), (("--fps", "0"), "--fps"), (("--fps", "-1"), "--fps"), (("--fps", "1e9"), "--fps"),
    (("--fps", "inf"), "--fps"),
    (("--random-seed", "-5"), "--random-seed"), (("--keyframe-seed", str(2**70)), "--keyframe-seed"),
    (("--motion-seed", "-1"), "--motion-seed"), (("--random-seed", str(2**63)), "--random-seed"),
    (("--keys", "100000000"), "--keys"), (("--keys", "0"), "--keys"),
    (("--seeds", f"kick={2**70}"), "--seeds"), (("--seeds", "kick=-1"), "--seeds"), (("--seeds", "kick=1.5"), "--seeds"),
    (("--step", "nan"), "--step"), (("--step", "inf"), "--step"), (("--attack-ms", "nan"), "--attack-ms"),
    (("--release-ms", "1e300"), "--release-ms"), (("--pulse", "nan"), "--pulse"), (("--pulse-ms", "inf"), "--pulse-ms"),
    (("--drift", "nan"), "--drift"), (("--drift-period", "nan"), "--drift-period"),
    (("--footage-start", "nan"), "--footage-start"), (("--batch", "0"), "--batch"),
    (("--batch", "1000000000"), "--batch"),
]


@pytest.mark.parametrize("option, name", RENDER_OPTIONS, ids=[" ".join(o) for o, _ in RENDER_OPTIONS])
def test_render_option_limits(tiny, option, name):
    folder = tiny.scratch()
    check(tiny, tiny.render(folder, *option), name, folder)


SAMPLE_OPTIONS = [
    (("--seeds", "-1"), "--seeds"), (("--seeds", str(2**70)), "--seeds"), (("--seeds", str(2**63)), "--seeds"),
    (("--seeds", "abc"), "--seeds"), (("--seeds", "１２"), "--seeds"), (("--seeds", "0-100000"), "--seeds"), (("--interp", f"0,{2**64}"), "--interp"),
    (("--truncation", "nan"), "--truncation"), (("--truncation", "inf"), "--truncation"),
    (("--truncation", "0"), "--truncation"), (("--truncation", "-1"), "--truncation"),
    (("--truncation", "1e-9"), "--truncation"), (("--steps", "100000000"), "--steps"),
    (("--batch", "100000000"), "--batch"),
]


@pytest.mark.parametrize("option, name", SAMPLE_OPTIONS, ids=[" ".join(o) for o, _ in SAMPLE_OPTIONS])
def test_sample_option_limits(tiny, option, name):
    folder = tiny.scratch()
    check(tiny, ["sample", tiny.generator, *option, "--out", folder / "out"], name, folder)


def test_one_seed_rule_for_render_and_sample(tiny):
    """The largest seed both accept is 2**63 - 1; the next is refused by both."""
    folder = tiny.scratch()
    top = str(2**63 - 1)
    assert run_cli(["sample", tiny.generator, "--seeds", top, "--out", folder / "s"]).code == 0
    res = run_cli(tiny.render(folder, "--seeds", f"kick={top}", "--keyframe-seed", top, "--motion-seed", top))
    assert res.code == 0, res.err
    check(tiny, ["sample", tiny.generator, "--seeds", str(2**63), "--out", folder / "s2"], "--seeds", folder)
    check(tiny, tiny.render(folder, "--seeds", f"kick={2**63}"), "--seeds", folder)


# ---- favourites files: validated once in render/keys.py ---------------------------------------------

def _npy(folder: Path, array) -> Path:
    path = folder / "fav.npy"
    np.save(path, array, allow_pickle=True)
    return path


BAD_FAVOURITES = {
    "deeply nested JSON": ("fav.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "binary bytes": ("fav.txt", bytes(range(256)) * 4, "not UTF-8"),
    "binary JSON": ("fav.json", b"\xff\xfe{\x00\x00", "not UTF-8"),
    "seeds as a string": ("fav.json", json.dumps({"kick": "12"}), "list of integer seeds"),
    "booleans": ("fav.json", json.dumps({"kick": [True]}), "integer seeds"),
    "floats": ("fav.json", json.dumps([1.5]), "integer seeds"),
    "negative seed": ("fav.json", json.dumps([-1]), "integer seeds"),
    "huge seed": ("fav.txt", str(2**70), "not a seed"),
    "a number, not a list": ("fav.json", "7", "list of integer seeds"),
    "unknown part": ("fav.json", json.dumps({"cowbell": [1]}), "unknown drum part"),
    "empty list": ("fav.json", "[]", "no seeds"),
    "words": ("fav.txt", "three\n", "not a seed"),
    "too many": ("fav.txt", " ".join(["1"] * 1025), "more than 1024"),
    "too large": ("fav.txt", "1 " * 600_000, "larger than"),
}


@pytest.mark.parametrize("case", list(BAD_FAVOURITES))
def test_bad_favourites_files(tiny, case):
    folder = tiny.scratch()
    name, content, message = BAD_FAVOURITES[case]
    path = folder / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    res = check(tiny, tiny.render(folder, "--favourites", path), str(path), folder)
    assert message in res.err


BAD_LATENTS = {
    "NaN": lambda: np.full((3, 8), np.nan, np.float32),
    "inf": lambda: np.array([[np.inf] * 8], np.float64),
    "float64 overflowing float32": lambda: np.full((2, 8), 1e300),
    "wrong width": lambda: np.zeros((3, 9), np.float32),
    "three dimensions": lambda: np.zeros((2, 3, 8), np.float32),
    "no rows": lambda: np.zeros((0, 8), np.float32),
    "too many rows": lambda: np.zeros((1025, 8), np.float32),
    "object dtype": lambda: np.array([[object()] * 8], dtype=object),
    "strings": lambda: np.array([["a"] * 8]),
    "complex": lambda: np.zeros((2, 8), np.complex64),
    "booleans": lambda: np.ones((2, 8), bool),
}


@pytest.mark.parametrize("case", list(BAD_LATENTS))
def test_bad_favourite_latents(tiny, case):
    folder = tiny.scratch()
    path = _npy(folder, BAD_LATENTS[case]())
    check(tiny, tiny.render(folder, "--favourites", path), str(path), folder)


@pytest.mark.parametrize("content", [b"", b"\x93NUMPY", b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4', 'fortran",
                                     b"PK\x03\x04 zip", bytes(range(256))])
def test_npy_favourites_of_random_bytes(tiny, content):
    folder = tiny.scratch()
    path = folder / "fav.npy"
    path.write_bytes(content)
    check(tiny, tiny.render(folder, "--favourites", path), str(path), folder)


# ---- property-based: any metadata, any option value -> a clean line or a result ---------------------

def clean_or_ok(res, *names):
    """Success, or the bad-input contract (one line, no traceback, not the last-resort message)."""
    event("success" if res.code == 0 else "clean error")
    if res.code == 0:
        return True
    shown = f"exit={res.code}\nstderr:\n{res.err}"
    assert "Traceback" not in res.err + res.out, shown
    assert "internal error" not in res.err, shown
    assert len(res.err_lines) == 1, shown
    if names:
        assert any(n in res.err for n in names), shown
    return False


ANY_VALUE = st.one_of(
    st.integers(min_value=-2**70, max_value=2**70), st.integers(min_value=-2, max_value=70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6), st.none(), st.booleans(),
    st.lists(st.integers(min_value=-3, max_value=3), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
NET_KEYS = ["resolution", "latent_size", "fmap_base", "fmap_max", "fmap_min", "num_classes", "mbstd_group"]
TOP_KEYS = ["level", "alpha", "kimg", "labels", "net"]


@PROPERTY
@given(net=st.dictionaries(st.sampled_from(NET_KEYS), ANY_VALUE, max_size=3),
       top=st.dictionaries(st.sampled_from(TOP_KEYS), ANY_VALUE, max_size=2),
       drop=st.lists(st.sampled_from(NET_KEYS + TOP_KEYS), max_size=2))
def test_any_generator_metadata_gives_a_clean_answer(tiny, net, top, drop):
    meta = with_net(tiny.meta, **net)
    meta = {**meta, **top}
    for key in drop:
        meta.pop(key, None)
        if isinstance(meta.get("net"), dict):
            meta["net"] = {k: v for k, v in meta["net"].items() if k != key}
    folder = tiny.scratch()
    path = tiny.generator_with(meta, folder=folder)
    res = run_cli(["sample", path, "--seeds", "0", "--out", folder / "out"])
    if clean_or_ok(res, str(path)):
        assert (folder / "out" / "seed0000.png").is_file()


def _text_of(strategy):
    return strategy.map(str)


SIZES = st.one_of(st.sampled_from(["99998x99998", "16x99998", "8192x8192", "4098x4096", "15x16", "0x0", "-16x16",
                                   "16X16", " 32x16 ", "16x", "x16", "1e3x16"]),
                  st.tuples(st.integers(8, 66), st.integers(8, 66)).map(lambda wh: f"{wh[0]}x{wh[1]}"),
                  st.text(max_size=10))
FLOATS = _text_of(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12)))
SEEDS = st.one_of(_text_of(st.integers(-2**70, 2**70)), st.text(max_size=8))
SEED_SPECS = st.one_of(
    st.tuples(st.sampled_from(["kick", "snare", "ride", "cowbell", ""]), st.lists(SEEDS, max_size=3))
    .map(lambda t: f"{t[0]}={':'.join(t[1])}"),
    st.text(max_size=12))


@PROPERTY
@given(option=st.one_of(
    st.tuples(st.just("--size"), SIZES),
    st.tuples(st.sampled_from(["--fps", "--step", "--attack-ms", "--release-ms", "--pulse", "--pulse-ms",
                               "--drift", "--drift-period", "--footage-start"]), FLOATS),
    st.tuples(st.sampled_from(["--keyframe-seed", "--motion-seed", "--random-seed"]), SEEDS),
    st.tuples(st.just("--keys"), _text_of(st.integers(-10, 10**9))),
    st.tuples(st.just("--seeds"), SEED_SPECS),
))
def test_any_render_option_value_gives_a_clean_answer(tiny, option):
    name, value = option
    if name == "--fps":  # keep the successful renders short: a valid value renders at most 0.5 s of video
        value = value if not _finite_in(value, 1, 240) else str(min(float(value), 30.0))
    folder = tiny.scratch()
    argv = tiny.render(folder)
    res = run_cli([*argv, name, value])
    if clean_or_ok(res, name):
        assert (folder / "out" / "render.mp4").is_file()


def _finite_in(text: str, lo: float, hi: float) -> bool:
    try:
        v = float(text)
    except ValueError:
        return False
    return math.isfinite(v) and lo <= v <= hi


@pytest.mark.parametrize("mix", [b"", b"garbage" * 10])
def test_a_drum_mix_ffmpeg_cannot_read_is_refused_before_any_frame(tiny, mix):
    folder = tiny.scratch()
    drums = write_drums(folder / "drums", onsets={"kick": [0.1, 0.3]}, duration=0.5)
    (drums / "mix.wav").write_bytes(mix)
    argv = ["render", "--run", tiny.generator, "--drums", drums, "--out", folder / "out", "--size", "16x16",
            "--fps", "10"]
    res = check(tiny, argv, f"{drums / 'mix.wav'}: not a media file", folder)
    assert ".partial" not in res.err  # named by its own path, not a temporary output
