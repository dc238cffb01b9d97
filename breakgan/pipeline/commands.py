"""What a recipe stage may call: the breakgan CLI's commands and their options, and the argv for one."""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from typing import Any

from breakgan.pipeline.recipe import Stage

NOT_IN_PIPELINES = {"run", "demo"}  # a recipe running recipes would recurse


@dataclass(frozen=True)
class OptionSpec:
    multiple: bool = False
    is_flag: bool = False


@functools.lru_cache(maxsize=2)
def cli_commands(root) -> dict[str, dict[str, OptionSpec]]:
    """Every command of `root` ("drums train" for sub-commands) -> its option names without dashes.

    `root` is the CLI's command table, passed in by its caller (the typer app, or the click command
    a running command finds at `ctx.find_root().command`), so the pipeline never imports the CLI.
    """
    import typer.main  # typer ships its own click: duck-type its commands and options

    found: dict[str, dict[str, OptionSpec]] = {}

    def walk(cmd, prefix: tuple[str, ...]) -> None:
        if prefix and prefix[0] in NOT_IN_PIPELINES:
            return
        if prefix:
            opts: dict[str, OptionSpec] = {}
            for p in cmd.params:
                if getattr(p, "param_type_name", "") != "option":
                    continue
                spec = OptionSpec(multiple=bool(p.multiple), is_flag=bool(p.is_flag))
                for o in (*p.opts, *p.secondary_opts):
                    if o.startswith("--"):
                        opts[o[2:]] = spec
            found[" ".join(prefix)] = opts
        if isinstance(getattr(cmd, "commands", None), dict):
            for name, sub in cmd.commands.items():
                walk(sub, prefix + (name,))

    walk(typer.main.get_command(root) if isinstance(root, typer.Typer) else root, ())
    return found


def _flag(name: str, value: Any, spec: dict[str, OptionSpec] | None) -> list[str]:
    flag = name.replace("_", "-")
    info = (spec or {}).get(flag, OptionSpec())
    if value is None:
        return []
    if isinstance(value, bool):
        if value:
            return [f"--{flag}"]
        if spec is None or f"no-{flag}" in spec:
            return [f"--no-{flag}"]
        return []  # a plain on-flag set to false: leave it off
    if isinstance(value, list):
        if info.multiple or spec is None:
            return [a for v in value for a in (f"--{flag}", _scalar(v))]
        return [f"--{flag}", ",".join(_scalar(v) for v in value)]
    return [f"--{flag}", _scalar(value)]


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return os.fspath(v) if isinstance(v, os.PathLike) else str(v)


def stage_argv(stage: Stage, commands: dict[str, dict[str, OptionSpec] | None] | None = None) -> list[str]:
    """The command line of a stage, without the program: ["ingest", "clip.mp4", "--out", "ds", ...].

    For command = "script" it starts with the script's path (run with this Python).
    """
    if stage.command == ("script",):
        argv, spec = [stage.script], None
    else:
        argv = list(stage.command)
        spec = (commands or {}).get(" ".join(stage.command))
    argv += list(stage.args)
    if stage.out is not None and stage.out_flag == "":
        argv.append(stage.out)
    for role, value in stage.inputs.items():
        argv += _flag(role, value, spec)
    if stage.out is not None and stage.out_flag:
        argv += [stage.out_flag, stage.out]
    for key, value in stage.options.items():
        argv += _flag(key, value, spec)
    return argv


def program(stage: Stage) -> list[str]:
    """What runs the argv: this Python on the script, or on breakgan's CLI module."""
    if stage.command == ("script",):
        return [sys.executable]
    return [sys.executable, "-m", "breakgan.cli"]
