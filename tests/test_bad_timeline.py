"""Bad onsets.json files through the real CLI: `render` and `live` both read a timeline with
`timeline_from_drums`, so each bad file gets the same one-line error from both, and never a
traceback or a hang (issue 10: a negative time made `live` busy-loop forever)."""

from __future__ import annotations

import json
import math
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from badinput import expect_clean_error, run_cli  # noqa: E402

from breakgan.errors import BreakganError  # noqa: E402
from breakgan.parts import PARTS  # noqa: E402
from breakgan.timeline import (MAX_ONSETS_PER_PART, ONSETS_MAX_BYTES, read_onsets_file,  # noqa: E402
                               timeline_from_drums)

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "assets" / "demo" / "generator.safetensors"


@pytest.fixture(scope="module")
def sink_port():
    """A UDP port that swallows what `live` sends (nothing reads it; the kernel drops the rest)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def good(**over) -> dict:
    data = {"tempo": 120.0, "beats_per_bar": 4, "bars": 1, "duration": 2.0, "audio": None,
            "parts": {"kick": [{"time": 0.0, "velocity": 100}, {"time": 1.0, "velocity": 90}],
                      "snare": [{"time": 0.5, "velocity": 110}]}}
    data.update(over)
    return data


def with_kick(*events, **over) -> dict:
    return good(parts={"kick": list(events)}, **over)


def write(folder: Path, content) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "onsets.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))  # allow_nan: NaN / Infinity literals as Python writes them
    return path


def sinks(drums: Path, out: Path, port: int) -> dict[str, list[str]]:
    return {
        "render": ["render", "--run", GENERATOR, "--drums", drums, "--out", out, "--preview", "--size", "32x32",
                   "--fps", "2", "--device", "cpu"],
        "live": ["live", "--drums", drums, "--port", port, "--bars", "1", "--tempo", "999", "--latent-dims", "0",
                 "--spin-ms", "0"],
    }


DEEP = "[" * 100_000 + "]" * 100_000
BAD = {
    "random bytes": np.random.default_rng(0).bytes(2048),
    "not utf-8": b'{"parts": {"kick": [{"time": 0.5, "velocity": 100}]}, "name": "caf\xe9"}',
    "not json": "tempo = 120\nkick: x...\n",
    "deeply nested": DEEP,
    "nested object": '{"parts": ' + "{\"a\": " * 50_000 + "1" + "}" * 50_000 + "}",
    "huge integer": '{"duration": 1' + "0" * 5000 + ', "parts": {}}',
    "a list": [1, 2, 3],
    "parts a list": {"duration": 2.0, "parts": [[0.5, 100]]},
    "onsets a dict": good(parts={"kick": {"time": 0.5}}),
    "onset a number": with_kick(0.5),
    "string time": with_kick({"time": "0.5", "velocity": 100}),
    "bool velocity": with_kick({"time": 0.5, "velocity": True}),
    "negative time": with_kick({"time": -0.5, "velocity": 100}, {"time": 0.5, "velocity": 100}),
    "nan time": with_kick({"time": math.nan, "velocity": 100}),
    "inf velocity": with_kick({"time": 0.5, "velocity": math.inf}),
    "velocity 0": with_kick({"time": 0.5, "velocity": 0}),
    "velocity 128": with_kick({"time": 0.5, "velocity": 128}),
    "time past duration": with_kick({"time": 2.5, "velocity": 100}),
    "duration 1e12": good(duration=1e12),
    "duration 0": good(duration=0),
    "duration negative": good(duration=-2.0),
    "duration nan": good(duration=math.nan),
    "duration a string": good(duration="2 s"),
    "no duration, one onset at 0": {"tempo": 120, "parts": {"kick": [{"time": 0, "velocity": 100}]}},
    "tempo 1e9": good(tempo=1e9),
    "tempo negative": good(tempo=-120),
    "tempo 0": good(tempo=0),
    "tempo 0.5": good(tempo=0.5),
    "tempo inf": good(tempo=math.inf),
    "beats_per_bar 2.5": good(beats_per_bar=2.5),
    "beats_per_bar a string": good(beats_per_bar="4"),
    "unknown part": good(parts={"kick": [], "cowbell\nmore": [{"time": 0.1}]}),
    "audio not a name": good(audio=["mix.wav"]),
    "audio escapes with ..": good(audio="../../etc/passwd"),
    "audio absolute outside": good(audio="/etc/passwd"),
}


@pytest.mark.parametrize("sink", ["render", "live"])
@pytest.mark.parametrize("case", list(BAD))
def test_bad_onsets_file_is_one_line(tmp_path, sink_port, case, sink):
    drums = tmp_path / "drums"
    path = write(drums / "cand-01", BAD[case])
    argv = sinks(drums, tmp_path / "out", sink_port)[sink]
    res = expect_clean_error(argv, names=str(path), watch=[drums])
    assert not (tmp_path / "out").exists()
    # the error comes from the one loader, whichever command reads the file
    with pytest.raises(BreakganError) as e:
        timeline_from_drums(drums)
    assert str(e.value) in res.err


@pytest.mark.timeout(60)
def test_live_with_a_negative_time_exits_at_once(tmp_path, sink_port):
    """The issue's hang: without --bars, live used to busy-loop forever on this file."""
    drums = tmp_path / "D"
    path = write(drums, with_kick({"time": -0.25, "velocity": 100}, {"time": 0.5, "velocity": 100}))
    res = expect_clean_error(["live", "--drums", drums, "--port", sink_port], names=str(path), watch=[drums])
    assert "negative" in res.err


