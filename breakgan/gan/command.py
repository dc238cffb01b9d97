"""`breakgan train` (placeholder until the GAN stage lands)."""
from pathlib import Path

import typer

from breakgan.errors import BreakganError


def train(dataset: Path = typer.Argument(..., help="Dataset folder from `breakgan ingest`.")):
    """Train a Progressive Growing GAN on a dataset."""
    raise BreakganError("train is not implemented yet")
