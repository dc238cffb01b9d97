"""Pipeline recipes: a TOML file naming stages in order, each a breakgan command with its options.

    [pipeline]
    description = "ingest the demo clip, drums from a seed, render"

    [vars]                                   # ${name} anywhere in a string; --set name=VALUE
    out = "renders/demo"
    clips = { required = "your dance clips (files or a folder)" }   # must be --set

    [[stages]]
    name = "ingest"                          # unique; default: the command
    command = "ingest"                       # a breakgan command ("drums train" too), or "script"
    inputs = ["${clips}"]                    # positional paths; or a table: role = path -> --role path
    out = "${out}/dataset"                   # passed as --out; holds the stage's breakgan.json
    out_flag = "--out"                       # how out is passed: "" = last positional, false = not passed
    options = { size = 64, mirror = false }  # --size 64 --no-mirror
    enabled = true                           # false: skipped unless --set ingest.enabled=true
    replace_out = false                      # true: a rerun first moves the old out to OUT.previous,
                                             # puts it back if the stage fails, drops it once it succeeds
                                             # (for commands that refuse to overwrite, like train)
    after = ["other"]                        # run after (and rerun with) these earlier stages, no path passed

Inputs are paths whose content is hashed to decide whether a stage must run again. `@stage` (or
`@stage/sub/path`) names an earlier stage's output, which also makes the stage depend on it.
Built-in variables: ${project} (the breakgan checkout) and ${recipe_dir}.
This module only parses and validates; nothing here runs a stage.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from breakgan.errors import BreakganError

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, from PyPI, before it joined the standard library
    import tomli as tomllib

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PIPELINE_KEYS = {"description"}
STAGE_KEYS = {"name", "command", "inputs", "options", "out", "out_flag", "record", "enabled", "script",
              "replace_out", "after"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_RECIPE_BYTES = 1024 * 1024
MAX_VAR_DEPTH = 16  # ${a} -> ${b} -> ... chains
MAX_EXPANDED_CHARS = 100_000  # one value after substitution (lists: their items together)
MAX_NESTING = 16  # lists and tables inside one another
MAX_STAGES = 256
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
ARGS = "args"  # the inputs-table role that holds positional arguments


@dataclass(frozen=True)
class Stage:
    """One resolved stage: variables substituted, references checked."""

    name: str
    command: tuple[str, ...]          # e.g. ("drums", "train"), or ("script",)
    args: tuple[str, ...]             # positional input paths
    inputs: dict[str, Any]            # role -> path or list of paths (passed as --role)
    options: dict[str, Any]           # option -> value (passed as flags)
    out: str | None                   # passed as `out_flag` (--out)
    record: str | None                # where the breakgan.json is, when not derivable from out
    enabled: bool = True
    script: str | None = None         # for command = "script": the Python file to run
    out_flag: str | None = "--out"    # "" passes out as the last positional argument, None not at all
    replace_out: bool = False         # a rerun moves the previous out aside while the stage runs
    line: int = 0                     # line of its [[stages]] header in the recipe
    depends: tuple[str, ...] = ()     # names of earlier stages it references (inputs or `after`)
    after: tuple[str, ...] = ()       # earlier stages it follows without using a path of theirs

    @property
    def label(self) -> str:
        return f'stage "{self.name}"'


@dataclass(frozen=True)
class Recipe:
    path: Path
    description: str
    stages: tuple[Stage, ...]
    vars: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise BreakganError(f"{self.path}: no stage named {name!r} (stages: {', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def dependants(self, name: str) -> set[str]:
        """Every stage that uses `name`'s output, directly or through others."""
        found: set[str] = set()
        for s in self.stages:
            if name in s.depends or found.intersection(s.depends):
                found.add(s.name)
        return found


