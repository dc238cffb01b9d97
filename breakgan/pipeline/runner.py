"""Run a recipe's stages in order, skipping those whose inputs and options are unchanged.

Each stage writes its own `breakgan.json` (the stage contract). After a stage succeeds the runner adds
a `pipeline` key to that record: the exact command line and the content hash of every input. Next
time, a stage whose record holds the same command line and input hashes is skipped. An input made by
an earlier stage is identified by that stage's record, so a rerun upstream reruns what depends on it.
A stage that writes no record itself (a script) gets a minimal one from `make_record`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from breakgan import __version__

from breakgan.console import console, warn
from breakgan.errors import BreakganError
from breakgan.pipeline.commands import program, stage_argv
from breakgan.pipeline.recipe import Recipe, Stage, with_forced
from breakgan.stage import RECORD_NAME, file_hash, foreign_files, make_record, path_hash, write_json_atomic

PENDING = "pending"  # hash of an input an earlier stage has yet to (re)make


@dataclass
class Step:
    stage: Stage
    argv: list[str]                  # without the program
    record: Path                     # the stage's breakgan.json
    status: str = "run"              # run | skip | disabled
    reason: str = ""
    inputs: dict[str, str] = field(default_factory=dict)   # input label -> content hash
    seconds: float = 0.0

    @property
    def command_line(self) -> str:
        prog = "python" if self.stage.command == ("script",) else "breakgan"
        return " ".join(shlex.quote(a) for a in [prog, *self.argv])


def record_path(stage: Stage) -> Path | None:
    """Where the stage's breakgan.json lives: `record` (folder or .json file), else in `out`.

    Every breakgan command's --out is a folder that holds it. For a script or a positional out, a name
    with a suffix (clip.mp4) is taken for a file and gets `clip.mp4.breakgan.json` beside it.
    """
    if stage.record:
        p = Path(stage.record)
        return p if p.suffix == ".json" else p / RECORD_NAME
    if stage.out is None:
        return None
    out = Path(stage.out)
    if stage.command != ("script",) and stage.out_flag == "--out":
        return out / RECORD_NAME
    return out.with_name(out.name + "." + RECORD_NAME) if out.suffix else out / RECORD_NAME


def _read(path: Path) -> dict | None:
    import json

    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable: treat as never run, the stage rewrites it
    return data if isinstance(data, dict) else None


def _input_paths(stage: Stage) -> dict[str, str]:
    items: dict[str, str] = {}
    for i, a in enumerate(stage.args):
        items[f"{i}" if len(stage.args) > 1 else "args"] = a
    for role, v in stage.inputs.items():
        if isinstance(v, list):
            for i, x in enumerate(v):
                items[f"{role}[{i}]"] = x
        else:
            items[role] = v
    if stage.script:
        items["script"] = stage.script
    return items


def plan(recipe: Recipe, force: Sequence[str] = (), commands=None) -> list[Step]:
    """Decide, without running anything, which stages run and why.

    Raises BreakganError for a missing input that no earlier stage makes.
    """
    forced = with_forced(recipe, list(force))
    outs = {s.name: s for s in recipe.stages}
    steps: list[Step] = []
    reruns: set[str] = set()  # stages that will run in this invocation
    for stage in recipe.stages:
        rec_path = record_path(stage)
        step = Step(stage, stage_argv(stage, commands), rec_path or Path(stage.name) / RECORD_NAME)
        steps.append(step)
        if not stage.enabled:
            step.status, step.reason = "disabled", f"enable with --set {stage.name}.enabled=true"
            continue
        for name in stage.after:
            up = outs[name]
            if not up.enabled:
                continue  # ordering only: a disabled stage has nothing to wait for
            rec = record_path(up)
            if up.name in reruns:
                step.inputs[f"after {name}"] = PENDING
            elif rec is None or not rec.is_file():
                raise BreakganError(f"{recipe.path}:{stage.line}: {stage.label}: runs after {name!r}, "
                                    "which has no record yet")
            else:
                step.inputs[f"after {name}"] = _hashed(file_hash, rec, recipe, stage, f"after {name}")
        for label, p in _input_paths(stage).items():
            up = _made_by(p, stage, outs)
            if up is not None:
                if up.name in reruns:
                    step.inputs[label] = PENDING
                    continue
                up_rec = record_path(up)
                if up_rec is None or not up_rec.is_file() or not Path(p).exists():
                    raise BreakganError(f"{recipe.path}:{stage.line}: {stage.label}: input {label}: {p} "
                                        f"not found (stage {up.name!r} did not make it)")
                step.inputs[label] = _hashed(file_hash, up_rec, recipe, stage, label) + (
                    f"+{Path(p).relative_to(up.out)}" if Path(p) != Path(up.out) else "")
            elif not Path(p).exists():
                raise BreakganError(f"{recipe.path}:{stage.line}: {stage.label}: input {label}: {p} not found")
            else:
                step.inputs[label] = _hashed(path_hash, p, recipe, stage, label)
        step.status, step.reason = "run", _why(step, forced, reruns)
        if step.reason is None:
            step.status, step.reason = "skip", "unchanged"
        else:
            reruns.add(stage.name)
    return steps


def _hashed(hash_fn, path, recipe: Recipe, stage: Stage, label: str) -> str:
    """An input's content hash; an unreadable input is named in one line."""
    try:
        return hash_fn(path)
    except OSError as e:
        raise BreakganError(f"{recipe.path}:{stage.line}: {stage.label}: input {label}: cannot read {path} "
                            f"({e.strerror or e})") from None


