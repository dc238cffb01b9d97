"""`breakgan run` over hostile recipes: one line naming the recipe (and the variable or stage), quickly,
nothing touched; a failing stage leaves the previous output where it was. Recipes are made here, by hand
and by Hypothesis (random TOML values in the places a recipe has them).
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from badinput import expect_clean_error, run_cli, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from breakgan.pipeline.recipe import MAX_EXPANDED_CHARS, MAX_RECIPE_BYTES, MAX_VAR_DEPTH


def write(tmp_path: Path, text: str | bytes, name: str = "r.toml") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(textwrap.dedent(text))
    return p


def dry_run_error(tmp_path: Path, recipe: Path, *more: str, names=None) -> str:
    res = expect_clean_error(["run", str(recipe), "--dry-run", *more], names=names or str(recipe),
                             watch=[tmp_path])
    return res.err


STAGE = '[[stages]]\nname = "a"\ncommand = "drums"\n'


# ---- variable expansion ---------------------------------------------------------------------------------

def _chain(levels: int, first: str, step: str) -> str:
    lines = ["[vars]", f"v0 = {first}"] + [f"v{i} = {step.format(p=f'v{i - 1}')}" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n" + STAGE


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case,body,variable,problem", [
    ("40 doublings", _chain(40, '"ab"', '"${{{p}}}${{{p}}}"') + 'out = "o/${v40}"\n', "${v", "nest more than"),
    ("long doublings", _chain(8, json.dumps("x" * 2000), '"${{{p}}}${{{p}}}"') + 'out = "o/${v8}"\n', "${v",
     f"more than {MAX_EXPANDED_CHARS} characters"),
    ("list doublings", _chain(12, '["ab"]', '["${{{p}}}", "${{{p}}}", "${{{p}}}", "${{{p}}}"]')
     + 'inputs = ["${v12}"]\nout = "o"\n', "${v", f"more than {MAX_EXPANDED_CHARS} characters"),
    ("deep chain", _chain(MAX_VAR_DEPTH + 5, '"ab"', '"${{{p}}}"') + f'out = "o/${{v{MAX_VAR_DEPTH + 5}}}"\n',
     "${v", "nest more than"),
    ("itself", '[vars]\nv = "x${v}"\n' + STAGE + 'out = "${v}"\n', "${v}", "refers to itself"),
    ("each other", '[vars]\nv = "${w}"\nw = "${v}"\n' + STAGE + 'out = "${v}"\n', "${", "refers to itself"),
])
def test_variable_expansion_is_bounded(tmp_path, case, body, variable, problem):
    recipe = write(tmp_path, body)
    err = dry_run_error(tmp_path, recipe)
    assert variable in err and problem in err, err


def test_a_long_but_bounded_expansion_still_works(tmp_path):
    recipe = write(tmp_path, _chain(10, '"ab"', '"${{{p}}}${{{p}}}"') + 'options = { seed_pattern = "${v10}" }\n'
                   + 'out = "o"\n')
    res = run_cli(["run", str(recipe), "--dry-run"])
    assert res.code == 0 and "ab" * 1024 in res.err.replace("\n", ""), res.err  # the plan goes to stderr


# ---- the file itself --------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["random bytes", "binary utf-8", "empty", "too large", "nested 100000 deep",
                                  "nested 40 deep", "stages a number", "stages of numbers", "too many stages",
                                  "unknown table", "unknown stage key", "unknown command", "run inside run",
                                  "a folder", "missing"])
def test_bad_recipe_file(tmp_path, case):
    text: str | bytes
    if case == "random bytes":
        text = bytes(range(256)) * 10
    elif case == "binary utf-8":
        text = "\x00\x01\x02[[stages]]\x7f\n".encode()
    elif case == "empty":
        text = ""
    elif case == "too large":
        text = STAGE + "# " + "x" * MAX_RECIPE_BYTES + "\n"
    elif case == "nested 100000 deep":
        text = "a = " + "[" * 100000 + "]" * 100000 + "\n"
    elif case == "nested 40 deep":
        text = STAGE + "options = { bars = " + "[" * 40 + "]" * 40 + " }\n"
    elif case == "stages a number":
        text = "stages = 5\n"
    elif case == "stages of numbers":
        text = "stages = [1, 2]\n"
    elif case == "too many stages":
        text = "".join(f'[[stages]]\nname = "s{i}"\ncommand = "drums"\n' for i in range(300))
    elif case == "unknown table":
        text = "[bogus]\n" + STAGE
    elif case == "unknown stage key":
        text = STAGE + "bogus = 1\n"
    elif case == "unknown command":
        text = '[[stages]]\ncommand = "frobnicate"\n'
    elif case == "run inside run":
        text = '[[stages]]\ncommand = "run"\n'
    if case == "a folder":
        recipe = tmp_path / "folder.toml"
        recipe.mkdir()
    elif case == "missing":
        recipe = tmp_path / "missing.toml"
    else:
        recipe = write(tmp_path, text)
    dry_run_error(tmp_path, recipe)


@pytest.mark.parametrize("pipeline", ['[pipeline]\ndescription = "d"\nbogus_key = 1\n', "[pipeline]\nbogus_key = 1\n"])
def test_unknown_pipeline_key(tmp_path, pipeline):
    recipe = write(tmp_path, "\n" + pipeline + STAGE + 'out = "o"\n')
    err = dry_run_error(tmp_path, recipe, names=f"{recipe}:2:")
    assert "[pipeline] has unknown key(s) bogus_key" in err, err


@pytest.mark.parametrize("body", [
    'out = "o/x"\noptions = { out = "o/elsewhere" }',
    'options = { out = "o/elsewhere" }',
    'out = "o/x"\ninputs = { out = "o/elsewhere" }',
    'out = "o/x"\nout_flag = "--seed-pattern"\noptions = { seed_pattern = "kick: x" }',
])
def test_options_may_not_set_the_out_flag(tmp_path, body):
    """Else the command line has the flag twice, the stage writes elsewhere and the run fails after it."""
    recipe = write(tmp_path, STAGE + body + "\n")
    err = dry_run_error(tmp_path, recipe)
    assert 'stage "a"' in err and "use the stage's out = " in err, err
    assert not (tmp_path / "o").exists()


def test_the_out_flag_is_free_when_out_is_positional_or_not_passed(tmp_path):
    for flag in ('""', "false"):
        recipe = write(tmp_path, STAGE + f'out = "o/x"\nout_flag = {flag}\noptions = {{ out = "o/y" }}\n')
        res = run_cli(["run", str(recipe), "--dry-run"])
        assert res.code == 0 and "Traceback" not in res.err, res.err


@pytest.mark.parametrize("body,problem", [
    ('inputs = { model = [["a"]] }', "nested lists"),
    ('inputs = [["a"]]', "nested lists"),
    ('inputs = { model = 5 }', "is not a path"),
    ('options = { bars = [[1, [2]]] }', "list inside a list"),
    ('options = { bars = [{ a = 1 }] }', "list inside a list or a table"),
    ('options = { bars = { a = 1 } }', "a table is not"),
    ('out = ""', "out is empty"),
    ('out = 5', "path string"),
    ('out = "a\\u0000b"', "NUL"),
    ('options = { seed_pattern = ["\\u0000"] }', "NUL"),
    ('after = [5]', "after must be"),
    ('after = ["later"]', "not an earlier stage"),
    ('inputs = ["@nobody"]', "not a stage"),
    ('out_flag = "out"', "out_flag"),
    ('enabled = "yes"', "true or false"),
    ('name = "${x}"', "needs a name"),
    ('inputs = ["missing/clip.mp4"]', "not found"),
])
def test_bad_stage_values(tmp_path, body, problem):
    renamed = body.startswith("name")
    recipe = write(tmp_path, ('[[stages]]\ncommand = "drums"\n' if renamed else STAGE) + body + "\n")
    err = dry_run_error(tmp_path, recipe)
    assert problem in err and ('stage "${x}"' if renamed else 'stage "a"') in err, err


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_an_unreadable_input_is_named(tmp_path):
    recipe = write(tmp_path, STAGE + 'inputs = ["/proc/self/mem"]\n')
    assert "cannot read /proc/self/mem" in dry_run_error(tmp_path, recipe)


@pytest.mark.parametrize("sets,names", [
    (["novalue"], "--set"), (["nosuch=1"], "--set nosuch"), (["nostage.bars=1"], "--set nostage.bars"),
    (["a.bars=" + "[" * 5000], "--bars"),  # not TOML: passed as text, which drums then refuses at run time
])
def test_bad_sets(tmp_path, sets, names):
    recipe = write(tmp_path, STAGE + 'options = { seed_pattern = "kick: x" }\nout = "o"\n')
    argv = [a for s in sets for a in ("--set", s)]
    if names == "--bars":  # the dry run itself is fine: the value is a plain string
        res = run_cli(["run", str(recipe), "--dry-run", *argv])
        assert res.code == 0 and "Traceback" not in res.err, res.err
        return
    dry_run_error(tmp_path, recipe, *argv, names=names)


# ---- a failing stage keeps the previous output ---------------------------------------------------------------

SCRIPT = """
import sys
from pathlib import Path
args = sys.argv[1:]
out = Path(args[args.index("--out") + 1])
out.mkdir(parents=True, exist_ok=True)
(out / "made.txt").write_text(" ".join(args))
sys.exit(3 if "--fail" in args else 0)
"""


def test_a_failing_replace_out_stage_leaves_the_previous_output(tmp_path):
    """Through the real CLI and a real subprocess: the stage writes half an output and fails."""
    (tmp_path / "s.py").write_text(SCRIPT)
    recipe = write(tmp_path, f"""
        [[stages]]
        name = "x"
        command = "script"
        script = "{tmp_path}/s.py"
        out = "{tmp_path}/o/x"
        replace_out = true
        """)
    assert run_cli(["run", str(recipe)]).code == 0
    (tmp_path / "o" / "x" / "mine.txt").write_text("keep me")
    before = snapshot(tmp_path / "o")
    res = run_cli(["run", str(recipe), "--set", "x.fail=true"])  # the runner's progress is on stderr too
    last = res.err_lines[-1]
    assert res.code == 3 and "Traceback" not in res.err and "internal error" not in res.err, res.err
    assert last.startswith("error:") and str(recipe) in last and 'stage "x" failed' in last, res.err
    assert "previous output is back" in last
    assert snapshot(tmp_path / "o") == before and not (tmp_path / "o" / "x.previous").exists()
    # and once the stage succeeds, the output is the new one, with no OUT.previous left behind
    assert run_cli(["run", str(recipe), "--set", "x.tag=2"]).code == 0
    assert "--tag 2" in (tmp_path / "o" / "x" / "made.txt").read_text()
    assert not (tmp_path / "o" / "x.previous").exists()


# ---- properties -------------------------------------------------------------------------------------------

def toml_value(v) -> str:
    """A Python value as TOML (JSON's string escapes are TOML's)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v > 0 else "-inf") if abs(v) == float("inf") else repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