def parse_value(text: str) -> Any:
    """A --set value: a TOML value when it parses as one (64, true, [..]), else the plain string."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return text
    return value if _nesting(value) <= MAX_NESTING else text


def parse_sets(items: list[str] | tuple[str, ...], where: str = "--set") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise BreakganError(f"{where} {item!r}: expected NAME=VALUE or STAGE.KEY=VALUE")
        out[key] = parse_value(value.strip())
    return out


def _project_dir() -> str:
    """The checkout as "." when we run from it (short command lines, records that survive a move)."""
    try:
        return "." if Path.cwd().resolve() == PROJECT_ROOT else str(PROJECT_ROOT)
    except OSError:
        return str(PROJECT_ROOT)


def _norm(p: Any) -> Any:
    if isinstance(p, list):
        return [_norm(x) for x in p]
    return os.path.normpath(p) if isinstance(p, str) and p and not p.startswith("@") else p


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        total = 0
        for v in value:
            total += 1 + _size(v)
            if total > MAX_EXPANDED_CHARS:
                break
        return total
    return 1


def _nesting(value: Any) -> int:
    """How deep lists and tables sit inside one another (iteratively: a hostile file may nest deeply)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d + 1)
            if deepest > MAX_NESTING:
                return deepest
            todo.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def _stage_lines(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines(), 1) if re.match(r"^\s*\[\[\s*stages\s*\]\]", line)]


