"""`breakgan run` and `breakgan demo` (placeholders until the pipeline lands)."""
from pathlib import Path

import typer

from breakgan.errors import BreakganError


def run(recipe: Path = typer.Argument(..., help="pipelines/NAME.toml")):
    """Run a declarative pipeline recipe."""
    raise BreakganError("run is not implemented yet")


def demo():
    """Run the whole chain on built-in assets."""
    raise BreakganError("demo is not implemented yet")
