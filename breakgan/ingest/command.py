"""`breakgan ingest` (placeholder until the ingest stage lands)."""
from pathlib import Path
from typing import List

import typer

from breakgan.errors import BreakganError


def ingest(clips: List[Path] = typer.Argument(..., help="Clips or folders of clips."),
           out: Path = typer.Option(..., "--out", help="Dataset folder.")):
    """Turn dance clips into a clean, diverse training set."""
    raise BreakganError("ingest is not implemented yet")