scalars = st.one_of(
    st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(),
    st.sampled_from(["@a", "@a/x", "@b", "${v}", "${w}", "${v}${v}", "${nope}", "", "..", "/etc/passwd", "drums",
                     "drums train", "script", "--out", "s.py", "kick: x"]),
    st.text(max_size=8))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.sampled_from(["args", "model", "seed", "bars", "required", "x"]), c, max_size=3), max_leaves=8)
keys = st.sampled_from(["name", "command", "inputs", "options", "out", "out_flag", "record", "enabled", "script",
                        "replace_out", "after", "bogus"])
BASES = [{"name": "a", "command": "drums", "out": "o/a", "options": {"bars": 1, "seed_pattern": "kick: x"}},
         {"name": "b", "command": "script", "script": "s.py", "inputs": ["@a"], "out": "o/b"},
         {"name": "c", "command": "drums train", "inputs": ["${v}"], "out": "${out}/c", "replace_out": True}]
stages = st.lists(st.tuples(st.sampled_from(BASES), st.dictionaries(keys, values, max_size=2))
                  .map(lambda t: {**t[0], **t[1]}), min_size=1, max_size=3)
variables = st.dictionaries(st.sampled_from(["v", "w", "out", "x"]), values, max_size=2)


@pytest.mark.timeout(120)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stages=stages, variables=variables, sets=st.lists(st.text(max_size=12), max_size=2))
def test_random_recipes_plan_or_fail_cleanly(tmp_path_factory, stages, variables, sets):
    tmp = tmp_path_factory.mktemp("recipe")
    (tmp / "s.py").write_text("print('hi')\n")
    text = "[vars]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in {"v": ".", "out": "o", **variables}.items())
    for s in stages:
        text += "[[stages]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in s.items())
    recipe = write(tmp, text)
    argv = ["run", str(recipe), "--dry-run", *[a for x in sets for a in ("--set", x)]]
    before = snapshot(tmp)
    cwd = os.getcwd()
    os.chdir(tmp)  # relative outs and inputs of the recipe resolve here
    try:
        res = run_cli(argv)
    finally:
        os.chdir(cwd)
    shown = f"{text}\n{argv}\nexit={res.code}\n{res.err}"
    assert "Traceback" not in res.err + res.out and "internal error" not in res.err, shown
    assert res.code == 0 or len(res.err_lines) == 1, shown
    assert snapshot(tmp) == before, shown  # a dry run writes nothing

