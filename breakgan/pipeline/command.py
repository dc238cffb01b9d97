"""`breakgan run RECIPE` and `breakgan demo`: thin commands over the pipeline runner."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from breakgan.errors import BreakganError

DEMO_RECIPE = "demo.toml"


def _commands(ctx: typer.Context):
    from breakgan.pipeline.commands import cli_commands

    return cli_commands(ctx.find_root().command)  # the CLI's command table, passed in by the CLI itself


def run(
    ctx: typer.Context,
    recipe: Path = typer.Argument(..., help="Recipe file, e.g. pipelines/demo.toml."),
    set_: List[str] = typer.Option(
        [], "--set", metavar="NAME=VALUE",
        help="Override a recipe variable (clips=footage/) or a stage's option or input "
             "(render.fps=30, ingest.enabled=false). Repeatable. Values parse as TOML when they can."),
    force: List[str] = typer.Option(
        [], "--force", metavar="STAGE",
        help="Rerun this stage and every stage that uses its output, even if unchanged "
             "('all' for every stage). Repeatable."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (what runs, what is skipped, why) and stop."),
):
    """Run a pipeline recipe: its stages in order, skipping those whose inputs and options are unchanged."""
    from breakgan.pipeline.recipe import load_recipe, parse_sets
    from breakgan.pipeline.runner import run_pipeline

    commands = _commands(ctx)
    r = load_recipe(recipe, parse_sets(set_), commands=commands)
    steps = run_pipeline(r, force=force, dry_run=dry_run, commands=commands)
    if not dry_run:
        _summary(steps)


def _summary(steps) -> None:
    from breakgan.console import console

    ran = [s for s in steps if s.status == "run"]
    skipped = [s for s in steps if s.status == "skip"]
    console.print(f"[bold green]pipeline done[/bold green]: {len(ran)} ran "
                  f"({sum(s.seconds for s in ran):.0f} s), {len(skipped)} unchanged")
    for s in steps:
        if s.status != "disabled" and s.stage.out:
            console.print(f"  {s.stage.name:<10} {s.stage.out}")


def demo(
    ctx: typer.Context,
    out: Path = typer.Option(Path("renders/demo"), "--out", help="Folder for everything the demo writes."),
    clips: Optional[List[Path]] = typer.Option(
        None, "--clips", metavar="PATH",
        help="Your own dance clips or folders (repeatable) instead of the built-in clip; "
             "a small generator is then trained on them first (minutes on a CPU)."),
    seed: str = typer.Option("breakbeat", "--seed",
                             help="Drum seed: a name from assets/seeds/ (breakbeat, four_on_the_floor, "
                                  "hiphop) or a MIDI file."),
    bars: int = typer.Option(8, "--bars", min=1, max=64, help="Length of the drum pattern in bars."),
    preview: bool = typer.Option(False, "--preview/--full",
                                 help="--preview renders small and fast (for a quick look or a test)."),
    kimg: float = typer.Option(18.0, "--kimg", min=0.1,
                               help="With --clips: thousands of images to train the small generator on."),
    set_: List[str] = typer.Option([], "--set", metavar="NAME=VALUE",
                                   help="Override anything in pipelines/demo.toml, as for `breakgan run` "
                                        "(render.size=1280x720, drum_model=FILE). Repeatable."),
    force: List[str] = typer.Option([], "--force", metavar="STAGE",
                                    help="Rerun this stage (and what depends on it) even if unchanged."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and stop."),
):
    """Run the whole chain on built-in assets (or --clips): ingest, generator, drums, render to an MP4."""
    from breakgan.pipeline.demo_recipe import demo_sets, print_demo_summary
    from breakgan.pipeline.recipe import PROJECT_ROOT, load_recipe, parse_sets
    from breakgan.pipeline.runner import run_pipeline

    recipe_path = PROJECT_ROOT / "pipelines" / DEMO_RECIPE
    if not recipe_path.is_file():
        raise BreakganError(f"{recipe_path}: the demo recipe is missing (run breakgan from its source checkout)")
    sets = demo_sets(out=out, clips=clips, seed=seed, bars=bars, preview=preview, kimg=kimg)
    sets.update(parse_sets(set_))
    commands = _commands(ctx)
    recipe = load_recipe(recipe_path, sets, commands=commands)
    steps = run_pipeline(recipe, force=force, dry_run=dry_run, commands=commands)
    if not dry_run:
        print_demo_summary(recipe, steps, sets)
