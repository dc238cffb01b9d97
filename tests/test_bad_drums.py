"""`breakgan drums` (and `drums train` / `export`) over bad inputs: one line naming the file or option, nothing
written. The inputs are made here: hostile model files, seed MIDI bytes, seed patterns, option values,
SoundFonts; and, by Hypothesis, random MIDI structures and mutated MIDI bytes that must give a clean
error or a normal result, never a traceback or a hang.
"""

from __future__ import annotations

import io
import json
import math
import struct
from pathlib import Path

import mido
import pytest
import torch
from badinput import expect_clean_error, run_cli
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from breakgan.drums import options as lim
from breakgan.drums.checkpoint import FORMAT, save_model
from breakgan.drums.model import DrumsConfig, DrumsRNN
from breakgan.drums.smf import MAX_EVENTS, MAX_MIDI_BYTES, MAX_TRACKS
from breakgan.errors import BreakganError

SMALL = DrumsConfig(layers=(8, 8), attn_length=4)
PATTERN = ["--seed-pattern", "kick: x...; snare: ..x."]
FAST = ["--bars", "1", "--candidates", "1"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    m = DrumsRNN(SMALL)
    m.reset_parameters(torch.Generator().manual_seed(0))
    return save_model(tmp_path_factory.mktemp("model") / "tiny.safetensors", m, {"note": "test"})


def midi_bytes(tracks, *, tpq: int = 96) -> bytes:
    """tracks: lists of mido messages (delta times in ticks) -> Standard MIDI File bytes."""
    mf = mido.MidiFile(type=1, ticks_per_beat=tpq)
    for msgs in tracks:
        mf.tracks.append(mido.MidiTrack(msgs))
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def drum_midi(usec_per_quarter: int = 500000, channel: int = 9, pitch: int = 36) -> bytes:
    return midi_bytes([[mido.MetaMessage("set_tempo", tempo=usec_per_quarter)],
                       [mido.Message("note_on", channel=channel, note=pitch, velocity=100, time=0),
                        mido.Message("note_on", channel=channel, note=pitch, velocity=0, time=24)]])


def raw_midi(tracks: list[bytes], *, ntrks: int | None = None, division: int = 96) -> bytes:
    """Hand-made SMF bytes: MThd + one MTrk chunk per body (for structures mido would not write)."""
    head = b"MThd" + struct.pack(">LHHH", 6, 1, len(tracks) if ntrks is None else ntrks, division)
    return head + b"".join(b"MTrk" + struct.pack(">L", len(t)) + t for t in tracks)


def drums_argv(tmp_path: Path, *extra: str, model: Path | None = None) -> list[str]:
    argv = ["drums", "--out", str(tmp_path / "out"), *FAST, *extra]
    return argv + (["--model", str(model)] if model is not None else [])


def expect_drums_error(tmp_path: Path, argv: list[str], names) -> None:
    expect_clean_error(argv, names=names, watch=[tmp_path])
    assert not (tmp_path / "out").exists()


# ---- model files ---------------------------------------------------------------------------------------

def _tensors(config: DrumsConfig = SMALL) -> dict[str, torch.Tensor]:
    m = DrumsRNN(config)
    m.reset_parameters(torch.Generator().manual_seed(0))
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _write_model(path: Path, tensors: dict, config, info="{}", fmt=FORMAT) -> Path:
    meta = {"format": fmt, "config": config if isinstance(config, str) else json.dumps(config), "info": info}
    save_file(tensors, str(path), metadata=meta)
    return path


SMALL_JSON = SMALL.to_json()
MODEL_CASES = {
    "layers 2**40": ({**SMALL_JSON, "layers": [2**40]}, None),
    "layers negative": ({**SMALL_JSON, "layers": [-5, 8]}, None),
    "layers not numbers": ({**SMALL_JSON, "layers": ["abc"]}, None),
    "layers fractional": ({**SMALL_JSON, "layers": [8.5, 8]}, None),
    "layers empty": ({**SMALL_JSON, "layers": []}, None),
    "layers a number": ({**SMALL_JSON, "layers": 8}, None),
    "too many layers": ({**SMALL_JSON, "layers": [8] * 100}, None),
    "attn_length 2**40": ({**SMALL_JSON, "attn_length": 2**40}, None),
    "input_size wrong": ({**SMALL_JSON, "input_size": 7}, None),
    "dropout nan": ({**SMALL_JSON, "dropout_keep": float("nan")}, None),
    "config a list": ([8, 8], None),
    "config a string": ("\"x\"", None),
    "config not json": ("{layers: [", None),
    "config nested deeply": ("[" * 100000 + "]" * 100000, None),
    "shapes differ from config": ({**SMALL_JSON, "layers": [16, 16]}, None),
    "a tensor missing": (SMALL_JSON, "missing"),
    "an extra tensor": (SMALL_JSON, "extra"),
    "NaN weights": (SMALL_JSON, "nan"),
    "inf weights": (SMALL_JSON, "inf"),
    "integer weights": (SMALL_JSON, "int"),
    "info a list": (SMALL_JSON, "info"),
    "not a drums model": (SMALL_JSON, "format"),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_bad_model_file(tmp_path, case):
    config, change = MODEL_CASES[case]
    tensors, info, fmt = _tensors(), "{}", FORMAT
    if change == "missing":
        tensors.pop("fc_b")
    elif change == "extra":
        tensors["spare"] = torch.zeros(3)
    elif change in ("nan", "inf"):
        tensors["attn_k"][0, 0] = float(change)
    elif change == "int":
        tensors["fc_b"] = tensors["fc_b"].to(torch.int32)
    elif change == "info":
        info = "[1, 2]"
    elif change == "format":
        fmt = "breakgan-generator"
    path = _write_model(tmp_path / "m.safetensors", tensors, config, info, fmt)
    res = expect_clean_error(drums_argv(tmp_path, *PATTERN, model=path), names=str(path), watch=[tmp_path])
    assert not (tmp_path / "out").exists()
    if change in ("nan", "inf"):
        assert "attn_k" in res.err


@pytest.mark.parametrize("content", [b"", b"garbage", b"\x08\x00\x00\x00\x00\x00\x00\x00{}", None])
def test_model_file_not_safetensors(tmp_path, content):
    path = tmp_path / "m.safetensors"
    if content is None:
        path.mkdir()  # a folder without model.safetensors
        names = str(path / "model.safetensors")
    else:
        path.write_bytes(content)
        names = str(path)
    expect_drums_error(tmp_path, drums_argv(tmp_path, *PATTERN, model=path), names)


def test_a_valid_model_file_still_loads(tmp_path, model_file):
    from breakgan.drums.checkpoint import load_model

    model, info = load_model(model_file)
    assert model.config == SMALL and info["note"] == "test"


# ---- seed MIDI -----------------------------------------------------------------------------------------

def _truncated() -> bytes:
    return drum_midi()[:-7]


SEED_CASES = {
    "tempo 3.58 bpm": (lambda: drum_midi(round(60e6 / 3.58)), "outside 10..400"),
    "tempo 10000 bpm": (lambda: drum_midi(6000), "outside 10..400"),
    "tempo 0 usec": (lambda: drum_midi(0), "outside 10..400"),
    "zero-length": (lambda: b"", "empty"),
    "random bytes": (lambda: bytes(range(256)) * 8, "not a readable MIDI"),
    "text": (lambda: b"this is not MIDI\n" * 10, "not a readable MIDI"),
    "truncated": (_truncated, "not a readable MIDI"),
    "header only": (lambda: drum_midi()[:14], "not a readable MIDI"),
    "no tracks": (lambda: raw_midi([]), "no tracks"),
    "track past the end": (lambda: raw_midi([b"\x00\x99\x24\x64"])[:-2], "truncated"),
    "too many tracks": (lambda: raw_midi([b"\x00\xff\x2f\x00"] * 2, ntrks=MAX_TRACKS + 1), "tracks"),
    "too many events": (lambda: raw_midi([b"\x00\x99\x24\x64" + b"\x00\x24\x64" * MAX_EVENTS]), "events"),
    "running status first": (lambda: raw_midi([b"\x00\x24\x64"]), "running status"),
    "undefined status": (lambda: raw_midi([b"\x00\xf4\x00"]), "status"),
    "huge sysex": (lambda: raw_midi([b"\x00\xf0\x83\xff\xff\x7f" + b"\x00" * 100]), "sysex"),
    "SMPTE timing": (lambda: raw_midi([b"\x00\x99\x24\x64"], division=0xE728), "SMPTE"),
    "no notes": (lambda: midi_bytes([[mido.MetaMessage("set_tempo", tempo=500000)]]), "no notes"),
    "no drum notes": (lambda: drum_midi(channel=0, pitch=60), "no drums on channel 10"),
    "drum notes outside the 9 classes": (lambda: drum_midi(pitch=20), "no pitch of the 9 drum classes"),
    "time signature 7/8": (lambda: midi_bytes([[mido.MetaMessage("time_signature", numerator=7, denominator=8)],
                                               [mido.Message("note_on", channel=9, note=36, velocity=90)]]),
                           "7/8"),
}


@pytest.mark.parametrize("case", list(SEED_CASES))
def test_bad_seed_midi(tmp_path, model_file, case):
    make, message = SEED_CASES[case]
    seed = tmp_path / "seed.mid"
    seed.write_bytes(make())
    res = expect_clean_error(drums_argv(tmp_path, "--seed", str(seed), model=model_file), names=str(seed),
                             watch=[tmp_path])
    assert message in res.err
    assert not (tmp_path / "out").exists()


def test_oversized_seed_is_refused_before_reading(tmp_path, model_file):
    """Refused on its size alone: a sparse file of the limit + 1 byte (reading it would take long)."""
    seed = tmp_path / "big.mid"
    with open(seed, "wb") as f:
        f.write(drum_midi())
        f.truncate(MAX_MIDI_BYTES + 1)
    res = expect_clean_error(drums_argv(tmp_path, "--seed", str(seed), model=model_file), names=str(seed),
                             watch=[tmp_path])
    assert "too large" in res.err and f"limit {MAX_MIDI_BYTES // 2**20} MB" in res.err


def test_missing_seed_and_folder_seed(tmp_path, model_file):
    expect_drums_error(tmp_path, drums_argv(tmp_path, "--seed", str(tmp_path / "nope.mid"), model=model_file),
                       "nope.mid")
    (tmp_path / "folder.mid").mkdir()
    expect_drums_error(tmp_path, drums_argv(tmp_path, "--seed", str(tmp_path / "folder.mid"), model=model_file),
                       "folder.mid")


def test_seed_tempo_uses_the_tempo_rule_and_tempo_overrides_it(tmp_path):
    """One rule: the seed's own tempo is checked like --tempo; --tempo in range replaces a bad one."""
    from breakgan.drums.run import load_seed

    seed = tmp_path / "fast.mid"
    seed.write_bytes(drum_midi(6000))  # 10000 bpm
    with pytest.raises(BreakganError, match=r"fast.mid: tempo 10000.* outside 10..400.*--tempo"):
        load_seed(seed)
    assert load_seed(seed, tempo=120).tempo == 120.0
    with pytest.raises(BreakganError, match="--tempo: tempo 1000 BPM is outside 10..400"):
        load_seed(seed, tempo=1000)


@pytest.mark.parametrize("text,names", [
    ("", "--seed-pattern"), (";;;\n", "--seed-pattern"), ("kick: x?x.", "--seed-pattern"),
    ("zzz: x...", "--seed-pattern"), ("kick:", "--seed-pattern"), ("kick: ....", "--seed-pattern"),
    ("\x00\x01\x02", "--seed-pattern"), ("123: x", "--seed-pattern"), ("kick: " + "x" * 70000, "--seed-pattern"),
    ("kick: " + "x" * (1024 * 1024), "--seed-pattern"), ("kick: x\n" + "é" * 50, "--seed-pattern"),
])
def test_bad_seed_pattern(tmp_path, model_file, text, names):
    res = expect_clean_error(drums_argv(tmp_path, "--seed-pattern", text, model=model_file), names=names,
                             watch=[tmp_path])
    assert len(res.err) < 400
    assert not (tmp_path / "out").exists()


# ---- option values ---------------------------------------------------------------------------------------

OPTION_CASES = [
    ("--temperature", "nan"), ("--temperature", "inf"), ("--temperature", "-1"), ("--temperature", "11"),
    ("--bars", "1000000000"), ("--bars", "0"), ("--candidates", "1000000"), ("--candidates", "0"),
    ("--tempo", "inf"), ("--tempo", "nan"), ("--tempo", "0"), ("--tempo", "-5"), ("--tempo", "10000"),
    ("--random-seed", "-5"), ("--random-seed", str(2**70)), ("--random-seed", "1.5"),
    ("--beam-size", "0"), ("--beam-size", "65"), ("--branch-factor", "0"), ("--steps-per-iteration", "0"),
    ("--sample-rate", "1"), ("--sample-rate", "10000000"), ("--seed-bars", "nan"), ("--seed-bars", "inf"),
    ("--seed-bars", "-1"), ("--seed-bars", "0"), ("--drum-channel", "17"), ("--drum-channel", "0"),
    ("--beats-per-bar", "0"), ("--beats-per-bar", "99"), ("--parts", "kick,cowbell"), ("--parts", ","),
]


@pytest.mark.parametrize("option,value", OPTION_CASES)
def test_bad_option_value(tmp_path, model_file, option, value):
    expect_drums_error(tmp_path, drums_argv(tmp_path, *PATTERN, option, value, model=model_file),
                       option)


@pytest.mark.parametrize("argv", [["drums", "--temperature", "nan"], ["drums", "--seed-bars=NaN"],
                                  ["render", "--attack-ms", "nan"], ["live", "--rate", "nan"], ["demo", "--kimg", "nan"]])
def test_nan_is_named_as_what_is_wrong(argv):
    """A range check fails on NaN with "should be less than or equal to ...", which hides the problem."""
    res = run_cli(argv)
    assert res.code == 2 and "is not a number" in res.err and "Traceback" not in res.err
    assert argv[1].split("=")[0] in res.err


def test_bad_soundfonts(tmp_path, model_file, capfd):
    """Also at the file-descriptor level: FluidSynth and GLib print nothing of their own."""
    from breakgan.drums.synth import default_soundfont

    good = default_soundfont().read_bytes()
    damaged = bytearray(good)
    i = damaged.index(b"pdta")
    damaged[i + 4:i + 400] = bytes(396)  # the preset lists zeroed: the RIFF structure is whole
    cases = {"text.sf2": b"not a soundfont", "riff.sf2": b"RIFF\x10\x00\x00\x00sfbkLIST\x00\x00\x00\x00",
             "cut.sf2": good[: len(good) // 2], "damaged.sf2": bytes(damaged), "empty.sf2": b""}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        capfd.readouterr()
        expect_drums_error(tmp_path, drums_argv(tmp_path, *PATTERN, "--soundfont", str(tmp_path / name),
                                                model=model_file), str(tmp_path / name))
        assert capfd.readouterr().err == "", name
    expect_drums_error(tmp_path, drums_argv(tmp_path, *PATTERN, "--soundfont", str(tmp_path / "none.sf2"),
                                            model=model_file), "none.sf2")


@pytest.mark.parametrize("option,value", [
    ("--layers", str(2**40)), ("--layers", "-5"), ("--layers", "abc"), ("--layers", ""), ("--layers", "8," * 20),
    ("--learning-rate", "nan"), ("--learning-rate", "0"), ("--clip-norm", "inf"), ("--minutes", "nan"),
    ("--validation-fraction", "nan"), ("--dropout-keep", "nan"), ("--random-seed", "-1"),
    ("--device", "foo"), ("--batch-size", "100000"), ("--steps", str(10**12)), ("--max-steps", "1000000"),
])
def test_bad_train_option(tmp_path, option, value):
    (tmp_path / "midi").mkdir()
    (tmp_path / "midi" / "a.mid").write_bytes(drum_midi())
    argv = ["drums", "train", str(tmp_path / "midi"), "--out", str(tmp_path / "out"), option, value]
    expect_drums_error(tmp_path, argv, option)


def test_training_skips_broken_midi_files_with_a_note(tmp_path):
    from breakgan.drums.corpus import load_corpus

    (tmp_path / "a.mid").write_bytes(b"garbage")
    (tmp_path / "b.mid").write_bytes(raw_midi([b"\x00\x99\x24\x64" + b"\x00\x24\x64" * MAX_EVENTS]))
    corpus = load_corpus([tmp_path], min_bars=1)
    assert corpus.files["skipped"] == 2 and not corpus.train
    assert any("a.mid: not a readable MIDI" in p for p in corpus.problems)
    assert any("b.mid: more than" in p for p in corpus.problems)


def test_export_bad_inputs(tmp_path):
    (tmp_path / "m.safetensors").write_bytes(b"garbage")
    expect_clean_error(["drums", "export", str(tmp_path / "m.safetensors"), str(tmp_path / "o.safetensors")],
                       names="m.safetensors", watch=[tmp_path])
    expect_clean_error(["drums", "export", str(tmp_path / "m.safetensors"), str(tmp_path / "o.safetensors"),
                        "--dtype", "int8"], names="--dtype", watch=[tmp_path])
    assert not (tmp_path / "o.safetensors").exists()


# ---- properties -------------------------------------------------------------------------------------------

def assert_clean_outcome(argv: list[str], out: Path) -> bool:
    """Success (a candidate with its onsets) or the bad-input contract; never a traceback. -> succeeded."""
    res = run_cli(argv)
    shown = f"argv={argv}\nexit={res.code}\nstderr:\n{res.err}"
    assert "Traceback" not in res.err + res.out, shown
    assert "internal error" not in res.err, shown
    event("succeeded" if res.code == 0 else "refused")  # --hypothesis-show-statistics: both occur
    if res.code == 0:
        assert (out / "cand-01" / "onsets.json").is_file(), shown
        return True
    assert len(res.err_lines) == 1, shown
    assert not out.exists(), shown
    return False


channel_msg = st.one_of(
    st.builds(lambda c, n, v, t: mido.Message("note_on", channel=c, note=n, velocity=v, time=t),
              st.sampled_from([9, 9, 9, 0, 15]), st.sampled_from([36, 38, 42, 46, 49]) | st.integers(0, 127),
              st.integers(1, 127) | st.just(0), st.integers(0, 400)),
    st.builds(lambda c, n, t: mido.Message("note_off", channel=c, note=n, time=t),
              st.integers(0, 15), st.integers(0, 127), st.integers(0, 400)),
    st.builds(lambda c, v, t: mido.Message("control_change", channel=c, control=4, value=v, time=t),
              st.integers(0, 15), st.integers(0, 127), st.integers(0, 400)),
)
meta_msg = st.one_of(
    st.builds(lambda u, t: mido.MetaMessage("set_tempo", tempo=u, time=t),
              st.integers(150_000, 6_000_000) | st.integers(0, 2**24 - 1), st.integers(0, 400)),
    st.builds(lambda n, d, t: mido.MetaMessage("time_signature", numerator=n, denominator=2**d, time=t),
              st.integers(1, 12), st.sampled_from([1, 2, 2, 3]) | st.integers(0, 6), st.integers(0, 400)),
    st.builds(lambda d: mido.Message("sysex", data=d), st.lists(st.integers(0, 127), max_size=20)),
)
tracks = st.lists(st.lists(st.one_of(channel_msg, channel_msg, meta_msg), min_size=1, max_size=40), min_size=1,
                  max_size=4)


@pytest.mark.timeout(300)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tracks=tracks, tpq=st.sampled_from([1, 24, 96, 480, 32767]),
       cut=st.one_of(st.none(), st.none(), st.none(), st.integers(0, 400)))
def test_random_midi_seeds_succeed_or_fail_cleanly(tmp_path_factory, model_file, tracks, tpq, cut):
    tmp = tmp_path_factory.mktemp("seed")
    data = midi_bytes(tracks, tpq=tpq)
    (tmp / "seed.mid").write_bytes(data[:cut] if cut is not None else data)
    assert_clean_outcome(["drums", "--seed", str(tmp / "seed.mid"), "--out", str(tmp / "out"), *FAST,
                          "--model", str(model_file), "--sample-rate", "8000"], tmp / "out")


@pytest.mark.timeout(300)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6))
def test_mutated_midi_bytes_succeed_or_fail_cleanly(tmp_path_factory, model_file, flips):
    data = bytearray((Path(__file__).resolve().parents[1] / "assets" / "seeds" / "breakbeat.mid").read_bytes())
    for pos, value in flips:
        data[pos % len(data)] = value
    tmp = tmp_path_factory.mktemp("mutated")
    (tmp / "seed.mid").write_bytes(bytes(data))
    assert_clean_outcome(["drums", "--seed", str(tmp / "seed.mid"), "--out", str(tmp / "out"), *FAST,
                          "--model", str(model_file), "--sample-rate", "8000"], tmp / "out")


numbers = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=5), st.booleans(), st.none())