def test_audio_symlink_out_of_the_folder_is_refused(tmp_path, sink_port):
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF")
    drums = tmp_path / "drums"
    write(drums, good(audio="mix.wav"))
    (drums / "mix.wav").symlink_to(secret)
    for sink in ("render", "live"):
        res = expect_clean_error(sinks(drums, tmp_path / "out", sink_port)[sink], names=str(drums / "onsets.json"),
                                 watch=[drums, secret])
        assert "outside" in res.err


def test_audio_inside_the_folder_is_followed(tmp_path):
    drums = tmp_path / "drums"
    write(drums, good(audio="sub/../mix.wav"))
    assert timeline_from_drums(drums).audio == drums / "sub/../mix.wav"
    write(drums, good(audio=str(drums / "mix.wav")))  # absolute, but inside its own folder
    assert timeline_from_drums(drums).audio == drums / "mix.wav"


def test_size_is_checked_before_parsing(tmp_path, sink_port):
    drums = tmp_path / "drums"
    path = drums / "onsets.json"
    drums.mkdir()
    with open(path, "wb") as f:  # sparse: costs no disk
        f.truncate(ONSETS_MAX_BYTES + 1)
    for sink in ("render", "live"):
        res = expect_clean_error(sinks(drums, tmp_path / "out", sink_port)[sink], names=str(path), watch=[drums])
        assert "MB" in res.err


def test_more_onsets_than_the_limit_are_refused(tmp_path):
    drums = tmp_path / "drums"
    n = MAX_ONSETS_PER_PART + 1
    text = '{"duration": 60.0, "parts": {"kick": [' + ",".join(['{"time":1}'] * n) + "]}}"
    assert len(text) < ONSETS_MAX_BYTES  # the count limit, not the size limit, is what refuses it
    path = write(drums, text)
    res = expect_clean_error(["live", "--drums", drums], names=str(path), watch=[drums])
    assert "1,000,001 onsets" in res.err


def test_unsorted_and_duplicate_times_are_sorted_on_read(tmp_path, sink_port):
    drums = tmp_path / "drums"
    write(drums, with_kick({"time": 1.5, "velocity": 10}, {"time": 0.0, "velocity": 127},
                           {"time": 1.5, "velocity": 20}, {"time": 2.0}))  # t == duration: the loop's end
    tl = timeline_from_drums(drums)
    np.testing.assert_allclose(tl.onsets("kick")[:, 0], [0.0, 1.5, 1.5, 2.0])
    np.testing.assert_allclose(tl.onsets("kick")[1:3, 1], [10 / 127, 20 / 127])  # stable: file order kept
    res = run_cli(sinks(drums, tmp_path / "out", sink_port)["live"])
    assert res.code == 0, res.err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name, data", [
    ("all onsets at 0", with_kick(*[{"time": 0.0, "velocity": 100}] * 20)),
    ("a single onset", with_kick({"time": 1.0, "velocity": 100})),
    ("duration from the last onset", {"tempo": 120, "parts": {"kick": [{"time": 0.5}, {"time": 1.0}]}}),
    ("six hours", with_kick({"time": 0.0, "velocity": 100}, duration=6 * 3600.0)),
])
def test_live_ends_on_odd_but_valid_timelines(tmp_path, sink_port, name, data):
    drums = tmp_path / "drums"
    write(drums, data)
    res = run_cli(sinks(drums, tmp_path / "out", sink_port)["live"])
    assert res.code == 0, res.err


