"""`breakgan train`, `sample`, `metrics` (placeholders until the GAN stage lands)."""
from pathlib import Path

import typer

from breakgan.errors import BreakganError


def train(dataset: Path = typer.Argument(..., help="Dataset folder from `breakgan ingest`.")):
    """Train a Progressive Growing GAN on a dataset."""
    raise BreakganError("train is not implemented yet")


def sample(run: Path = typer.Argument(..., help="Run folder or checkpoint.")):
    """Sample images from a trained generator."""
    raise BreakganError("sample is not implemented yet")


def metrics(run: Path = typer.Argument(..., help="Run folder or checkpoint.")):
    """Compute SWD between generated and real frames."""
    raise BreakganError("metrics is not implemented yet")