def load_recipe(path: str | os.PathLike, sets: dict[str, Any] | None = None, *,
                commands: dict[str, Any]) -> Recipe:
    """Read, override (--set), substitute and validate a recipe; errors name the file, line and stage.

    `commands` maps a command name ("ingest", "drums train") to its options (names without dashes:
    a set or dict), or to None to accept any option; `breakgan run` passes the CLI's own table
    (pipeline.commands.cli_commands(root)), so the pipeline never imports the CLI.
    """
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_RECIPE_BYTES:
            raise BreakganError(f"{path}: {path.stat().st_size} bytes is too large for a recipe "
                                f"(limit {MAX_RECIPE_BYTES // 1024} KB)")
        text = path.read_text()
    except FileNotFoundError:
        raise BreakganError(f"{path}: recipe not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BreakganError(f"{path}: cannot read recipe ({e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BreakganError(f"{path}: not valid TOML: {e}") from None
    except RecursionError:
        raise BreakganError(f"{path}: not a recipe (arrays or tables nested too deeply)") from None
    if _nesting(data) > MAX_NESTING:
        raise BreakganError(f"{path}: not a recipe (arrays or tables nested more than {MAX_NESTING} deep)")
    sets = dict(sets or {})
    unknown_top = set(data) - {"pipeline", "vars", "stages"}
    if unknown_top:
        raise BreakganError(f"{path}: unknown table(s) {', '.join(sorted(unknown_top))} "
                            "(a recipe has [pipeline], [vars] and [[stages]])")
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise BreakganError(f"{path}: no [[stages]] in the recipe")
    if len(raw_stages) > MAX_STAGES:
        raise BreakganError(f"{path}: {len(raw_stages)} stages, more than {MAX_STAGES}")
    lines = _stage_lines(text)
    meta = data.get("pipeline", {})
    if not isinstance(meta, dict):
        raise BreakganError(f"{path}: [pipeline] must be a table")
    unknown_meta = set(meta) - PIPELINE_KEYS
    if unknown_meta:
        header = [i for i, line in enumerate(text.splitlines(), 1) if re.match(r"^\s*\[\s*pipeline\s*\]", line)]
        raise BreakganError(f"{path}{f':{header[0]}' if header else ''}: [pipeline] has unknown key(s) "
                            f"{', '.join(sorted(unknown_meta))} (it has {', '.join(sorted(PIPELINE_KEYS))})")
    if not isinstance(meta.get("description", ""), str):
        raise BreakganError(f"{path}: [pipeline] description must be a string")

    # Variables: recipe defaults, then --set NAME=VALUE.
    raw_vars = data.get("vars", {})
    if not isinstance(raw_vars, dict):
        raise BreakganError(f"{path}: [vars] must be a table")
    variables: dict[str, Any] = {"project": _project_dir(), "recipe_dir": str(path.resolve().parent)}
    required: dict[str, str] = {}
    for k, v in raw_vars.items():
        if isinstance(v, dict):
            if set(v) != {"required"}:
                raise BreakganError(f"{path}: [vars] {k}: a table value must be {{ required = \"help\" }}")
            required[k] = str(v["required"])
        else:
            variables[k] = v
    stage_sets: dict[str, dict[str, Any]] = {}
    for key, value in sets.items():
        if "." in key:
            sname, _, skey = key.partition(".")
            stage_sets.setdefault(sname, {})[skey] = value
        elif key in variables or key in required:
            variables[key] = value
            required.pop(key, None)
        else:
            known = sorted(set(raw_vars) | {"project", "recipe_dir"})
            raise BreakganError(f"{path}: --set {key}: no such variable (variables: {', '.join(known)}; "
                                "use STAGE.KEY=VALUE for a stage's option)")

    def where(i: int) -> str:
        return f"{path}:{lines[i]}" if i < len(lines) else f"{path}"

    expanded: dict[str, Any] = {}  # variable -> its value, substituted once (a recipe may use it often)

    def expand(name: str, ctx: str, seen: tuple[str, ...]) -> Any:
        if name in expanded:
            return expanded[name]
        value = _lookup(name, ctx, seen)
        if len(seen) >= MAX_VAR_DEPTH:
            raise BreakganError(f"{ctx}: variable ${{{name}}}: variables nest more than {MAX_VAR_DEPTH} deep")
        expanded[name] = subst(value, ctx, seen + (name,))
        return expanded[name]

    def subst(value: Any, ctx: str, seen: tuple[str, ...] = ()) -> Any:
        if isinstance(value, list):
            flat: list[Any] = []
            for v in value:
                r = subst(v, ctx, seen)
                flat.extend(r if isinstance(r, list) and isinstance(v, str) and _VAR.fullmatch(v) else [r])
            return _bounded(flat, ctx, seen)
        if isinstance(value, dict):
            return {k: subst(v, ctx, seen) for k, v in value.items()}
        if not isinstance(value, str):
            return value
        whole = _VAR.fullmatch(value)
        if whole:  # "${x}" alone keeps x's type (a list of clips stays a list)
            return expand(whole.group(1), ctx, seen)
        return _bounded(_VAR.sub(lambda m: str(expand(m.group(1), ctx, seen)), value), ctx, seen)

    def _bounded(value: Any, ctx: str, seen: tuple[str, ...]) -> Any:
        """Refuse an expansion past MAX_EXPANDED_CHARS (`${v}${v}` doubles at each level)."""
        if _size(value) > MAX_EXPANDED_CHARS:
            what = f"variable ${{{seen[-1]}}}" if seen else "a value"
            raise BreakganError(f"{ctx}: {what} expands to more than {MAX_EXPANDED_CHARS} characters")
        return value

    def _lookup(name: str, ctx: str, seen: tuple[str, ...]) -> Any:
        if name in seen:
            raise BreakganError(f"{ctx}: variable ${{{name}}} refers to itself")
        if name in required:
            raise BreakganError(f"{ctx}: set ${{{name}}} ({required[name]}): "
                                f"breakgan run {path} --set {name}=VALUE")
        if name not in variables:
            raise BreakganError(f"{ctx}: unknown variable ${{{name}}} "
                                f"(variables: {', '.join(sorted(set(variables) | set(required)))})")
        return variables[name]

    stages: list[Stage] = []
    names: dict[str, Stage] = {}
    for i, raw in enumerate(raw_stages):
        ctx = where(i)
        if not isinstance(raw, dict):
            raise BreakganError(f"{ctx}: each [[stages]] entry must be a table")
        name = raw.get("name", raw.get("command"))
        ctx = f'{ctx}: stage "{name}"' if name else f"{ctx}: stage {i + 1}"
        unknown = set(raw) - STAGE_KEYS
        if unknown:
            raise BreakganError(f"{ctx}: unknown key(s) {', '.join(sorted(unknown))} "
                                f"(a stage has {', '.join(sorted(STAGE_KEYS))})")
        if not isinstance(name, str) or not _NAME.match(name):
            raise BreakganError(f"{ctx}: needs a name (letters, digits, - and _) or a command")
        if name in names:
            raise BreakganError(f"{ctx}: a stage named {name!r} already exists (line {names[name].line})")
        raw = dict(raw)
        # --set STAGE.KEY=VALUE: a stage field, an input role, else an option.
        for key, value in stage_sets.pop(name, {}).items():
            if key in ("out", "out_flag", "enabled", "record", "script", "replace_out"):
                raw[key] = value
            elif isinstance(raw.get("inputs"), dict) and key in raw["inputs"]:
                raw["inputs"] = {**raw["inputs"], key: value}
            elif key == ARGS:
                raw["inputs"] = value if not isinstance(raw.get("inputs"), dict) else {**raw["inputs"], ARGS: value}
            else:
                raw["options"] = {**raw.get("options", {}), key: value}
        command = raw.get("command")
        if not isinstance(command, str) or not command.strip():
            raise BreakganError(f"{ctx}: needs command = \"ingest\" | \"train\" | \"drums\" | \"render\" | ...")
        cmd = tuple(command.split())
        enabled = raw.get("enabled", True)
        replace_out = raw.get("replace_out", False)
        if not isinstance(enabled, bool) or not isinstance(replace_out, bool):
            raise BreakganError(f"{ctx}: enabled and replace_out must be true or false")
        script = raw.get("script")
        if cmd == ("script",):
            if not isinstance(script, str):
                raise BreakganError(f"{ctx}: command = \"script\" needs script = \"path/to/file.py\"")
        elif script is not None:
            raise BreakganError(f"{ctx}: script = ... only goes with command = \"script\"")
        elif " ".join(cmd) not in commands:
            raise BreakganError(f"{ctx}: unknown command {command!r} (commands: {', '.join(sorted(commands))}, script)")
        inputs_raw = raw.get("inputs", [])
        if isinstance(inputs_raw, (list, str)):
            inputs_raw = {ARGS: inputs_raw}
        if not isinstance(inputs_raw, dict):
            raise BreakganError(f"{ctx}: inputs must be a list of paths or a table of role = path")
        options = raw.get("options", {})
        if not isinstance(options, dict):
            raise BreakganError(f"{ctx}: options must be a table, e.g. options = {{ size = 64 }}")
        for k, v in options.items():
            if isinstance(v, dict):
                raise BreakganError(f"{ctx}: option {k}: a table is not a command-line value")
        inputs = {k: _norm(v) for k, v in subst(inputs_raw, ctx).items()}
        options = subst(options, ctx)
        out = _norm(subst(raw.get("out"), ctx))
        record = _norm(subst(raw.get("record"), ctx))
        script = _norm(subst(script, ctx))
        for label, v in (("out", out), ("record", record)):
            if v is not None and not isinstance(v, str):
                raise BreakganError(f"{ctx}: {label} must be a path string")
            if v == "":
                raise BreakganError(f"{ctx}: {label} is empty")
        for k, v in options.items():
            if isinstance(v, list) and any(isinstance(x, (list, dict)) for x in v):
                raise BreakganError(f"{ctx}: option {k}: a list inside a list or a table is not a command-line value")
        for label, v in [("out", out), ("record", record), ("script", script), *(("input " + k, v) for k, v in
                         inputs.items()), *(("option " + k, v) for k, v in options.items())]:
            if any("\x00" in x for x in (v if isinstance(v, list) else [v]) if isinstance(x, str)):
                raise BreakganError(f"{ctx}: {label} holds a NUL character")
        out_flag = raw.get("out_flag", "--out")
        if out_flag is False:
            out_flag = None  # the command writes `out` by itself (a script with a fixed destination)
        elif not isinstance(out_flag, str) or out_flag and not out_flag.startswith("--"):
            raise BreakganError(f"{ctx}: out_flag must be an option like \"--out\", \"\" for a positional "
                                "or false")
        if out_flag:
            # A second copy of the flag would win on the command line: the stage writes somewhere the
            # runner does not look, and references to @stage point at the wrong place.
            for label, key in [*(("option " + k, k) for k in options), *(("input " + k, k) for k in inputs
                                                                          if k != ARGS)]:
                if "--" + key.replace("_", "-") == out_flag:
                    raise BreakganError(f"{ctx}: {label} sets {out_flag}, which carries the stage's out; "
                                        f"use the stage's out = \"...\" key instead")
        # Stage references: @name or @name/sub/path -> that stage's out.
        depends: list[str] = []

        def deref(v: Any, role: str) -> Any:
            if isinstance(v, list):
                return [deref(x, role) for x in v]
            if not isinstance(v, str):
                raise BreakganError(f"{ctx}: input {role}: {v!r} is not a path")
            if not v.startswith("@"):
                return v
            ref, _, sub = v[1:].partition("/")
            up = names.get(ref)
            if up is None:
                later = ref in [r.get("name", r.get("command")) for r in raw_stages if isinstance(r, dict)]
                raise BreakganError(f"{ctx}: input {role}: @{ref} " + (
                    "is a later stage (a stage can only use earlier ones)" if later else
                    f"is not a stage (stages so far: {', '.join(names) or 'none'})"))
            if up.out is None:
                raise BreakganError(f"{ctx}: input {role}: stage {ref!r} has no out to refer to")
            if enabled and not up.enabled:
                raise BreakganError(f"{ctx}: input {role}: uses @{ref}, but stage {ref!r} is disabled "
                                    f"(--set {ref}.enabled=true)")
            if ref not in depends:
                depends.append(ref)
            return str(Path(up.out) / sub) if sub else up.out

        resolved = {role: deref(v, role) for role, v in inputs.items()}
        after = raw.get("after", [])
        after = [after] if isinstance(after, str) else after
        if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
            raise BreakganError(f"{ctx}: after must be a list of stage names")
        for a in after:
            if a not in names:
                raise BreakganError(f"{ctx}: after: {a!r} is not an earlier stage "
                                    f"(stages so far: {', '.join(names) or 'none'})")
            if a not in depends:
                depends.append(a)
        args = resolved.pop(ARGS, [])
        args = [args] if isinstance(args, str) else args
        for a in args:
            if isinstance(a, list):
                raise BreakganError(f"{ctx}: inputs: nested lists are not paths")
        for role, v in resolved.items():
            if isinstance(v, str) and v == "" or isinstance(v, list) and not v:
                raise BreakganError(f"{ctx}: input {role} is empty")
            if isinstance(v, list) and any(isinstance(x, list) for x in v):
                raise BreakganError(f"{ctx}: input {role}: nested lists are not paths")
        if any(a == "" for a in args):
            raise BreakganError(f"{ctx}: an input path is empty")
        allowed = commands.get(" ".join(cmd)) if cmd != ("script",) else None
        if allowed is not None:
            out_key = [out_flag[2:]] if out is not None and out_flag else []
            for key in list(options) + list(resolved) + out_key:
                flag = key.replace("_", "-")
                if flag not in allowed:
                    raise BreakganError(f"{ctx}: `breakgan {' '.join(cmd)}` has no option --{flag} "
                                        f"(options: {', '.join('--' + o for o in sorted(allowed) if not o.startswith('no-'))})")
        stage = Stage(name=name, command=cmd, args=tuple(args), inputs=resolved, options=options, out=out,
                      record=record, enabled=enabled, script=script, out_flag=out_flag, replace_out=replace_out,
                      line=lines[i] if i < len(lines) else 0, depends=tuple(depends), after=tuple(after))
        names[name] = stage
        stages.append(stage)
    if stage_sets:
        bad = ", ".join(f"{s}.{k}" for s, ks in stage_sets.items() for k in ks)
        raise BreakganError(f"{path}: --set {bad}: no such stage (stages: {', '.join(names)})")
    return Recipe(path=path, description=str(meta.get("description", "")), stages=tuple(stages),
                  vars={k: v for k, v in variables.items()})


def with_forced(recipe: Recipe, names: list[str]) -> set[str]:
    """The stages that --force NAME reruns: each named stage and everything that depends on it."""
    out: set[str] = set()
    for n in names:
        if n == "all":
            return set(recipe.names)
        recipe.stage(n)  # raises with the list of stages
        out |= {n} | recipe.dependants(n)
    return out


__all__ = ["Recipe", "Stage", "load_recipe", "parse_sets", "parse_value", "with_forced", "PROJECT_ROOT"]
