"""The `breakgan` command: one thin command per stage.

Each stage's module parses and validates its options, then calls one function of the stage. Heavy
libraries (torch, librosa, cv2) are imported inside the commands so `breakgan --help` stays fast.
"""

from __future__ import annotations

import math
import os
import sys

import typer

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as click_exc
except ImportError:  # older typer runs on click itself
    from click import exceptions as click_exc

from breakgan import __version__
from breakgan.drums.command import app as drums_app
from breakgan.errors import BreakganError
from breakgan.gan.command import train
from breakgan.gan.inspect_command import metrics, sample
from breakgan.ingest.command import ingest
from breakgan.live.command import live
from breakgan.pipeline import demo, run
from breakgan.render.command import render
from breakgan.studio.command import studio

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
app.command()(studio)
app.command(no_args_is_help=True)(run)
app.command()(demo)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _fail(message: str, code: int) -> None:
    typer.secho(f"error: {_one_line(message)}", err=True, fg=typer.colors.RED)
    sys.exit(code)


def _given(args: list[str], opts: list[str]) -> str | None:
    """The last value given on the command line for an option with these names."""
    value = None
    for i, a in enumerate(args):
        for opt in opts:
            if a == opt and i + 1 < len(args):
                value = args[i + 1]
            elif a.startswith(opt + "="):
                value = a[len(opt) + 1:]
    return value


def _usage_message(e: click_exc.UsageError, args: list[str]) -> str:
    """click's message, except for NaN: a range check fails on it with "should be less than or equal to
    10", which names the option but not what is wrong with the value."""
    param = getattr(e, "param", None)
    opts = getattr(param, "opts", None)
    if isinstance(e, click_exc.BadParameter) and opts and opts[0].startswith("-"):
        value = _given(args, opts)
        try:
            number = float(value) if value is not None else 0.0
        except ValueError:
            number = 0.0
        if math.isnan(number):
            return f"Invalid value for '{opts[0]}': {value} is not a number"
    return e.format_message()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry, and the one way errors leave the program.

    A user error (BreakganError, a bad option, an unreadable file) becomes one line on stderr and a
    non-zero exit; `--debug` (or BREAKGAN_DEBUG=1) re-raises it with its traceback. Anything else is a
    bug: it still leaves as one line, saying so, so that a user never meets a wall of traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("BREAKGAN_DEBUG") == "1"
    try:
        # standalone_mode=False: click hands its usage errors to us instead of printing a panel
        result = app(args=args, prog_name="breakgan", standalone_mode=False)
    except click_exc.NoArgsIsHelpError as e:
        # rich help is printed while the error is built; plain help comes back as the message
        if e.format_message().strip():
            typer.echo(e.format_message(), err=True)
        sys.exit(e.exit_code)
    except click_exc.UsageError as e:
        if debug:
            raise
        where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        _fail(_usage_message(e, args) + where, e.exit_code)
    except click_exc.ClickException as e:
        if debug:
            raise
        _fail(e.format_message(), e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.secho("interrupted", err=True, fg=typer.colors.YELLOW)
        sys.exit(130)
    except BreakganError as e:
        if debug:
            raise
        _fail(str(e), e.exit_code)
    except MemoryError:
        if debug:
            raise
        _fail("out of memory (an input or option asks for more than this machine has)", 1)
    except OSError as e:
        if debug:
            raise
        name = f"{e.filename}: " if e.filename else ""
        _fail(f"{name}{e.strerror or e}", 1)
    except Exception as e:  # noqa: BLE001 - the last resort; tests assert it is never reached
        if debug:
            raise
        _fail(f"internal error ({type(e).__name__}: {e}); this is a bug in breakgan: "
              "run again with --debug and report the traceback", 70)
    if result == 130:  # typer turns Ctrl-C into Exit(130) without a word
        typer.secho("interrupted", err=True, fg=typer.colors.YELLOW)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