def _made_by(path: str, stage: Stage, outs: dict[str, Stage]) -> Stage | None:
    p = Path(path)
    for name in stage.depends:
        up = outs[name]
        if up.out is not None and (p == Path(up.out) or Path(up.out) in p.parents):
            return up
    return None


def _why(step: Step, forced: set[str], reruns: set[str]) -> str | None:
    stage = step.stage
    if stage.name in forced:
        return "forced"
    ran = [d for d in stage.depends if d in reruns]
    if ran:
        return f"after {', '.join(ran)}"
    record = _read(step.record)
    if record is None:
        return "not run yet"
    if stage.out is not None and not Path(stage.out).exists():
        return f"{stage.out} is missing"
    last = record.get("pipeline")
    if not isinstance(last, dict):
        return "made outside this pipeline"
    if last.get("breakgan") != __version__:  # new code may make a different output from the same inputs
        return f"made by breakgan {last.get('breakgan') or 'before 0.1.0'}, this is {__version__}"
    if last.get("argv") != step.argv:
        return "options changed" + _diff(last.get("argv") or [], step.argv)
    old = last.get("inputs") or {}
    changed = [k for k, h in step.inputs.items() if old.get(k) != h] + [k for k in old if k not in step.inputs]
    if changed:
        return f"input {', '.join(changed)} changed"
    return None


def _flags(argv: list[str]) -> dict[str, list[str]]:
    """argv -> {"--flag": [values], "": [positionals]} for describing what changed."""
    out: dict[str, list[str]] = {}
    key = ""
    for a in argv:
        if a.startswith("--"):
            key = a
            out.setdefault(key, [])
        else:
            out.setdefault(key, []).append(a)
            key = "" if key and out[key] else key
    return out


def _diff(old: list[str], new: list[str]) -> str:
    a, b = _flags(old), _flags(new)
    changes = []
    for k in list(a) + [k for k in b if k not in a]:
        if a.get(k) == b.get(k):
            continue
        before = " ".join(a.get(k, [])) or ("on" if k in a else "-")
        after = " ".join(b.get(k, [])) or ("on" if k in b else "-")
        changes.append(f"{k or 'arguments'} {before} -> {after}")
    text = "; ".join(changes)
    return f" ({text[:120]})" if text else ""


Executor = Callable[[Step], int]


def run_subprocess(step: Step) -> int:
    """Run one stage as `python -m breakgan.cli ARGV` (or `python SCRIPT ARGV`); its output goes to ours."""
    proc = subprocess.Popen([*program(step.stage), *step.argv])
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached the stage too: let it finish cleanly (train saves a checkpoint first);
        # subprocess.run would kill it after 0.25 s. A second Ctrl-C kills it.
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
        raise


def execute(recipe: Recipe, steps: list[Step], executor: Executor = run_subprocess) -> list[Step]:
    """Run the steps marked `run`, in order; stop at the first failure with a one-line error."""
    total = len(steps)
    for i, step in enumerate(steps, 1):
        head = f"[{i}/{total}] {step.stage.name}"
        if step.status != "run":
            console.print(f"[dim]{head}: {step.status} ({step.reason})[/dim]")
            continue
        # An input an earlier stage just made: hash it now.
        if PENDING in step.inputs.values():
            outs = {s.name: s for s in recipe.stages}
            for name in step.stage.after:
                if step.inputs.get(f"after {name}") == PENDING:
                    step.inputs[f"after {name}"] = file_hash(record_path(outs[name]))
            for label, p in _input_paths(step.stage).items():
                if step.inputs.get(label) == PENDING:
                    up = _made_by(p, step.stage, outs)
                    step.inputs[label] = file_hash(record_path(up)) + (
                        f"+{Path(p).relative_to(up.out)}" if Path(p) != Path(up.out) else "")
        console.rule(f"[bold]{head}[/bold] ({step.reason})", align="left")
        aside = _move_aside(recipe, step.stage) if step.stage.replace_out else None
        console.print(f"[dim]$ {step.command_line}[/dim]", soft_wrap=True)
        t0 = time.monotonic()
        try:
            code = executor(step)
        except BaseException:  # Ctrl-C, or the stage could not be started
            if aside is not None:
                _put_back(step.stage, aside)
            raise
        step.seconds = time.monotonic() - t0
        if code != 0:
            kept = ""
            if aside is not None:
                _put_back(step.stage, aside)
                kept = f"; the previous output is back in {step.stage.out}"
            raise BreakganError(f"{recipe.path}:{step.stage.line}: {step.stage.label} failed (exit {code}) "
                                f"after {step.seconds:.0f} s{kept}; rerun it with: {step.command_line}",
                                exit_code=code if 0 < code < 128 else 1)
        _stamp(step)
        if aside is not None:
            _drop_previous(step.stage, aside)
        console.print(f"[green]{head} done[/green] in {step.seconds:.1f} s")
    return steps


