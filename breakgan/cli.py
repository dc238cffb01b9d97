"""The `breakgan` command: one thin command per stage.

Each stage's module parses and validates its options, then calls one function of the stage. Heavy
libraries (torch, librosa, cv2) are imported inside the commands so `breakgan --help` stays fast.
"""

from __future__ import annotations

import os
import sys

import typer

from breakgan import __version__
from breakgan.drums.command import app as drums_app
from breakgan.errors import BreakganError
from breakgan.gan.command import train
from breakgan.gan.inspect_command import metrics, sample
from breakgan.ingest.command import ingest
from breakgan.live.command import live
from breakgan.pipeline import demo, run
from breakgan.render.command import render

app = typer.Typer(
    name="breakgan",
    help="Dance footage + drum patterns -> beat-synced GAN video, and live OSC for TouchDesigner.\n\n"
    "Stages: ingest (clips -> dataset), train (dataset -> PGGAN run), drums (seed MIDI -> per-part "
    "patterns and stems), render (run + drums -> MP4), live (drums -> OSC). "
    "`breakgan demo` runs the whole chain on built-in assets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool):
    if value:
        typer.echo(f"breakgan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
):
    if debug:
        os.environ["BREAKGAN_DEBUG"] = "1"


app.command(no_args_is_help=True)(ingest)
app.command(no_args_is_help=True)(train)
app.command(no_args_is_help=True)(sample)
app.command(no_args_is_help=True)(metrics)
app.add_typer(drums_app, name="drums")
app.command()(render)
app.command()(live)
app.command(no_args_is_help=True)(run)
app.command()(demo)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: user errors become one line on stderr and a non-zero exit."""
    debug = "--debug" in (argv if argv is not None else sys.argv) or os.environ.get("BREAKGAN_DEBUG") == "1"
    try:
        app(args=argv, standalone_mode=True)
    except BreakganError as e:
        if debug:
            raise
        typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True, fg=typer.colors.YELLOW)
        sys.exit(130)


if __name__ == "__main__":
    main()
