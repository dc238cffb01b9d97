"""`breakgan drums` (placeholder until the drums stage lands)."""
import typer

from breakgan.errors import BreakganError

app = typer.Typer(help="Generate drum patterns per part with DrumsRNN.", invoke_without_command=True)


@app.callback()
def drums(ctx: typer.Context):
    """Seed MIDI -> per-part drum patterns, stems and audio."""
    if ctx.invoked_subcommand is None:
        raise BreakganError("drums is not implemented yet")