PREVIOUS = ".previous"  # replace_out: where the runner keeps OUT while the stage makes a new one


def _made_by_runner(stage: Stage, folder: Path) -> bool:
    """True when `folder` is an output of this stage that the runner stamped (its record, moved along)."""
    rec = record_path(stage)
    out = Path(stage.out)
    try:
        rel = rec.relative_to(out) if rec is not None else None
    except ValueError:
        return False  # the record lives elsewhere: nothing to tell this folder by
    record = _read(folder / rel) if rel is not None else None
    stamp = record.get("pipeline") if record else None
    return isinstance(stamp, dict) and stamp.get("stage") == stage.name


def _move_aside(recipe: Recipe, stage: Stage) -> Path | None:
    """Move OUT to OUT.previous so the command starts afresh (replace_out); -> OUT.previous, or None.

    An OUT.previous that this runner left for the same stage (earlier versions kept one generation) is
    replaced; anything else by that name is refused, untouched.
    """
    out = Path(stage.out) if stage.out else None
    if out is None or not (out.exists() or out.is_symlink()):
        return None
    prev = out.with_name(out.name + PREVIOUS)
    if prev.exists() or prev.is_symlink():
        if not (prev.is_dir() and not prev.is_symlink() and _made_by_runner(stage, prev)):
            raise BreakganError(f"{recipe.path}:{stage.line}: {stage.label}: replace_out would move {out} to "
                                f"{prev}, which exists and is not an earlier output of this stage; move it "
                                "away first")
        shutil.rmtree(prev)
    os.replace(out, prev)
    return prev


def _put_back(stage: Stage, prev: Path) -> None:
    """The stage failed: whatever it left at OUT goes, the previous output returns to OUT."""
    out = Path(stage.out)
    if out.is_dir() and not out.is_symlink():
        shutil.rmtree(out)  # made by the failed stage in this run (OUT was moved aside before it started)
    elif out.exists() or out.is_symlink():
        out.unlink()
    os.replace(prev, out)
    warn(f"{stage.label}: failed; the previous output is back in {out}")


def _drop_previous(stage: Stage, prev: Path) -> None:
    """The stage succeeded: OUT.previous goes if it was this stage's own earlier output, else stays."""
    added = foreign_files(prev)
    if _made_by_runner(stage, prev) and not added:
        shutil.rmtree(prev)
    elif added:
        shown = ", ".join(added[:3]) + (", ..." if len(added) > 3 else "")
        warn(f"{stage.label}: the earlier {stage.out} also held files breakgan did not write ({shown}); kept as {prev}")
    else:
        warn(f"{stage.label}: the earlier content of {stage.out} was not made by this pipeline; kept as {prev}")


def _stamp(step: Step) -> None:
    """Add what the next run compares to the stage's record (a minimal record when it wrote none)."""
    stage = step.stage
    record = _read(step.record)
    if record is None:
        if stage.out is not None and not Path(stage.out).exists():
            raise BreakganError(f"{stage.label}: finished but wrote no {stage.out}")
        record = make_record(stage.name, stage.options, {})
        record["inputs"] = {k: {"path": p, "hash": step.inputs.get(k)}
                            for k, p in _input_paths(stage).items()}
    record["pipeline"] = {"stage": stage.name, "argv": step.argv, "inputs": step.inputs, "breakgan": __version__}
    step.record.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(step.record, record)


def print_plan(steps: list[Step]) -> None:
    """One line per stage (what will happen and why), then its command, unwrapped so it can be copied."""
    for i, s in enumerate(steps, 1):
        colour = {"run": "green", "skip": "dim", "disabled": "dim"}[s.status]
        console.print(f"{i}. [bold]{s.stage.name}[/bold]: [{colour}]{s.status}[/{colour}] ({s.reason})")
        console.print(f"   [dim]$ {s.command_line}[/dim]", soft_wrap=True)


def run_pipeline(recipe: Recipe, *, force: Sequence[str] = (), dry_run: bool = False,
                 executor: Executor = run_subprocess, commands=None) -> list[Step]:
    """Plan the recipe, print the plan, and (unless dry_run) run the stages that need it."""
    steps = plan(recipe, force, commands)
    if dry_run:
        print_plan(steps)
        return steps
    return execute(recipe, steps, executor)