@settings(max_examples=25, deadline=None)
@given(values=st.fixed_dictionaries({k: numbers for k in (
    "bars", "temperature", "candidates", "beam_size", "branch_factor", "steps_per_iteration", "seed_bars",
    "sample_rate", "random_seed", "drum_channel", "beats_per_bar", "tempo")}))
def test_every_generation_number_is_bounded_and_finite(values):
    """The library check behind the CLI: either every value comes back in its documented range, or one
    BreakganError names the option."""
    try:
        got = lim.check_generation(**values)
    except BreakganError as e:
        assert str(e).startswith("--") and "\n" not in str(e)
        return
    assert 1 <= got["bars"] <= lim.MAX_BARS and 1 <= got["candidates"] <= lim.MAX_CANDIDATES
    assert math.isfinite(got["temperature"]) and 0 <= got["temperature"] <= lim.MAX_TEMPERATURE
    assert got["tempo"] is None or lim.MIN_TEMPO <= got["tempo"] <= lim.MAX_TEMPO
    assert got["seed_bars"] is None or 0 < got["seed_bars"] <= lim.MAX_SEED_BARS
    assert 0 <= got["random_seed"] < 2**63
    assert lim.MIN_SAMPLE_RATE <= got["sample_rate"] <= lim.MAX_SAMPLE_RATE
