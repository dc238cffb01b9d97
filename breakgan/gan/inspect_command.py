"""`breakgan sample` and `breakgan metrics` (placeholders until they land)."""
from pathlib import Path

import typer

from breakgan.errors import BreakganError


def sample(run: Path = typer.Argument(..., help="Run folder or checkpoint.")):
    """Sample images from a trained generator."""
    raise BreakganError("sample is not implemented yet")


def metrics(run: Path = typer.Argument(..., help="Run folder or checkpoint.")):
    """Compute SWD between generated and real frames."""
    raise BreakganError("metrics is not implemented yet")
