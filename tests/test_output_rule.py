"""The one output-folder rule (stage.output_dir): what --out accepts, locking, leftovers of killed runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from badinput import expect_clean_error, run_cli, snapshot
from breakgan.errors import BreakganError
from breakgan.stage import check_out, check_out_file, make_record, output_dir, write_record

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "assets" / "seeds" / "breakbeat.mid"
GENERATOR = ROOT / "assets" / "demo" / "generator.safetensors"


def _earlier(folder: Path, stage: str) -> Path:
    folder.mkdir(parents=True)
    write_record(folder, make_record(stage, {}, {}))
    (folder / "result.txt").write_text("previous")
    return folder


def test_accepts_missing_empty_and_an_earlier_output_of_the_same_stage(tmp_path):
    for out in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        with output_dir(out, "drums") as tmp:
            (tmp / "a.txt").write_text("new")
        assert (out / "a.txt").read_text() == "new"
    earlier = _earlier(tmp_path / "earlier", "drums")
    with output_dir(earlier, "drums") as tmp:
        write_record(tmp, make_record("drums", {"v": 2}, {}))
    assert not (earlier / "result.txt").exists()  # replaced whole, not merged
    assert json.loads((earlier / "breakgan.json").read_text())["options"] == {"v": 2}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp or lock left


def test_an_earlier_output_the_user_added_files_to_is_refused_untouched(tmp_path):
    out = tmp_path / "out"
    with output_dir(out, "drums") as tmp:
        write_record(tmp, make_record("drums", {"v": 1}, {}))
        (tmp / "cand-01").mkdir()
        (tmp / "cand-01" / "mix.wav").write_bytes(b"audio")
    for added in (out / "cand-01" / "notes.txt", out / "mine.txt", out / "extra" / "x.png"):
        added.parent.mkdir(exist_ok=True)
        added.write_text("the user's")
        before = snapshot(out)
        with pytest.raises(BreakganError, match=r"also holds files breakgan did not write \(.*\)"):
            with output_dir(out, "drums") as tmp:
                pytest.fail("must not start")
        assert snapshot(out) == before
        added.unlink()
        if added.parent.name == "extra":
            with pytest.raises(BreakganError, match=r"\(extra/\)"):  # an empty folder of theirs counts too
                check_out(out, "drums")
            added.parent.rmdir()
    (out / ".DS_Store").write_bytes(b"Finder")  # a file browser's metadata is not the user's work
    (out / "cand-01" / "._mix.wav").write_bytes(b"AppleDouble")
    (out / "cand-01" / "Thumbs.db").write_bytes(b"Explorer")
    with output_dir(out, "drums") as tmp:  # only what the command wrote: replaced as before
        write_record(tmp, make_record("drums", {"v": 2}, {}))
    assert json.loads((out / "breakgan.json").read_text())["options"] == {"v": 2}
    assert not (out / "cand-01").exists()


@pytest.mark.parametrize("case", ["file", "foreign", "other-stage", "is-input", "contains-input", "link",
                                  "unreadable-record"])
def test_refuses_and_touches_nothing(tmp_path, case):
    out = tmp_path / "out"
    inputs = []
    if case == "file":
        out.write_text("a file")
    elif case == "foreign":
        out.mkdir()
        (out / "thesis.txt").write_text("years of work")
    elif case == "other-stage":
        _earlier(out, "render")
    elif case == "is-input":
        _earlier(out, "drums")
        inputs = [out]
    elif case == "contains-input":
        _earlier(out, "drums")
        inputs = [out / "result.txt"]
    elif case == "link":
        (tmp_path / "target").mkdir()
        out.symlink_to(tmp_path / "target")
    elif case == "unreadable-record":
        out.mkdir()
        (out / "breakgan.json").write_bytes(os.urandom(64))
    before = snapshot(tmp_path)
    with pytest.raises(BreakganError, match=str(out)):
        with output_dir(out, "drums", inputs=inputs) as tmp:
            (tmp / "x").write_text("must never land")
    assert snapshot(tmp_path) == before


def test_a_failed_build_leaves_the_previous_output(tmp_path):
    out = _earlier(tmp_path / "out", "render")
    with pytest.raises(RuntimeError):
        with output_dir(out, "render") as tmp:
            (tmp / "half.mp4").write_bytes(b"half")
            raise RuntimeError("encoder died")
    assert (out / "result.txt").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_check_out_file_only_replaces_its_own_kind(tmp_path):
    mine = tmp_path / "m.json"
    mine.write_text(json.dumps({"stage": "metrics", "fake": {}}))
    assert check_out_file(mine, "metrics", option="--json") == mine
    check_out_file(tmp_path / "new.json", "metrics", option="--json")
    other = tmp_path / "notes.json"
    other.write_text('{"my": "notes"}')
    for bad in (other, tmp_path):
        with pytest.raises(BreakganError, match="--json"):
            check_out_file(bad, "metrics", option="--json")


# ---- the commands, as a user meets them (the repros of issue 10) -------------------------------------

def test_drums_refuses_a_folder_with_a_users_files(tmp_path):
    k = tmp_path / "k"
    k.mkdir()
    (k / "thesis.txt").write_text("x")
    expect_clean_error(["drums", "--seed-pattern", "kick: x...x...x...x...", "--out", k, "--bars", "1"],
                       names="thesis.txt", watch=[tmp_path])
    # a seed longer than --bars would warn: the refusal comes first, alone
    expect_clean_error(["drums", "--seed", SEED, "--out", k, "--bars", "1"], names="thesis.txt", watch=[tmp_path])


def test_render_refuses_its_own_input_folder(tmp_path):
    drums = tmp_path / "D"
    res = run_cli(["drums", "--seed-pattern", "kick: x...x...x...x...; snare: ....x.......x...",
                   "--out", drums, "--bars", "1"])
    assert res.code == 0, res.err
    expect_clean_error(["render", "--run", GENERATOR, "--drums", drums, "--out", drums, "--preview"],
                       names=str(drums), watch=[tmp_path])
    # --layout solo would warn that the footage is unused: the refusal comes first, alone
    expect_clean_error(["render", "--run", GENERATOR, "--drums", drums, "--out", drums, "--layout", "solo"],
                       names=str(drums), watch=[tmp_path])
    expect_clean_error(["render", "--run", GENERATOR, "--drums", drums, "--out", tmp_path],
                       names=["input", "did not write"], watch=[tmp_path])


def test_sample_writes_a_stage_folder_and_refuses_foreign_ones(tmp_path):
    out = tmp_path / "s"
    assert run_cli(["sample", GENERATOR, "--seeds", "0-1", "--out", out]).code == 0
    assert json.loads((out / "breakgan.json").read_text())["stage"] == "sample"
    assert run_cli(["sample", GENERATOR, "--seeds", "2", "--out", out]).code == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["seed0002.png"]  # replaced, not merged
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.png").write_bytes(b"\x89PNG")
    expect_clean_error(["sample", GENERATOR, "--seeds", "0", "--out", foreign], names="holiday.png",
                       watch=[tmp_path])


# ---- locking and killed runs ---------------------------------------------------------------------------

_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from breakgan.stage import output_dir
    out = Path(sys.argv[1])
    with output_dir(out, "drums") as tmp:
        (tmp / "partial.bin").write_bytes(b"x" * 1000)
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
        (tmp / "done.txt").write_text("new")
""")


