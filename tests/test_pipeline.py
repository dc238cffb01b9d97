"""`breakgan run`: recipes parse with clear errors, stages run in order and skip when unchanged."""

import json
import sys
import textwrap
from pathlib import Path

import pytest

from breakgan.errors import BreakganError
from breakgan.pipeline.commands import OptionSpec, stage_argv
from breakgan.pipeline.recipe import load_recipe, parse_sets
from breakgan.pipeline.runner import plan, run_pipeline
from breakgan.stage import make_record, write_record

# Two fake commands: "make" (size, --mirror/--no-mirror, --seed) and "use" (--model, --tag).
FAKE = {
    "make": {"out": OptionSpec(), "size": OptionSpec(), "mirror": OptionSpec(is_flag=True),
             "no-mirror": OptionSpec(is_flag=True), "seed": OptionSpec(), "tags": OptionSpec(multiple=True)},
    "use": {"out": OptionSpec(), "model": OptionSpec(), "tag": OptionSpec()},
    "drums train": {"out": OptionSpec()},
}


class FakeStages:
    """Stands in for the CLI: writes each stage's folder + breakgan.json, remembers what ran."""

    def __init__(self, fail: str | None = None):
        self.ran: list[str] = []
        self.fail = fail

    def __call__(self, step) -> int:
        self.ran.append(step.stage.name)
        if step.stage.name == self.fail:
            return 3
        out = Path(step.stage.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "result.txt").write_text(" ".join(step.argv))
        write_record(out, make_record(step.stage.command[0], step.stage.options, {}))
        return 0