def test_a_pattern_without_onsets_is_refused_by_live_naming_the_file(tmp_path, sink_port):
    drums = tmp_path / "drums"
    path = write(drums / "cand-01", good(parts={}))
    # still a valid drums folder (`drums transcribe` writes one for a song without drums): only playing it fails
    assert timeline_from_drums(drums).active_parts == ()
    with pytest.raises(BreakganError) as e:
        timeline_from_drums(drums, playable=True)
    res = expect_clean_error(sinks(drums, tmp_path / "out", sink_port)["live"], names=str(path), watch=[drums])
    assert res.err_lines == [f"error: {e.value}"] and "no onsets in any part" in res.err


def test_a_pattern_without_onsets_is_refused_by_render_naming_the_file(tmp_path, sink_port):
    drums = tmp_path / "drums"
    path = write(drums / "cand-01", good(parts={}))
    expect_clean_error(sinks(drums, tmp_path / "out", sink_port)["render"], names=str(path), watch=[drums])


def test_read_onsets_file_names_the_file(tmp_path):
    path = write(tmp_path, DEEP)
    with pytest.raises(BreakganError, match=f"{path}: JSON nested too deeply"):
        read_onsets_file(path)
    assert read_onsets_file(write(tmp_path, good())) == json.loads(json.dumps(good()))


# ---- generated files -------------------------------------------------------------------------------

# Values a user might write where a number belongs; each is wrong for some field (None: a missing
# value). Good values stay small (at most 16 s of timeline), so an accepted file renders in a second.
BAD_NUMBERS = st.one_of(
    st.sampled_from([-1.0, -1e-9, 0, 1e12, 1e308, 10**40, math.nan, math.inf, -math.inf]),
    st.text(max_size=4), st.booleans(), st.none(), st.lists(st.integers(), max_size=2),
)


def mostly(good, bad=BAD_NUMBERS):
    """Five parts good to one part bad: files are valid often enough that both outcomes are exercised."""
    return st.sampled_from([good] * 5 + [bad]).flatmap(lambda chosen: chosen)


TIMES = mostly(st.floats(min_value=0.0, max_value=2.0))
ONSET = mostly(st.fixed_dictionaries({"time": TIMES}, optional={"velocity": mostly(st.integers(1, 127)),
                                                                  "step": BAD_NUMBERS}))
PART_NAMES = mostly(st.sampled_from(PARTS), st.sampled_from(["cowbell", "", "KICK"]))
FILES = st.fixed_dictionaries(
    {"parts": mostly(st.dictionaries(PART_NAMES, st.lists(ONSET, max_size=4), max_size=3),
                     st.lists(ONSET, max_size=2)),
     "duration": mostly(st.floats(min_value=2.0, max_value=2.5))},  # None: from bars or the last onset
    optional={
        "tempo": mostly(st.floats(min_value=60.0, max_value=400.0)),
        "beats_per_bar": mostly(st.integers(min_value=1, max_value=8)),
        "bars": mostly(st.sampled_from([0.5, 1, 2])),
        "audio": mostly(st.sampled_from(["mix.wav", None]),
                        st.one_of(st.sampled_from(["../mix.wav", "/etc/passwd", "a/../../b"]), BAD_NUMBERS)),
    },
)


@pytest.mark.timeout(120)
@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=FILES)
def test_generated_onsets_files_give_a_clean_answer(tmp_path_factory, sink_port, data):
    """Both sinks, one generated file: success, or the loader's one line, never a traceback or hang."""
    tmp = tmp_path_factory.mktemp("gen")
    drums = tmp / "drums"
    write(drums, data)
    try:
        timeline_from_drums(drums)
        loader_error = None
    except BreakganError as e:
        loader_error = str(e)
    for sink, argv in sinks(drums, tmp / "out", sink_port).items():
        res = run_cli(argv)
        assert "Traceback" not in res.err + res.out and "internal error" not in res.err, (sink, data, res.err)
        if loader_error is not None:
            assert res.code != 0 and res.err_lines == [f"error: {loader_error}"], (sink, data, res.err)
        elif res.code != 0:  # a valid file the command declines (render: no onsets to move): one line
            assert len(res.err_lines) == 1, (sink, data, res.err)
        elif sink == "render":
            assert (tmp / "out" / "render.mp4").is_file()