def _hold(out: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out), str(seconds)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_a_second_writer_gets_one_line_naming_the_first(tmp_path):
    out = _earlier(tmp_path / "out", "drums")
    proc = _hold(out, 30)
    try:
        with pytest.raises(BreakganError, match=rf"in use by pid {proc.pid}"):
            with output_dir(out, "drums"):
                pass
        expect_clean_error(["drums", "--seed-pattern", "kick: x...", "--out", out, "--bars", "1"],
                           names=f"pid {proc.pid}")
    finally:
        proc.kill()
        proc.wait()
    assert (out / "result.txt").read_text() == "previous"


def test_kill_9_leftovers_are_removed_by_the_next_run(tmp_path):
    out = _earlier(tmp_path / "out", "drums")
    proc = _hold(out, 60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert len(leftovers) == 1 and str(proc.pid) in leftovers[0]
    assert (out / "result.txt").read_text() == "previous"  # the killed run changed nothing
    with output_dir(out, "drums") as tmp:
        write_record(tmp, make_record("drums", {}, {}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_partial_of_a_live_process_is_left_alone(tmp_path):
    other = tmp_path / "other"
    proc = _hold(other, 30)  # a different --out in the same parent, still being written
    try:
        with output_dir(tmp_path / "out", "drums") as tmp:
            write_record(tmp, make_record("drums", {}, {}))
        assert any(p.name.startswith(".other.") and p.name.endswith(".partial") for p in tmp_path.iterdir())
    finally:
        proc.kill()
        proc.wait()


def test_a_folder_swapped_while_it_is_listed_is_listed_again(tmp_path, monkeypatch):
    """The race behind a rare failure of the test below: another run swaps its new output in while this
    one lists OUT, so the listing shows the previous output being emptied (its record already gone)."""
    import breakgan.stage as stage

    out = _earlier(tmp_path / "out", "drums")
    new = _earlier(tmp_path / "new", "drums")
    real_scandir = os.scandir
    calls = []

    def scandir_during_a_swap(path):
        it = real_scandir(path)
        if not calls:
            old = tmp_path / "old"
            os.replace(out, old)  # the other run: previous output aside, new one in, previous emptied
            os.replace(new, out)
            (old / "breakgan.json").unlink()
        calls.append(path)
        return it

    monkeypatch.setattr(stage.os, "scandir", scandir_during_a_swap)
    assert check_out(out, "drums") == out
    assert len(calls) == 2  # listed again once the swap was seen


def test_concurrent_swaps_never_raise_raw_errors(tmp_path):
    out = tmp_path / "out"
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from breakgan.errors import BreakganError
        from breakgan.stage import make_record, output_dir, write_record
        out = Path(sys.argv[1]); ok = busy = 0
        for i in range(60):
            try:
                with output_dir(out, "drums") as tmp:
                    write_record(tmp, make_record("drums", {"i": i}, {}))
                    (tmp / "payload").write_bytes(b"p" * 4096)
                ok += 1
            except BreakganError as e:
                assert "in use by pid" in str(e), e
                busy += 1
        print(ok, busy)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(3)]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (so, se) in zip(procs, results):
        assert p.returncode == 0, se
    counts = [tuple(map(int, so.split())) for so, _ in results]
    assert all(ok + busy == 60 for ok, busy in counts) and sum(ok for ok, _ in counts) >= 1
    assert json.loads((out / "breakgan.json").read_text())["stage"] == "drums"
    assert (out / "payload").stat().st_size == 4096
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_drums_train_and_export_never_take_a_users_files(tmp_path):
    midi = tmp_path / "midi"
    midi.mkdir()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    expect_clean_error(["drums", "train", midi, "--out", foreign], names="notes.txt", watch=[tmp_path])
    shipped = ROOT / "assets" / "drums" / "drums_rnn.safetensors"
    song = tmp_path / "song.safetensors"
    song.write_bytes(b"not ours")
    expect_clean_error(["drums", "export", shipped, song], names=str(song), watch=[tmp_path])
    fresh = tmp_path / "model.safetensors"
    assert run_cli(["drums", "export", shipped, fresh]).code == 0
    assert run_cli(["drums", "export", shipped, fresh]).code == 0  # an earlier export may be replaced
    expect_clean_error(["drums", "export", fresh, fresh], names="is the file being exported", watch=[tmp_path])
    from breakgan.gan.checkpoint import export_generator

    generator = tmp_path / "g.safetensors"
    export_generator(GENERATOR, generator)
    before = snapshot(tmp_path)
    with pytest.raises(BreakganError, match="is the file being exported"):
        export_generator(generator, generator)
    assert snapshot(tmp_path) == before