def recipe(tmp_path: Path, body: str, name: str = "r.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


@pytest.fixture
def chain(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"clip-1")
    (tmp_path / "model.bin").write_bytes(b"model-1")
    return recipe(tmp_path, f"""
        [pipeline]
        description = "a -> b, c alone"
        [vars]
        out = "{tmp_path}/out"
        clip = "{tmp_path}/clip.mp4"

        [[stages]]
        name = "a"
        command = "make"
        inputs = ["${{clip}}"]
        out = "${{out}}/a"
        options = {{ size = 64, mirror = false }}

        [[stages]]
        name = "b"
        command = "use"
        inputs = {{ args = ["@a"], model = "{tmp_path}/model.bin" }}
        out = "${{out}}/b"
        options = {{ tag = "x" }}

        [[stages]]
        name = "c"
        command = "make"
        out = "${{out}}/c"
        """)


def run(path, sets=(), force=(), dry_run=False, fail=None):
    fake = FakeStages(fail)
    r = load_recipe(path, parse_sets(list(sets)), commands=FAKE)
    steps = run_pipeline(r, force=force, dry_run=dry_run, executor=fake, commands=FAKE)
    return fake.ran, steps


def test_stage_argv_maps_inputs_options_and_out(chain, tmp_path):
    r = load_recipe(chain, commands=FAKE)
    a, b, _ = r.stages
    assert stage_argv(a, FAKE) == ["make", f"{tmp_path}/clip.mp4", "--out", f"{tmp_path}/out/a",
                                   "--size", "64", "--no-mirror"]
    assert stage_argv(b, FAKE) == ["use", f"{tmp_path}/out/a", "--model", f"{tmp_path}/model.bin",
                                   "--out", f"{tmp_path}/out/b", "--tag", "x"]
    assert b.depends == ("a",) and a.depends == ()


def test_second_run_skips_everything_then_changes_rerun_what_depends(chain, tmp_path):
    ran, _ = run(chain)
    assert ran == ["a", "b", "c"]
    ran, steps = run(chain)
    assert ran == [] and [s.reason for s in steps] == ["unchanged"] * 3
    # The record the stage wrote keeps what the runner compares.
    rec = json.loads((tmp_path / "out/a/breakgan.json").read_text())
    assert rec["stage"] == "make" and rec["pipeline"]["argv"][0] == "make"

    (tmp_path / "clip.mp4").write_bytes(b"clip-2")  # new content: a and b (uses a) rerun, c does not
    ran, steps = run(chain)
    assert ran == ["a", "b"]
    assert steps[0].reason == "input args changed" and steps[1].reason == "after a"

    (tmp_path / "model.bin").write_bytes(b"model-2")
    assert run(chain)[0] == ["b"]

    ran, steps = run(chain, sets=["a.size=128"])
    assert ran == ["a", "b"] and steps[0].reason == "options changed (--size 64 -> 128)"


def test_a_new_breakgan_version_reruns(chain, tmp_path, monkeypatch):
    import breakgan.pipeline.runner as runner

    run(chain)
    monkeypatch.setattr(runner, "__version__", "9.9.9")
    ran, steps = run(chain)
    assert ran == ["a", "b", "c"]
    assert steps[0].reason.startswith("made by breakgan ") and steps[0].reason.endswith("this is 9.9.9")
    assert run(chain)[0] == []


def test_force_reruns_a_stage_and_its_dependants(chain):
    run(chain)
    assert run(chain, force=["a"])[0] == ["a", "b"]
    assert run(chain, force=["b"])[0] == ["b"]
    assert run(chain, force=["all"])[0] == ["a", "b", "c"]
    with pytest.raises(BreakganError, match=r"no stage named 'zz' \(stages: a, b, c\)"):
        run(chain, force=["zz"])


def test_dry_run_prints_plan_and_runs_nothing(chain, tmp_path, capsys):
    ran, steps = run(chain, dry_run=True)
    assert ran == [] and [s.status for s in steps] == ["run"] * 3
    assert not (tmp_path / "out").exists()
    assert steps[1].reason == "after a"
    run(chain)
    ran, steps = run(chain, dry_run=True, sets=["b.tag=y"])
    assert ran == [] and [s.status for s in steps] == ["skip", "run", "skip"]


def test_deleted_output_reruns(chain, tmp_path):
    import shutil

    run(chain)
    shutil.rmtree(tmp_path / "out/c")
    assert run(chain)[0] == ["c"]


def test_a_failing_stage_stops_the_run_and_names_it(chain):
    with pytest.raises(BreakganError, match=r"r\.toml:\d+: stage \"b\" failed \(exit 3\)") as e:
        run(chain, fail="b")
    assert e.value.exit_code == 3
    # a finished and is recorded; b reruns next time, c never ran
    assert run(chain)[0] == ["b", "c"]


def test_disabled_stage_and_variables(tmp_path):
    (tmp_path / "x").write_text("x")
    p = recipe(tmp_path, f"""
        [vars]
        clips = {{ required = "your clips" }}
        gen = "{tmp_path}/x"
        [[stages]]
        command = "make"
        inputs = ["${{clips}}"]
        out = "{tmp_path}/made"
        [[stages]]
        name = "train"
        command = "make"
        enabled = false
        inputs = ["@make"]
        out = "{tmp_path}/run"
        [[stages]]
        command = "use"
        inputs = {{ model = "${{gen}}" }}
        out = "{tmp_path}/used"
        """)
    with pytest.raises(BreakganError, match=r"set \$\{clips\} \(your clips\): breakgan run .*--set clips=VALUE"):
        load_recipe(p, commands=FAKE)
    two = f"clips=[\"{tmp_path}/x\", \"{tmp_path}/x\"]"
    ran, steps = run(p, sets=[two])
    assert ran == ["make", "use"] and steps[1].status == "disabled"
    assert steps[0].argv[1:3] == [f"{tmp_path}/x"] * 2  # a list variable becomes several arguments
    # Switching the generator to the trained run: enable train, point gen at it.
    ran, steps = run(p, sets=[two, "train.enabled=true", "gen=@train"])
    assert ran == ["train", "use"]
    assert steps[2].argv[1:3] == ["--model", f"{tmp_path}/run"]


@pytest.mark.parametrize("body, message", [
    ("[[stages]]\ncommand = \"make\"\nout = 'x'\noptions = { size = 1\n", r"r\.toml: not valid TOML: .*line 4"),
    ("[[stages]]\ncommand = \"mkae\"\n", r"r\.toml:1: stage \"mkae\": unknown command 'mkae' \(commands: drums train, make, use, script\)"),
    ("\n\n[[stages]]\ncommand = \"make\"\noptions = { sise = 1 }\n",
     r"r\.toml:3: stage \"make\": `breakgan make` has no option --sise \(options: --mirror, --out, --seed, --size"),
    ("[[stages]]\ncommand = \"use\"\ninputs = ['@later']\n[[stages]]\nname = 'later'\ncommand = 'make'\nout = 'o'\n",
     r"r\.toml:1: stage \"use\": input args: @later is a later stage"),
    ("[[stages]]\ncommand = \"make\"\ninputs = ['${nope}']\n", r"r\.toml:1: stage \"make\": unknown variable \$\{nope\}"),
    ("[[stages]]\ncommand = \"make\"\n[[stages]]\ncommand = \"make\"\n", r"r\.toml:3: stage \"make\": a stage named 'make' already exists \(line 1\)"),
    ("[[stages]]\ncommand = \"make\"\ninput = []\n", r"r\.toml:1: stage \"make\": unknown key\(s\) input"),
    ("[[stages]]\nname = \"x\"\n", r"r\.toml:1: stage \"x\": needs command = "),
    ("[stages]\ncommand = 'make'\n", r"r\.toml: no \[\[stages\]\]"),
    ("[[stages]]\ncommand = 'script'\n", r"r\.toml:1: stage \"script\": command = \"script\" needs script"),
])
def test_bad_recipes_name_file_line_stage_and_problem(tmp_path, body, message):
    with pytest.raises(BreakganError, match=message):
        load_recipe(recipe(tmp_path, body), commands=FAKE)


def test_missing_input_and_bad_set_are_clear(tmp_path, chain):
    with pytest.raises(BreakganError, match=r"--set zz: no such variable"):
        load_recipe(chain, parse_sets(["zz=1"]), commands=FAKE)
    with pytest.raises(BreakganError, match=r"--set q\.size: no such stage"):
        load_recipe(chain, parse_sets(["q.size=1"]), commands=FAKE)
    with pytest.raises(BreakganError, match=r"expected NAME=VALUE"):
        parse_sets(["size"])
    (tmp_path / "clip.mp4").unlink()
    with pytest.raises(BreakganError, match=r"r\.toml:\d+: stage \"a\": input args: .*clip\.mp4 not found"):
        plan(load_recipe(chain, commands=FAKE), commands=FAKE)


def test_script_stage_runs_in_a_subprocess_and_gets_a_record(tmp_path):
    script = tmp_path / "gen.py"
    script.write_text("import sys, pathlib\nargs = sys.argv[1:]\n"
                      "out = pathlib.Path(args[args.index('--out') + 1])\n"
                      "out.write_text(' '.join(args))\n")
    p = recipe(tmp_path, f"""
        [[stages]]
        name = "clip"
        command = "script"
        script = "{script}"
        out = "{tmp_path}/clip.txt"
        options = {{ size = 32, loud = true }}
        """)
    r = load_recipe(p, commands=FAKE)
    steps = run_pipeline(r, commands=FAKE)
    assert steps[0].status == "run"
    assert (tmp_path / "clip.txt").read_text() == f"--out {tmp_path}/clip.txt --size 32 --loud"
    rec = json.loads((tmp_path / "clip.txt.breakgan.json").read_text())
    assert rec["stage"] == "clip" and rec["pipeline"]["inputs"]["script"].startswith("sha256:")
    assert plan(load_recipe(p, commands=FAKE), commands=FAKE)[0].status == "skip"
    script.write_text(script.read_text() + "\n# changed\n")
    assert plan(load_recipe(p, commands=FAKE), commands=FAKE)[0].reason == "input script changed"


def test_cli_run_dry_run_and_errors(tmp_path, capsys):
    """The real CLI: recipe validated against breakgan's own commands; bad option is one line."""
    from breakgan.cli import main

    (tmp_path / "c.mp4").write_bytes(b"x")
    good = recipe(tmp_path, f"""
        [[stages]]
        command = "ingest"
        inputs = ["{tmp_path}/c.mp4"]
        out = "{tmp_path}/ds"
        """)
    with pytest.raises(SystemExit) as e:
        main(["run", str(good), "--dry-run"])
    assert e.value.code == 0
    err = capsys.readouterr().err
    assert "ingest" in err and "not run yet" in err
    assert not (tmp_path / "ds").exists()
    bad = recipe(tmp_path, "[[stages]]\ncommand = \"ingest\"\noptions = { colour = 1 }\n", "bad.toml")
    with pytest.raises(SystemExit) as e:
        main(["run", str(bad)])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "bad.toml:1: stage \"ingest\"" in err and "--colour" in err and "Traceback" not in err


def test_shipped_recipes_parse():
    """Every recipe in pipelines/ loads against the real CLI (breakgan-512 with its clips set)."""
    from breakgan.cli import app
    from breakgan.pipeline.commands import cli_commands

    real = cli_commands(app)
    root = Path(__file__).resolve().parents[1] / "pipelines"
    recipes = sorted(root.glob("*.toml"))
    assert {p.name for p in recipes} >= {"demo.toml", "breakgan-512.toml", "assets.toml"}
    for p in recipes:
        r = load_recipe(p, parse_sets(["clips=footage/"]) if p.name == "breakgan-512.toml" else {}, commands=real)
        assert r.stages, p
    with pytest.raises(BreakganError, match=r"breakgan-512\.toml.*--set clips="):
        load_recipe(root / "breakgan-512.toml", commands=real)


def test_out_flag_positional_or_not_passed(tmp_path):
    p = recipe(tmp_path, f"""
        [[stages]]
        name = "export"
        command = "drums train"
        out = "{tmp_path}/model.bin"
        out_flag = ""
        [[stages]]
        name = "seeds"
        command = "script"
        script = "{tmp_path}/s.py"
        out = "{tmp_path}/seeds"
        out_flag = false
        """)
    a, b = load_recipe(p, commands=FAKE).stages
    assert stage_argv(a, FAKE) == ["drums", "train", f"{tmp_path}/model.bin"]
    assert stage_argv(b, FAKE) == [f"{tmp_path}/s.py"]


class RefusesExisting(FakeStages):
    """Like train: refuses an existing out; `partial` makes stage c write into out and then fail."""

    partial = False

    def __call__(self, step):
        if step.stage.name == "c" and Path(step.stage.out).exists():
            return 1
        if step.stage.name == "c" and self.partial:
            self.ran.append("c")
            Path(step.stage.out).mkdir(parents=True)
            (Path(step.stage.out) / "half.txt").write_text("half")
            return 2
        return super().__call__(step)


def _with_replace_out(chain: Path) -> None:
    chain.write_text(chain.read_text().replace('name = "c"\n', 'name = "c"\nreplace_out = true\n'))


def test_replace_out_puts_the_previous_output_back_when_the_stage_fails(chain, tmp_path):
    from badinput import snapshot

    _with_replace_out(chain)
    fake = RefusesExisting()
    run_pipeline(load_recipe(chain, commands=FAKE), executor=fake, commands=FAKE)
    (tmp_path / "out/c/mine.txt").write_text("old")
    before = snapshot(tmp_path / "out/c")
    fake.partial = True
    with pytest.raises(BreakganError, match='stage "c" failed.*previous output is back in'):
        run_pipeline(load_recipe(chain, parse_sets(["c.size=8"]), commands=FAKE), executor=fake, commands=FAKE)
    assert fake.ran[-1] == "c"
    assert snapshot(tmp_path / "out/c") == before  # the earlier output, exactly; the half-made one is gone
    assert not (tmp_path / "out/c.previous").exists()
    # Ctrl-C while the stage runs: the same
    def interrupted(step):
        Path(step.stage.out).mkdir()
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(load_recipe(chain, parse_sets(["c.size=8"]), commands=FAKE), executor=interrupted,
                     commands=FAKE)
    assert snapshot(tmp_path / "out/c") == before and not (tmp_path / "out/c.previous").exists()


def test_replace_out_drops_its_own_previous_output_once_the_stage_succeeds(chain, tmp_path):
    _with_replace_out(chain)
    fake = RefusesExisting()
    run_pipeline(load_recipe(chain, commands=FAKE), executor=fake, commands=FAKE)
    run_pipeline(load_recipe(chain, parse_sets(["c.size=8"]), commands=FAKE), executor=fake, commands=FAKE)
    assert fake.ran == ["a", "b", "c", "c"]
    assert "--size 8" in (tmp_path / "out/c/result.txt").read_text()
    assert not (tmp_path / "out/c.previous").exists()


def test_replace_out_keeps_what_the_pipeline_did_not_make(chain, tmp_path):
    """A foreign OUT.previous is refused untouched; a foreign OUT is kept as OUT.previous, not deleted."""
    from badinput import snapshot

    _with_replace_out(chain)
    fake = RefusesExisting()
    (tmp_path / "out/c").mkdir(parents=True)
    (tmp_path / "out/c/thesis.txt").write_text("mine")
    run_pipeline(load_recipe(chain, commands=FAKE), executor=fake, commands=FAKE)
    assert (tmp_path / "out/c.previous/thesis.txt").read_text() == "mine"
    before = snapshot(tmp_path / "out")
    with pytest.raises(BreakganError, match="c.previous, which exists and is not an earlier output"):
        run_pipeline(load_recipe(chain, parse_sets(["c.size=8"]), commands=FAKE), executor=fake, commands=FAKE)
    assert snapshot(tmp_path / "out") == before


def test_ctrl_c_lets_the_running_stage_finish_cleanly(tmp_path):
    """Ctrl-C reaches the stage too; the runner waits while it saves (train writes a checkpoint)."""
    import os
    import signal
    import subprocess
    import time

    (tmp_path / "slow.py").write_text(
        "import sys, time, pathlib\nout = pathlib.Path(sys.argv[sys.argv.index('--out') + 1])\n"
        "out.parent.mkdir(exist_ok=True)\n(out.parent / 'started').write_text('')\n"
        "try:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n"
        "    time.sleep(1.0)\n    out.write_text('saved')\n    sys.exit(130)\n")
    p = recipe(tmp_path, '[[stages]]\nname = "slow"\ncommand = "script"\nscript = "slow.py"\nout = "o/result.txt"\n')
    proc = subprocess.Popen([sys.executable, "-m", "breakgan.cli", "run", str(p)], cwd=tmp_path,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while not (tmp_path / "o" / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    assert proc.wait(timeout=30) != 0
    assert (tmp_path / "o" / "result.txt").read_text() == "saved"


def test_after_orders_and_reruns_without_passing_a_path(chain, tmp_path):
    text = chain.read_text() + f'''
[[stages]]
name = "d"
command = "make"
after = ["c"]
out = "{tmp_path}/out/d"
'''
    chain.write_text(text)
    ran, steps = run(chain)
    assert ran == ["a", "b", "c", "d"] and steps[3].reason == "after c"
    assert f"{tmp_path}/out/c" not in steps[3].argv
    assert run(chain)[0] == []
    assert run(chain, force=["c"])[0] == ["c", "d"]
    chain.write_text(text.replace('after = ["c"]', 'after = ["zz"]'))
    with pytest.raises(BreakganError, match=r"stage \"d\": after: 'zz' is not an earlier stage"):
        load_recipe(chain, commands=FAKE)


def test_demo_dry_run_plans_the_built_in_chain(tmp_path):
    """`python -m breakgan.cli demo --dry-run`: the shipped assets are found, nothing is written."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "breakgan.cli", "demo", "--out", str(out), "--dry-run",
                           "--seed", "hiphop"], capture_output=True, text=True, cwd=root, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for stage in ("ingest", "train", "drums", "render", "blend"):
        assert stage in proc.stderr
    assert "hiphop.mid" in proc.stderr and "disabled" in proc.stderr
    assert not out.exists()
    bad = subprocess.run([sys.executable, "-m", "breakgan.cli", "demo", "--out", str(out), "--seed", "polka"],
                         capture_output=True, text=True, cwd=root, timeout=120)
    assert bad.returncode == 1 and "--seed polka" in bad.stderr and "breakbeat" in bad.stderr
