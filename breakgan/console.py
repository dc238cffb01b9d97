"""Shared terminal output: one rich console on stderr and one progress-bar style for every stage."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

# soft_wrap: a message is one line however narrow the terminal (or a log file) is
console = Console(stderr=True, highlight=False, soft_wrap=True)


def progress(*extra_columns, transient: bool = False) -> Progress:
    """A progress bar with count, percentage, elapsed time and ETA; extra columns go before the ETA.

    Use as `with progress() as p: task = p.add_task("ingest clip.mp4", total=n); p.advance(task)`.
    Extra fields (fps, kimg, loss) can be shown with TextColumn("{task.fields[fps]}").
    """
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        *extra_columns,
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


def warn(message: str) -> None:
    """One line on stderr; the message is plain text (a path with [brackets] is printed as it is)."""
    console.print(f"[yellow]warning:[/yellow] {escape(message)}")


def info(message: str) -> None:
    """One line on stderr; rich markup in `message` is honoured (callers escape what they quote)."""
    console.print(message)
