"""The per-clip summary table printed after an ingest."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from breakgan.console import console

_COLUMNS = ("candidates", "kept", "blur", "still", "duplicate", "limit", "mirrored")
_HEADERS = ("frames", "kept", "blur", "still", "dup", "limit", "mirror")


def print_summary(summary) -> None:
    table = Table(title=f"ingest -> {escape(str(summary.out))}", title_justify="left")
    table.add_column("clip", overflow="fold")
    table.add_column("status")
    for name in _HEADERS:
        table.add_column(name, justify="right")
    table.add_column("note", overflow="fold")
    style = {"ingested": "green", "skipped": "dim", "failed": "red"}
    for c in summary.clips:
        cells = [str(c.counts.get(name, "")) if c.counts else "" for name in _COLUMNS]
        note = c.error or (f"{c.seconds:.1f} s" if c.seconds else "")
        name = c.path.name + (f" ({c.label})" if c.label and c.label != c.path.stem else "")
        table.add_row(escape(name), f"[{style[c.status]}]{c.status}[/]", *cells, escape(note))
    console.print(table)
    state = "updated" if summary.written else "unchanged"
    console.print(f"dataset {state}: {summary.count} frames from {len(summary.labels)} clips "
                  f"({len(summary.failed)} failed)")
